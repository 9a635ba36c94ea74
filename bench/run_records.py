"""The figures of finished benchmark runs, kept in the repository.

A benchmark of many trainings (`bench/heads.py`: ten entries × three seeds × two datasets, about
eleven hours on 2 cores) outlives the machine it started on: workdirs, checkpoints and generated
datasets are not kept from one machine to the next, but the repository is. So when a run has
finished, the files its table rows are made from are copied here, and a later invocation on any
machine reads them instead of training that run again:

    <record_dir>/<regime>/<dataset>/<entry>/seed<k>/config.json              the run's full config (its recipe)
                                          /history.csv              per-epoch figures (convergence)
                                          /eval_metrics_final.json  final val metrics, per class, calibrated
                                          /bench_diverged.txt       instead of the metrics, for a run that diverged
                                          /dataset.json             the generator parameters of its data
                                          /provenance.json          the commit of the code that trained it

A record is only used for the same recipe and the same generated data: `mismatch` says why not
otherwise, and the caller trains the run again (its new record then replaces the old one).
Whether the code changed since a record was made is not decided here (a fix to one layer may
or may not change a head's results): `changed_since` lists the files of the package and the
configs changed since the record's commit, for the benchmark to print beside the table.
"""

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from cma_tf import atomic  # noqa: E402

METRICS = "eval_metrics_final.json"
DIVERGED = "bench_diverged.txt"
FILES = ("config.json", "history.csv", METRICS, DIVERGED)
DATASET = "dataset.json"
PROVENANCE = "provenance.json"
CODE = ("cma_tf", "configs")  # what decides a run's result (bench/ only reads and prints)


def record_path(record_dir, dataset, entry, seed):
    return os.path.join(record_dir, dataset, entry, f"seed{seed}")


def finished(directory, required_metrics=()):
    """Whether `directory` (a workdir or a record) holds a finished run: it diverged, or its
    final metrics are there with every key of `required_metrics`."""
    if os.path.exists(os.path.join(directory, DIVERGED)):
        return True
    path = os.path.join(directory, METRICS)
    if not os.path.exists(path):
        return False
    with open(path) as f:
        metrics = json.load(f)
    return all(key in metrics for key in required_metrics)


def mismatch(record, data_parameters):
    """Why the record cannot stand for a run on data generated with `data_parameters` (the
    `parameters` of the dataset's `summary.json`), or None when it can."""
    path = os.path.join(record, DATASET)
    if not os.path.exists(path):
        return f"{path} is missing: the data it was trained on is unknown"
    with open(path) as f:
        recorded = json.load(f)
    if recorded != data_parameters:
        changed = sorted(key for key in set(recorded) | set(data_parameters) if recorded.get(key) != data_parameters.get(key))
        listed = ", ".join(f"{key} {recorded.get(key)!r} → {data_parameters.get(key)!r}" for key in changed)
        return f"it was trained on other data ({listed})"
    return None


def note_training_code(workdir, code):
    """Keeps in the run's `workdir` the `provenance()` of the code that trains it, so that the
    record names that commit whichever checkout records the run (a `--no_train` of a later
    checkout may find it finished and record it)."""
    atomic.write_text(os.path.join(workdir, PROVENANCE), json.dumps(code, indent=2) + "\n")


def training_code(workdir):
    """The `provenance()` noted in `workdir` when its run started training, or None."""
    path = os.path.join(workdir, PROVENANCE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def save(workdir, record, data_parameters, code=None):
    """Copies the finished run in `workdir` to `record` (each file written atomically; a stale
    file of an earlier record, e.g. a diverged marker, is removed). The record names the code
    noted in `workdir` when its training started (`note_training_code`), else `code` (default:
    this checkout's now)."""
    os.makedirs(record, exist_ok=True)
    for name in FILES:
        source, target = os.path.join(workdir, name), os.path.join(record, name)
        if os.path.exists(source):
            with open(source, "rb") as f:
                atomic.write_bytes(target, f.read())
        elif os.path.exists(target):
            os.remove(target)
    save_provenance(record, data_parameters, training_code(workdir) or code)


def save_provenance(record, data_parameters, code=None):
    """Writes what a record was made from: the data's generator parameters and the code's commit
    (also for records written by their own process, e.g. `bench/frozen_head.py`'s)."""
    atomic.write_text(os.path.join(record, DATASET), json.dumps(data_parameters, indent=2, sort_keys=True) + "\n")
    atomic.write_text(os.path.join(record, PROVENANCE), json.dumps(code or provenance(), indent=2) + "\n")


def git(*args):
    """`git -C ROOT args` as text, or None where there is no git or no repository."""
    try:
        result = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def provenance():
    """`{"commit": HEAD, "uncommitted": [files of CODE that differ from it]}` of this checkout
    (the commit None outside a git repository)."""
    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--", *CODE) or ""
    return {"commit": commit.strip() if commit else None,
            "uncommitted": sorted(line[3:] for line in status.splitlines() if line.strip())}


def recorded_code(record):
    """`(commit, uncommitted files)` of the code that trained the record (`(None, ())` unknown)."""
    path = os.path.join(record, PROVENANCE)
    if not os.path.exists(path):
        return None, ()
    with open(path) as f:
        saved = json.load(f)
    return saved.get("commit"), tuple(saved.get("uncommitted", ()))


def changed_since(code):
    """The files of CODE that differ between the code `(commit, uncommitted files)` that trained
    a record and this checkout's work tree (the files uncommitted then count as changed), or None
    when that cannot be told (no commit recorded, no git, or a history without that commit)."""
    commit, uncommitted = code
    if not commit:
        return None
    changed = git("diff", "--name-only", commit, "--", *CODE)
    return None if changed is None else sorted(set(changed.split()) | set(uncommitted))
