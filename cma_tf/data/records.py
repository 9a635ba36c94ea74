"""The image TFRecord format (docs/design.md §3.1) and sharded, atomic record writing.

One `tf.train.Example` per image:

    image/encoded       bytes   JPEG or PNG
    image/format        bytes   b"jpeg" or b"png"
    image/height        int64
    image/width         int64
    image/source_id     bytes   the image's id in its source dataset
    image/class/label   int64[] label ids into the dataset's vocabulary (may repeat; order free)

Shards are named `{split}-{index:05d}-of-{count:05d}.tfrecord` inside a data directory that also
holds the vocabulary (`labels.txt`, see `vocab.py`).
"""

import os
from typing import Iterable, Sequence

import tensorflow as tf

from cma_tf.atomic import atomic_path
from cma_tf.errors import DataError

ENCODED = "image/encoded"
FORMAT = "image/format"
HEIGHT = "image/height"
WIDTH = "image/width"
SOURCE_ID = "image/source_id"
LABELS = "image/class/label"

FEATURE_SPEC = {
    ENCODED: tf.io.FixedLenFeature([], tf.string),
    FORMAT: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    HEIGHT: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    WIDTH: tf.io.FixedLenFeature([], tf.int64, default_value=0),
    SOURCE_ID: tf.io.FixedLenFeature([], tf.string, default_value=b""),
    LABELS: tf.io.VarLenFeature(tf.int64),
}
LABELS_ONLY_SPEC = {LABELS: tf.io.VarLenFeature(tf.int64)}


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def encode_image_example(
    encoded: bytes,
    image_format: str,
    height: int,
    width: int,
    source_id: str,
    labels: Sequence[int],
) -> bytes:
    """Returns one serialized `tf.train.Example` in the image format above."""
    features = {
        ENCODED: _bytes([encoded]),
        FORMAT: _bytes([image_format.encode()]),
        HEIGHT: _ints([int(height)]),
        WIDTH: _ints([int(width)]),
        SOURCE_ID: _bytes([str(source_id).encode()]),
        LABELS: _ints([int(label) for label in labels]),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def parse_image_example(serialized):
    """Parses serialized examples (scalar or batch) into a dict; labels become dense int64."""
    parsed = tf.io.parse_example(serialized, FEATURE_SPEC)
    parsed[LABELS] = tf.sparse.to_dense(parsed[LABELS], default_value=-1)
    return parsed


def shard_path(data_dir: str, split: str, index: int, count: int) -> str:
    return os.path.join(data_dir, f"{split}-{index:05d}-of-{count:05d}.tfrecord")


def split_pattern(data_dir: str, split: str) -> str:
    return os.path.join(data_dir, f"{split}-*-of-*.tfrecord")


def list_shards(data_dir: str, split: str) -> list:
    """The sorted shard files of one split; a clear error naming the pattern if there are none."""
    return list_matching_files(split_pattern(data_dir, split), f"TFRecord shards for split '{split}'")


def list_matching_files(pattern: str, what: str) -> list:
    """The sorted files matching `pattern` (local or `gs://`); an error naming `what` and the
    pattern if there are none."""
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise DataError(f"No {what}: nothing matches {pattern}")
    return files


def write_shard(path: str, serialized_examples: Iterable[bytes]) -> int:
    """Writes one shard to `path` atomically; returns the record count."""
    count = 0
    with atomic_path(path) as tmp, tf.io.TFRecordWriter(tmp) as writer:
        for record in serialized_examples:
            writer.write(record)
            count += 1
    return count


def write_split(data_dir: str, split: str, serialized_examples: Sequence[bytes], num_shards: int):
    """Writes a split round-robin into `num_shards` atomic shards; returns the shard paths."""
    paths = []
    for index in range(num_shards):
        path = shard_path(data_dir, split, index, num_shards)
        write_shard(path, serialized_examples[index::num_shards])
        paths.append(path)
    return paths
