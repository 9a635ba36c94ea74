"""`python -m cma_tf.select`: the choice of a head on the user's data (the training split alone),
its table, its files, its budget, and the same table after a kill."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cma_tf.selection import chooser, grid, holdout, outputs

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def row(head, mean, std, step):
    return {"head": head, "mean": mean, "std": std, "step_seconds": step}


def outcome(scores, point=None, diverged=None):
    runs = [{"seed": i, "score": s, "mAP": s} for i, s in enumerate(scores)]
    runs += [{"seed": len(runs), "diverged": diverged}] if diverged else []
    return {"selected": point or {"learning_rate": 1e-3, "schedule": "step"}, "holdout_mAP": 0.5, "runs": runs}


PLAN = {"step_seconds": {"plain": 0.01, "cma": 0.05, "q2l": 0.20, "bad": 0.02}, "batch_size": 32}


def test_heads_within_one_std_of_the_best_tie_and_the_cheapest_tied_is_recommended():
    outcomes = {"q2l": outcome([0.80, 0.82, 0.81]), "cma": outcome([0.80, 0.79, 0.81]),
                "plain": outcome([0.70, 0.71, 0.72]), "bad": outcome([], diverged="the training loss became non-finite")}
    summary = chooser.summarize(outcomes, PLAN, "mAP")
    verdicts = {r["head"]: r["verdict"] for r in summary["rows"]}
    assert verdicts == {"q2l": "best", "cma": "tie", "plain": "behind"}  # 0.81 − 0.80 ≤ std 0.01
    assert summary["recommended"] == "cma" and "ties the best" in summary["reason"]
    assert summary["dropped"] == {"bad": "the training loss became non-finite"}
    assert [r["head"] for r in summary["rows"]] == ["q2l", "cma", "plain"]
    assert summary["rows"][1]["std"] == pytest.approx(np.std([0.80, 0.79, 0.81], ddof=1))
    rows = outputs.table_rows(summary, "mAP")
    assert rows[-1][:2] == ["bad", "dropped"] and rows[-1][-1] == "dropped: the training loss became non-finite"


def test_a_point_set_aside_as_unstable_is_named_in_the_table():
    moved = dict(outcome([0.80, 0.81, 0.805], point={"learning_rate": 3e-3, "schedule": "step"}),
                 unstable=[{"point": {"learning_rate": 1e-2, "schedule": "step"}, "seeds": [0, 1, 2],
                            "diverged": ["non-finite", "non-finite", None]}])
    summary = chooser.summarize({"cma": moved, "plain": outcome([0.70, 0.71, 0.72])}, PLAN, "mAP")
    assert summary["rows"][0]["unstable"] == [{"learning_rate": 1e-2, "schedule": "step"}]
    cell = outputs.table_rows(summary, "mAP")[0][3]
    assert cell == "0.003 step; 0.01 step set aside: its seeds diverged"


def test_a_head_ahead_by_more_than_the_spread_is_recommended_even_when_dearer():
    summary = chooser.summarize({"q2l": outcome([0.90, 0.91, 0.92]), "plain": outcome([0.70, 0.71, 0.72])}, PLAN, "mAP")
    assert summary["recommended"] == "q2l" and "leads by more than the spread" in summary["reason"]


def test_a_tied_head_that_is_barely_cheaper_does_not_replace_the_best():
    plan = {"step_seconds": {"plain": 0.0100, "cma": 0.0098}, "batch_size": 32}
    summary = chooser.summarize({"plain": outcome([0.80, 0.81]), "cma": outcome([0.80, 0.795])}, plan, "mAP")
    assert summary["recommended"] == "plain"


def test_the_plan_takes_heads_cheapest_first_and_refuses_a_budget_below_two_heads_with_two_seeds():
    from cma_tf.config_base import load_config_file

    base = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config("plain")
    base.train.epochs, base.train.batch_size = 2, 10
    steps = {"q2l": 0.5, "plain": 0.01, "cma": 0.1}
    # one run: 2 epochs × (85 // 10) steps × step × 1.3; a head: (grid points + seeds) runs
    per_run = {h: chooser.OVERHEAD * 2 * (len(holdout.holdout_split(100)[0]) // 10) * s for h, s in steps.items()}
    points = len(grid.points())
    smallest = (points + 2) * (per_run["plain"] + per_run["cma"])
    plan = chooser.make_plan(steps, 100, base, list(steps), 3, (points + 3) * (per_run["plain"] + per_run["cma"]) + 1)
    assert plan["heads"] == ["plain", "cma"] and plan["left_out"] == ["q2l"]
    with pytest.raises(Exception) as refused:
        chooser.make_plan(steps, 100, base, list(steps), 3, 0.9 * smallest)
    minutes = int(np.ceil(smallest / 60))
    assert f"give --budget_minutes={minutes} or more" in str(refused.value) and "plain, cma" in str(refused.value)


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("select_demo") / "data"
    subprocess.run([sys.executable, "-m", "cma_tf.datasets.demo", f"--out_dir={out}", "--num_train=140", "--num_val=40",
                    "--num_shards=1"], cwd=ROOT, env=ENV, check=True, capture_output=True)
    return str(out)


def select(data_dir, out, *extra, wait=True):
    command = [sys.executable, "-m", "cma_tf.select", f"--data_dir={data_dir}", f"--out={out}", "--heads=plain,mlgcn",
               "--epochs=1", "--seeds=2", "--budget_minutes=30", "--config=configs/demo.py:plain",
               "--config.model.backbone_weights=small_synthetic", "--config.train.batch_size=16", *extra]
    if not wait:
        return subprocess.Popen(command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    completed = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed.stdout


def table(stdout, costs=True):
    """The printed table's lines; without the two timed columns (`costs=False`), which two
    separate invocations measure anew."""
    lines = [line for line in stdout.splitlines() if line.startswith("|")]
    if costs:
        return lines
    return [[cell for i, cell in enumerate(line.split("|")) if i not in (5, 6)] for line in lines]


@pytest.mark.slow
def test_select_on_the_demo_data_chooses_on_the_training_split_alone_and_a_rerun_gives_the_same(demo_data, tmp_path):
    out = tmp_path / "select"
    first = select(demo_data, out)
    assert len(table(first)) == 4  # header, rule, two heads
    assert "Recommended:" in first and "python -m cma_tf.train --config=" in first
    # the eval split was never read: only the training split is cached
    assert sorted(os.listdir(out / "cache")) == ["train"]
    summary = json.loads((out / outputs.SUMMARY).read_text())
    fit, held = holdout.holdout_split(140)
    assert summary["holdout_examples"] == len(held) and not set(fit) & set(held)
    assert summary["recommended"] in ("plain", "mlgcn") and (out / outputs.REPORT).exists()
    started = time.perf_counter()
    second = select(demo_data, out)
    assert table(second) == table(first)  # read back, not trained again
    assert json.loads((out / outputs.SUMMARY).read_text())["recommended"] == summary["recommended"]
    assert time.perf_counter() - started < 120


@pytest.mark.slow
def test_a_killed_selection_resumes_to_the_same_table(demo_data, tmp_path):
    clean = table(select(demo_data, tmp_path / "clean"), costs=False)
    process = select(demo_data, tmp_path / "killed", wait=False)
    search = tmp_path / "killed" / "heads"
    deadline = time.time() + 600
    while time.time() < deadline and process.poll() is None:  # kill once some points finished
        if search.exists() and sum(f == "result.json" for _, _, files in os.walk(search) for f in files) >= 3:
            break
        time.sleep(0.5)
    assert process.poll() is None, "the selection ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert table(select(demo_data, tmp_path / "killed"), costs=False) == clean  # scores, points, verdicts


@pytest.mark.slow
def test_the_selected_config_trains(demo_data, tmp_path):
    out = tmp_path / "select"
    select(demo_data, out)
    command = (out / outputs.COMMAND).read_text().split()
    assert command[:3] == ["python", "-m", "cma_tf.train"]
    completed = subprocess.run([sys.executable, *command[1:], "--config.train.epochs=1"], cwd=ROOT, env=ENV,
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    metrics = json.loads((out / "train" / "metrics.json").read_text())
    assert 0.0 < metrics["mAP"] <= 1.0
    config = json.loads((out / "train" / "config.json").read_text())
    summary = json.loads((out / outputs.SUMMARY).read_text())
    assert config["model"]["head"] == summary["recommended"] and config["train"]["backbone_lr_multiplier"] == 0.0


@pytest.mark.slow
def test_a_budget_too_small_is_refused_in_one_line_with_the_smallest_that_would_do(demo_data, tmp_path):
    command = [sys.executable, "-m", "cma_tf.select", f"--data_dir={demo_data}", f"--out={tmp_path / 's'}",
               "--heads=plain,mlgcn", "--budget_minutes=0.001", "--config=configs/demo.py:plain",
               "--config.model.backbone_weights=small_synthetic"]
    completed = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 2
    error = [line for line in completed.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "is too small" in error[0] and "give --budget_minutes=" in error[0]


@pytest.mark.slow
def test_a_diverging_head_is_dropped_with_its_reason(demo_data, tmp_path, monkeypatch):
    from cma_tf.config_base import load_config_file
    from cma_tf.selection import protocol

    base = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config("plain")
    base.data.data_dir, base.model.backbone_weights = demo_data, "small_synthetic"
    base.train.epochs, base.train.batch_size = 1, 16
    real = protocol.train_head_on_features

    def diverging_mlgcn(config, *args, **kwargs):  # mlgcn at lr ≥ 3e-4 blows up, as a real divergence reads
        if config.model.head == "mlgcn":
            return {"diverged": "the training loss became non-finite in epoch 1", "history": [], "seconds": 0.1}
        return real(config, *args, **kwargs)

    monkeypatch.setattr(protocol, "train_head_on_features", diverging_mlgcn)
    monkeypatch.setattr("cma_tf.selection.search.train_head_on_features", diverging_mlgcn)
    result = chooser.choose(base, ["plain", "mlgcn"], str(tmp_path / "s"), 30, 2, log=lambda line: None)
    assert result["summary"]["dropped"] == {"mlgcn": "every grid point diverged, in the search or in most of its "
                                                     "seeds (the training loss became non-finite in epoch 1)"}
    assert result["summary"]["recommended"] == "plain"


@pytest.fixture(scope="module")
def yt8m_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("select_yt8m")
    subprocess.run([sys.executable, "-m", "cma_tf.datasets.yt8m_synthetic", f"--out_dir={out}", "--train_videos=160",
                    "--validate_videos=20", "--test_videos=4", "--num_classes=8", "--min_frames=8", "--max_frames=16"],
                   cwd=ROOT, env=ENV, check=True, capture_output=True)
    return str(out)


@pytest.mark.slow
@pytest.mark.parametrize("level, config, heads", [
    # frame level: the starter code's DBoF over the raw frames (small, to be quick) beside plain-SNet
    ("frame", "configs/yt8m_demo.py:plain_snet", ("plain", "dbof")),
    ("video", "configs/yt8m_demo.py:plain_fc_video", ("plain", "self_attention")),
])
def test_select_on_youtube8m_records_chooses_by_gap(yt8m_data, tmp_path, level, config, heads):
    out = tmp_path / "select"
    command = [sys.executable, "-m", "cma_tf.select", f"--data_dir={os.path.join(yt8m_data, level)}", f"--out={out}",
               f"--heads={','.join(heads)}", "--epochs=1", "--seeds=2", f"--config={config}",
               "--config.train.batch_size=16", "--config.model.clusters=32", "--config.model.hidden_units=16"]
    completed = subprocess.run(command, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "held-out GAP (%)" in completed.stdout
    summary = json.loads((out / outputs.SUMMARY).read_text())
    assert summary["metric"] == "GAP" and summary["recommended"] in heads
    assert sorted(row["head"] for row in summary["rows"]) == sorted(heads)
    assert sorted(os.listdir(out / "cache")) == ["train"]
    assert all(np.isfinite(r["mean"]) and r["mean"] > 0 for r in summary["rows"])


@pytest.mark.slow
def test_select_reads_a_tfds_dataset(tmp_path):
    """The mocked `voc/2007` of `tests/tfds_mock.py` (nothing downloaded): the training split
    `train+validation` is cached and chosen on; `test` is never read."""
    from cma_tf.config_base import load_config_file
    from tests import tfds_mock

    data_dir = str(tmp_path / "tfds")
    tfds_mock.prepare("voc", data_dir, {"train": 60, "validation": 20, "test": 6}, seed=2, unlabelled=("test",))
    config = load_config_file(os.path.join(ROOT, "configs", "voc_tfds.py")).get_config("plain")
    config.data.tfds_data_dir, config.data.image_size, config.data.deterministic = data_dir, 32, True
    config.model.backbone, config.model.backbone_weights, config.model.backbone_widths = "small", None, (8, 8, 16, 16)
    config.asge.units, config.asge.steps = 8, 20
    config.train.batch_size, config.train.eval_batch_size, config.train.epochs = 8, 8, 1
    result = chooser.choose(config, ["plain", "self_attention"], str(tmp_path / "s"), 30, 2, log=lambda line: None)
    assert len(result["holdout_labels"]) == len(holdout.holdout_split(80)[1])
    assert result["summary"]["recommended"] in ("plain", "self_attention") and result["metric"] == "mAP"
    assert sorted(os.listdir(tmp_path / "s" / "cache")) == ["train+validation"]
