"""`bench/video_heads.py`: its smoke run end to end, the figures of its last line re-derived from
the per-seed records it wrote, and the held-out part kept apart from the validate split."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEYS = {"GAP", "GAP_std", "mAP", "mAP_std", "hit_at_1", "hit_at_1_std", "segment_mAP", "segment_mAP_std", "seeds",
        "selected", "converged", "diverged", "degenerate", "params", "step_ratio", "peak_rss_mb"}


@pytest.mark.slow
def test_quick_run_reports_every_figure_from_its_records(tmp_path):
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "video_heads.py"), "--quick",
                           f"--work_dir={tmp_path}", f"--json_out={tmp_path / 'out.json'}"],
                          capture_output=True, text=True, timeout=1500,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""))
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(last) == {"plain_snet", "netvlad"}
    for head, row in last.items():
        assert KEYS <= set(row), KEYS - set(row)
        assert row["degenerate"] == 0 and row["diverged"] == 0
        with open(tmp_path / "quick" / "runs" / head / "seeds" / "seed0" / "result.json") as f:
            seed = json.load(f)
        assert row["GAP"] == pytest.approx(seed["metrics"]["GAP"]) and 0.0 < row["GAP"] <= 1.0
        assert row["segment_mAP"] == pytest.approx(seed["extra"]["segments"]["mAP"])
        assert row["params"] > 0 and row["peak_rss_mb"] > 0
    assert last["plain_snet"]["step_ratio"] == 1.0
    # the held-out part is cut from the training cache alone; the validate cache is another split
    train = np.load(tmp_path / "quick" / "cache" / "train" / "labels.npy")
    validate = np.load(tmp_path / "quick" / "cache" / "validate" / "labels.npy")
    assert (len(train), len(validate)) == (320, 80)
