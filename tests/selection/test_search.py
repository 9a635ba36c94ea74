"""The grid search: every head gets the same ten points, it selects on the held-out part, and
a search killed with SIGKILL resumes without training its finished trials again."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from cma_tf.selection import grid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# A search on random maps whose trials each append a line to `trained.log` (patched in), so a
# test can count how many times each point was trained.
SCRIPT = r"""
import json, os, sys
import numpy as np
from cma_tf.config_base import load_config_file
from cma_tf.selection import search

out = sys.argv[1]
config = load_config_file(os.path.join({root!r}, "configs", "demo.py")).get_config("plain")
config.train.epochs, config.train.batch_size, config.train.eval_batch_size = 1, 8, 8
rng = np.random.default_rng(0)
labels = (rng.random((48, 4)) < 0.4).astype(np.uint8)
maps = [rng.normal(size=(48, 2, 2, 8)).astype(np.float16) + labels[:, None, None, :1].astype(np.float16),
        rng.normal(size=(48, 1, 1, 8)).astype(np.float16)]
original = search.train_head_on_features
def logged(config, *args, **kwargs):
    with open(os.path.join(out, "trained.log"), "a") as f:
        f.write(json.dumps([config.train.learning_rate, config.train.schedule]) + "\n")
    if os.environ.get("SLOW_TRIAL"):
        import time; time.sleep(float(os.environ["SLOW_TRIAL"]))
    return original(config, *args, **kwargs)
search.train_head_on_features = logged
fit, held = ([m[:36] for m in maps], labels[:36]), ([m[36:] for m in maps], labels[36:])
result = search.search_head(config, fit, held, ["a", "b", "c", "d"], os.path.join(out, "search"), "plain",
                            os.path.join(out, "embeddings"))
with open(os.path.join(out, "summary.json"), "w") as f:
    json.dump(result, f)
"""


def run_search(out, env=None, wait=True):
    script = out / "search.py"
    script.write_text(SCRIPT.format(root=ROOT))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **(env or {}))
    process = subprocess.Popen([sys.executable, str(script), str(out)], cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if wait:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    return process


def trained(out):
    path = out / "trained.log"
    return [tuple(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []


def test_the_grid_is_five_rates_from_1e4_to_1e2_by_two_schedules():
    points = grid.points()
    assert len(points) == 10 and len({tuple(sorted(p.items())) for p in points}) == 10
    rates = sorted({p["learning_rate"] for p in points})
    assert rates == [1e-4, 3e-4, 1e-3, 3e-3, 1e-2]  # the four, 1e-4 to 3e-3, and one step beyond
    assert {p["schedule"] for p in points} == {"step", "onecycle"}


def test_a_point_sets_the_schedule_it_names():
    from cma_tf.config_base import load_config_file

    config = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config("plain")
    config.train.epochs = 20
    step = grid.apply_point(config, {"learning_rate": 3e-4, "schedule": "step"})
    assert (step.train.learning_rate, step.train.warmup_epochs, step.train.lr_decay_epochs) == (3e-4, 1.0, 15)
    for epochs, decay_at in ((1, 1), (2, 1), (4, 3), (12, 9)):  # ÷10 before the last epoch, also in short runs
        config.train.epochs = epochs
        assert grid.apply_point(config, {"learning_rate": 3e-4, "schedule": "step"}).train.lr_decay_epochs == decay_at
    config.train.epochs = 20
    cycle = grid.apply_point(config, {"learning_rate": 1e-3, "schedule": "onecycle"})
    assert (cycle.train.schedule, cycle.train.warmup_epochs, cycle.train.onecycle_warmup) == ("onecycle", 0.0, 0.2)
    assert config.train.learning_rate != 3e-4 or config.train.schedule == "step"  # the original is untouched


@pytest.mark.slow
def test_a_killed_search_resumes_and_finishes_every_point_once(tmp_path):
    process = run_search(tmp_path, env={"SLOW_TRIAL": "2"}, wait=False)
    deadline = time.time() + 300
    while len(trained(tmp_path)) < 3 and time.time() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert process.poll() is None, "the search ended before it could be killed"
    process.send_signal(signal.SIGKILL)
    process.wait()
    before = trained(tmp_path)
    n = len(grid.points())
    assert 3 <= len(before) < n
    run_search(tmp_path)
    after = trained(tmp_path)
    points = {(p["learning_rate"], p["schedule"]) for p in grid.points()}
    assert set(after) == points
    # Only the trial running at the kill may be trained twice; the finished ones are not.
    assert len(after) - len(before) <= n - (len(before) - 1)
    finished_before = before[:-1]
    assert all(after.count(point) == 1 for point in finished_before)
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert len(summary["trials"]) == n
    best = max(summary["trials"], key=lambda t: t["holdout_mAP"])
    assert summary["selected"] == best["point"] and summary["holdout_mAP"] == best["holdout_mAP"]
    # A finished search only reads its records.
    run_search(tmp_path)
    assert len(trained(tmp_path)) == len(after)
