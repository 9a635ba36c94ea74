"""The command lines end to end on a tiny generated dataset, and their errors for user mistakes."""

import json
import os
import subprocess
import sys

import pytest

from cma_tf.config_base import load_config_file
from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_CONFIG = os.path.join(ROOT, "configs", "demo.py")
TINY = {
    "data.image_size": 32,
    "model.backbone_widths": (8, 16, 32, 64),
    "model.feature_channels": 16,
    "model.extra_block_filters": 4,
    "asge.units": 8,
    "asge.steps": 20,
    "train.epochs": 2,
    "train.batch_size": 8,
    "train.eval_batch_size": 16,
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("data"))
    generate_demo_dataset(data_dir, num_train=48, num_val=24, image_size=32, seed=0, num_shards=2, progress=False)
    return data_dir


def tiny_config(head, data_dir):
    config = load_config_file(DEMO_CONFIG).get_config(head)
    for key, value in TINY.items():
        section, field = key.split(".")
        config[section][field] = value
    config.data.data_dir = data_dir
    return config


def run_cli(*args):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def trained_workdir(tiny_data, tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("ms_cma"))
    train_and_evaluate(tiny_config("ms_cma", tiny_data), workdir)
    return workdir


def test_training_writes_the_run_files(trained_workdir):
    for name in (files.CONFIG, files.ASGE_WEIGHTS, files.ASGE_REPORT, files.BEST_MODEL, files.FINAL_MODEL, files.HISTORY):
        assert os.path.exists(os.path.join(trained_workdir, name)), name
    assert os.listdir(os.path.join(trained_workdir, files.TENSORBOARD))
    with open(os.path.join(trained_workdir, files.METRICS)) as f:
        metrics = json.load(f)
    for key in ("mAP", "CF1", "OF1", "CP_top3", "OF1_top3"):
        assert 0.0 <= metrics[key] <= 1.0
    history = open(os.path.join(trained_workdir, files.HISTORY)).read().splitlines()
    assert "val_mAP" in history[0] and len(history) == 1 + TINY["train.epochs"]


def test_rerunning_a_finished_run_only_re_evaluates(tiny_data, trained_workdir):
    history = os.path.join(trained_workdir, files.HISTORY)
    before = open(history).read()
    with open(os.path.join(trained_workdir, files.METRICS)) as f:
        first = json.load(f)
    again = train_and_evaluate(tiny_config("ms_cma", tiny_data), trained_workdir)
    assert open(history).read() == before
    assert again["mAP"] == pytest.approx(first["mAP"], abs=1e-9)


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_deterministic_runs_repeat_exactly(tiny_data, tmp_path):
    config = tiny_config("cma", tiny_data)
    config.data.deterministic = True
    first = train_and_evaluate(config, str(tmp_path / "a"))
    second = train_and_evaluate(config, str(tmp_path / "b"))
    assert first == second


@pytest.mark.slow
def test_evaluate_cli_prints_the_table(tiny_data, trained_workdir):
    result = run_cli(
        "cma_tf.evaluate", f"--config={DEMO_CONFIG}", f"--config.data.data_dir={tiny_data}",
        "--config.data.image_size=32", f"--workdirs={trained_workdir}", "--names=MS-CMA", "--full", "--per_class",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "| model | mAP | CP | CR | CF1 | OP | OR | OF1 |" in result.stdout
    assert "| MS-CMA |" in result.stdout
    assert "| label | MS-CMA |" in result.stdout and "| frisbee |" in result.stdout
    assert os.path.exists(os.path.join(trained_workdir, "eval_metrics_final.json"))
    markdown = open(os.path.join(trained_workdir, "eval_metrics_final.md")).read()
    assert "| model | mAP | CP | CR | CF1 | OP | OR | OF1 | CP_top3 |" in markdown


def test_train_cli_missing_data_dir_is_one_clear_line(tmp_path):
    missing = str(tmp_path / "nowhere")
    result = run_cli("cma_tf.train", f"--config={DEMO_CONFIG}:cma", f"--config.data.data_dir={missing}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "error: Label vocabulary not found" in result.stderr and missing in result.stderr
    assert "Traceback" not in result.stderr


def test_train_cli_vocabulary_without_shards_names_the_pattern(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    result = run_cli("cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={tmp_path}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "No TFRecord shards for split 'train'" in result.stderr and "train-*-of-*.tfrecord" in result.stderr


def test_train_cli_malformed_vocabulary_names_the_line(tmp_path):
    (tmp_path / "labels.txt").write_text("cat\n\ndog\n")
    result = run_cli("cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={tmp_path}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "labels.txt: line 2 is empty" in result.stderr


def test_train_cli_missing_config_file(tmp_path):
    result = run_cli("cma_tf.train", f"--config={tmp_path / 'nope.py'}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert "error: cannot load --config" in result.stderr and "nope.py" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_train_cli_unknown_head_variant(tmp_path):
    result = run_cli("cma_tf.train", f"--config={DEMO_CONFIG}:resnet", f"--workdir={tmp_path / 'w'}")
    assert result.returncode != 0
    assert "unknown head 'resnet'" in result.stderr


def test_train_cli_config_with_syntax_error_is_one_line(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def get_config(:\n")
    result = run_cli("cma_tf.train", f"--config={bad}", f"--workdir={tmp_path / 'w'}")
    assert result.returncode == 2
    assert f"error: cannot load --config: {bad}:1:" in result.stderr and "Traceback" not in result.stderr


def test_label_graph_cli_matches_the_records(tiny_data, tmp_path):
    import numpy as np
    import tensorflow as tf

    from cma_tf.data import records
    from cma_tf.graph.cooccurrence import LabelGraph

    output = str(tmp_path / "graph.npz")
    result = run_cli("cma_tf.label_graph", f"--data_dir={tiny_data}", f"--output={output}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "48 examples, 16 labels" in result.stdout
    spec = {"image/class/label": tf.io.VarLenFeature(tf.int64)}
    dense = np.zeros((0, 16), np.int64)
    for path in records.list_shards(tiny_data, "train"):
        for serialized in tf.data.TFRecordDataset(path):
            row = np.zeros((1, 16), np.int64)
            row[0, tf.io.parse_single_example(serialized, spec)["image/class/label"].values.numpy()] = 1
            dense = np.vstack([dense, row])
    np.testing.assert_array_equal(LabelGraph.load(output).counts, dense.T @ dense)


@pytest.mark.slow
def test_w2v_ms_cma_trains_on_word2vec_label_embeddings(tiny_data, tmp_path):
    import numpy as np

    config = tiny_config("ms_cma", tiny_data)
    config.model.label_embedding = "word2vec"
    workdir = str(tmp_path / "w2v")
    metrics = train_and_evaluate(config, workdir, dry_run=True)
    assert 0.0 <= metrics["mAP"] <= 1.0
    workdir = os.path.join(workdir, files.DRY_RUN)
    vectors = np.load(os.path.join(workdir, files.WORD2VEC))
    assert vectors.shape == (16, TINY["asge.units"])
    import keras

    model = keras.saving.load_model(os.path.join(workdir, files.FINAL_MODEL))
    np.testing.assert_allclose(np.asarray(model.head.label_embeddings()), vectors, rtol=1e-6)


@pytest.mark.slow
def test_train_cli_dry_run_with_strategy_and_mixed_precision(tiny_data, tmp_path):
    overrides = [f"--config.{key}={value}" for key, value in TINY.items() if key != "model.backbone_widths"]
    result = run_cli(
        "cma_tf.train", f"--config={DEMO_CONFIG}:cma", f"--config.data.data_dir={tiny_data}",
        "--config.model.backbone_widths=(8,16,32,64)", *overrides,
        "--strategy=one_device", "--mixed_precision=bfloat16", "--dry_run", f"--workdir={tmp_path / 'w'}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "strategy: OneDeviceStrategy with 1 replica(s)" in result.stdout
    assert "| cma |" in result.stdout
    with open(tmp_path / "w" / files.DRY_RUN / "config.json") as f:
        saved = json.load(f)
    assert saved["train"]["mixed_precision"] == "bfloat16" and saved["train"]["steps_per_epoch"] == 2
    assert not os.path.exists(tmp_path / "w" / "config.json")  # the real run's workdir is left alone
