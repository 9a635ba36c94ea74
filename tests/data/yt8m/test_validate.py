"""Tests of cma_tf.data.yt8m.validate and of the readers' label-range errors: a label id outside
the vocabulary is reported naming the shard, the record index, the video id, the field, the
label id and the vocabulary size.

References: the records are written here with `tf.train.SequenceExample` / `tf.train.Example`
protos built field by field (not with `records.encode_*`), and where a bad record lies is
known from how the files were written."""

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data import record_files
from cma_tf.data.yt8m import readers, records, validate
from cma_tf.errors import DataError

NUM_CLASSES = 8


def frame_proto(video_id, labels, frames=3, segment_labels=None, rgb_size=1024, segment_start=0):
    example = tf.train.SequenceExample()
    example.context.feature["id"].bytes_list.value.append(video_id.encode())
    example.context.feature["labels"].int64_list.value.extend(labels)
    if segment_labels is not None:
        example.context.feature["segment_start_times"].int64_list.value.extend([segment_start] * len(segment_labels))
        example.context.feature["segment_end_times"].int64_list.value.extend([segment_start + 5] * len(segment_labels))
        example.context.feature["segment_labels"].int64_list.value.extend(segment_labels)
        example.context.feature["segment_scores"].float_list.value.extend([1.0] * len(segment_labels))
    for name, size in (("rgb", rgb_size), ("audio", 128)):
        feature_list = example.feature_lists.feature_list[name]
        for t in range(frames if segment_start or not segment_labels else max(frames, 5)):
            feature_list.feature.add().bytes_list.value.append(bytes([t % 256]) * size)
    return example.SerializeToString()


def video_proto(video_id, labels, rgb_size=1024):
    example = tf.train.Example()
    example.features.feature["id"].bytes_list.value.append(video_id.encode())
    example.features.feature["labels"].int64_list.value.extend(labels)
    example.features.feature["mean_rgb"].float_list.value.extend([0.0] * rgb_size)
    example.features.feature["mean_audio"].float_list.value.extend([0.0] * 128)
    return example.SerializeToString()


def write(path, serialized):
    with tf.io.TFRecordWriter(str(path)) as writer:
        for record in serialized:
            writer.write(record)
    return str(path)


def collect(dataset):
    return [batch for batch in dataset]


@pytest.fixture
def frame_files(tmp_path):
    """Two shards; the second one's record 2 (id 'Bad7') has label id 9 (the first bad one)."""
    first = write(tmp_path / "validate0000.tfrecord", [frame_proto(f"ok{i}", [i % NUM_CLASSES]) for i in range(4)])
    second = write(tmp_path / "validate0001.tfrecord", [
        frame_proto("ok4", [1, 2]), frame_proto("ok5", []), frame_proto("Bad7", [3, 9]), frame_proto("Bad8", [12]),
    ])
    return [first, second]


def test_first_label_outside_names_shard_record_id_label_and_vocabulary_size(frame_files):
    message = validate.first_label_outside(frame_files, NUM_CLASSES, frame_level=True)
    assert message == (
        f"{frame_files[1]}: record 2 (id 'Bad7'): field 'labels' has label id 9, "
        "outside the 8-class vocabulary (ids 0..7)"
    )
    assert validate.first_label_outside(frame_files, 13, frame_level=True) is None


def test_first_label_outside_in_segment_labels_and_video_level_records(tmp_path):
    rated = write(tmp_path / "validate0000.tfrecord", [
        frame_proto("fine", [1], segment_labels=[1, 2]), frame_proto("Seg1", [1], segment_labels=[2, 8]),
    ])
    assert validate.first_label_outside([rated], NUM_CLASSES) is None  # video labels are fine
    assert validate.first_label_outside([rated], NUM_CLASSES, segments=True) == (
        f"{rated}: record 1 (id 'Seg1'): field 'segment_labels' has label id 8, outside the 8-class vocabulary (ids 0..7)"
    )
    level = write(tmp_path / "train0000.tfrecord", [video_proto("v0", [0]), video_proto("V1x", [2, 10])])
    assert validate.first_label_outside([level], NUM_CLASSES, frame_level=False) == (
        f"{level}: record 1 (id 'V1x'): field 'labels' has label id 10, outside the 8-class vocabulary (ids 0..7)"
    )


def test_reader_error_names_the_video_id_label_id_and_vocabulary_size(frame_files):
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        collect(readers.frame_records(frame_files, NUM_CLASSES, 3, max_frames=5))
    assert "YouTube-8M record with id Bad7: field" in error.value.message
    assert "has label id 9, outside the 8-class vocabulary (ids 0..7)" in error.value.message
    level = write(frame_files[0].replace("validate0000", "level0000"), [video_proto("v0", [0]), video_proto("V1x", [10])])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"id V1x: .*label id 10, outside the 8-class"):
        collect(readers.video_level_records([level], NUM_CLASSES, 2))


def test_segment_reader_error_names_the_video_id(tmp_path):
    rated = write(tmp_path / "validate0000.tfrecord", [frame_proto("Seg1", [1], segment_labels=[2, 8])])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"id Seg1: .*segment_labels.*label id 8, outside the 8-class"):
        collect(readers.segment_records([rated], NUM_CLASSES, 4, max_frames=10))


def test_summarize_tells_the_record_kinds_apart(tmp_path):
    frame = validate.summarize(frame_proto("f", [1, 2]))
    assert (frame.kind, frame.features, frame.video_id, frame.labels) == ("frame-level", ("rgb", "audio"), "f", (1, 2))
    video = validate.summarize(video_proto("v", [3]))
    assert (video.kind, video.features, video.labels) == ("video-level", ("mean_rgb", "mean_audio"), (3,))
    assert validate.summarize(b"\xff\xfe not a proto").kind == "unknown"


def test_check_labelled_refuses_an_unlabelled_split_and_one_without_rated_segments(tmp_path):
    unlabelled = write(tmp_path / "test0000.tfrecord", [frame_proto(f"t{i}", []) for i in range(3)])
    with pytest.raises(validate.DataError, match=r"^split 'test' cannot be evaluated: its first 3 records .*test0000"
                                                   r"\.tfrecord\) have no labels .*; use validate$"):
        validate.check_labelled([unlabelled], "test", fix="use validate")
    labelled = write(tmp_path / "train0000.tfrecord", [frame_proto("a", []), frame_proto("b", [4])])
    validate.check_labelled([labelled], "train")
    with pytest.raises(validate.DataError, match=r"have labels but no rated segments.*; no segments$"):
        validate.check_labelled([labelled], "train", segments=True, segments_fix="no segments")
    rated = write(tmp_path / "validate0000.tfrecord", [frame_proto("r", [1], segment_labels=[1])])
    validate.check_labelled([rated], "validate", segments=True)


def test_split_names_of_published_and_our_shard_names():
    assert validate.split_names(["a/train0000.tfrecord", "a/validate0012.tfrecord",
                                 "b/val-00000-of-00004.tfrecord", "b/test-00001-of-00002.tfrecord"]) == [
        "test", "train", "val", "validate"]


def test_reference_protos_parse_as_the_published_formats(frame_files):
    """The hand-built protos are read by plain `tf.io.parse_single_sequence_example`."""
    raw = next(iter(tf.data.TFRecordDataset(frame_files[1]).skip(2)))
    context, sequences = tf.io.parse_single_sequence_example(
        raw, context_features={"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)},
        sequence_features={"rgb": tf.io.FixedLenSequenceFeature([], tf.string)},
    )
    assert context["id"].numpy() == b"Bad7"
    np.testing.assert_array_equal(context["labels"].values.numpy(), [3, 9])
    assert sequences["rgb"].shape == (3,)


# Issue 37: the checks before any work (a bounded scan of each shard's first records), the
# readers' refusals of empty videos and of segments after a video's end, and the shared
# message for a file that cannot be read to its end.

FRAME_FEATURES = ("rgb", "audio")


def check(files, count, kind="frame-level", names=FRAME_FEATURES, sizes=records.FEATURE_SIZES, segments=False,
          max_frames=300):
    validate.check_records(files, count, kind, names, sizes, NUM_CLASSES, segments=segments, max_frames=max_frames)


def test_check_records_reads_only_the_first_records_of_each_shard(tmp_path):
    first = write(tmp_path / "train0000.tfrecord", [frame_proto("a", [1]), frame_proto("Big1", [1], rgb_size=2048)])
    second = write(tmp_path / "train0001.tfrecord", [frame_proto("Small", [2], rgb_size=512)])
    with pytest.raises(DataError, match=(
        rf"^{second}: record 0 \(id 'Small'\): feature 'rgb' has frames of 512 bytes, but "
        r"config\.data\.feature_sizes\.rgb is 1024: set --config\.data\.feature_sizes\.rgb=512 "
    )):
        check([first, second], 1)
    with pytest.raises(DataError, match=rf"^{first}: record 1 \(id 'Big1'\): feature 'rgb' has frames of 2048 bytes"):
        check([first, second], 2)
    check([first], 2, names=("audio",))  # only the features read are checked
    check([first, second], 0)  # 0 skips the check


def test_check_records_of_video_level_records_and_other_sizes(tmp_path):
    level = write(tmp_path / "train0000.tfrecord", [video_proto("v0", [0], rgb_size=512)])
    with pytest.raises(DataError, match=r"record 0 \(id 'v0'\): feature 'mean_rgb' has 512 values, but "
                                        r"config\.data\.feature_sizes\.mean_rgb is 1024"):
        check([level], 4, kind="video-level", names=("mean_rgb", "mean_audio"))
    check([level], 4, kind="video-level", names=("mean_rgb",), sizes=dict(records.FEATURE_SIZES, mean_rgb=512))


@pytest.mark.parametrize("proto,segments,max_frames,pattern", [
    (frame_proto("E0", [1], frames=0), False, 300, r"\(id 'E0'\) has no frames \(feature 'rgb' is empty\)"),
    (frame_proto("L3", [1, -3]), False, 300, r"\(id 'L3'\): field 'labels' has label id -3, outside the 8-class"),
    (frame_proto("S9", [1], segment_labels=[9]), True, 300, r"\(id 'S9'\): field 'segment_labels' has label id 9"),
    (frame_proto("P1", [1], frames=40, segment_labels=[1], segment_start=200), True, 300,
     r"\(id 'P1'\): field 'segment_start_times' has a segment at frames 200-205, after the video's last frame "
     r"\(it has 40 frames\)"),
    (frame_proto("N5", [1], frames=40, segment_labels=[1], segment_start=-5), True, 300,
     r"\(id 'N5'\): field 'segment_start_times' has a segment at frames -5-0, which starts before the video's first"),
    (frame_proto("M1", [1], frames=40, segment_labels=[1], segment_start=30), True, 32,
     r"\(id 'M1'\): field 'segment_start_times' has a segment at frames 30-35, past config\.data\.max_frames=32"),
], ids=["no_frames", "label_minus_3", "segment_label_9", "segment_after_end", "segment_negative", "segment_past_max_frames"])
def test_check_records_names_the_record_and_field(tmp_path, proto, segments, max_frames, pattern):
    path = write(tmp_path / "validate0000.tfrecord", [proto])
    with pytest.raises(DataError, match=rf"^{path}: record 0 {pattern}"):
        check([path], 1, segments=segments, max_frames=max_frames)


def test_segment_fields_are_checked_only_where_segments_are_read(tmp_path):
    path = write(tmp_path / "validate0000.tfrecord", [frame_proto("S9", [1], segment_labels=[9])])
    check([path], 1, segments=False)


def test_a_truncated_file_is_named_with_the_first_record_that_cannot_be_read(tmp_path):
    path = write(tmp_path / "train0000.tfrecord", [frame_proto(f"v{i}", [1]) for i in range(3)])
    data = open(path, "rb").read()
    # Cut inside the third record: records 0 and 1 read (the reference: TFRecord framing is
    # 12 header bytes + data + 4 CRC bytes per record, and the records are the same size).
    record_bytes = len(data) // 3
    with open(path, "wb") as f:
        f.write(data[: 2 * record_bytes + 20])
    assert [index for index, _ in record_files.read_records(path, 2)] == [0, 1]
    with pytest.raises(DataError, match=rf"^{path}: record 2 and on cannot be read \(.*\): the file is truncated"):
        list(record_files.read_records(path))
    assert record_files.first_unreadable_record([path]).startswith(f"{path}: record 2 and on cannot be read")
    with pytest.raises(DataError, match=rf"^{path}: record 2 and on cannot be read"):
        check([path], 5)
    assert validate.first_label_outside([path], NUM_CLASSES).startswith(f"{path}: record 2 and on cannot be read")


def test_readers_refuse_an_empty_video_and_a_segment_after_the_videos_end(tmp_path):
    empty = write(tmp_path / "train0000.tfrecord", [frame_proto("ok", [1]), frame_proto("Empty1", [1], frames=0)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"record with id Empty1 has no frames"):
        collect(readers.make_frame_dataset([empty], NUM_CLASSES, 4, 2, training=False))
    # The segment reader: a segment after the video's last frame has no frame of it.
    late = write(tmp_path / "validate0000.tfrecord", [frame_proto("Late1", [1], frames=12, segment_labels=[1],
                                                                  segment_start=15)])
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"id Late1: .*segment after the video.*last frame"):
        collect(readers.segment_records([late], NUM_CLASSES, 4))


def test_why_a_served_video_without_frames_is_flagged():
    assert validate.why_not_served(frame_proto("E0", [1], frames=0)) == "the video has no frames: nothing to score"
    assert validate.why_not_served(frame_proto("F", [1])) is None
