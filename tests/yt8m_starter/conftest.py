"""Shared by the tests that run the YouTube-8M starter code's own scripts through
`python -m cma_tf.yt8m_starter.run`: the copy of the starter code (`YT8M_STARTER_DIR`; the tests
skip without it), a subprocess runner, tiny frame-level records and one CmaSnetModel trained by
the starter's `train.py` for the whole session."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cma_tf.data.records import write_shard
from cma_tf.data.yt8m.records import encode_frame_example

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The flags of our model class, the same for train.py and eval.py (eval.py rebuilds the model).
CMA_FLAGS = ("--cma_frames=16", "--cma_snet_filters=4")


def write_tiny_frame_records(path, num_videos=8, frames=20, num_classes=10, seed=0):
    rng = np.random.default_rng(seed)
    examples = [
        encode_frame_example(
            f"video{i}", rng.choice(num_classes, 2, replace=False),
            rng.integers(0, 256, (frames, 1024), dtype=np.uint8),
            rng.integers(0, 256, (frames, 128), dtype=np.uint8))
        for i in range(num_videos)
    ]
    write_shard(path, examples)


def run_runner(*args, env_updates=None, timeout=300):
    """`python -m cma_tf.yt8m_starter.run *args` in the repository, without a GPU."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    for name, value in (env_updates or {}).items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    command = [sys.executable, "-m", "cma_tf.yt8m_starter.run", *args]
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


def run_starter(starter_dir, script, *args):
    return run_runner(f"--starter_dir={starter_dir}", f"--script={script}", *args)


def folder_state(folder):
    """`{relative path: (size, mtime_ns)}` of every file under `folder`: equal before and after
    a refused command when it changed nothing."""
    state = {}
    for directory, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(directory, name)
            info = os.stat(path)
            state[os.path.relpath(path, folder)] = (info.st_size, info.st_mtime_ns)
    return state


@pytest.fixture(scope="session")
def starter_dir():
    starter_dir = os.environ.get("YT8M_STARTER_DIR")
    if not starter_dir:
        pytest.skip("YT8M_STARTER_DIR is not set (no YouTube-8M starter code copy)")
    if not os.path.isfile(os.path.join(starter_dir, "train.py")):
        pytest.skip(f"YT8M_STARTER_DIR={starter_dir!r} has no train.py")
    pytest.importorskip("tf_slim", reason="tf_slim is not installed (the starter code imports "
                                          "tensorflow.contrib.slim; pip install tf_slim)")
    return starter_dir


@pytest.fixture(scope="session")
def starter_run(starter_dir, tmp_path_factory):
    """CmaSnetModel trained by the starter's train.py: (folder, embeddings file, train_dir, process)."""
    folder = tmp_path_factory.mktemp("starter")
    write_tiny_frame_records(str(folder / "train0000.tfrecord"))
    embeddings = str(folder / "label_embeddings.npy")
    np.save(embeddings, np.random.default_rng(1).normal(size=(3862, 4)).astype(np.float32))
    train_dir = folder / "train_dir"
    # train.py fetches global_step with train_op and stops once it reads max_steps; it saves a
    # checkpoint itself when that value is a multiple of 10, so --max_steps=10 runs 11 steps
    # and writes model.ckpt-10 (8 videos × 5 epochs / batch 2 = 20 batches suffice).
    proc = run_starter(
        starter_dir, "train", "--model=CmaSnetModel", f"--cma_label_embeddings={embeddings}", *CMA_FLAGS,
        "--frame_features", "--feature_names=rgb", "--feature_sizes=1024",
        f"--train_data_pattern={folder / 'train*.tfrecord'}", f"--train_dir={train_dir}", "--batch_size=2",
        "--max_steps=10", "--num_readers=1",
    )
    return folder, embeddings, train_dir, proc
