"""`python -m cma_tf.label_embeddings` on a 1,000-label sparse graph: the paper's literal ASGE
recipe collapses and the command says so in one line (exit 2); the default writes usable `E`."""

import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cma_tf.data import records
from tests.graph.sparse_graph import sparse_topic_counts

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_LABELS = 1000


@pytest.fixture(scope="module")
def sparse_dataset(tmp_path_factory):
    """A data directory with a 1,000-name vocabulary and one train record, and the label graph
    of 60,000 synthetic videos as a precomputed `config.data.label_graph` (counts only)."""
    data_dir = tmp_path_factory.mktemp("data")
    names = [f"label_{i:04d}" for i in range(NUM_LABELS)]
    (data_dir / "labels.txt").write_text("".join(f"{name}\n" for name in names))
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="PNG")
    records.write_shard(
        str(data_dir / "train-00000-of-00001.tfrecord"),
        [records.encode_image_example(buffer.getvalue(), "png", 8, 8, "0", [0])],
    )
    graph = str(data_dir / "precomputed_graph.npz")
    np.savez(graph, counts=sparse_topic_counts(NUM_LABELS), num_examples=np.int64(60_000),
             vocabulary=np.asarray(names, dtype=str))
    return str(data_dir), graph


def run_label_embeddings(data_dir, graph, workdir, output, *overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.run(
        [sys.executable, "-m", "cma_tf.label_embeddings", f"--config={ROOT}/configs/demo.py:cma",
         f"--config.data.data_dir={data_dir}", f"--config.data.label_graph={graph}",
         f"--workdir={workdir}", f"--output={output}", *overrides],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )


@pytest.mark.slow
def test_a_collapsed_fit_is_one_line_naming_the_cause(sparse_dataset, tmp_path):
    data_dir, graph = sparse_dataset
    output = tmp_path / "E.npy"
    proc = run_label_embeddings(
        data_dir, graph, tmp_path / "run", output,
        "--config.asge.optimizer=sgd", "--config.asge.balance_pairs=False", "--config.asge.row_guard=0",
        "--config.asge.steps=50",
    )
    assert proc.returncode == 2, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ASGE collapsed") and "1000 of 1000 label embeddings are all zero" in last, last
    assert "--config.asge.optimizer=adam" in last
    assert "Traceback" not in proc.stderr
    assert not output.exists()


@pytest.mark.slow
def test_the_default_fit_writes_embeddings_with_no_zero_row(sparse_dataset, tmp_path):
    data_dir, graph = sparse_dataset
    output = tmp_path / "E.npy"
    proc = run_label_embeddings(
        data_dir, graph, tmp_path / "run", output, "--config.asge.steps=200", "--config.asge.units=256"
    )
    assert proc.returncode == 0, proc.stderr
    embeddings = np.load(output)
    assert embeddings.shape == (NUM_LABELS, 256)
    assert np.isfinite(embeddings).all() and (np.abs(embeddings).sum(axis=1) > 0).all()
