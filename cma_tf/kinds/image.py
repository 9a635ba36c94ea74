"""Images in the TFRecord format of `cma_tf/data/records.py` (`config.data.format="image"`):
the paper's COCO, VOC 2007 and NUS-WIDE experiments and the demo dataset."""

import tensorflow as tf

from cma_tf.data import images, records, requests, vocab
from cma_tf.data.validate import first_bad_record
from cma_tf.errors import DataError
from cma_tf.kinds.found import youtube8m_data
from cma_tf.kinds.registry import DataKind, register_kind
from cma_tf.metrics import image as image_metrics


class ImageKind(DataKind):
    """`(images [B, S, S, 3] in 0..255, multi_hot [B, N])` batches; mAP and C/O P/R/F1 (§4.1)."""

    name = "image"
    backbones = ("resnet101", "small", "convnext_small")
    metric_keys = image_metrics.REPORT_KEYS
    summary_keys = image_metrics.SUMMARY_KEYS
    full_keys = image_metrics.FULL_KEYS
    monitor = "mAP"
    labels_field = records.LABELS
    reads_images = True
    items = "images"

    def read_vocabulary(self, config):
        """`config.data.vocabulary`, else `<data_dir>/labels.txt`; when that is missing and the
        folder holds YouTube-8M data, a `DataError` saying so and naming its format."""
        if not config.data.vocabulary and not tf.io.gfile.exists(vocab.vocabulary_path(config.data.data_dir)):
            self.refuse_video_data(config)
        return super().read_vocabulary(config)

    def list_files(self, config, split):
        try:
            return records.list_shards(config.data.data_dir, split)
        except DataError:
            self.refuse_video_data(config)
            raise

    def refuse_video_data(self, config):
        """A `DataError` naming the YouTube-8M data in `config.data.data_dir`, if it holds some."""
        found = youtube8m_data(config.data.data_dir, config.data.train_split)
        if found is not None:
            description, fix = found
            raise DataError(
                f"config.data.format={self.name!r} reads image records and labels.txt, but {config.data.data_dir} "
                f"holds {description}: {fix}"
            )

    def first_bad_record(self, config, files, num_classes):
        """A label id outside the vocabulary or an undecodable image (`data/validate.py`)."""
        return first_bad_record(files, num_classes)

    def input_shape(self, config):
        return (config.data.image_size, config.data.image_size, 3)

    def build_dataset(self, config, files, num_classes, batch_size, training, seed, repeat, input_context):
        data = config.data
        return images.make_image_dataset(
            files,
            num_classes=num_classes,
            image_size=data.image_size,
            batch_size=batch_size,
            training=training,
            seed=seed,
            shuffle_buffer=data.shuffle_buffer,
            deterministic=data.deterministic,
            repeat=repeat,
            input_context=input_context,
        )

    def metrics(self, scores, targets):
        return image_metrics.multilabel_metrics(scores, targets)

    def serving_request(self, config):
        return requests.image_request(config.data.image_size)


register_kind(ImageKind())
