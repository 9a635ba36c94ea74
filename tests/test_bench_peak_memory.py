"""`bench/report.py`'s `peak_rss_mb`: a worker's peak memory is its own, not its parent's.

The benchmarks start their memory workers with `subprocess` from a parent that may hold
gigabytes (`bench/video_heads.py` holds the decoded frames). Linux keeps `ru_maxrss` across the
fork and exec, so the worker would report the parent's size; the test shows that `ru_maxrss`
does (so that it could fail) and that `peak_rss_mb` does not."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bench.report import peak_rss_mb

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CHILD = ("import json, resource; from bench.report import peak_rss_mb; "
         "print(json.dumps([peak_rss_mb(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024]))")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's (/proc)")
def test_a_worker_started_by_a_large_parent_reports_its_own_peak():
    held = np.ones(600 * 2**20 // 8)  # 600 MiB, written, so resident in this process
    assert peak_rss_mb() > 600
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=True)
    own, inherited = json.loads(out.stdout)
    assert inherited > 600  # what ru_maxrss says: the parent's memory
    assert own < 200  # a bare Python with numpy: tens of MiB
    del held



@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="VmHWM is Linux's (/proc)")
def test_the_peak_counts_what_the_worker_itself_touches():
    child = ("import json, numpy as np; from bench.report import peak_rss_mb; before = peak_rss_mb(); "
             "block = np.ones(300 * 2**20 // 8); print(json.dumps([before, peak_rss_mb()]))")
    out = subprocess.run([sys.executable, "-c", child], cwd=ROOT, capture_output=True, text=True, check=True)
    before, after = json.loads(out.stdout)
    assert 290 < after - before < 330
