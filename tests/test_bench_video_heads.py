"""`bench/video_heads.py`: its smoke run end to end, the figures of its last line read back from
the per-seed results it wrote, a second invocation of another recipe refused, and `--no_train`
reading without generating data."""

import glob
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"GAP", "GAP_std", "mAP", "mAP_std", "hit_at_1", "hit_at_1_std", "segment_mAP", "segment_mAP_std", "seeds",
        "selected", "converged", "diverged", "degenerate", "params", "step_ratio", "peak_rss_mb"}


def bench(work_dir, *flags, timeout=1500):
    return subprocess.run([sys.executable, os.path.join(ROOT, "bench", "video_heads.py"), f"--work_dir={work_dir}",
                           f"--json_out={work_dir}/out.json", *flags], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""))


@pytest.mark.slow
def test_quick_run_reports_every_figure_from_its_records(tmp_path):
    proc = bench(tmp_path, "--quick")
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(last) == {"plain_snet", "netvlad"}
    for head, row in last.items():
        assert KEYS <= set(row), KEYS - set(row)
        assert row["degenerate"] == 0 and row["diverged"] == 0
        (result,) = glob.glob(str(tmp_path / "quick" / "runs" / "*" / head / "seeds" / "seed0" / "result.json"))
        with open(result) as f:
            seed = json.load(f)
        assert row["GAP"] == pytest.approx(seed["metrics"]["GAP"]) and 0.0 < row["GAP"] <= 1.0
        assert row["segment_mAP"] == pytest.approx(seed["extra"]["segments"]["mAP"])
        assert all(0.0 <= epoch["validate_GAP"] <= 1.0 for epoch in seed["history"])  # what convergence reads
        assert row["params"] > 0 and row["peak_rss_mb"] > 0
    assert last["plain_snet"]["step_ratio"] == 1.0
    (costs_path,) = glob.glob(str(tmp_path / "quick" / "runs" / "*" / "costs.json"))
    with open(costs_path) as f:
        costs = json.load(f)
    assert {h: costs[h]["params"] for h in last} == {h: row["params"] for h, row in last.items()}

    # --cost_only measures again and trains nothing: the seed's result is untouched
    seed_result = glob.glob(str(tmp_path / "quick" / "runs" / "*" / "plain_snet" / "seeds" / "seed0" / "result.json"))[0]
    before = os.stat(seed_result).st_mtime_ns
    proc = bench(tmp_path, "--quick", "--cost_only")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.stat(seed_result).st_mtime_ns == before and "search" not in proc.stderr
    with open(costs_path) as f:
        again = json.load(f)
    assert {h: again[h]["params"] for h in last} == {h: costs[h]["params"] for h in last}
    again_last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {h: again_last[h]["GAP"] for h in last} == {h: row["GAP"] for h, row in last.items()}
    assert {h: again_last[h]["step_ratio"] for h in last} == {h: again[h]["step_ratio"] for h in last}

    # the same folder, another recipe (the seeds' epochs are in the config): refused, nothing mixed
    (recipe,) = glob.glob(str(tmp_path / "quick" / "runs" / "*" / "netvlad" / "recipe.json"))
    with open(recipe) as f:
        saved = json.load(f)
    saved["recipe"]["config"]["train"]["batch_size"] = 7
    with open(recipe, "w") as f:
        json.dump(saved, f)
    proc = bench(tmp_path, "--quick", "--no_cost")
    assert proc.returncode == 2 and "another recipe" in proc.stderr and "config.train.batch_size" in proc.stderr


def test_no_train_on_a_fresh_clone_generates_nothing(tmp_path):
    proc = bench(tmp_path, "--no_train", f"--record_dir={tmp_path / 'records'}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert all(row["GAP"] is None and KEYS <= set(row) for row in last.values()) and len(last) == 9
    assert not os.path.exists(tmp_path / "data") and not os.path.exists(tmp_path / "cache")


def test_no_train_prints_the_recorded_costs(tmp_path):
    records = tmp_path / "records"
    records.mkdir()
    recorded = {"netvlad": {"params": 1234567, "step_s": 0.5, "step_ratio": 2.5, "peak_rss_mb": 4321.0,
                            "memory_failed": None, "measured": "2026-12-07 23:00 UTC", "cores": 2,
                            "load_average_1min": 0.3, "memory_batch": 256, "step_rounds": 5}}
    (records / "costs.json").write_text(json.dumps(recorded))
    proc = bench(tmp_path, "--no_train", f"--record_dir={records}", timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert (last["netvlad"]["params"], last["netvlad"]["step_ratio"], last["netvlad"]["peak_rss_mb"]) == (
        1234567, 2.5, 4321.0)
    assert last["plain_snet"]["params"] is None
    assert "1,234,567" in proc.stdout and "2026-12-07 23:00 UTC (0.3, 2)" in proc.stdout
    assert bench(tmp_path, "--no_train", "--cost_only").returncode == 2


def test_convergence_reads_the_gap_and_unknown_is_not_yes():
    sys.path.insert(0, ROOT)
    from bench.video_heads import all_converged, converged

    rising = [{"epoch": e, "validate_mAP": 0.020 + 0.001 * e, "validate_GAP": 0.17 + 0.03 * e} for e in range(1, 5)]
    assert converged(rising) is False  # the mAP moved 0.1 pt an epoch, the GAP 3
    flat = [{"epoch": e, "validate_GAP": 0.30 + 0.001 * e} for e in range(1, 5)]
    assert converged(flat) is True
    assert converged([{"epoch": 1, "validate_GAP": 0.30}, {"epoch": 2, "validate_GAP": 0.25}]) is True  # stopped rising
    assert converged([{"epoch": 1, "validate_mAP": 0.02}, {"epoch": 2, "validate_mAP": 0.02}]) is None  # no GAP logged
    assert all_converged([True, True]) is True and all_converged([True, False]) is False
    assert all_converged([True, None]) is None and all_converged([None, False]) is False and all_converged([]) is None
    still_rising = [{"epoch": e, "validate_GAP": v} for e, v in enumerate((0.17, 0.23, 0.25, 0.27), 1)]
    assert converged(still_rising) is False  # plain-SNet's probe: +2 points in the last epoch is not "converged"
