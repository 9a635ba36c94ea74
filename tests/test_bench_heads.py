"""The summary arithmetic of `bench/heads.py` (what users read to pick a head), against
`statistics` and hand-counted groups; no model is trained."""

import csv
import importlib.util
import math
import os
import statistics
import sys

import numpy as np
import pytest

from cma_tf.graph.cooccurrence import LabelGraph

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def heads():
    path = list(sys.path)  # the script puts bench/ first on sys.path: not for the other tests
    spec = importlib.util.spec_from_file_location("bench_heads_script", os.path.join(ROOT, "bench", "heads.py"))
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path
    return module


def metrics(mAP, calibrated=True, **ap):
    out = {"mAP": mAP, "CF1": mAP - 0.1, "OF1": mAP - 0.05, "converged": True, "late_gain": 0.01, "AP_per_class": ap}
    if calibrated:
        out.update(CF1_calibrated=mAP - 0.02, OF1_calibrated=mAP - 0.01)
    return out


def test_summary_is_the_sample_mean_and_std_over_finished_seeds(heads):
    runs = {
        "a": [metrics(0.90, x=0.5), metrics(0.92, x=0.7), {"diverged": "loss NaN"}],
        "b": [metrics(0.80, x=0.1), {"pending": True}, metrics(0.84, calibrated=False, x=0.3)],
        "c": [{"pending": True}, {"pending": True}, {"failed": "boom"}],
    }
    summary = heads.summarize(runs, ["x"], {"only x": ["x"]})
    a, b, c = summary["a"], summary["b"], summary["c"]
    assert (a["seeds"], a["diverged"], a["pending"]) == (2, 1, 0)
    assert a["mAP"] == pytest.approx(statistics.mean([0.90, 0.92]))
    assert a["mAP_std"] == pytest.approx(statistics.stdev([0.90, 0.92]))
    assert a["ambiguous_AP"]["x"] == pytest.approx((0.6, statistics.stdev([0.5, 0.7])))
    assert (b["seeds"], b["pending"]) == (2, 1)
    # the calibrated F1 only from the seed that has it: one seed, so no spread
    assert b["CF1_calibrated"] == pytest.approx(0.78) and b["CF1_calibrated_std"] is None
    assert b["group_AP"]["only x"] == pytest.approx((0.2, statistics.stdev([0.1, 0.3])))
    assert c["seeds"] == 0 and c["mAP"] is None and not c["converged"]
    assert heads.missing_text(c) == "pending"
    assert heads.missing_text(a) == "diverged"


def test_the_calibrated_columns_are_left_out_where_no_head_has_them(heads, capsys):
    """The frozen regime scores val alone: its table has no columns of "not calibrated"."""
    frozen = heads.summarize({"a": [metrics(0.9, calibrated=False, x=0.5), metrics(0.8, calibrated=False, x=0.4)]},
                             [])
    heads.print_dataset("demo (pretrained_frozen)", frozen, [], "12 epochs", {"a": "bce"})
    header = capsys.readouterr().out.splitlines()[3]
    assert "calibrated" not in header and header.count("|") == 10  # head, loss, mAP, CF1, OF1, seeds, …
    trained = heads.summarize({"a": [metrics(0.9, x=0.5)], "b": [metrics(0.8, calibrated=False, x=0.4)]}, [])
    heads.print_dataset("demo (pretrained_finetuned)", trained, [], "12 epochs", {"a": "bce", "b": "bce"})
    lines = capsys.readouterr().out.splitlines()
    assert "| CF1 calibrated | OF1 calibrated |" in lines[3] and "not calibrated" in lines[6]
    unordered = heads.summarize({"low": [metrics(0.5, x=0.1)], "none": [{"pending": True}], "high": [metrics(0.9, x=0.2)]},
                                ["x"])
    heads.print_dataset("demo", unordered, ["x"], "12 epochs", {"low": "bce", "none": "bce", "high": "bce"})
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("|")[1].strip() for line in lines[5:8]] == ["high", "low", "none"]  # best mAP first
    assert "| label | high | low | none |" in lines  # the other tables' columns in the same order


def write_history(path, values):
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, ["epoch", "loss", "val_mAP"])
        writer.writeheader()
        for epoch, value in enumerate(values):
            writer.writerow({"epoch": epoch, "loss": 1.0, "val_mAP": value})


def test_late_gain_and_convergence_from_history(heads, tmp_path):
    path = str(tmp_path / "history.csv")
    # after a decay: +0.1 point an epoch passes the convergence test, and the gain says so
    values = [0.5 + 0.02 * i for i in range(10)] + [0.70 + 0.001 * i for i in range(1, 11)]
    write_history(path, values)
    assert heads.converged(path)
    assert heads.late_gain(path) == pytest.approx(values[-1] - values[-1 - heads.LATE_EPOCHS])
    write_history(path, values[:heads.LATE_EPOCHS])
    assert heads.late_gain(path) is None


def test_label_groups_are_thirds_by_training_images_without_the_look_alikes(heads):
    names = [f"l{i}" for i in range(8)]
    diagonal = np.array([5, 1, 9, 3, 7, 2, 8, 4])
    graph = LabelGraph(np.diag(diagonal).astype(np.int64), 20, names)
    groups = heads.label_groups(graph, ["l2", "l6"])  # the two most frequent are look-alikes
    assert list(groups) == ["look-alike", "rarest third (1-2 train images)", "middle third (3-4 train images)",
                            "most frequent third (5-7 train images)"]
    assert [sorted(v) for v in groups.values()] == [["l2", "l6"], ["l1", "l5"], ["l3", "l7"], ["l0", "l4"]]


def test_group_ap_leaves_out_labels_without_positives(heads):
    assert heads.group_ap({"AP_per_class": {"a": 0.5, "b": float("nan"), "c": 0.7}}, ["a", "b", "c"]) == pytest.approx(0.6)
    assert math.isnan(heads.group_ap({"AP_per_class": {"b": float("nan")}}, ["b"]))


def test_no_train_reports_an_unfinished_run_as_pending(heads, tmp_path):
    result = heads.train_and_evaluate("demo", str(tmp_path / "data"), "plain", 0, None, str(tmp_path), train=False)
    assert result == {"pending": True}
    assert not os.path.exists(tmp_path / "demo" / "plain" / "seed0")


def write_record(heads, record, head="plain", seed=0, data_parameters=None, **config_changes):
    """A finished run as `bench/heads.py` records it: the benchmark's config, a history, the metrics."""
    import json

    config = heads.bench_config(head, "demo")
    config.seed = seed
    for key, value in config_changes.items():
        section, field = key.split(".")
        config[section][field] = value
    os.makedirs(record)
    with open(os.path.join(record, "config.json"), "w") as f:
        json.dump(config.to_dict(), f)
    write_history(os.path.join(record, "history.csv"), [0.5, 0.6, 0.7, 0.71, 0.711, 0.712, 0.712])
    with open(os.path.join(record, "eval_metrics_final.json"), "w") as f:
        json.dump(metrics(0.71, x=0.4), f)
    with open(os.path.join(record, "dataset.json"), "w") as f:
        json.dump(data_parameters or {"dataset": "demo", "seed": 0}, f)


@pytest.fixture
def demo_data(tmp_path):
    import json

    data_dir = tmp_path / "data"
    data_dir.mkdir()
    with open(data_dir / "summary.json", "w") as f:
        json.dump({"parameters": {"dataset": "demo", "seed": 0}}, f)
    return str(data_dir)


def test_a_recorded_run_is_read_instead_of_trained(heads, tmp_path, demo_data):
    records = str(tmp_path / "records")
    write_record(heads, os.path.join(records, "demo", "plain", "seed1"), seed=1)
    # train=True: were the record not used, this would start a training (and fail without data)
    result = heads.train_and_evaluate("demo", demo_data, "plain", 1, None, str(tmp_path / "work"), True, records)
    assert result["mAP"] == pytest.approx(0.71) and result["CF1_calibrated"] == pytest.approx(0.69)
    assert result["late_gain"] == pytest.approx(0.712 - 0.71) and result["converged"]
    assert not os.path.exists(tmp_path / "work")


@pytest.mark.parametrize("change", ["data", "recipe", "epochs"])
def test_a_record_of_other_data_or_recipe_is_not_used_and_says_why(heads, tmp_path, demo_data, capsys, change):
    records = str(tmp_path / "records")
    record = os.path.join(records, "demo", "plain", "seed0")
    if change == "data":
        write_record(heads, record, data_parameters={"dataset": "demo", "seed": 7})
    else:
        write_record(heads, record, **({"train.learning_rate": 0.05} if change == "recipe" else {}))
    epochs = 3 if change == "epochs" else None  # a shortened run neither reads nor writes records
    result = heads.train_and_evaluate("demo", demo_data, "plain", 0, epochs, str(tmp_path / "work"), False, records)
    assert result == {"pending": True}
    said = capsys.readouterr().err
    if change == "data":
        assert "seed 7 → 0" in said and record in said
    elif change == "recipe":
        assert "train.learning_rate 0.05 → 0.001" in said
    else:
        assert said == ""


def test_a_record_is_a_copy_of_the_finished_run(heads, tmp_path):
    records = heads.run_records
    workdir, record = str(tmp_path / "work"), str(tmp_path / "record")
    write_record(heads, workdir)
    os.makedirs(record)
    with open(os.path.join(record, records.DIVERGED), "w") as f:  # from an earlier run that diverged
        f.write("training diverged\n")
    assert records.finished(workdir, heads.CALIBRATED)
    assert not records.finished(workdir, heads.CALIBRATED + ("not_a_metric",))
    records.save(workdir, record, {"dataset": "demo", "seed": 0})
    assert not os.path.exists(os.path.join(record, records.DIVERGED))
    for name in ("config.json", "history.csv", "eval_metrics_final.json"):
        with open(os.path.join(workdir, name)) as a, open(os.path.join(record, name)) as b:
            assert a.read() == b.read()
    assert records.mismatch(record, {"dataset": "demo", "seed": 0}) is None
    assert "dataset 'demo' → 'coco_stats'" in records.mismatch(record, {"dataset": "coco_stats", "seed": 0})


def test_a_record_names_the_commit_that_trained_it(heads, tmp_path):
    import subprocess

    records = heads.run_records
    workdir, record = str(tmp_path / "work"), str(tmp_path / "record")
    write_record(heads, workdir)
    records.save(workdir, record, {"dataset": "demo", "seed": 0})
    head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode:
        pytest.skip("not a git checkout")
    assert records.recorded_code(record)[0] == head.stdout.strip()
    assert records.changed_since((None, ())) is None
    assert records.changed_since(("0" * 40, ())) is None  # a commit this history does not have
    # a file that differed from the commit when the run trained counts as changed
    assert "cma_tf/heads/cma.py" in records.changed_since((head.stdout.strip(), ("cma_tf/heads/cma.py",)))


def test_the_table_says_what_changed_since_the_recorded_runs(heads, monkeypatch):
    a, b, unknown = ("a" * 40, ()), ("b" * 40, ("configs/d.py",)), (None, ())
    raw = {"demo": {"plain": [{"mAP": 0.9, "record": a}, {"mAP": 0.9, "record": a}, {"mAP": 0.9}],
                    "cma": [{"mAP": 0.9, "record": unknown}, {"diverged": "x", "record": b}, {"pending": True}]}}
    changed = {a: [], b: ["cma_tf/heads/cma.py", "cma_tf/layers/a.py", "configs/b.py", "configs/c.py",
                          "configs/d.py"], unknown: None}
    monkeypatch.setattr(heads.run_records, "changed_since", changed.get)
    lines = heads.records_text(raw, os.path.join(ROOT, "bench", "records", "heads"))
    assert len(lines) == 3
    assert lines[0].startswith("1 runs read from bench/records/heads, trained at commit (not recorded)")
    assert "cannot be told" in lines[0]
    assert lines[1].startswith("2 runs read") and "aaaaaaaaaa" in lines[1] and lines[1].endswith("unchanged since.")
    assert "5 files of cma_tf/ and configs/ changed since (cma_tf/heads/cma.py" in lines[2] and "and 1 more" in lines[2]
    assert "bbbbbbbbbb with uncommitted changes" in lines[2]


def write_frozen(out_dir, trials, seeds, seed_point=None):
    """A head's pretrained_frozen results as `bench/frozen_head.py` writes them (the seeds at the
    best of `trials`, or at `seed_point`)."""
    import json

    from cma_tf.selection import grid, search

    best = grid.points()[max(range(len(trials)), key=lambda i: trials[i])] if trials else None
    for point, score in zip(grid.points(), trials):
        path = os.path.join(out_dir, "search", search.point_name(point), search.RESULT)
        os.makedirs(os.path.dirname(path))
        with open(path, "w") as f:
            json.dump({"point": point, "holdout_mAP": score, "diverged": None, "seconds": 1.0}, f)
    for seed, mAP in seeds.items():
        path = os.path.join(out_dir, "seeds", f"seed{seed}", "result.json")
        os.makedirs(os.path.dirname(path))
        history = [{"epoch": e + 1, "loss": 1.0, "val_mAP": mAP - 0.01 * (5 - e)} for e in range(6)]
        with open(path, "w") as f:
            json.dump({"seed": seed, "point": seed_point or best, "mAP": mAP,
                       "metrics": {"mAP": mAP, "CF1": mAP - 0.1, "OF1": mAP - 0.1,
                                                            "AP_per_class": {"x": mAP}},
                       "history": history, "seconds": 2.0, "diverged": None}, f)


def test_the_frozen_results_are_complete_only_with_every_point_and_the_seeds_the_spread_asks_for(heads, tmp_path):
    trials = [0.5, 0.6, 0.7, 0.65, 0.62, 0.4, 0.8, 0.3, 0.2, 0.1]  # in grid order: 3e-4 onecycle is best
    write_frozen(str(tmp_path / "narrow"), trials, {0: 0.80, 1: 0.81, 2: 0.805})
    narrow = heads.read_frozen(str(tmp_path / "narrow"), [0, 1, 2], [3, 4])
    assert narrow["complete"] and narrow["selected"] == {"learning_rate": 3e-4, "schedule": "onecycle"}
    assert narrow["holdout_mAP"] == 0.8 and len(narrow["runs"]) == 3
    assert narrow["runs"][0]["late_gain"] == pytest.approx(0.03)  # from the history's val mAP
    write_frozen(str(tmp_path / "wide"), trials, {0: 0.80, 1: 0.83, 2: 0.78})  # std 2.5 points: two more seeds
    wide = heads.read_frozen(str(tmp_path / "wide"), [0, 1, 2], [3, 4])
    assert not wide["complete"] and sum("pending" in r for r in wide["runs"]) == 2
    summary = heads.summarize({"cma": wide["runs"]}, [])
    assert summary["cma"]["seeds"] == 3 and summary["cma"]["pending"] == 2
    assert summary["cma"]["mAP_std"] == pytest.approx(statistics.stdev([0.80, 0.83, 0.78]))
    write_frozen(str(tmp_path / "half"), trials[:5], {})
    half = heads.read_frozen(str(tmp_path / "half"), [0, 1, 2], [3, 4])
    assert not half["complete"] and half["selected"] is None and half["search_points"] == 5
    assert sum("pending" in r for r in half["runs"]) == 3  # seeds 3-4 only once the first three spread
    # seeds trained at a point the search no longer chooses (e.g. before the grid grew) are owed again
    write_frozen(str(tmp_path / "moved"), trials, {0: 0.80, 1: 0.81, 2: 0.805}, seed_point={"learning_rate": 3e-3,
                                                                                          "schedule": "step"})
    moved = heads.read_frozen(str(tmp_path / "moved"), [0, 1, 2], [3, 4])
    assert not moved["complete"] and sum("pending" in r for r in moved["runs"]) == 3


def test_the_frozen_results_skip_a_point_its_seeds_rejected_as_unstable(heads, tmp_path):
    """`protocol.reject` lists the best point in `unstable.json` when most of its seeds diverged:
    the table reads the seeds of the next best point, and names the rejected one."""
    import json

    trials = [0.5, 0.6, 0.7, 0.65, 0.62, 0.4, 0.8, 0.3, 0.2, 0.1]  # best 3e-4 onecycle, then 1e-3 step
    second = {"learning_rate": 1e-3, "schedule": "step"}
    write_frozen(str(tmp_path), trials, {0: 0.70, 1: 0.71, 2: 0.705}, seed_point=second)
    rejected = {"point": {"learning_rate": 3e-4, "schedule": "onecycle"}, "seeds": [0, 1, 2],
                "diverged": ["the training loss became non-finite in epoch 2"] * 3}
    with open(tmp_path / "unstable.json", "w") as f:
        json.dump([rejected], f)
    frozen = heads.read_frozen(str(tmp_path), [0, 1, 2], [3, 4])
    assert frozen["complete"] and frozen["selected"] == second and frozen["holdout_mAP"] == 0.7
    assert [r["mAP"] for r in frozen["runs"]] == [0.70, 0.71, 0.705]
    assert heads.unstable_text(frozen["unstable"]) == "0.0003 onecycle (3 of 3)"
    # before the rejection: the best point's seeds mostly diverged, so the head is not done
    write_frozen(str(tmp_path / "before"), trials, {0: 0.80, 1: 0.81, 2: 0.805})
    for seed in (0, 1):
        path = tmp_path / "before" / "seeds" / f"seed{seed}" / "result.json"
        run = json.loads(path.read_text())
        path.write_text(json.dumps(dict(run, diverged="the training loss became non-finite in epoch 2")))
    assert not heads.read_frozen(str(tmp_path / "before"), [0, 1, 2], [3, 4])["complete"]


def test_the_finetuned_regime_trains_the_frozen_choice_with_the_preset_at_a_tenth(heads):
    point = {"learning_rate": 3e-4, "schedule": "onecycle"}
    config = heads.run_config("demo", "q2l", 2, None, "pretrained_finetuned", point)
    assert config.model.backbone_weights == "small_synthetic" and config.train.backbone_lr_multiplier == 0.1
    assert config.train.learning_rate == 3e-4 and config.train.schedule == "onecycle" and config.seed == 2
    assert config.train.epochs == heads.bench_config("q2l", "demo").train.epochs  # the dataset's length
    assert config.train.loss == "asl"  # the head's own loss stays
    official = heads.run_config("coco_stats", "mlgcn", 0, None, "official_recipe")
    assert official.train.optimizer == "sgd" and official.train.learning_rate == pytest.approx(0.1 / 80)
    assert heads.config_spec("cma", "demo", "from_scratch") == "cma,demo"


def test_a_finetuned_run_of_a_point_the_search_no_longer_chooses_is_moved_aside_and_trained_again(
        heads, tmp_path, demo_data, monkeypatch, capsys):
    """After the frozen choice moved (say the grid grew), the fine-tuned workdir of the old point is
    pending under --no_train, and a training call keeps it as `.superseded-1` and trains anew."""
    import json

    old, new = {"learning_rate": 3e-3, "schedule": "step"}, {"learning_rate": 1e-2, "schedule": "onecycle"}
    workdir = heads.run_workdir(str(tmp_path / "work"), "pretrained_finetuned", "demo", "plain", 0)
    os.makedirs(workdir)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(heads.run_config("demo", "plain", 0, None, "pretrained_finetuned", old).to_dict(), f)
    call = ("demo", demo_data, "plain", 0, None, str(tmp_path / "work"))
    assert heads.train_and_evaluate(*call, False, None, "pretrained_finetuned", new) == {"pending": True}
    assert os.path.exists(os.path.join(workdir, "config.json"))  # a read moves nothing
    commands = []
    monkeypatch.setattr(heads, "run", lambda command, log: commands.append(command) or (_ for _ in ()).throw(
        RuntimeError("stopped by the test")))
    result = heads.train_and_evaluate(*call, True, None, "pretrained_finetuned", new)
    assert result == {"failed": "stopped by the test"} and "--config.train.learning_rate=0.01" in commands[0]
    with open(os.path.join(workdir + ".superseded-1", "config.json")) as f:
        assert json.load(f)["train"]["learning_rate"] == 3e-3
    assert "trained at another grid point" in capsys.readouterr().err
    # a difference outside the grid point is still refused, not moved
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(heads.run_config("demo", "plain", 1, None, "pretrained_finetuned", new).to_dict(), f)
    assert "holds a run of another recipe" in heads.train_and_evaluate(*call, True, None, "pretrained_finetuned",
                                                                       new)["failed"]


def test_a_recorded_none_is_not_taken_for_a_missing_field(heads, tmp_path):
    """A field the record holds as None (the small CNN's random weights) is None, not the base
    default ('imagenet'); a field the record lacks (written before it existed) is the default."""
    import json

    record = str(tmp_path / "record")
    write_record(heads, record)
    with open(os.path.join(record, "config.json")) as f:
        saved = json.load(f)
    assert saved["model"]["backbone_weights"] is None
    assert heads.recipe_differences(record, "demo", "plain", 0, None) == []
    del saved["train"]["ema_decay"]  # a run from before the moving average existed
    saved["model"]["backbone_weights"] = "small_synthetic"
    with open(os.path.join(record, "config.json"), "w") as f:
        json.dump(saved, f)
    assert heads.recipe_differences(record, "demo", "plain", 0, None) == [
        ("model.backbone_weights", "small_synthetic", None)]


def test_a_run_another_checkout_trained_is_recorded_with_that_checkouts_commit(heads, tmp_path, demo_data):
    """A run finished in the workdir but not yet recorded (trained by another checkout, say a copy
    running the benchmark) is recorded by `--no_train` with the commit noted when its training
    started, not this checkout's HEAD."""
    import json

    records = heads.run_records
    record_dir = str(tmp_path / "records")
    workdir = heads.run_workdir(str(tmp_path / "work"), "from_scratch", "demo", "plain", 0)
    write_record(heads, workdir)
    records.note_training_code(workdir, {"commit": "b" * 40, "uncommitted": []})
    result = heads.train_and_evaluate("demo", demo_data, "plain", 0, None, str(tmp_path / "work"), False, record_dir)
    assert result["mAP"] == pytest.approx(0.71)
    with open(os.path.join(records.record_path(record_dir, "demo", "plain", 0), records.PROVENANCE)) as f:
        assert json.load(f)["commit"] == "b" * 40


def test_reading_a_finished_run_leaves_its_record_and_commit_alone(heads, tmp_path, demo_data):
    """A run finished in the workdir and already recorded is only read: the record keeps the
    commit that trained it (a later `--no_train` once rewrote it with the checkout's HEAD)."""
    import json

    records = heads.run_records
    record_dir = str(tmp_path / "records")
    workdir = heads.run_workdir(str(tmp_path / "work"), "from_scratch", "demo", "plain", 0)
    write_record(heads, workdir)
    record = records.record_path(record_dir, "demo", "plain", 0)
    records.save(workdir, record, {"dataset": "demo", "seed": 0})
    with open(os.path.join(record, records.PROVENANCE), "w") as f:  # as if trained at an earlier commit
        json.dump({"commit": "a" * 40, "uncommitted": []}, f)
    for train in (False, True):
        result = heads.train_and_evaluate("demo", demo_data, "plain", 0, None, str(tmp_path / "work"), train,
                                          record_dir)
        assert result["mAP"] == pytest.approx(0.71)
        with open(os.path.join(record, records.PROVENANCE)) as f:
            assert json.load(f)["commit"] == "a" * 40


def test_a_trained_regime_runs_two_more_seeds_where_the_first_three_spread_more_than_a_point(heads, monkeypatch):
    import argparse

    scores = {"narrow": [0.80, 0.81, 0.805], "wide": [0.80, 0.83, 0.78], "unfinished": [0.8, 0.9]}
    asked = []

    def fake_train(dataset, data_dir, head, seed, *args):
        asked.append((head, seed))
        values = scores[head]
        return {"mAP": values[seed]} if seed < len(values) else {"pending": True} if head == "unfinished" \
            else {"mAP": 0.79}

    monkeypatch.setattr(heads, "train_and_evaluate", fake_train)
    args = argparse.Namespace(epochs=None, jobs=2, work_dir="unused", no_train=False)
    runs = heads.trained_regime("official_recipe", "demo", "unused", list(scores), [0, 1, 2], args, None, None, {},
                                more_seeds=[3, 4])
    assert statistics.stdev(scores["wide"]) > 0.01 > statistics.stdev(scores["narrow"])
    assert sorted(seed for head, seed in asked if head == "wide") == [0, 1, 2, 3, 4] and len(runs["wide"]) == 5
    assert sorted(seed for head, seed in asked if head == "narrow") == [0, 1, 2] and len(runs["narrow"]) == 3
    assert len(runs["unfinished"]) == 3  # a pending seed: its spread is not known yet
    asked.clear()
    heads.trained_regime("from_scratch", "demo", "unused", ["wide"], [0, 1, 2], args, None, None, {})
    assert sorted(seed for _, seed in asked) == [0, 1, 2]  # the earlier benchmark keeps its three
