"""What `python -m cma_tf.predict` reads: image files, folders of images, or TFRecords, in
batches of `(ids, request items)` for the `serving_default` signature.

    image files    any path not ending in a record extension; the id is the path
    folders        every image (`decode.IMAGE_EXTENSIONS`, the formats the converter reads) and
                   TFRecord file below them, sorted
    TFRecords      `.tfrecord`, `.tfrecords`, `.tfrec`: image records (`data/records.py`; the id
                   is `image/source_id`) for image models, YouTube-8M records as they are for
                   video models (the id is the record's `id`); `<file>:<index>` when there is none

Items are read as bytes and left to the model's graph to decode, except image files in a format
other than JPEG, PNG and GIF (TIFF, WebP, BMP, …), which are decoded here by the converter's
rules and sent as PNG (`decode.for_serving`), so the model sees the pixels it was trained on.
An item that does not decode is the model's per-item `valid=False`, not a failure of the run;
`why_not_decoded` says why in words. The first record of each TFRecord file is
checked for its kind, though: records of another kind than the model reads (video-level
records for a frame-level model, YouTube-8M records for an image model, …) would make every
item `valid=False`, so they are refused with one line saying which records the model reads.
"""

import os
from typing import Iterator, List, Sequence, Tuple

import tensorflow as tf

from cma_tf.data import decode
from cma_tf.data import records as image_records
from cma_tf.data.record_files import read_records
from cma_tf.data.yt8m import records as yt8m_records
from cma_tf.data.yt8m import validate as yt8m_validate
from cma_tf.errors import DataError
from cma_tf.data.requests import EXAMPLES, IMAGES, SEQUENCE_EXAMPLES

IMAGE_EXTENSIONS = decode.IMAGE_EXTENSIONS
RECORD_EXTENSIONS = (".tfrecord", ".tfrecords", ".tfrec")


def is_record_file(path: str) -> bool:
    return path.lower().endswith(RECORD_EXTENSIONS)


def _files_below(folder: str) -> List[str]:
    found = []
    for directory, _, names in tf.io.gfile.walk(folder):
        found.extend(
            os.path.join(directory, name) for name in names if name.lower().endswith(IMAGE_EXTENSIONS + RECORD_EXTENSIONS)
        )
    return sorted(found)


def expand_inputs(inputs: Sequence[str]) -> List[str]:
    """Files, folders and glob patterns → the files to read, in order; an error names an entry
    that matches nothing."""
    files = []
    for entry in inputs:
        if tf.io.gfile.isdir(entry):
            matched = _files_below(entry)
            what = f"no image or TFRecord files ({', '.join(IMAGE_EXTENSIONS + RECORD_EXTENSIONS)}) below the folder"
        elif any(char in entry for char in "*?["):
            matched = sorted(tf.io.gfile.glob(entry))
            what = "nothing matches the pattern"
        else:
            matched = [entry] if tf.io.gfile.exists(entry) else []
            what = "no such file"
        if not matched:
            raise FileNotFoundError(f"--input {entry}: {what}")
        files.extend(matched)
    return files


def _record_id(raw: bytes, input_name: str, fallback: str) -> Tuple[str, bytes]:
    """`(id, request item)` of one record: images take their encoded bytes out of the record."""
    try:
        if input_name == SEQUENCE_EXAMPLES:
            context = tf.train.SequenceExample.FromString(raw).context.feature
            return _text(context, yt8m_records.ID) or fallback, raw
        features = tf.train.Example.FromString(raw).features.feature
    except Exception:  # noqa: BLE001 - a record that is not a proto: the model flags it
        return fallback, raw
    if input_name == EXAMPLES:
        return _text(features, yt8m_records.ID) or fallback, raw
    encoded = features[image_records.ENCODED].bytes_list.value if image_records.ENCODED in features else []
    return _text(features, image_records.SOURCE_ID) or fallback, encoded[0] if encoded else b""


def _text(features, key) -> str:
    values = features[key].bytes_list.value if key in features else []
    return values[0].decode("utf-8", "replace") if values else ""


# The record kind each signature input reads, and what to give it.
RECORD_KINDS = {
    SEQUENCE_EXAMPLES: (yt8m_validate.FRAME_LEVEL, "give it frame-level records (e.g. the published frame/test*.tfrecord)"),
    EXAMPLES: (yt8m_validate.VIDEO_LEVEL, "give it video-level records (e.g. the published video/test*.tfrecord)"),
    IMAGES: (yt8m_validate.IMAGE, "give it image files or image records (python -m cma_tf.data.convert …)"),
}


def check_record_kind(path: str, raw: bytes, input_name: str) -> None:
    """A `DataError` when the record `raw` (the first of `path`) is of a kind that the model's
    input `input_name` does not read. A record that is no proto at all passes: the model flags it."""
    kind, fix = RECORD_KINDS[input_name]
    found = yt8m_validate.summarize(raw).kind
    if found not in (kind, yt8m_validate.UNKNOWN):
        raise DataError(
            f"{path} holds {yt8m_validate.DESCRIPTIONS[found]}, but the model reads "
            f"{yt8m_validate.DESCRIPTIONS[kind]}: {fix}"
        )


def _records(path: str, input_name: str) -> Iterator[Tuple[str, bytes]]:
    for index, raw in read_records(path):
        if index == 0:
            check_record_kind(path, raw, input_name)
        yield _record_id(raw, input_name, f"{path}:{index}")


def read_items(files: Sequence[str], input_name: str) -> Iterator[Tuple[str, bytes]]:
    """`(id, request item)` of every item of `files`, in order (see the module's docstring)."""
    for path in files:
        if is_record_file(path):
            yield from _records(path, input_name)
        elif input_name != IMAGES:
            raise DataError(f"{path}: this model reads YouTube-8M records ({input_name}); give .tfrecord files")
        else:
            with tf.io.gfile.GFile(path, "rb") as f:
                yield path, _image_item(f.read())


def _image_item(data: bytes) -> bytes:
    """The request item of an image file (see the module's docstring); bytes that do not decode
    are sent as they are, for the model to flag."""
    try:
        return decode.for_serving(data)
    except decode.UndecodableImage:
        return data


def why_not_decoded(item: bytes, input_name: str) -> str:
    """Why the model flagged `item` (`valid=False`), in words."""
    if input_name == IMAGES:
        return decode.why_not_decoded(item) or "the model's graph could not decode it"
    return yt8m_validate.why_not_served(item, frame_level=input_name != EXAMPLES) or (
        f"not a record the model reads ({input_name}): malformed, or lacking a feature the model reads"
    )


def batches(files: Sequence[str], input_name: str, batch_size: int) -> Iterator[Tuple[List[str], List[bytes]]]:
    """`(ids, items)` lists of at most `batch_size`, in file order."""
    ids, items = [], []
    for item_id, item in read_items(files, input_name):
        ids.append(item_id)
        items.append(item)
        if len(items) == batch_size:
            yield ids, items
            ids, items = [], []
    if items:
        yield ids, items


def known_count(files: Sequence[str]):
    """Items to expect, for the progress bar: the number of image files, or None when records
    are read (counting them would read them twice)."""
    return None if any(is_record_file(path) for path in files) else len(files)
