"""The YouTube-8M field's frame poolings re-derived in numpy, with loops over frames, clusters and
groups, from the layers' own weights (BatchNorm in inference mode with non-trivial statistics):
NetVLAD (soft assignment, residual aggregation, intra and global L2 normalisation), NeXtVLAD
(expansion, grouping, group attention, aggregation, intra-norm, BatchNorm) and DBoF (projection,
max over frames)."""

import numpy as np
import pytest

from cma_tf.layers.bag_of_frames import DeepBagOfFrames
from cma_tf.layers.netvlad import NetVLAD
from cma_tf.layers.nextvlad import NeXtVLAD
from tests.helpers import numpy_batch_norm, randomize_batch_norm, run_layer_serialization_test

RNG = np.random.default_rng(0)
B, T = 2, 5


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def unit(v):
    return v / np.sqrt(max((v ** 2).sum(), 1e-12))


def np_netvlad(x, layer):
    """Miech et al. §3.1 / WILLOW `NetVLAD`: per video, per cluster k, Σ_t a_tk (x_t − c_k)."""
    w, c = np.asarray(layer.assignment, np.float64), np.asarray(layer.centers, np.float64)
    batch, frames, width = x.shape
    clusters = w.shape[1]
    out = np.zeros((batch, width * clusters))
    for b in range(batch):
        residual = np.zeros((width, clusters))
        for t in range(frames):
            a = softmax(numpy_batch_norm(x[b, t] @ w, layer.batch_norm))
            for k in range(clusters):
                residual[:, k] += a[k] * (x[b, t] - c[:, k])
        for k in range(clusters):
            residual[:, k] = unit(residual[:, k])  # intra-normalisation
        flat = np.array([residual[d, k] for d in range(width) for k in range(clusters)])  # index d·K + k
        out[b] = unit(flat)
    return out


def np_nextvlad(x, layer):
    """Lin et al. Eq. 4-8 / linrongc `NeXtVLAD`, frame by frame and group by group."""
    w = {name: np.asarray(getattr(layer, name), np.float64) for name in
         ("expand_kernel", "expand_bias", "attention_kernel", "attention_bias", "assignment", "centers")}
    batch, frames, _ = x.shape
    groups, clusters = layer.groups, layer.clusters
    width = w["centers"].shape[0]  # λN / G
    out = np.zeros((batch, clusters * width))
    for b in range(batch):
        vlad = np.zeros((width, clusters))
        for t in range(frames):
            expanded = x[b, t] @ w["expand_kernel"] + w["expand_bias"]  # ẋ_t, λN
            alpha = sigmoid(expanded @ w["attention_kernel"] + w["attention_bias"])  # [G]
            logits = numpy_batch_norm(expanded @ w["assignment"], layer.assignment_norm)  # [G·K], from the whole ẋ_t
            for g in range(groups):
                a = alpha[g] * softmax(logits[g * clusters:(g + 1) * clusters])
                piece = expanded[g * width:(g + 1) * width]  # x̃_tg
                for k in range(clusters):
                    vlad[:, k] += a[k] * (piece - w["centers"][:, k])
        for k in range(clusters):
            vlad[:, k] = unit(vlad[:, k])
        out[b] = vlad.reshape(-1)  # d-major: d·K + k
    return numpy_batch_norm(out, layer.output_norm)


def np_dbof(x, layer):
    """The starter code's DBoF: σ(BN(BN(x_t) · W)), then max over t."""
    w = np.asarray(layer.projection, np.float64)
    frames = [sigmoid(numpy_batch_norm(numpy_batch_norm(x[:, t], layer.input_norm) @ w, layer.cluster_norm))
              for t in range(x.shape[1])]
    return np.max(np.stack(frames, axis=1), axis=1)


def run(layer, x):
    layer(x)
    randomize_batch_norm(layer, RNG)
    return np.asarray(layer(x, training=False), np.float64)


def test_netvlad_matches_numpy():
    layer = NetVLAD(3)
    x = RNG.normal(size=(B, T, 4)).astype("float32")
    got = run(layer, x)
    assert got.shape == (B, 12)
    np.testing.assert_allclose(got, np_netvlad(x.astype(np.float64), layer), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(got, axis=-1), 1.0, rtol=1e-5)
    assert layer.batch_norm.momentum == 0.999


def test_nextvlad_matches_numpy():
    layer = NeXtVLAD(3, expansion=2, groups=4)
    x = RNG.normal(size=(B, T, 6)).astype("float32")  # λN = 12, 4 groups of 3
    got = run(layer, x)
    assert got.shape == (B, 3 * 3)
    assert layer.assignment.shape == (12, 4 * 3) and layer.centers.shape == (3, 3)
    np.testing.assert_allclose(got, np_nextvlad(x.astype(np.float64), layer), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="not divisible by the 5 groups"):
        NeXtVLAD(3, expansion=2, groups=5)(x)


def test_dbof_matches_numpy():
    layer = DeepBagOfFrames(7)
    x = RNG.normal(size=(B, T, 4)).astype("float32")
    got = run(layer, x)
    assert got.shape == (B, 7)
    np.testing.assert_allclose(got, np_dbof(x.astype(np.float64), layer), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: NetVLAD(3), lambda: NeXtVLAD(2, 2, 2), lambda: DeepBagOfFrames(5)],
                         ids=["netvlad", "nextvlad", "dbof"])
def test_serialization(make):
    run_layer_serialization_test(make(), RNG.normal(size=(B, T, 4)).astype("float32"))
