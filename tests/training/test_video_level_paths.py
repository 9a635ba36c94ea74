"""What a new user hit on the video-level path (issue 37): NaN features scored as valid, and
non-finite data blamed on the learning rate; `label_embeddings` replacing a trained run's ASGE
fit; a missing data directory reported as a missing vocabulary file; no config entry for
video-level models; `predict` flagging video records without saying why.

References: the records are written and read back with plain `tf.train.Example` protos and
numpy (`np.isnan` on the very floats written), the CSV is read with the `csv` module, and the
ASGE cache is compared byte for byte."""

import csv
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.config_base import VIDEO_LEVEL_VARIANTS, get_paper_video_config, load_config_file
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.errors import ConfigError, DataError
from cma_tf.serving import batch_predict
from cma_tf.serving.predictions import rows_of
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_CLASSES = 8
VIDEO_LEVEL_ENTRIES = tuple(VIDEO_LEVEL_VARIANTS)  # every video-level entry of configs/yt8m.py


@pytest.fixture(scope="module")
def yt8m(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m_video_level"))
    write_synthetic_yt8m(out, num_classes=NUM_CLASSES, train_videos=32, validate_videos=8, test_videos=4,
                         num_shards=1, min_frames=10, max_frames=20, seed=7, progress=False)
    return out


def shrink(config, data_dir):
    """Tiny widths and one short epoch."""
    config.data.data_dir = data_dir
    config.data.deterministic = True
    config.model.snet_filters = (8, 8, 8, 8)
    config.model.fc_units = (8, 8)
    config.asge.units = 8
    config.asge.steps = 20
    config.train.epochs = 1
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    return config


def recipe_config(data_dir):
    """Video-level CMA over FC by the recipe that works without a config entry (the issue's)."""
    config = get_paper_video_config("cma_fc")
    config.data.format = "yt8m_video"
    config.data.eval_segments = False
    config.data.feature_names = ("mean_rgb",)
    return shrink(config, data_dir)


@pytest.fixture(scope="module")
def video_workdir(yt8m, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("video_run"))
    config = recipe_config(os.path.join(yt8m, "video"))
    config.train.steps_per_epoch = 2
    train_and_evaluate(config, workdir)
    return workdir


def read_examples(path):
    return [tf.train.Example.FromString(raw) for raw in tf.data.TFRecordDataset(path).as_numpy_iterator()]


def write_examples(path, examples):
    with tf.io.TFRecordWriter(path) as writer:
        for example in examples:
            writer.write(example.SerializeToString())


def copy_with(yt8m, out, split, index, change):
    """A copy of the video-level data (vocabulary beside `video/`) whose `split` record `index`
    is changed by `change(example)`; returns `(video folder, the record's file, its id)`."""
    video = os.path.join(out, "video")
    os.makedirs(video, exist_ok=True)
    shutil.copy(os.path.join(yt8m, "vocabulary.csv"), out)
    for name in os.listdir(os.path.join(yt8m, "video")):
        if name.endswith(".tfrecord"):
            shutil.copy(os.path.join(yt8m, "video", name), video)
    path = os.path.join(video, f"{split}0000.tfrecord")
    examples = read_examples(path)
    change(examples[index])
    write_examples(path, examples)
    return video, path, examples[index].features.feature["id"].bytes_list.value[0].decode()


def put_nan(example):
    values = list(example.features.feature["mean_rgb"].float_list.value)
    values[5] = float("nan")
    example.features.feature["mean_rgb"].float_list.value[:] = values


# --- §1.4: non-finite features ------------------------------------------------------------------


def test_predict_marks_a_record_with_nan_features_invalid_and_says_why(yt8m, video_workdir, tmp_path):
    _, path, video_id = copy_with(yt8m, str(tmp_path / "nan"), "test", 1, put_nan)
    assert np.isnan(read_examples(path)[1].features.feature["mean_rgb"].float_list.value).any()  # the premise
    output = str(tmp_path / "out.csv")
    summary = batch_predict.predict(video_workdir, [path], output, progress=False)
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert [row["id"] for row in rows][1] == video_id
    assert [row["valid"] for row in rows] == ["1", "0", "1", "1"], rows
    assert rows[1]["label_1"] == "" and rows[1]["score_1"] == ""
    assert all(row["score_1"] != "nan" for row in rows)
    assert summary["flagged"] == [f"{video_id} (feature 'mean_rgb' holds NaN or infinite values)"]


def test_rows_with_non_finite_scores_are_not_valid():
    """A SavedModel exported before the check still gives rows that say valid=0, not NaN scores."""
    outputs = {
        "valid": np.array([True, True]),
        "top_k_scores": np.array([[np.nan, 0.2], [0.9, 0.1]], np.float32),
        "top_k_labels": np.array([[b"Dog", b"Cat"], [b"Cat", b"Dog"]]),
        "top_k_classes": np.array([[0, 1], [1, 0]]),
    }
    rows = rows_of(outputs)
    assert [row["valid"] for row in rows] == [False, True]
    assert rows[0]["labels"] == [] and rows[1]["labels"] == ["Cat", "Dog"]


def test_evaluate_names_the_file_and_record_with_nan_features(yt8m, video_workdir, tmp_path):
    from cma_tf.evaluate import evaluate_workdirs

    video, path, video_id = copy_with(yt8m, str(tmp_path / "nan"), "validate", 3, put_nan)
    with pytest.raises(DataError) as error:
        evaluate_workdirs([video_workdir], ["run"], overrides={"data.data_dir": video})
    message = str(error.value)
    assert message.startswith(f"{path}: record 3 (id {video_id!r}): feature 'mean_rgb' holds NaN or infinite"), message
    assert "\n" not in message


def test_training_on_nan_features_names_the_record_not_the_learning_rate(yt8m, tmp_path):
    video, path, video_id = copy_with(yt8m, str(tmp_path / "nan"), "train", 4, put_nan)
    workdir = str(tmp_path / "run")
    with pytest.raises(DataError) as error:
        train_and_evaluate(recipe_config(video), workdir)
    message = str(error.value)
    assert f"{path}: record 4 (id {video_id!r}): feature 'mean_rgb' holds NaN or infinite" in message, message
    assert "learning_rate" not in message and "\n" not in message
    assert not os.path.exists(files.path(workdir, files.FINAL_MODEL))


# --- §3: predict says why a video record did not decode ---------------------------------------


def test_predict_says_which_feature_of_a_video_record_has_the_wrong_size(yt8m, video_workdir, tmp_path):
    def cut(example):
        del example.features.feature["mean_rgb"].float_list.value[512:]

    _, path, video_id = copy_with(yt8m, str(tmp_path / "cut"), "test", 0, cut)
    assert len(read_examples(path)[0].features.feature["mean_rgb"].float_list.value) == 512  # the premise
    summary = batch_predict.predict(video_workdir, [path], str(tmp_path / "out.csv"), progress=False)
    assert summary["flagged"] == [f"{video_id} (feature 'mean_rgb' holds 512 values; the model reads 1024)"]


# --- §3: label_embeddings never replaces a trained run's ASGE fit -------------------------------


def run_label_embeddings(workdir, output, *overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    return subprocess.run(
        [sys.executable, "-m", "cma_tf.label_embeddings", "--config=configs/yt8m.py:cma_fc",
         "--config.data.format=yt8m_video", "--config.data.eval_segments=False",
         "--config.data.feature_names=mean_rgb", f"--workdir={workdir}", f"--output={output}", *overrides],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_label_embeddings_refuses_to_replace_a_trained_runs_asge_fit(yt8m, video_workdir, tmp_path):
    def cache():
        return {name: open(files.path(video_workdir, name), "rb").read() for name in (files.ASGE_WEIGHTS, files.ASGE_REPORT)}

    before = cache()
    output = tmp_path / "E.npy"
    data = f"--config.data.data_dir={os.path.join(yt8m, 'video')}"
    # The run's asge.steps=20 left out: the recipe's 3000.
    proc = run_label_embeddings(video_workdir, output, data, "--config.asge.units=8")
    assert proc.returncode == 2, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "asge.steps" in last and "3000" in last and "20" in last and video_workdir in last, last
    assert not output.exists()
    assert cache() == before
    # With the run's own settings its fit is read, not refitted.
    proc = run_label_embeddings(video_workdir, output, data, "--config.asge.units=8", "--config.asge.steps=20")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert np.load(output).shape == (NUM_CLASSES, 8)
    assert cache() == before


# --- §3: a missing data directory says how to make it ------------------------------------------


def test_a_missing_data_directory_says_how_to_make_or_get_it(tmp_path):
    config = load_config_file(os.path.join(REPO, "configs", "yt8m.py")).get_config("cma_snet")
    missing = str(tmp_path / "data" / "yt8m" / "frame")
    config.data.data_dir = missing
    with pytest.raises(DataError) as error:
        train_and_evaluate(config, str(tmp_path / "run"))
    message = str(error.value)
    assert message.startswith(f"config.data.data_dir={missing} does not exist"), message
    assert "python -m cma_tf.datasets.yt8m_synthetic" in message and "research.google.com/youtube8m" in message
    assert not os.path.exists(tmp_path / "run" / files.CONFIG)


# --- §3: config entries for video-level models --------------------------------------------------


@pytest.mark.parametrize("entry", VIDEO_LEVEL_ENTRIES)
def test_video_level_entries_build_and_train_a_step(entry, yt8m, tmp_path):
    import keras

    config = load_config_file(os.path.join(REPO, "configs", "yt8m.py")).get_config(entry)
    assert config.data.format == "yt8m_video" and config.data.eval_segments is False
    assert tuple(config.data.feature_names) == ("mean_rgb",) and config.data.data_dir == "data/yt8m/video"
    demo = load_config_file(os.path.join(REPO, "configs", "yt8m_demo.py")).get_config(entry)
    assert demo.data.format == "yt8m_video" and demo.data.data_dir == "runs/yt8m_demo/data/video"
    shrink(config, os.path.join(yt8m, "video"))
    config.train.steps_per_epoch = 1
    workdir = str(tmp_path / entry)
    metrics = train_and_evaluate(config, workdir)
    assert np.isfinite(metrics["GAP"])
    model = keras.saving.load_model(files.path(workdir, files.FINAL_MODEL))
    assert tuple(model.input_shape) == (None, 1, 1024)
