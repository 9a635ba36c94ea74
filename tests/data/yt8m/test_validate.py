"""Tests of cma_tf.data.yt8m.validate and of the readers' label-range errors: a label id outside
the vocabulary is reported naming the shard, the record index, the video id, the field, the
label id and the vocabulary size.

References: the records are written here with `tf.train.SequenceExample` / `tf.train.Example`
protos built field by field (not with `records.encode_*`), and where a bad record lies is
known from how the files were written."""

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data.yt8m import readers, validate

NUM_CLASSES = 8


def frame_proto(video_id, labels, frames=3, segment_labels=None):
    example = tf.train.SequenceExample()
    example.context.feature["id"].bytes_list.value.append(video_id.encode())
    example.context.feature["labels"].int64_list.value.extend(labels)
    if segment_labels is not None:
        example.context.feature["segment_start_times"].int64_list.value.extend([0] * len(segment_labels))
        example.context.feature["segment_end_times"].int64_list.value.extend([5] * len(segment_labels))
        example.context.feature["segment_labels"].int64_list.value.extend(segment_labels)
        example.context.feature["segment_scores"].float_list.value.extend([1.0] * len(segment_labels))
    for name, size in (("rgb", 1024), ("audio", 128)):
        feature_list = example.feature_lists.feature_list[name]
        for t in range(max(frames, 5 if segment_labels else frames)):
            feature_list.feature.add().bytes_list.value.append(bytes([t % 256]) * size)
    return example.SerializeToString()


def video_proto(video_id, labels):
    example = tf.train.Example()
    example.features.feature["id"].bytes_list.value.append(video_id.encode())
    example.features.feature["labels"].int64_list.value.extend(labels)
    example.features.feature["mean_rgb"].float_list.value.extend([0.0] * 1024)
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
