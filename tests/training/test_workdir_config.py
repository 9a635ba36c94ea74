"""A workdir is the source of truth: training another config into it is refused (except for the
fields that may change when resuming), evaluation uses each workdir's own config.json, a dry run
leaves the real run alone, and an empty training split is one line."""

import json
import os
import shutil

import pytest

from cma_tf.data import records
from cma_tf.errors import ConfigError, DataError
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.test_cli import DEMO_CONFIG, TINY, run_cli, tiny_config, tiny_data  # noqa: F401 (fixture)
from tests.training.test_resume import Interrupted, InterruptAt

TINY_FLAGS = [f"--config.{key}={','.join(map(str, value)) if isinstance(value, tuple) else value}" for key, value in TINY.items()]


def read(workdir, name):
    with open(os.path.join(workdir, name)) as f:
        return json.load(f)


@pytest.fixture(scope="module")
def finished(tiny_data, tmp_path_factory):
    """A finished MS-CMA run (2 epochs of 2 steps)."""
    workdir = str(tmp_path_factory.mktemp("finished"))
    config = tiny_config("ms_cma", tiny_data)
    config.train.steps_per_epoch = 2
    train_and_evaluate(config, workdir)
    return workdir


def finished_config(data_dir):
    config = tiny_config("ms_cma", data_dir)
    config.train.steps_per_epoch = 2
    return config


@pytest.fixture(scope="module")
def interrupted(tiny_data, tmp_path_factory):
    """An MS-CMA run of 3 epochs killed in its third: 2 epochs finished."""
    workdir = str(tmp_path_factory.mktemp("interrupted"))
    config = interrupted_config(tiny_data)
    with pytest.raises(Interrupted):
        train_and_evaluate(config, workdir, extra_callbacks=[InterruptAt(epoch=2, batch=0)])
    assert files.resume_point(workdir)[0] == 2
    return workdir


def interrupted_config(data_dir):
    config = tiny_config("ms_cma", data_dir)
    config.train.epochs = 3
    config.train.steps_per_epoch = 2
    return config


def copy_of(workdir, tmp_path, name="copy"):
    target = str(tmp_path / name)
    shutil.copytree(workdir, target)
    return target


def test_train_cli_refuses_another_config_in_a_finished_workdir(finished, tiny_data, tmp_path):
    workdir = copy_of(finished, tmp_path)
    config_before, metrics_before = read(workdir, files.CONFIG), read(workdir, files.METRICS)
    result = run_cli(
        "cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={tiny_data}", *TINY_FLAGS,
        "--config.train.steps_per_epoch=2", f"--workdir={workdir}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in result.stderr
    assert f"{workdir} holds a run of another config (model.head 'ms_cma' → 'plain')" in error[0]
    assert "train.epochs, data.data_dir, data.vocabulary, data.tfds_data_dir, data.label_graph, train.eval_batch_size" in error[0]
    assert read(workdir, files.CONFIG) == config_before and read(workdir, files.METRICS) == metrics_before


def test_an_interrupted_run_refuses_another_head(interrupted, tiny_data, tmp_path):
    workdir = copy_of(interrupted, tmp_path)
    config = interrupted_config(tiny_data)
    config.model.head = "cma"
    config.model.cmt_layers = 1
    with pytest.raises(ConfigError, match=r"model.cmt_layers 2 → 1, model.head 'ms_cma' → 'cma'"):
        train_and_evaluate(config, workdir)
    assert read(workdir, files.CONFIG)["model"]["head"] == "ms_cma"
    assert files.resume_point(workdir)[0] == 2


@pytest.mark.slow
def test_an_interrupted_run_resumes_with_the_allowed_changes_recorded(interrupted, tiny_data, tmp_path):
    workdir = copy_of(interrupted, tmp_path)
    moved = str(tmp_path / "moved_data")
    shutil.copytree(tiny_data, moved, ignore=shutil.ignore_patterns("label_graph_*"))
    config = interrupted_config(moved)
    config.train.epochs = 4
    config.train.eval_batch_size = 5
    config.data.label_graph = str(tmp_path / "graph.npz")
    train_and_evaluate(config, workdir)
    saved = read(workdir, files.CONFIG)
    assert saved["train"]["epochs"] == 4 and saved["train"]["eval_batch_size"] == 5
    assert saved["data"]["data_dir"] == moved and saved["data"]["label_graph"] == str(tmp_path / "graph.npz")
    history = open(files.path(workdir, files.HISTORY)).read().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1", "2", "3"]


def test_an_interrupted_run_cannot_end_before_its_finished_epochs(interrupted, tiny_data, tmp_path):
    workdir = copy_of(interrupted, tmp_path)
    config = interrupted_config(tiny_data)
    config.train.epochs = 1
    with pytest.raises(ConfigError, match=r"train.epochs 3 → 1: .* has already finished 2 epochs; give at least 2"):
        train_and_evaluate(config, workdir)


def test_a_finished_run_is_not_silently_given_more_epochs(finished, tiny_data, tmp_path):
    workdir = copy_of(finished, tmp_path)
    config = finished_config(tiny_data)
    config.train.epochs = 5
    with pytest.raises(ConfigError, match=r"train.epochs 2 → 5: .* is a finished run of 2 epochs"):
        train_and_evaluate(config, workdir)
    assert read(workdir, files.CONFIG)["train"]["epochs"] == 2


def test_a_moved_dataset_must_have_the_runs_labels(finished, tiny_data, tmp_path):
    workdir = copy_of(finished, tmp_path)
    other = str(tmp_path / "other_data")
    shutil.copytree(tiny_data, other, ignore=shutil.ignore_patterns("label_graph_*"))
    names = open(os.path.join(other, "labels.txt")).read().splitlines()
    with open(os.path.join(other, "labels.txt"), "w") as f:
        f.write("\n".join(["zebra"] + names[1:]) + "\n")
    with pytest.raises(DataError, match=rf"the dataset's vocabulary differs from the run's {workdir}/labels.txt at id 0 "
                                        rf"\(line 1\): 'zebra' instead of '{names[0]}'"):
        train_and_evaluate(finished_config(other), workdir)


def test_a_config_json_of_an_older_version_compares_over_todays_defaults(finished, tiny_data, tmp_path):
    workdir = copy_of(finished, tmp_path)
    saved = read(workdir, files.CONFIG)
    del saved["model"]["scale_loss_weight"]  # as written before the field existed (default 1.0)
    del saved["data"]["eval_segments"]
    files.write_json(files.path(workdir, files.CONFIG), saved)
    metrics = train_and_evaluate(finished_config(tiny_data), workdir)
    assert metrics["mAP"] == pytest.approx(read(finished, files.METRICS)["mAP"], abs=1e-9)
    assert read(workdir, files.CONFIG)["model"]["scale_loss_weight"] == 1.0
    del saved["data"]["image_size"]  # the default, 448, is not what this config trains at
    files.write_json(files.path(workdir, files.CONFIG), saved)
    with pytest.raises(ConfigError, match=r"data.image_size 448 → 32"):
        train_and_evaluate(finished_config(tiny_data), workdir)


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_a_dry_run_leaves_the_real_run_to_train(tiny_data, tmp_path):
    workdir = str(tmp_path / "run")
    config = tiny_config("plain", tiny_data)
    config.train.steps_per_epoch = 2
    train_and_evaluate(config, workdir, dry_run=True)
    train_and_evaluate(config, workdir)
    history = open(files.path(workdir, files.HISTORY)).read().splitlines()
    assert len(history) == 1 + config.train.epochs  # trained, not the dry run's model re-evaluated
    assert read(workdir, files.CONFIG)["train"]["epochs"] == config.train.epochs
    assert read(os.path.join(workdir, "dry_run"), files.CONFIG)["train"]["steps_per_epoch"] == 2
    metrics = read(workdir, files.METRICS)
    train_and_evaluate(config, workdir, dry_run=True)  # a dry run into a finished run changes none of it
    assert read(workdir, files.METRICS) == metrics
    other = tiny_config("cma", tiny_data)
    other.train.steps_per_epoch = 2
    with pytest.raises(ConfigError, match="model.head 'plain' → 'cma'"):
        train_and_evaluate(other, workdir, dry_run=True)


def test_steps_per_epoch_below_one_is_refused(tiny_data, tmp_path):
    config = tiny_config("plain", tiny_data)
    config.train.steps_per_epoch = 0
    with pytest.raises(ConfigError, match=r"config.train.steps_per_epoch=0: must be an integer ≥ 1, or None \(one pass"):
        train_and_evaluate(config, str(tmp_path / "w"))


def test_an_empty_train_split_is_one_line(tiny_data, tmp_path):
    data_dir = tmp_path / "empty_train"
    data_dir.mkdir()
    shutil.copy(os.path.join(tiny_data, "labels.txt"), data_dir)
    for shard in records.list_shards(tiny_data, "val"):
        shutil.copy(shard, data_dir)
    records.write_split(str(data_dir), "train", [], num_shards=2)
    result = run_cli(
        "cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={data_dir}", *TINY_FLAGS,
        f"--workdir={tmp_path / 'w'}",
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert f"error: split 'train' of {data_dir} holds no examples" in result.stderr
    assert "Traceback" not in result.stderr and "StopIteration" not in result.stderr


@pytest.fixture(scope="module")
def wide(tiny_data, tmp_path_factory):
    """A finished plain run at 48 px (the others are at 32, demo.py says 96)."""
    workdir = str(tmp_path_factory.mktemp("wide"))
    config = tiny_config("plain", tiny_data)
    config.data.image_size = 48
    config.train.steps_per_epoch = 2
    config.train.eval_batch_size = 7
    train_and_evaluate(config, workdir)
    return workdir


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_evaluate_cli_uses_each_workdirs_own_config(finished, wide, tiny_data):
    result = run_cli(
        "cma_tf.evaluate", f"--config={DEMO_CONFIG}", f"--config.data.data_dir={tiny_data}",
        f"--workdirs={finished},{wide}", "--names=a,b",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"on split 'val' of {tiny_data}" in result.stdout
    for workdir in (finished, wide):  # the final model on the same split: training's own metrics
        evaluated = read(workdir, "eval_metrics_final.json")
        assert evaluated["mAP"] == pytest.approx(read(workdir, files.METRICS)["mAP"], abs=1e-6)
    without_config = run_cli("cma_tf.evaluate", f"--workdirs={wide}", "--eval_split=train", "--batch_size=9")
    assert without_config.returncode == 0, without_config.stderr[-2000:]
    assert f"on split 'train' of {tiny_data}" in without_config.stdout


def test_evaluate_refuses_an_override_the_model_depends_on(finished, tiny_data):
    from cma_tf.evaluate import evaluate_workdirs

    with pytest.raises(ConfigError, match=r"--config.data.image_size=64, but .* was trained with 32"):
        evaluate_workdirs([finished], ["a"], overrides={"data.data_dir": tiny_data, "data.image_size": 64})
    with pytest.raises(ConfigError, match=r"--config.data.nope: no such field"):
        evaluate_workdirs([finished], ["a"], overrides={"data.nope": 1})
    rows, _, runs = evaluate_workdirs([finished], ["a"], overrides={"data.image_size": 32, "train.eval_batch_size": 3})
    assert runs["a"][0].train.eval_batch_size == 3 and runs["a"][0].data.image_size == 32
    assert rows["a"]["mAP"] == pytest.approx(read(finished, files.METRICS)["mAP"], abs=1e-6)


def test_evaluate_help_names_the_files_it_writes():
    result = run_cli("cma_tf.evaluate", "--help")  # absl's --help exits with status 1
    assert "per_class:" in result.stdout
    assert "eval_metrics_final.json" in result.stdout and "eval_metrics.json" not in result.stdout


def test_a_resume_after_the_training_split_changed_is_refused(interrupted, tmp_path):
    """A resumed checkpoint carries the label embeddings (and loss weights, steps per epoch) of the
    data the run started on: after images were added to train it would not end where a fresh run
    on the new data does, so it is refused, before anything in the workdir changes."""
    from cma_tf.datasets.demo import generate_demo_dataset

    workdir = copy_of(interrupted, tmp_path)
    grown = str(tmp_path / "grown_data")
    generate_demo_dataset(grown, num_train=64, num_val=24, image_size=32, seed=0, num_shards=2, progress=False)
    before = {name: open(files.path(workdir, name), "rb").read() for name in (files.CONFIG, files.CHECKPOINT_STATE, files.HISTORY)}
    with pytest.raises(DataError, match=r"the training split 'train' changed since .* started \(48 → 64 examples"):
        train_and_evaluate(interrupted_config(grown), workdir)
    assert {name: open(files.path(workdir, name), "rb").read() for name in before} == before
