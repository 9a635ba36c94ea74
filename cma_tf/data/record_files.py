"""Reading TFRecord files record by record, with the one message every command gives for a
file that cannot be read to its end (truncated by an interrupted copy, or damaged).

TensorFlow reports such a file as `DataLossError: corrupted record at <byte offset>` (or an
`OutOfRangeError` inside a record), naming neither the file nor the record. Every walk over
record files (`predict`'s sources, the checks before training, the scans after a failed read
in `train`, `evaluate` and `segment_inference`) reads through `read_records`, so each names
the file and the first record it could not read, in the same words.
"""

from typing import Iterator, Optional, Sequence, Tuple

import tensorflow as tf

from cma_tf.errors import DataError


def unreadable_message(path: str, index: int, error: tf.errors.OpError) -> str:
    """One line: `path` cannot be read from record `index` (0-based) on, and what to do."""
    reason = error.message.splitlines()[0] if error.message else type(error).__name__
    return (
        f"{path}: record {index} and on cannot be read ({reason}): the file is truncated or damaged; "
        "copy or convert it again"
    )


def read_records(path: str, count: Optional[int] = None) -> Iterator[Tuple[int, bytes]]:
    """`(index, serialized)` of the records of `path` (its first `count`, when given), in
    order; a `DataError` (`unreadable_message`) at the first record that cannot be read."""
    dataset = tf.data.TFRecordDataset(path)
    if count is not None:
        dataset = dataset.take(count)
    index = 0
    try:
        for index, raw in enumerate(dataset.as_numpy_iterator()):
            yield index, raw
            index += 1
    except tf.errors.OpError as error:
        raise DataError(unreadable_message(path, index, error)) from None


def first_unreadable_record(files: Sequence[str]) -> Optional[str]:
    """After a failed read: the `unreadable_message` of the first file of `files` that cannot be
    read to its end, or None when every one can (the failure was not in the framing). Reads every
    record (no parsing)."""
    for path in files:
        try:
            for _ in read_records(path):
                pass
        except DataError as error:
            return str(error)
    return None


def describe_read_failure(files: Sequence[str], error: tf.errors.OpError) -> str:
    """One line for a read of `files` that failed with `error`: the file and record that cannot be
    read (`first_unreadable_record`), else the first line of TensorFlow's message."""
    reason = error.message.strip().splitlines()[0] if error.message.strip() else type(error).__name__
    shown = ", ".join(files[:3]) + (", …" if len(files) > 3 else "")
    return first_unreadable_record(files) or f"reading {shown}: {reason}"
