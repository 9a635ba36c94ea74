"""A user's mistake on the video path is one line and exit status 2, before any training:
an evaluation split without labels (the published `test` split), records of the other kind
(video-level for a frame-level config, and the reverse; also for `python -m cma_tf.predict`),
unknown feature names; and the starter-style `--config.data.feature_names=rgb,audio` works.

References: the synthetic records are read back with plain `tf.io.parse_single_sequence_example`
(the test split really has no labels), the CLIs run in subprocesses (exit code, stderr)."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_base_config, get_paper_video_config
from cma_tf.data import records as image_records
from cma_tf.data import vocab
from cma_tf.data.requests import IMAGES, SEQUENCE_EXAMPLES
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.errors import ConfigError, DataError
from cma_tf.serving import batch_predict, sources
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.helpers import numpy_frames

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 8


@pytest.fixture(scope="module")
def yt8m(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m_errors"))
    write_synthetic_yt8m(out, num_classes=NUM_CLASSES, train_videos=32, validate_videos=8, test_videos=4,
                         num_shards=1, min_frames=10, max_frames=20, seed=5, progress=False)
    return out


def tiny_config(data_dir, variant="self_attention_fc"):
    config = get_paper_video_config(variant)
    config.data.data_dir = data_dir
    config.data.frames = 8
    config.data.deterministic = True
    config.model.fc_units = (8, 8)
    config.train.epochs = 1
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    return config


CLI_OVERRIDES = [
    "--config=configs/yt8m.py:self_attention_fc", "--config.data.frames=8", "--config.model.fc_units=8,8",
    "--config.train.epochs=1", "--config.train.batch_size=8", "--config.train.eval_batch_size=8",
]


def run_cli(module, *args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=env)


def error_line(proc):
    """The last stderr line, which must be the only `error:` line."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    return errors[0]


def assert_nothing_trained(workdir):
    for name in (files.HISTORY, files.FINAL_MODEL, files.BEST_MODEL, files.ASGE_WEIGHTS):
        assert not os.path.exists(files.path(workdir, name)), name


def test_the_test_split_really_has_no_labels(yt8m):
    """The premise, read with a plain parser: the published-style test records carry no labels."""
    for raw in tf.data.TFRecordDataset(os.path.join(yt8m, "frame", "test0000.tfrecord")):
        context, _ = tf.io.parse_single_sequence_example(
            raw, context_features={"labels": tf.io.VarLenFeature(tf.int64)})
        assert context["labels"].values.shape == (0,)


@pytest.mark.parametrize("eval_segments", [True, False])
def test_unlabelled_eval_split_is_refused_before_training(yt8m, tmp_path, eval_segments):
    config = tiny_config(os.path.join(yt8m, "frame"))
    config.data.eval_split = "test"
    config.data.eval_segments = eval_segments
    workdir = str(tmp_path / "run")
    with pytest.raises(DataError, match=(
        r"^split 'test' cannot be evaluated: its first 4 records \(.*/frame/test0000\.tfrecord\) have no labels "
        r".*--config\.data\.eval_split=validate\)$"
    )):
        train_and_evaluate(config, workdir)
    assert_nothing_trained(workdir)


def test_eval_split_without_rated_segments_says_to_turn_off_eval_segments(yt8m, tmp_path):
    config = tiny_config(os.path.join(yt8m, "frame"))
    config.data.eval_split = "train"  # labelled, but no segment ratings
    with pytest.raises(DataError, match=r"split 'train' .* have labels but no rated segments .*eval_segments=False"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert_nothing_trained(str(tmp_path / "run"))


def test_unlabelled_image_eval_split_is_refused(tmp_path):
    data_dir = str(tmp_path)
    vocab.write_vocabulary(vocab.vocabulary_path(data_dir), ["cat", "dog"])
    image_records.write_split(data_dir, "train", [
        image_records.encode_image_example(b"x", "png", 1, 1, "a", [0])], num_shards=1)
    image_records.write_split(data_dir, "test", [
        image_records.encode_image_example(b"x", "png", 1, 1, str(i), []) for i in range(3)], num_shards=1)
    config = get_base_config()
    config.data.data_dir, config.data.eval_split = data_dir, "test"
    with pytest.raises(DataError, match=r"^split 'test' cannot be evaluated: .* have no labels \('image/class/label'"):
        factory.build_dataset(config, 2, "test", training=False)
    factory.build_dataset(config, 2, "train", training=False)  # labelled: accepted


@pytest.mark.parametrize("config_format,folder,expected", [
    ("yt8m_frame", "video", r"video/train0000\.tfrecord holds video-level Examples .* but config\.data\.format="
                            r"'yt8m_frame' reads frame-level SequenceExamples .*: point config\.data\.data_dir at the "
                            r"frame-level records .* --config\.data\.format=yt8m_video "
                            r"--config\.data\.feature_names=mean_rgb,mean_audio$"),
    ("yt8m_video", "frame", r"frame/train0000\.tfrecord holds frame-level SequenceExamples .* but config\.data\.format="
                            r"'yt8m_video' reads video-level Examples .*--config\.data\.format=yt8m_frame "
                            r"--config\.data\.feature_names=rgb,audio$"),
])
def test_records_of_the_other_kind_are_refused_saying_which_folder(yt8m, tmp_path, config_format, folder, expected):
    config = tiny_config(os.path.join(yt8m, folder))
    config.data.format = config_format
    config.data.eval_segments = False
    config.data.eval_split = "validate"
    if config_format == "yt8m_video":
        config.data.feature_names = ("mean_rgb",)
    with pytest.raises(DataError, match=expected):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert_nothing_trained(str(tmp_path / "run"))


def test_label_graph_cli_config_lists_video_level_files(yt8m):
    """`python -m cma_tf.label_graph --format=yt8m_video` uses the base config (feature_names rgb):
    only the kind of the records is checked there, as it reads only their labels."""
    config = get_base_config()
    config.data.data_dir, config.data.format = os.path.join(yt8m, "video"), "yt8m_video"
    assert [os.path.basename(f) for f in factory.list_data_files(config, "train")] == ["train0000.tfrecord"]


def test_a_feature_the_records_lack_is_named(tmp_path):
    example = tf.train.SequenceExample()
    example.context.feature["id"].bytes_list.value.append(b"rgbonly")
    example.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(bytes(1024))
    path = str(tmp_path / "train0000.tfrecord")
    with tf.io.TFRecordWriter(path) as writer:
        writer.write(example.SerializeToString())
    config = tiny_config(str(tmp_path))
    config.data.feature_names = ("rgb", "audio")
    with pytest.raises(DataError, match=r"record 0 \(id 'rgbonly'\) has no feature 'audio' \(it has rgb\): set "
                                        r"config\.data\.feature_names"):
        factory.list_data_files(config, "train")


def test_comma_separated_feature_names_are_split(yt8m):
    config = tiny_config(os.path.join(yt8m, "frame"))
    config.data.feature_names = ("rgb,audio",)  # what --config.data.feature_names=rgb,audio gives
    assert factory.feature_names(config) == ("rgb", "audio")

    def first_inputs():
        batch = next(iter(factory.build_dataset(config, NUM_CLASSES, "validate", training=False).take(1)))[0]
        return numpy_frames(tf.nest.map_structure(lambda tensor: tensor.numpy(), batch))

    inputs = first_inputs()
    config.data.feature_names = ("rgb", "audio")
    reference = first_inputs()
    assert inputs.shape[-1] == 1024 + 128
    np.testing.assert_array_equal(inputs, reference)
    config.data.feature_names = ("rgb, audio",)
    assert factory.build_backbone(config).input_shape[-1] == 1152


@pytest.mark.parametrize("data_format,names,valid", [
    ("yt8m_frame", ("rgbb",), "rgb, audio"),
    ("yt8m_frame", ("mean_rgb",), "rgb, audio"),
    ("yt8m_video", ("rgb",), "mean_rgb, mean_audio"),
    ("yt8m_frame", ("rgb,rgb",), "rgb, audio"),
])
def test_unknown_feature_names_list_the_valid_ones(data_format, names, valid):
    config = tiny_config("unused")
    config.data.format, config.data.feature_names = data_format, names
    config.data.eval_segments = data_format == "yt8m_frame"
    with pytest.raises(ConfigError, match=rf"^config\.data\.feature_names: .*has {valid} \(e\.g\."):
        factory.validate_config(config)


@pytest.mark.parametrize("overrides,expected", [
    (["--config.data.eval_split=test"], "error: split 'test' cannot be evaluated"),
    (["--config.data.feature_names=rgbb"], "error: config.data.feature_names: unknown 'rgbb'; "),
    (["--config.data.eval_segments=False", "--config.data.data_dir={video}"], "error: {video}/train0000.tfrecord holds video-level Examples"),
])
def test_cli_reports_one_line_and_exit_2(yt8m, tmp_path, overrides, expected):
    overrides = [o.format(video=os.path.join(yt8m, "video")) for o in overrides]
    proc = run_cli("cma_tf.train", *CLI_OVERRIDES, f"--config.data.data_dir={os.path.join(yt8m, 'frame')}",
                   *overrides, f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert error_line(proc).startswith(expected.format(video=os.path.join(yt8m, "video")))


@pytest.fixture(scope="module")
def frame_workdir(yt8m, tmp_path_factory):
    config = tiny_config(os.path.join(yt8m, "frame"))
    config.data.feature_names = ("rgb", "audio")
    config.train.steps_per_epoch = 2
    workdir = str(tmp_path_factory.mktemp("frame_run"))
    train_and_evaluate(config, workdir)
    return workdir


def test_predict_refuses_video_level_records_for_a_frame_level_model(yt8m, frame_workdir, tmp_path):
    video_level = os.path.join(yt8m, "video", "test0000.tfrecord")
    with pytest.raises(DataError, match=(
        rf"^{video_level} holds video-level Examples .* but the model reads frame-level SequenceExamples .*: "
        r"give it frame-level records"
    )):
        batch_predict.predict(frame_workdir, [video_level], str(tmp_path / "out.csv"), progress=False)
    summary = batch_predict.predict(frame_workdir, [os.path.join(yt8m, "frame", "test0000.tfrecord")],
                                    str(tmp_path / "out.csv"), progress=False)
    assert summary["items"] == 4 and summary["flagged"] == []


def test_predict_cli_refuses_records_of_the_other_kind(yt8m, frame_workdir, tmp_path):
    proc = run_cli("cma_tf.predict", f"--model={frame_workdir}", f"--input={os.path.join(yt8m, 'video')}",
                   f"--output={tmp_path / 'out.csv'}", "--progress=false")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "holds video-level Examples" in error_line(proc)


def test_sources_refuse_yt8m_records_for_an_image_model_and_image_records_for_a_video_model(yt8m, tmp_path):
    frame_file = os.path.join(yt8m, "frame", "test0000.tfrecord")
    with pytest.raises(DataError, match=r"holds frame-level SequenceExamples .* the model reads image Examples"):
        list(sources.batches([frame_file], IMAGES, 2))
    image_file = image_records.write_split(str(tmp_path), "val", [
        image_records.encode_image_example(b"x", "png", 1, 1, "a", [0])], num_shards=1)[0]
    with pytest.raises(DataError, match=r"holds image Examples .* the model reads frame-level SequenceExamples"):
        list(sources.batches([image_file], SEQUENCE_EXAMPLES, 2))
    # A record that is no proto at all is the model's per-item valid=0, as before.
    broken = str(tmp_path / "broken.tfrecord")
    with tf.io.TFRecordWriter(broken) as writer:
        writer.write(b"\xff\xfe not a proto")
    assert [ids for ids, _ in sources.batches([broken], SEQUENCE_EXAMPLES, 2)] == [[f"{broken}:0"]]


def test_first_bad_record_of_a_video_config_names_the_record(yt8m, tmp_path):
    """What the trainer can report after a failed read (a label id outside the vocabulary)."""
    path = str(tmp_path / "validate0000.tfrecord")
    raws = [raw.numpy() for raw in tf.data.TFRecordDataset(os.path.join(yt8m, "frame", "validate0000.tfrecord"))]
    bad = tf.train.SequenceExample.FromString(raws[5])
    bad.context.feature["labels"].int64_list.value.append(NUM_CLASSES + 1)
    video_id = bad.context.feature["id"].bytes_list.value[0].decode()
    raws[5] = bad.SerializeToString()
    with tf.io.TFRecordWriter(path) as writer:
        for raw in raws:
            writer.write(raw)
    config = tiny_config(str(tmp_path))
    assert factory.first_bad_record(config, [path], NUM_CLASSES) == (
        f"{path}: record 5 (id '{video_id}'): field 'labels' has label id 9, outside the 8-class vocabulary (ids 0..7)"
    )


def test_train_cli_names_the_record_whose_label_is_outside_the_vocabulary(yt8m, tmp_path):
    """A vocabulary of 4 names for records with label ids up to 7: one line naming the shard,
    the record, the video id and the label, where a TensorFlow error dump named none."""
    small = tmp_path / "labels.txt"
    small.write_text("".join(f"class_{i}\n" for i in range(4)))
    reference = None
    for serialized in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(os.path.join(yt8m, "frame", "train*.tfrecord")))):
        example = tf.train.SequenceExample.FromString(serialized.numpy())
        labels = list(example.context.feature["labels"].int64_list.value)
        if max(labels) >= 4:
            reference = (example.context.feature["id"].bytes_list.value[0].decode(), max(labels))
            break
    assert reference is not None
    # The records without their own vocabulary.csv (a given one must equal it: test_vocabulary_setting.py).
    records = str(tmp_path / "published" / "frame")
    shutil.copytree(os.path.join(yt8m, "frame"), records)
    proc = run_cli("cma_tf.train", *CLI_OVERRIDES, f"--config.data.data_dir={records}",
                   f"--config.data.vocabulary={small}", f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc)
    assert "train" in line and "record " in line and f"'{reference[0]}'" in line, line
    assert "4-class vocabulary" in line, line


# Issue 37: records that would train or score wrongly are refused before any work starts.
# References: the records are copies of the synthetic ones, changed field by field with the
# `tf.train.SequenceExample` proto; the CLIs run in subprocesses (exit code, stderr).


def copy_records(yt8m, tmp_path, change, splits=("train", "validate")):
    """A copy of the frame-level folder (and the vocabulary beside it) whose records of `splits`
    are passed to `change(example, index)`, which edits the `SequenceExample` in place."""
    out = tmp_path / "data"
    os.makedirs(out / "frame")
    for name in ("vocabulary.csv", "segment_label_ids.csv"):
        shutil.copy(os.path.join(yt8m, name), out / name)
    for name in sorted(os.listdir(os.path.join(yt8m, "frame"))):
        if not name.endswith(".tfrecord"):
            continue  # e.g. the label graph another test's training cached there
        split = name[: -len("0000.tfrecord")]
        with tf.io.TFRecordWriter(str(out / "frame" / name)) as writer:
            for index, raw in enumerate(tf.data.TFRecordDataset(os.path.join(yt8m, "frame", name))):
                example = tf.train.SequenceExample.FromString(raw.numpy())
                if split in splits:
                    change(example, index)
                writer.write(example.SerializeToString())
    return str(out / "frame")


def resize_rgb(size):
    def change(example, index):
        for frame in example.feature_lists.feature_list["rgb"].feature:
            value = frame.bytes_list.value[0]
            frame.bytes_list.value[0] = (value * 2)[:size]
    return change


def assert_no_work_done(data_dir, workdir):
    assert not [name for name in os.listdir(data_dir) if name.startswith("label_graph")], os.listdir(data_dir)
    assert_nothing_trained(workdir)
    assert not os.path.exists(os.path.join(workdir, "checkpoint"))


@pytest.mark.slow
def test_train_cli_refuses_frames_of_another_size_before_the_label_graph(yt8m, tmp_path):
    """rgb frames of 2048 bytes where the config expects 1024: exit 2, one line naming the
    file, the feature and both sizes, and no label graph or checkpoint written."""
    data_dir = copy_records(yt8m, tmp_path, resize_rgb(2048))
    workdir = str(tmp_path / "run")
    proc = run_cli("cma_tf.train", *CLI_OVERRIDES, f"--config.data.data_dir={data_dir}",
                   "--config.data.eval_segments=False", f"--workdir={workdir}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc)
    assert os.path.join(data_dir, "train0000.tfrecord") in line, line
    assert "'rgb'" in line and "2048" in line and "1024" in line and "config.data.feature_sizes" in line, line
    assert_no_work_done(data_dir, workdir)


@pytest.mark.parametrize("size", [512, 2048])
def test_frames_of_another_size_are_refused_on_every_split(yt8m, tmp_path, size):
    data_dir = copy_records(yt8m, tmp_path, resize_rgb(size), splits=("validate",))
    config = tiny_config(data_dir)
    config.data.eval_segments = False
    config.data.eval_split = "validate"
    with pytest.raises(DataError, match=rf"validate0000\.tfrecord: record 0 .*'rgb' .*{size} bytes.* 1024"):
        train_and_evaluate(config, str(tmp_path / "run"))
    assert_no_work_done(data_dir, str(tmp_path / "run"))


def test_frames_of_another_size_train_when_the_size_is_set(yt8m, tmp_path):
    data_dir = copy_records(yt8m, tmp_path, resize_rgb(2048), splits=("train", "validate", "test"))
    config = tiny_config(data_dir)
    config.data.eval_segments = False
    config.data.eval_split = "validate"
    config.data.feature_names = ("rgb", "audio")
    config.data.feature_sizes.rgb = 2048
    config.train.steps_per_epoch = 2
    assert factory.build_backbone(config).input_shape[-1] == 2048 + 128
    metrics = train_and_evaluate(config, str(tmp_path / "run"))
    assert 0 <= metrics["GAP"] <= 1
    # The served model reads 2048-byte frames too.
    summary = batch_predict.predict(str(tmp_path / "run"), [os.path.join(data_dir, "test0000.tfrecord")],
                                    str(tmp_path / "out.csv"), progress=False)
    assert summary["items"] == 4 and summary["flagged"] == []


def empty_videos(example, index):
    for name in ("rgb", "audio"):
        del example.feature_lists.feature_list[name].feature[:]


def segments_past_the_end(example, index):
    starts = example.context.feature["segment_start_times"].int64_list.value
    ends = example.context.feature["segment_end_times"].int64_list.value
    for i in range(len(starts)):
        starts[i], ends[i] = 200, 205


def assert_refused_before_any_work(config, workdir, pattern):
    with pytest.raises(DataError, match=pattern):
        train_and_evaluate(config, workdir)
    assert_no_work_done(config.data.data_dir, workdir)


def test_videos_without_frames_are_refused_before_training(yt8m, tmp_path):
    data_dir = copy_records(yt8m, tmp_path, empty_videos, splits=("validate",))
    config = tiny_config(data_dir)
    config.data.eval_segments = False
    config.data.eval_split = "validate"
    assert_refused_before_any_work(config, str(tmp_path / "run"), r"validate0000\.tfrecord: record 0 \(id '.+'\) has no frames")


def test_segments_past_the_videos_end_are_refused_before_training(yt8m, tmp_path):
    """Frames 200-205 of 10-20-frame videos (and of max_frames 300): no frame of the video is in them."""
    data_dir = copy_records(yt8m, tmp_path, segments_past_the_end, splits=("validate",))
    config = tiny_config(data_dir)
    config.data.eval_split = "validate"
    assert_refused_before_any_work(
        config, str(tmp_path / "run"),
        r"validate0000\.tfrecord: record 0 \(id '.+'\): field 'segment_start_times' has a segment at frames "
        r"200-205, .*\d+ frames")


def label_minus_3(example, index):
    example.context.feature["labels"].int64_list.value.append(-3)


def segment_label_beyond_vocabulary(example, index):
    if example.context.feature["segment_labels"].int64_list.value:
        example.context.feature["segment_labels"].int64_list.value[0] = NUM_CLASSES + 4


def segment_past_max_frames(example, index):
    starts = example.context.feature["segment_start_times"].int64_list.value
    if starts:
        starts[0] = 5  # frames 5-10, past max_frames=8 below (the videos have 10-20 frames)


@pytest.mark.parametrize("change,split,pattern", [
    (label_minus_3, "train", r"train0000\.tfrecord: record 0 \(id '.+'\): field 'labels' has label id -3, outside"),
    (segment_label_beyond_vocabulary, "validate",
     r"validate0000\.tfrecord: record 0 \(id '.+'\): field 'segment_labels' has label id 12, outside the 8-class"),
    (segment_past_max_frames, "validate",
     r"validate0000\.tfrecord: record 0 \(id '.+'\): field 'segment_start_times' has a segment at frames 5-10, "
     r"past config\.data\.max_frames=8"),
])
def test_bad_records_are_refused_before_the_label_graph(yt8m, tmp_path, change, split, pattern):
    data_dir = copy_records(yt8m, tmp_path, change, splits=(split,))
    config = tiny_config(data_dir)
    config.data.eval_split = "validate"
    config.data.max_frames = 8
    assert_refused_before_any_work(config, str(tmp_path / "run"), pattern)


def test_the_record_check_can_be_skipped(yt8m, tmp_path):
    """config.data.check_records=0 skips the scan: the label −3 is then not found before the label graph."""
    data_dir = copy_records(yt8m, tmp_path, label_minus_3, splits=("train",))
    config = tiny_config(data_dir)
    config.data.eval_segments = False
    config.data.eval_split = "validate"
    config.data.check_records = 0
    factory.check_records(config, NUM_CLASSES)  # no error
    config.data.check_records = 1
    with pytest.raises(DataError, match="label id -3"):
        factory.check_records(config, NUM_CLASSES)


def test_predict_marks_a_video_without_frames_invalid_with_the_reason(yt8m, frame_workdir, tmp_path):
    data_dir = copy_records(yt8m, tmp_path, lambda example, index: index % 2 == 0 and empty_videos(example, index),
                            splits=("test",))
    output = str(tmp_path / "out.csv")
    summary = batch_predict.predict(frame_workdir, [os.path.join(data_dir, "test0000.tfrecord")], output, progress=False)
    assert summary["items"] == 4
    assert len(summary["flagged"]) == 2 and all("no frames" in line for line in summary["flagged"]), summary["flagged"]
    with open(output) as f:
        valid = [row.split(",")[1] for row in f.read().splitlines()[1:]]
    assert valid == ["0", "1", "0", "1"]


def truncate(path, keep=0.6):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: int(len(data) * keep)])


@pytest.mark.slow
def test_train_cli_names_the_truncated_shard(yt8m, tmp_path):
    data_dir = copy_records(yt8m, tmp_path, lambda example, index: None)
    truncate(os.path.join(data_dir, "train0000.tfrecord"))
    proc = run_cli("cma_tf.train", *CLI_OVERRIDES, f"--config.data.data_dir={data_dir}",
                   "--config.data.eval_segments=False", f"--workdir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    line = error_line(proc)
    assert os.path.join(data_dir, "train0000.tfrecord") in line and "record " in line and "truncated" in line, line


def test_segment_inference_cli_names_the_truncated_shard(yt8m, frame_workdir, tmp_path):
    data_dir = copy_records(yt8m, tmp_path, lambda example, index: None)
    path = os.path.join(data_dir, "validate0000.tfrecord")
    truncate(path)
    proc = run_cli("cma_tf.segment_inference", f"--workdir={frame_workdir}", f"--input={path}",
                   f"--output={tmp_path / 'out.csv'}", f"--segment_label_ids={os.path.join(yt8m, 'segment_label_ids.csv')}")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert re.match(rf"^error: {path}: record \d+ and on cannot be read .*truncated", error_line(proc)), error_line(proc)
    assert not os.path.exists(tmp_path / "out.csv")


def test_evaluate_names_the_truncated_shard_as_train_does(yt8m, frame_workdir, tmp_path):
    from cma_tf.evaluate import evaluate_workdirs

    data_dir = copy_records(yt8m, tmp_path, lambda example, index: None)
    path = os.path.join(data_dir, "validate0000.tfrecord")
    truncate(path)
    with pytest.raises(DataError, match=rf"^{path}: record \d+ and on cannot be read .*truncated"):
        evaluate_workdirs([frame_workdir], ["run"], overrides={"data.data_dir": data_dir})
