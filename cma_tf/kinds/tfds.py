"""Image datasets prepared by TensorFlow Datasets (`config.data.format="tfds"`): COCO, VOC and
any image dataset with a `ClassLabel` field, read from where TFDS prepared them
(`cma_tf/data/tfds_records.py`), without converting them to our records."""

from cma_tf.data import images, tfds_records
from cma_tf.errors import ConfigError, DataError
from cma_tf.kinds.image import ImageKind
from cma_tf.kinds.registry import register_kind


class TFDSKind(ImageKind):
    """As `ImageKind` (the same pipeline, augmentation, metrics and serving), over the shards of
    `config.data.tfds_name` in `config.data.tfds_data_dir`; the splits are the dataset's
    (`train`, `validation`, `test`; "train+validation" joins them)."""

    name = "tfds"
    labels_field = "config.data.tfds_label_field"

    def builder(self, config):
        return tfds_records.load_builder(config.data.tfds_name, config.data.tfds_data_dir or None)

    def label_field(self, config):
        return tfds_records.label_field(self.builder(config), config.data.tfds_label_field)

    def builder_and_field(self, config):
        """The prepared dataset and its label field (`tfds_label_field`, or the one found)."""
        return self.builder(config), self.label_field(config)

    def validate(self, config):
        if not config.data.tfds_name:
            raise ConfigError(
                "config.data.format='tfds' needs config.data.tfds_name (e.g. --config.data.tfds_name=coco/2014)"
            )
        if config.data.data_dir:
            raise ConfigError(
                f"config.data.data_dir={config.data.data_dir!r} with config.data.format='tfds': the data is where "
                "TFDS prepared it; give that folder as --config.data.tfds_data_dir and leave data_dir empty"
            )
        if config.data.vocabulary:
            raise ConfigError(
                f"config.data.vocabulary={config.data.vocabulary!r} with config.data.format='tfds': the labels "
                "are the dataset's ClassLabel names; leave config.data.vocabulary unset"
            )

    def cache_dir(self, config):
        """The prepared dataset's own directory (`<tfds_data_dir>/<name>/<config>/<version>`),
        whose shards the cached label graph fingerprints; `config.data.label_graph` puts it
        elsewhere (a read-only dataset directory)."""
        return self.builder(config).data_dir

    def source(self, config):
        return f"TFDS dataset {config.data.tfds_name} in {self.builder(config).data_dir}"

    def list_files(self, config, split):
        return tfds_records.split_files(self.builder(config), split)

    def read_vocabulary(self, config):
        return tfds_records.vocabulary(*self.builder_and_field(config))

    def label_parser(self, config):
        return tfds_records.labels_parser(*self.builder_and_field(config))

    def first_bad_record(self, config, files, num_classes):
        return None  # TFDS wrote the shards from its own feature spec

    def check_eval_split(self, config, split, files):
        builder, field = self.builder_and_field(config)
        if not tfds_records.first_labelled(builder, files, field):
            others = [name for name in builder.info.splits if name not in (split, config.data.train_split)]
            example = f" (e.g. --config.data.eval_split={others[0]})" if others else ""
            raise DataError(
                f"split '{split}' of TFDS dataset {builder.info.full_name} cannot be evaluated: its first examples "
                f"have no labels in {field!r}; set config.data.eval_split to a "
                f"labelled split{example}"
            )

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        data = config.data
        return images.make_image_dataset(
            files, num_classes=num_classes, image_size=data.image_size, batch_size=batch_size, training=training,
            seed=seed, shuffle_buffer=data.shuffle_buffer, deterministic=data.deterministic, repeat=repeat,
            input_context=input_context, parse=tfds_records.example_parser(*self.builder_and_field(config)),
        )


register_kind(TFDSKind())
