"""Checks of YouTube-8M record files that name the shard, the record and the field: which kind
of record a file holds (read from its first record), whether a split has labels at all (its
first records), and, after a failed read, the first record with a label id outside the
vocabulary (a walk over the labels).

Kinds, told apart without knowing the format in advance (an `Example` parses as a
`SequenceExample` with its features as the context and no feature lists):

    frame-level   a `SequenceExample` with feature lists (rgb, audio)
    video-level   an `Example` with mean_rgb / mean_audio
    image         an `Example` of `cma_tf/data/records.py` (image/encoded)
"""

import dataclasses
import os
import re
from typing import Iterator, Optional, Sequence, Tuple

import tensorflow as tf

from cma_tf.data import records as image_records
from cma_tf.data.yt8m import records
from cma_tf.errors import DataError

FRAME_LEVEL = "frame-level"
VIDEO_LEVEL = "video-level"
IMAGE = "image"
UNKNOWN = "unknown"

FRAME_FEATURES = (records.RGB, records.AUDIO)
VIDEO_FEATURES = (records.MEAN_RGB, records.MEAN_AUDIO)
FEATURES_OF_KIND = {FRAME_LEVEL: FRAME_FEATURES, VIDEO_LEVEL: VIDEO_FEATURES}
DESCRIPTIONS = {
    FRAME_LEVEL: "frame-level SequenceExamples (rgb, audio per frame; the published frame/ folder)",
    VIDEO_LEVEL: "video-level Examples (mean_rgb, mean_audio; the published video/ folder)",
    IMAGE: "image Examples (image/encoded, image/class/label)",
    UNKNOWN: "records of no known kind",
}

# How many records of a split `check_labelled` reads.
LABEL_CHECK_RECORDS = 32


@dataclasses.dataclass(frozen=True)
class RecordSummary:
    """What one serialized record holds."""

    kind: str
    features: Tuple[str, ...]  # the YouTube-8M features present (or the image's fields)
    video_id: str
    labels: Tuple[int, ...]
    segment_labels: Tuple[int, ...]


def _ints(features, key):
    return tuple(features[key].int64_list.value) if key in features else ()


def summarize(serialized: bytes) -> RecordSummary:
    """The kind, features, id and label ids of one serialized record."""
    try:
        sequence = tf.train.SequenceExample.FromString(serialized)
    except Exception:  # noqa: BLE001 - not a proto at all
        return RecordSummary(UNKNOWN, (), "", (), ())
    context, lists = sequence.context.feature, sequence.feature_lists.feature_list
    ids = context[records.ID].bytes_list.value if records.ID in context else []
    video_id = ids[0].decode("utf-8", "replace") if ids else ""
    if lists:
        kind, features = FRAME_LEVEL, tuple(name for name in FRAME_FEATURES if name in lists)
    elif any(name in context for name in VIDEO_FEATURES):
        kind, features = VIDEO_LEVEL, tuple(name for name in VIDEO_FEATURES if name in context)
    elif image_records.ENCODED in context:
        kind, features = IMAGE, (image_records.ENCODED,)
        ids = context[image_records.SOURCE_ID].bytes_list.value if image_records.SOURCE_ID in context else []
        video_id = ids[0].decode("utf-8", "replace") if ids else ""
        return RecordSummary(kind, features, video_id, _ints(context, image_records.LABELS), ())
    else:
        kind, features = UNKNOWN, ()
    return RecordSummary(
        kind, features, video_id, _ints(context, records.LABELS), _ints(context, records.SEGMENT_LABELS)
    )


def first_records(files: Sequence[str], count: int) -> Iterator[Tuple[str, int, bytes]]:
    """`(file, index in it, serialized)` of the first `count` records of `files`, in order."""
    seen = 0
    for path in files:
        try:
            for index, raw in enumerate(tf.data.TFRecordDataset(path).take(count - seen).as_numpy_iterator()):
                yield path, index, raw
                seen += 1
        except tf.errors.OpError as error:
            raise DataError(f"{path}: cannot read its records: {error.message.splitlines()[0]}") from None
        if seen >= count:
            return


def split_names(files: Sequence[str]) -> list:
    """The split names in a folder of record files: `validate0000.tfrecord` and
    `validate-00000-of-00002.tfrecord` are split `validate`."""
    names = set()
    for path in files:
        match = re.match(r"(.+?)-?\d+(-of-\d+)?\.tfrecords?$", os.path.basename(path))
        if match:
            names.add(match.group(1))
    return sorted(names)


def other_splits(data_dir: str, *excluded: str) -> list:
    """The splits of `data_dir` but `excluded`, for messages that say which split to use."""
    return [name for name in split_names(tf.io.gfile.glob(os.path.join(data_dir, "*.tfrecord")))
            if name not in excluded]


def check_kind(files: Sequence[str], kind: str, feature_names: Sequence[str], setting: str, fix: str,
               features_setting: str = "the feature names") -> None:
    """Reads the first record of `files` (a folder holds one kind); a `DataError` if it is not of
    `kind` or lacks one of `feature_names`. `setting` names what asked for that kind, `fix` says
    what to do instead, `features_setting` where the feature names come from."""
    for path, index, raw in first_records(files, 1):
        found = summarize(raw)
        if found.kind != kind:
            raise DataError(
                f"{path} holds {DESCRIPTIONS[found.kind]}, but {setting} reads "
                f"{DESCRIPTIONS[kind]}: {fix}"
            )
        missing = [name for name in feature_names if name not in found.features]
        if missing:
            raise DataError(
                f"{path}: record {index} (id {found.video_id!r}) has no feature {', '.join(map(repr, missing))} "
                f"(it has {', '.join(found.features) or 'none'}): set {features_setting} to some of those"
            )


def check_labelled(files: Sequence[str], split: str, segments: bool = False, count: int = LABEL_CHECK_RECORDS,
                   field: str = records.LABELS, fix: str = "", segments_fix: str = "") -> None:
    """A `DataError` when none of the first `count` records of `files` has a label (in `field`)
    or, with `segments`, a rated segment: evaluating on them would score nothing (GAP 0, mAP
    nan). `fix` (no labels) and `segments_fix` (labels, but no rated segment) end the message."""
    summaries = [summarize(raw) for _, _, raw in first_records(files, count)]
    labelled = any(summary.labels for summary in summaries)
    if labelled and not (segments and not any(summary.segment_labels for summary in summaries)):
        return
    shown = ", ".join(files[:3]) + (", …" if len(files) > 3 else "")
    if not summaries:
        raise DataError(f"split '{split}' cannot be evaluated: its files ({shown}) hold no records; {fix}")
    where = f"split '{split}' cannot be evaluated: its first {len(summaries)} records ({shown})"
    if labelled:
        raise DataError(f"{where} have labels but no rated segments ('{records.SEGMENT_LABELS}'); {segments_fix}")
    raise DataError(f"{where} have no labels ('{field}' is empty), as an unlabelled test set; {fix}")


def first_label_outside(files: Sequence[str], num_classes: int, frame_level: bool = True,
                        segments: bool = False) -> Optional[str]:
    """The first record of `files` with a label id outside `[0, num_classes)`, as one line
    naming the shard, the record index, the video id, the field, the id and the vocabulary
    size; None if there is none. Reads only the label fields (`segments`: also the segment
    labels), a batch of records at a time."""
    fields = [records.LABELS] + ([records.SEGMENT_LABELS] if segments else [])
    spec = {records.ID: tf.io.FixedLenFeature([], tf.string, default_value="")}
    spec.update({name: tf.io.VarLenFeature(tf.int64) for name in fields})

    def parse(serialized):
        if frame_level:
            return tf.io.parse_sequence_example(serialized, context_features=spec)[0]
        return tf.io.parse_example(serialized, spec)

    for path in files:
        start = 0
        for batch in tf.data.TFRecordDataset(path).batch(1024).map(parse):
            for name in fields:
                sparse = batch[name]
                values = sparse.values.numpy()
                bad = (values < 0) | (values >= num_classes)
                if bad.any():
                    position = int(bad.argmax())
                    row = int(sparse.indices.numpy()[position, 0])
                    video_id = batch[records.ID].numpy()[row].decode("utf-8", "replace")
                    return (
                        f"{path}: record {start + row} (id {video_id!r}): field '{name}' has label id "
                        f"{int(values[position])}, outside the {num_classes}-class vocabulary (ids 0..{num_classes - 1})"
                    )
            start += len(batch[records.ID])
    return None
