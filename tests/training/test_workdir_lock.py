"""One training at a time per workdir: a second `train` of a workdir whose lock is held exits 2
with one line naming the holder's pid and changes nothing; a killed holder's lock is taken over;
a dry run has its own lock, so it can check a command beside a running training."""

import os
import subprocess
import sys

import pytest

from cma_tf.training import workdir as files
from tests.test_cli import DEMO_CONFIG, ROOT, run_cli, tiny_config, tiny_data  # noqa: F401 (fixture)
from tests.training.test_workdir_config import TINY_FLAGS


def test_a_second_training_of_a_held_workdir_exits_2_naming_the_holder(tiny_data, tmp_path):
    from cma_tf.training.lock import hold_lock

    workdir = tmp_path / "run"
    with hold_lock(files.path(str(workdir), files.TRAIN_LOCK)):
        before = sorted(os.listdir(workdir))
        result = run_cli(
            "cma_tf.train", f"--config={DEMO_CONFIG}:plain", f"--config.data.data_dir={tiny_data}", *TINY_FLAGS,
            "--config.train.steps_per_epoch=2", "--config.train.epochs=1", f"--workdir={workdir}",
        )
        after = sorted(os.listdir(workdir))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"{workdir} is in use by another training (pid {os.getpid()} on " in errors[0], errors[0]
    assert before == after == [files.TRAIN_LOCK]
    assert not os.path.exists(files.path(str(workdir), files.TRAIN_LOCK))  # released on exit


HOLDER = """
import sys, time
from cma_tf.training.lock import hold_lock
with hold_lock(sys.argv[1]):
    print("held", flush=True)
    time.sleep(300)
"""


def test_the_lock_of_a_killed_holder_is_taken_over(tmp_path):
    from cma_tf.training.lock import WorkdirLocked, hold_lock, read_holder

    path = str(tmp_path / "run" / "train.lock")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, path], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WorkdirLocked, match=f"pid {holder.pid} on "):
            with hold_lock(path):
                pass
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the lock file stays behind
        holder.wait()
    assert read_holder(path)["pid"] == holder.pid
    with hold_lock(path):
        assert read_holder(path)["pid"] == os.getpid()
    assert not os.path.exists(path)


def test_a_dry_run_takes_its_own_lock(tiny_data, tmp_path):
    from cma_tf.training.lock import WorkdirLocked, hold_lock
    from cma_tf.training.trainer import train_and_evaluate

    workdir = str(tmp_path / "run")
    config = tiny_config("plain", tiny_data)
    with hold_lock(files.path(workdir, files.DRY_RUN_LOCK)):
        with pytest.raises(WorkdirLocked, match="pid"):
            train_and_evaluate(config, workdir, dry_run=True)
    with hold_lock(files.path(workdir, files.TRAIN_LOCK)):  # a training runs: a dry run may check beside it
        train_and_evaluate(config, workdir, dry_run=True)
    assert sorted(os.listdir(workdir)) == [files.DRY_RUN]


def test_a_run_refused_before_it_writes_leaves_no_workdir(tmp_path):
    """The lock makes the workdir's folder; a refusal after it (here: no data) removes it again."""
    import pytest

    from cma_tf.config_base import load_config_file
    from cma_tf.training.trainer import train_and_evaluate

    config = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config("plain")
    config.data.data_dir = str(tmp_path / "no_data")
    workdir = tmp_path / "run"
    with pytest.raises(Exception, match="no_data"):
        train_and_evaluate(config, str(workdir))
    assert not workdir.exists()
