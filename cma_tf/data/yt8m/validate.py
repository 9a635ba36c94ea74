"""Checks of YouTube-8M record files that name the shard, the record and the field: which kind
of record a file holds (read from its first record), whether a split has labels at all (its
first records), the first records of every shard before any work starts (`check_records`:
feature sizes, empty videos, label ids, rated segments), and, after a failed read, the first
record with a label id outside the vocabulary (a walk over the labels).

Kinds, told apart without knowing the format in advance (an `Example` parses as a
`SequenceExample` with its features as the context and no feature lists):

    frame-level   a `SequenceExample` with feature lists (rgb, audio)
    video-level   an `Example` with mean_rgb / mean_audio
    image         an `Example` of `cma_tf/data/records.py` (image/encoded)
"""

import dataclasses
import os
import re
from typing import Iterator, Mapping, Optional, Sequence, Tuple

import tensorflow as tf

from cma_tf.data import records as image_records
from cma_tf.data.record_files import first_unreadable_record, read_records
from cma_tf.data.yt8m import finite, records
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
        for index, raw in read_records(path, count - seen):
            yield path, index, raw
            seen += 1
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
        try:
            batches = list(tf.data.TFRecordDataset(path).batch(1024).map(parse))
        except tf.errors.OpError:
            return first_unreadable_record([path])
        for batch in batches:
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


def _label_problem(values: Sequence[int], field: str, num_classes: int) -> Optional[str]:
    for value in values:
        if not 0 <= value < num_classes:
            return (f"field '{field}' has label id {value}, outside the {num_classes}-class vocabulary "
                    f"(ids 0..{num_classes - 1})")
    return None


def _frame_problem(sequence, feature_names, feature_sizes, num_frames_field) -> Optional[str]:
    lists = sequence.feature_lists.feature_list
    for name in feature_names:
        expected = feature_sizes[name]
        for frame in lists[name].feature:
            found = len(frame.bytes_list.value[0]) if frame.bytes_list.value else 0
            if found != expected:
                return (
                    f"feature '{name}' has frames of {found} bytes, but config.data.feature_sizes.{name} is "
                    f"{expected}: set --config.data.feature_sizes.{name}={found} if your extractor gives {found} "
                    f"values a frame, or point config.data.data_dir at records of {expected}"
                )
    if not lists[num_frames_field].feature:
        return (f"has no frames (feature '{num_frames_field}' is empty): an empty video would be scored as if "
                "it were one; remove it from the records")
    return None


def _segment_problem(context, num_frames: int, max_frames: int, segment_size: int) -> Optional[str]:
    starts = _ints(context, records.SEGMENT_START_TIMES)
    for start in starts:
        where = f"field '{records.SEGMENT_START_TIMES}' has a segment at frames {start}-{start + segment_size}"
        if start < 0:
            return f"{where}, which starts before the video's first frame (frame 0)"
        if start + segment_size > max_frames:
            return f"{where}, past config.data.max_frames={max_frames} (the frames read of each video)"
        if start >= num_frames:
            return f"{where}, after the video's last frame (it has {num_frames} frames): it would be scored on zeros"
    return None


def record_problem(raw: bytes, kind: str, feature_names: Sequence[str], feature_sizes: Mapping[str, int],
                   num_classes: int, segments: bool = False, max_frames: int = records.MAX_FRAMES,
                   segment_size: int = records.SEGMENT_SIZE) -> Optional[str]:
    """Why one serialized record of `kind` cannot be trained or evaluated on, or None: a feature
    of `feature_names` of another size than `feature_sizes` says, a video without frames, a label
    id outside `[0, num_classes)`, and with `segments` a rated segment's label or frames (past
    `max_frames`, or after the video's last frame)."""
    sequence = tf.train.SequenceExample.FromString(raw)
    context = sequence.context.feature
    if kind == FRAME_LEVEL:
        problem = _frame_problem(sequence, feature_names, feature_sizes, feature_names[0])
    else:
        problem = next((
            f"feature '{name}' has {len(context[name].float_list.value)} values, but "
            f"config.data.feature_sizes.{name} is {feature_sizes[name]}: set --config.data.feature_sizes.{name}="
            f"{len(context[name].float_list.value)} if your extractor gives that many"
            for name in feature_names if len(context[name].float_list.value) != feature_sizes[name]
        ), None)
    problem = problem or _label_problem(_ints(context, records.LABELS), records.LABELS, num_classes)
    if segments and not problem:
        problem = _label_problem(_ints(context, records.SEGMENT_LABELS), records.SEGMENT_LABELS, num_classes)
        num_frames = len(sequence.feature_lists.feature_list[feature_names[0]].feature)
        problem = problem or _segment_problem(context, min(num_frames, max_frames), max_frames, segment_size)
    return problem


def first_records_of_each(files: Sequence[str], count: int) -> Iterator[Tuple[str, int, bytes]]:
    """`(file, index in it, serialized)` of the first `count` records of every file of `files`, in
    file order, read by one parallel pipeline (opening the files one by one costs most of the
    time); a `DataError` naming the file and record that cannot be read."""
    def first_of(path):
        return tf.data.TFRecordDataset(path).take(count).enumerate().map(lambda index, raw: (path, index, raw))

    dataset = tf.data.Dataset.from_tensor_slices(list(files)).interleave(
        first_of, cycle_length=16, block_length=count, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
    )
    try:
        for path, index, raw in dataset.prefetch(64).as_numpy_iterator():
            yield path.decode(), int(index), raw
    except tf.errors.OpError:
        for path in files:  # the same read one file at a time raises the error naming it
            for _ in read_records(path, count):
                pass
        raise


def check_records(files: Sequence[str], count: int, kind: str, feature_names: Sequence[str],
                  feature_sizes: Mapping[str, int], num_classes: int, segments: bool = False,
                  max_frames: int = records.MAX_FRAMES) -> None:
    """Reads the first `count` records of every file of `files` (0: none) and raises a `DataError`
    naming the file, the record, its id and the field at the first one `record_problem` refuses
    (or the first record that cannot be read), before any work is done on them."""
    if count < 1:
        return
    for path, index, raw in first_records_of_each(files, count):
        problem = record_problem(raw, kind, feature_names, feature_sizes, num_classes, segments, max_frames)
        if problem:
            video_id = summarize(raw).video_id
            separator = " " if problem.startswith("has ") else ": "
            raise DataError(f"{path}: record {index} (id {video_id!r}){separator}{problem}")


def why_not_served(raw: bytes, frame_level: bool = True) -> Optional[str]:
    """Why a served model flags a YouTube-8M request (`valid=0`), in words, or None: not a
    serialized `SequenceExample` (frame level) or `Example` (video level), a video without
    frames, a feature of another size than the published one, or non-finite video-level
    features (the served model's scores are then non-finite)."""
    try:
        if frame_level:
            lists = tf.train.SequenceExample.FromString(raw).feature_lists.feature_list
        else:
            features = tf.train.Example.FromString(raw).features.feature
    except Exception:  # noqa: BLE001 - not a proto at all
        return f"not a serialized {'SequenceExample' if frame_level else 'Example'}"
    sizes = records.FEATURE_SIZES
    if not frame_level:
        for name in VIDEO_FEATURES:
            found = len(features[name].float_list.value) if name in features else sizes[name]
            if found != sizes[name]:
                return f"feature '{name}' holds {found} values; the model reads {sizes[name]}"
        name = finite.non_finite_feature(features, VIDEO_FEATURES)
        return finite.describe(name) if name else None
    present = [name for name in FRAME_FEATURES if name in lists]
    if present and not any(lists[name].feature for name in present):
        return "the video has no frames: nothing to score"
    for name in present:
        for index, frame in enumerate(lists[name].feature):
            found = len(frame.bytes_list.value[0]) if frame.bytes_list.value else 0
            if found != sizes[name]:
                return f"feature '{name}' frame {index} holds {found} bytes; the model reads {sizes[name]}"
    return None
