"""Distribution: 2 replicas equal 1 device; 2 workers on 127.0.0.1 end with equal weights."""

import csv
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_worker(*args, env_extra=None, background=False):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **(env_extra or {}))
    command = [sys.executable, "-m", "tests.training.distribute_worker", *args]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_one_step_on_two_replicas_equals_one_device(tmp_path):
    out = str(tmp_path / "weights.npz")
    result = run_worker("replicas", out)
    assert result.returncode == 0, result.stderr[-3000:]
    arrays = np.load(out)
    count = len([k for k in arrays.files if k.startswith("one_")])
    moved = 0
    for index in range(count):
        one, two, initial = arrays[f"one_{index}"], arrays[f"two_{index}"], arrays[f"initial_{index}"]
        # A plain reduce_mean per replica would double the update on 2 replicas (docs/design.md §2.11).
        np.testing.assert_allclose(two, one, rtol=1e-4, atol=1e-5, err_msg=f"weight {index}")
        moved += not np.allclose(one, initial)
    assert moved > 10  # the step really changed the model


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_two_workers_on_localhost_end_with_equal_weights(tmp_path):
    """Trainable weights, compared exactly; BN moving statistics stay per worker (not synced)."""
    from cma_tf.datasets.demo import generate_demo_dataset

    data_dir = str(tmp_path / "data")
    generate_demo_dataset(data_dir, num_train=48, num_val=16, image_size=32, seed=0, num_shards=4, progress=False)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = []
    for index in range(2):
        config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(run_worker(
            "multi_worker", data_dir, str(tmp_path / f"run{index}"), str(tmp_path / f"w{index}.npz"),
            env_extra={"TF_CONFIG": json.dumps(config)}, background=True,
        ))
    outputs = []
    for process in processes:
        try:
            outputs.append(process.communicate(timeout=600)[0])
        except subprocess.TimeoutExpired:
            for p in processes:
                p.kill()
            pytest.fail("multi-worker run timed out")
    for process, output in zip(processes, outputs):
        assert process.returncode == 0, output[-3000:]
    first, second = np.load(str(tmp_path / "w0.npz")), np.load(str(tmp_path / "w1.npz"))
    assert len(first.files) == len(second.files) > 10
    for key in first.files:
        np.testing.assert_allclose(first[key], second[key], rtol=1e-6, atol=1e-7, err_msg=key)
    # Only the chief writes the run's files.
    assert os.path.exists(tmp_path / "run0" / "final.keras")
    assert not os.path.exists(tmp_path / "run1" / "final.keras")
    assert "epoch 2/2" in outputs[0]


LOST_WORKER_EPOCHS = 3
LOST_WORKER_OVERRIDES = [
    "--config.data.image_size=32", "--config.model.backbone_widths=(8,16,32,64)", "--config.model.feature_channels=16",
    "--config.model.extra_block_filters=4", "--config.asge.units=8", "--config.asge.steps=20",
    f"--config.train.epochs={LOST_WORKER_EPOCHS}", "--config.train.steps_per_epoch=20", "--config.train.batch_size=8",
    "--config.train.eval_batch_size=16",
]


def start_train_worker(index, workers, data_dir, workdir, log_prefix):
    """`python -m cma_tf.train --strategy=multi_worker` as worker `index` of `workers`; its
    stdout and stderr go to `<log_prefix>.out` / `.err` (files: a pipe nobody reads could fill)."""
    config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, TF_CONFIG=json.dumps(config))
    command = [
        sys.executable, "-m", "cma_tf.train", "--config=configs/demo.py:cma", f"--workdir={workdir}",
        "--strategy=multi_worker", f"--config.data.data_dir={data_dir}", *LOST_WORKER_OVERRIDES,
    ]
    with open(f"{log_prefix}.out", "w") as out, open(f"{log_prefix}.err", "w") as err:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=err)


def finished_epochs(workdir):
    state = os.path.join(workdir, "checkpoint", "state.json")
    if not os.path.exists(state):
        return 0
    with open(state) as f:
        return json.load(f)["finished_epochs"]


def wait_all(processes, timeout):
    """Each process's exit status; kills every one still running when `timeout` s pass."""
    deadline = time.monotonic() + timeout
    try:
        return [process.wait(timeout=max(1.0, deadline - time.monotonic())) for process in processes]
    except subprocess.TimeoutExpired:
        pytest.fail(f"workers still running after {timeout} s")
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(timeout=30)


@pytest.mark.slow  # two runs of two TensorFlow processes: ~3 min on 2 cores
def test_a_lost_worker_is_one_line_and_running_every_worker_again_resumes(tmp_path):
    """Worker 1 is SIGKILLed during epoch 2 of 3: worker 0 prints one line naming worker 1, its
    address and the last finished epoch, exit 2; both commands again resume from its checkpoint."""
    from cma_tf.datasets.demo import generate_demo_dataset

    data_dir, workdir = str(tmp_path / "data"), str(tmp_path / "run")
    generate_demo_dataset(data_dir, num_train=48, num_val=16, image_size=32, seed=0, num_shards=4, progress=False)
    workers = [f"127.0.0.1:{port}" for port in free_ports(2)]
    processes = [start_train_worker(i, workers, data_dir, workdir, str(tmp_path / f"first{i}")) for i in range(2)]
    try:
        deadline = time.monotonic() + 400
        while finished_epochs(workdir) < 1 and time.monotonic() < deadline and all(p.poll() is None for p in processes):
            time.sleep(0.05)
        assert finished_epochs(workdir) == 1, "epoch 1 did not finish: " + (tmp_path / "first0.err").read_text()[-3000:]
        processes[1].send_signal(signal.SIGKILL)
    finally:
        statuses = wait_all(processes, timeout=180)
    finished = finished_epochs(workdir)
    assert finished < LOST_WORKER_EPOCHS
    stderr = (tmp_path / "first0.err").read_text()
    assert statuses[0] == 2, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    last_line = stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: lost worker 1 ({workers[1]})"), last_line
    assert f"during epoch {finished + 1} of {LOST_WORKER_EPOCHS}; the last finished epoch is {finished}" in last_line
    assert "run the same command again on every worker" in last_line

    processes = [start_train_worker(i, workers, data_dir, workdir, str(tmp_path / f"again{i}")) for i in range(2)]
    statuses = wait_all(processes, timeout=400)
    stdout = (tmp_path / "again0.out").read_text()
    assert statuses == [0, 0], (tmp_path / "again0.err").read_text()[-3000:] + (tmp_path / "again1.err").read_text()[-3000:]
    checkpoint = os.path.join(workdir, "checkpoint", f"epoch-{finished:04d}.keras")
    assert f"resuming from {checkpoint} after {finished} finished epochs" in stdout, stdout[-3000:]
    with open(os.path.join(workdir, "history.csv")) as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == list(range(LOST_WORKER_EPOCHS))
    assert os.path.exists(os.path.join(workdir, "final.keras"))
