"""ASGE (Eq. 2-5): the loss against numpy, convergence, a known block structure, the real COCO graph."""

import pickle

import numpy as np
import pytest

from cma_tf.graph.asge import ASGEEncoder, LabelGraphLoss, graph_embedding_loss
from cma_tf.graph.asge_model import fit_asge
from tests.helpers import run_layer_serialization_test, shared_data

RNG = np.random.default_rng(0)


def numpy_graph_loss(e, a_sym, alpha):
    n = len(e)
    total = 0.0
    for i in range(n):
        for j in range(n):
            cos = e[i] @ e[j] / np.linalg.norm(e[i]) / np.linalg.norm(e[j])
            sigma = 0.0 if (a_sym[i, j] < alpha and cos < alpha) else 1.0
            total += sigma * (cos - a_sym[i, j]) ** 2
    return total


@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.3])
def test_loss_matches_numpy(alpha):
    e = RNG.normal(size=(7, 5)).astype("float32")
    a = RNG.uniform(0, 1, (7, 7)).astype("float32") * (RNG.random((7, 7)) < 0.5)
    np.fill_diagonal(a, 1)
    a_sym = (a + a.T) / 2
    got = float(graph_embedding_loss(e, a_sym, alpha))
    np.testing.assert_allclose(got, numpy_graph_loss(e, a_sym, alpha), rtol=1e-4)
    layer = LabelGraphLoss(7, alpha=alpha)
    layer.set_adjacency(a)
    np.testing.assert_allclose(float(layer(e)), got, rtol=1e-5)


def test_encoder_shapes_and_serialization():
    encoder = ASGEEncoder(num_labels=6, units=4)
    assert tuple(encoder.all_embeddings().shape) == (6, 4)
    run_layer_serialization_test(encoder, np.arange(6), training=False)


def block_graph(sizes):
    n = sum(sizes)
    a = np.zeros((n, n), np.float32)
    start = 0
    for size in sizes:
        a[start:start + size, start:start + size] = 1.0
        start += size
    return a


def test_recovers_block_structure_and_loss_decreases():
    a = block_graph([3, 4, 3])
    encoder, report = fit_asge(a, units=32, steps=400, seed=0)
    initial = float(graph_embedding_loss(ASGEEncoder(10, units=32).all_embeddings(training=False), a))
    assert report["final_loss"] < 0.1 * initial
    e = np.asarray(encoder.all_embeddings(training=False))
    unit = e / np.linalg.norm(e, axis=1, keepdims=True)
    cos = unit @ unit.T
    same = a.astype(bool) & ~np.eye(10, dtype=bool)
    assert cos[same].min() > 0.9, cos[same].min()
    assert cos[~a.astype(bool)].max() < 0.15, cos[~a.astype(bool)].max()


def test_fits_the_real_coco_graph():
    """DESIGN.md §6: paper settings, 3,000 steps reached RMSE 0.024 / Pearson 0.96 in inference mode."""
    with open(shared_data("coco_adj.pkl"), "rb") as f:
        data = pickle.load(f)
    a = data["adj"] / np.maximum(data["nums"][None, :], 1)
    np.fill_diagonal(a, 1)
    _, report = fit_asge(a, steps=3000, seed=0)
    assert report["rmse"] < 0.035, report
    assert report["pearson"] > 0.93, report
