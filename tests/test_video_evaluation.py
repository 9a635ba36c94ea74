"""`evaluate`, `evaluate --report`, `evaluate --calibrate` and `segment_inference` on video runs
(synthetic YouTube-8M records): what a run on rated segments is calibrated on, which level each
table row and metrics file was scored at, the fixes named when the records are not the run's,
and the row name of the table `train` prints.

References: thresholds against a brute-force F1 over every cut with scikit-learn's `f1_score`;
the records of the wrong kind are written here with plain `tf.train.SequenceExample`s."""

import json
import os
import re
import shutil

import keras
import pytest
from sklearn.metrics import f1_score

from cma_tf import factory
from cma_tf.errors import DataError
from cma_tf.evaluate import evaluate_workdirs, write_html_report
from cma_tf.training import workdir as files
from cma_tf.training.callbacks import predict_scores
from tests.test_cli import ROOT, run_cli
from tests.video_runs import (  # noqa: F401 (fixtures)
    NUM_CLASSES, TRAIN_VIDEOS, records_with_rgb_only, segment_run, video_level_run, yt8m,
)


def test_a_run_on_rated_segments_is_calibrated_on_whole_videos(segment_run, tmp_path, capsys):
    """The published train split has no rated segments and validate is the evaluated one: the
    thresholds, which export and predict apply to whole videos, are chosen on whole videos."""
    workdir = str(tmp_path / "run")
    shutil.copytree(segment_run, workdir)
    rows, keys, runs = evaluate_workdirs([workdir], ["run"], calibrate_split="train")
    stored = files.read_json(files.thresholds_path(workdir, "final"))
    assert stored["split"] == "train" and stored["examples"] == TRAIN_VIDEOS
    config = runs["run"][0]
    whole_videos = config.copy_and_resolve_references()
    whole_videos.data.eval_segments = False
    model = keras.saving.load_model(files.trained_model_path(workdir))
    scores, targets = predict_scores(model, factory.build_dataset(whole_videos, NUM_CLASSES, "train", training=False))
    assert scores.shape == (TRAIN_VIDEOS, NUM_CLASSES)
    for k, threshold in enumerate(stored["thresholds"]):
        if not targets[:, k].any():
            continue
        best = max(f1_score(targets[:, k], scores[:, k] >= cut, zero_division=0) for cut in scores[:, k])
        assert f1_score(targets[:, k], scores[:, k] >= threshold, zero_division=0) == pytest.approx(best)
    # the segment metrics are not put beside F1s at thresholds chosen for whole videos
    assert "CF1_calibrated" not in rows["run"] and "CF1_calibrated" not in keys
    assert "thresholds chosen on the whole videos of split 'train' (32 videos;" in capsys.readouterr().out


def test_the_report_of_a_video_run_speaks_of_its_items_and_has_no_empty_attention_section(segment_run, tmp_path):
    predictions = {}
    rows, keys, runs = evaluate_workdirs([segment_run], ["cma_fc"], same_labels=True, predictions=predictions)
    path = write_html_report(str(tmp_path / "report"), [segment_run], ["cma_fc"], "final", rows, keys, runs, predictions)
    page = open(path, encoding="utf-8").read()
    text = re.sub(r"<[^>]+>|data:image/png;base64,[^\"]+", " ", page)
    assert "image" not in text.replace("images", "image").lower().replace("imageio", ""), \
        re.findall(r".{60}image.{60}", text)
    assert "rated segments" in text
    assert "<h2>Attention" not in page
    assert "python -m cma_tf.visualize attention" in text


@pytest.mark.slow
def test_evaluate_marks_the_level_each_row_was_scored_at(segment_run, video_level_run):
    result = run_cli("cma_tf.evaluate", f"--workdirs={segment_run},{video_level_run}", "--names=frames,videos")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| frames (rated segments) |" in result.stdout and "| videos (videos) |" in result.stdout, result.stdout
    for workdir, level in ((segment_run, "rated segments"), (video_level_run, "videos")):
        with open(os.path.join(workdir, "eval_metrics_final.json")) as f:
            assert json.load(f)["evaluated_on"] == level
        with open(os.path.join(workdir, "eval_metrics_final.md")) as f:
            assert f"scored on {level}" in f.read()


@pytest.mark.parametrize("records", ["video", "rgb_only"])
def test_evaluate_names_data_dir_when_the_records_are_not_the_runs(yt8m, segment_run, tmp_path, records):
    if records == "video":
        data_dir = os.path.join(yt8m, "video")
    else:
        data_dir = records_with_rgb_only(str(tmp_path / "frame"), "validate")
        shutil.copy(os.path.join(yt8m, "vocabulary.csv"), tmp_path / "vocabulary.csv")
    with pytest.raises(DataError) as raised:
        evaluate_workdirs([segment_run], ["run"], overrides={"data.data_dir": data_dir})
    message = str(raised.value)
    assert re.search(rf"but {re.escape(segment_run)} was trained on frame-level SequenceExamples with rgb, audio: "
                     r"point --data_dir at such records", message), message
    assert "config.data.feature_names" not in message and "config.data.format" not in message


@pytest.mark.slow
def test_the_table_after_training_names_the_config_entry(yt8m, tmp_path):
    result = run_cli(
        "cma_tf.train", f"--config={ROOT}/configs/yt8m.py:self_attention_fc", f"--config.data.data_dir={yt8m}/frame",
        "--config.data.frames=8", "--config.model.fc_units=8,8", "--config.train.epochs=1",
        "--config.train.batch_size=8", "--config.train.eval_batch_size=8", f"--workdir={tmp_path / 'run'}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| self_attention_fc |" in result.stdout, result.stdout[-1000:]


@pytest.mark.parametrize("records", ["video", "rgb_only"])
def test_segment_inference_names_input_when_the_records_are_not_the_runs(yt8m, segment_run, tmp_path, records):
    if records == "video":
        pattern = os.path.join(yt8m, "video", "test*.tfrecord")
    else:
        pattern = os.path.join(records_with_rgb_only(str(tmp_path / "frame"), "test"), "test*.tfrecord")
    output = str(tmp_path / "submission.csv")
    result = run_cli("cma_tf.segment_inference", f"--workdir={segment_run}", f"--input={pattern}",
                     f"--segment_label_ids={yt8m}/segment_label_ids.csv", f"--output={output}")
    assert result.returncode == 2, result.stderr[-2000:]
    message = result.stderr.strip().splitlines()[-1]
    assert re.search(r"^error: .* was trained on frame-level SequenceExamples with rgb, audio: give --input such "
                     r"records", message), message
    assert "config.data" not in message and "Traceback" not in result.stderr
    assert not os.path.exists(output)
