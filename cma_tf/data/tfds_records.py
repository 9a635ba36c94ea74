"""Image datasets prepared by TensorFlow Datasets (`tfds build`, `download_and_prepare`), read
where they are: the prepared TFRecord shards of a split, decoded with the dataset's own
feature spec.

A prepared dataset is `<tfds_data_dir>/<name>/<config>/<version>/` with `dataset_info.json`,
`features.json` and `<name>-<split>.tfrecord-NNNNN-of-NNNNN` shards. Reading the shards (and
not `tfds.load`) keeps everything that works on our own records working on these: sharding
across `tf.distribute` input pipelines, the streaming label graph, the shuffles and the
augmentation of `images.py`.

Labels are one `ClassLabel` field, given as a path (`labels`, `objects/label`):
- a multi-label classification dataset keeps them in a top-level `Sequence(ClassLabel)`
  (VOC's `labels`);
- a detection dataset keeps one per object (`objects/label`, COCO, VOC); an image's labels are
  its objects' labels, each once;
- a single-label dataset's `label` gives one label per image.
The vocabulary is that `ClassLabel`'s names, in id order.

Nothing here downloads: a dataset that is not prepared in the directory searched is a
`DataError` naming both.
"""

import functools
from typing import Optional

import tensorflow as tf

from cma_tf.errors import ConfigError, DataError

# Tried in this order when `config.data.tfds_label_field` is empty.
LABEL_FIELD_CANDIDATES = ("labels", "objects/label", "label")
IMAGE_FIELD = "image"


def _tfds():
    try:
        import tensorflow_datasets
    except ImportError as error:
        raise ConfigError(
            "config.data.format='tfds' needs TensorFlow Datasets: pip install tensorflow-datasets "
            "(or pip install -e '.[tfds]')"
        ) from error
    return tensorflow_datasets


@functools.lru_cache(maxsize=16)  # each command asks several times; a failure is not cached
def load_builder(name: str, data_dir: Optional[str] = None):
    """The prepared dataset `name` (e.g. "coco/2014") in `data_dir` (None: TFDS's default,
    `$TFDS_DATA_DIR` or `~/tensorflow_datasets`), without any download.

    Raises:
        ConfigError: `name` is not a dataset TFDS knows.
        DataError: it is not prepared there, or its shards are not TFRecords.
    """
    tfds = _tfds()
    if not name:
        raise ConfigError("config.data.tfds_name is empty: name a TFDS dataset, e.g. --config.data.tfds_name=coco/2014")
    try:
        builder = tfds.builder(name, data_dir=data_dir or None, try_gcs=False)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ConfigError(f"config.data.tfds_name={name!r}: {str(error).splitlines()[0]}") from error
    except ValueError as error:  # an unknown config or version of a known dataset
        raise ConfigError(f"config.data.tfds_name={name!r}: {str(error).splitlines()[0]}") from error
    if not builder.is_prepared():
        raise DataError(
            f"TFDS dataset {name!r} is not prepared in {builder.data_dir} (no dataset_info.json); cma_tf "
            f"never downloads: prepare it on a machine with network "
            f"(tfds build {name} --data_dir=DIR), then give --config.data.tfds_data_dir=DIR"
        )
    file_format = getattr(builder.info, "file_format", None) or "tfrecord"
    file_format = str(getattr(file_format, "value", file_format)).lower()
    if "tfrecord" not in file_format:
        raise DataError(
            f"TFDS dataset {name!r} in {builder.data_dir} is prepared as {file_format}; cma_tf reads TFRecord "
            f"shards: prepare it with tfds build {name} --file_format=tfrecord"
        )
    return builder


def split_files(builder, split: str) -> list:
    """The shard files of `split`; "train+validation" joins whole splits."""
    files = []
    for part in split.split("+"):
        part = part.strip()
        if part not in builder.info.splits:
            raise DataError(
                f"TFDS dataset {builder.info.full_name} has no split {part!r} (it has "
                f"{', '.join(sorted(builder.info.splits))}): set config.data.train_split / eval_split"
            )
        files.extend(str(path) for path in builder.info.splits[part].filepaths)
    if not files:
        raise DataError(f"split {split!r} of TFDS dataset {builder.info.full_name} has no shard files in {builder.data_dir}")
    return files


def _feature_at(features, path):
    node = features
    for key in path.split("/"):
        node = node.feature if _is_sequence(node) else node
        if not hasattr(node, "keys") or key not in node.keys():
            return None
        node = node[key]
    return node


def _is_sequence(feature):
    return type(feature).__name__ == "Sequence"


def _class_label(feature):
    """The `ClassLabel` of `feature`, itself or a `Sequence` of it; None otherwise."""
    if feature is None:
        return None
    inner = feature.feature if _is_sequence(feature) else feature
    return inner if type(inner).__name__ == "ClassLabel" else None


def label_field(builder, configured: str = "") -> str:
    """`configured`, checked to be a `ClassLabel` field, or the first of `LABEL_FIELD_CANDIDATES`
    that is one."""
    features = builder.info.features
    candidates = (configured,) if configured else LABEL_FIELD_CANDIDATES
    for path in candidates:
        if _class_label(_feature_at(features, path)) is not None:
            return path
    wanted = f"config.data.tfds_label_field={configured!r} is not" if configured else (
        f"none of {', '.join(LABEL_FIELD_CANDIDATES)} is")
    raise ConfigError(
        f"TFDS dataset {builder.info.full_name}: {wanted} a ClassLabel field; its features are "
        f"{', '.join(_feature_paths(features))} (set config.data.tfds_label_field to the one holding the labels)"
    )


def _feature_paths(features, prefix=""):
    node = features.feature if _is_sequence(features) else features
    if not hasattr(node, "keys"):
        return [prefix.rstrip("/")]
    paths = []
    for key in node.keys():
        paths.extend(_feature_paths(node[key], f"{prefix}{key}/"))
    return paths


def vocabulary(builder, field: str) -> list:
    """The names of the label `ClassLabel`, in id order."""
    return list(_class_label(_feature_at(builder.info.features, field)).names)


def _check_image_field(builder):
    features = builder.info.features
    if IMAGE_FIELD not in features.keys() or type(features[IMAGE_FIELD]).__name__ != "Image":
        raise ConfigError(
            f"TFDS dataset {builder.info.full_name} has no '{IMAGE_FIELD}' Image feature (its features are "
            f"{', '.join(_feature_paths(features))}): config.data.format='tfds' reads image datasets"
        )


def _labels_of(example, field):
    node = example
    for key in field.split("/"):
        node = node[key]
    return tf.unique(tf.reshape(tf.cast(node, tf.int64), [-1])).y


def _deserializer(builder):
    """serialized example (scalar) → the dataset's feature dict, the image left encoded."""
    decoders = {IMAGE_FIELD: _tfds().decode.SkipDecoding()}
    features = builder.info.features
    return lambda serialized: features.deserialize_example(serialized, decoders=decoders)


def example_parser(builder, field: str):
    """serialized example (scalar) → `(encoded image bytes, int64 [L] label ids, each once)`,
    decoded with the dataset's feature spec; the image stays encoded (our pipeline decodes,
    crops and resizes it)."""
    _check_image_field(builder)
    deserialize = _deserializer(builder)

    def parse(serialized):
        example = deserialize(serialized)
        return example[IMAGE_FIELD], _labels_of(example, field)

    return parse


def labels_parser(builder, field: str):
    """serialized examples `[B]` → sparse label ids `[B, L]` (each label once per example), for
    the streaming label graph."""
    deserialize = _deserializer(builder)

    def parse(serialized):
        ragged = tf.map_fn(
            lambda one: _labels_of(deserialize(one), field), serialized,
            fn_output_signature=tf.RaggedTensorSpec([None], tf.int64, ragged_rank=0),
        )
        return ragged.to_sparse()

    return parse


def first_labelled(builder, files, field: str, limit: int = 64) -> bool:
    """Whether any of the first `limit` examples of `files` has a label."""
    parse = labels_parser(builder, field)
    for sparse in tf.data.TFRecordDataset(files).take(limit).batch(limit).map(parse):
        return bool(tf.size(sparse.values) > 0)
    return False
