"""Distribution: 2 replicas equal 1 device; 2 workers on 127.0.0.1 end with equal weights."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_worker(*args, env_extra=None, background=False):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT, **(env_extra or {}))
    command = [sys.executable, "-m", "tests.training.distribute_worker", *args]
    if background:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


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


def test_two_workers_on_localhost_end_with_equal_weights(tmp_path):
    """Trainable weights, compared exactly; BN moving statistics stay per worker (not synced)."""
    from cma_tf.data.demo import generate_demo_dataset

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
