"""Finding the record behind a data error, so that errors name the shard, the record and the field.

TensorFlow reports a corrupt TFRecord as `DataLossError: corrupted record at <byte offset>`
and an undecodable image as `InvalidArgumentError`, without the file. After such an error
the trainer calls `first_bad_record`, which walks the shards one record at a time.
"""

from typing import Optional, Sequence

import tensorflow as tf

from cma_tf.data import records
from cma_tf.data.record_files import unreadable_message


def _check_example(serialized, num_classes: int) -> Optional[str]:
    """Why one serialized example cannot be used (None if it can)."""
    try:
        parsed = tf.io.parse_single_example(serialized, records.FEATURE_SPEC)
    except tf.errors.InvalidArgumentError as error:
        return f"not a tf.train.Example of the image format ({error.message.splitlines()[0]})"
    source_id = parsed[records.SOURCE_ID].numpy().decode(errors="replace")
    where = f"source_id {source_id!r}" if source_id else "no source_id"
    labels = tf.sparse.to_dense(parsed[records.LABELS]).numpy()
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        return f"{where}: field '{records.LABELS}' has id {int(labels.max())} outside [0, {num_classes})"
    try:
        tf.io.decode_image(parsed[records.ENCODED], channels=3, expand_animations=False)
    except tf.errors.InvalidArgumentError as error:
        return f"{where}: field '{records.ENCODED}' does not decode as an image ({error.message.splitlines()[0]})"
    return None


def first_bad_record(files: Sequence[str], num_classes: int) -> Optional[str]:
    """A message naming the first unreadable record (shard, record index, field), or None."""
    for path in files:
        index = -1
        try:
            for index, serialized in enumerate(tf.data.TFRecordDataset(path)):
                problem = _check_example(serialized, num_classes)
                if problem:
                    return f"{path}: record {index}: {problem}"
        except tf.errors.DataLossError as error:
            return unreadable_message(path, index + 1, error)
    return None
