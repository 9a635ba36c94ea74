"""The reconstructed MMDSR head (cma_tf/heads/mmdsr.py) and its layers against numpy
re-derivations: the weighted-cosine graph, the GCN step, CDCA, the class-map vectors, the
cross-layer attention's projections and gates, the head's wiring; then the head over the tiny
backbone (shapes, `.keras` round trip, training, a frozen label encoder)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.backbones.small import small_backbone
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.mmdsr import MMDSRHead
from cma_tf.layers.category_vectors import CategorySpecificVectors
from cma_tf.layers.channel_attention import ChannelDualBranchAttention
from cma_tf.layers.cross_layer_attention import CrossLayerAttention
from cma_tf.layers.dynamic_graph import GraphConvolution, WeightedCosineGraph
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier
from tests.helpers import (
    TINY_IMAGE_SIZE,
    TINY_WIDTHS,
    numpy_batch_norm,
    randomize_batch_norm,
    run_layer_serialization_test,
    run_model_saving_test,
)

NUM_CLASSES = 5
RNG = np.random.default_rng(0)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def leaky_relu(x, slope=0.2):
    return np.where(x > 0, x, slope * x)


def numpy_weighted_cosine_graph(nodes, weights, epsilon):
    """IDGL's weighted cosine, pair by pair, its ε-neighbourhood, then D^{-1/2}(S + I)D^{-1/2}."""
    b, n, _ = nodes.shape
    similarity = np.zeros((b, n, n))
    for bi in range(b):
        for i in range(n):
            for j in range(n):
                total = 0.0
                for w in weights:
                    u, v = w * nodes[bi, i], w * nodes[bi, j]
                    total += u @ v / max(np.linalg.norm(u), 1e-12) / max(np.linalg.norm(v), 1e-12)
                similarity[bi, i, j] = total / len(weights)
    masked = np.where(similarity > epsilon, similarity, 0.0)
    adjacency = np.zeros_like(masked)
    for bi in range(b):
        loops = masked[bi] + np.eye(n)
        d = np.diag(1.0 / np.sqrt(loops.sum(axis=1)))
        adjacency[bi] = d @ loops @ d
    return similarity, masked, adjacency


# === the weighted-cosine graph ===


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_weighted_cosine_graph_matches_numpy(epsilon):
    nodes = RNG.normal(size=(2, 5, 6)).astype("float32")
    nodes[1, 3] = 0.0  # an all-zero vector: cosine 0 with everything, its row is the self-loop
    layer = WeightedCosineGraph(perspectives=4, epsilon=epsilon)
    layer.build(nodes.shape)
    weights = RNG.normal(size=(4, 6)).astype("float32")
    layer.perspective_weights.assign(weights)
    adjacency, similarity = (np.asarray(t) for t in layer(nodes, return_similarity=True))
    raw, masked, expected = numpy_weighted_cosine_graph(nodes.astype(np.float64), weights.astype(np.float64), epsilon)
    assert (raw < epsilon).any() and (raw > epsilon).any()  # the mask has something to do
    np.testing.assert_allclose(similarity, masked, atol=1e-5)
    np.testing.assert_allclose(adjacency, expected, atol=1e-5)
    assert np.isfinite(adjacency).all()
    np.testing.assert_allclose(adjacency[1, 3], np.eye(5)[3], atol=1e-6)


def test_weighted_cosine_graph_has_finite_gradients_at_a_zero_vector():
    nodes = tf.Variable(np.concatenate([np.zeros((1, 1, 6)), RNG.normal(size=(1, 4, 6))], axis=1).astype("float32"))
    layer = WeightedCosineGraph()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(nodes) ** 2)
    gradients = tape.gradient(loss, [nodes, layer.perspective_weights])
    assert all(np.isfinite(g.numpy()).all() for g in gradients)


def test_negative_epsilon_is_refused():
    with pytest.raises(ValueError, match="epsilon"):
        WeightedCosineGraph(epsilon=-0.1)


# === the graph convolution ===


def test_graph_convolution_uses_each_images_graph():
    nodes = RNG.normal(size=(2, 5, 6)).astype("float32")
    similarity = RNG.uniform(0, 1, size=(2, 5, 5))
    adjacency = np.stack([numpy_weighted_cosine_graph(nodes[:1], RNG.normal(size=(4, 6)), 0.0)[2][0], similarity[1]])
    adjacency = adjacency.astype("float32")
    layer = GraphConvolution(3)
    layer.build(nodes.shape, adjacency.shape)
    kernel, bias = RNG.normal(size=(6, 3)), RNG.normal(size=(3,))
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    expected = np.stack([leaky_relu(adjacency[b] @ nodes[b] @ kernel + bias) for b in range(2)])
    np.testing.assert_allclose(np.asarray(layer(nodes, adjacency)), expected, rtol=1e-5, atol=1e-5)
    run_layer_serialization_test(layer, nodes, adjacency)


# === CDCA ===


def numpy_cdca(x, w1, b1, w2, b2, wf, bf):
    batch, channels = x.shape[0], x.shape[-1]
    out = np.zeros_like(x)
    for bi in range(batch):
        flat = x[bi].reshape(-1, channels)  # [M, C]
        energy = flat.T @ flat  # [C, C]
        affinity = np.exp(energy - energy.max(axis=1, keepdims=True))
        affinity /= affinity.sum(axis=1, keepdims=True)
        local = flat @ affinity.T  # Y_loc[m, c] = Σ_d A[c, d] X[m, d]
        g = flat.mean(axis=0)
        glob = flat * sigmoid(np.maximum(g @ w1 + b1, 0) @ w2 + b2)
        alpha = sigmoid(np.concatenate([local.mean(axis=0), glob.mean(axis=0)]) @ wf + bf)[0]
        out[bi] = (flat + alpha * local + (1 - alpha) * glob).reshape(x.shape[1:])
    return out


def test_channel_dual_branch_attention_matches_numpy():
    x = (0.5 * RNG.normal(size=(2, 3, 3, 4))).astype("float32")
    layer = ChannelDualBranchAttention(reduction=2)
    layer.build(x.shape)
    values = {
        "squeeze_kernel": RNG.normal(size=(4, 2)), "squeeze_bias": RNG.normal(size=(2,)),
        "excite_kernel": RNG.normal(size=(2, 4)), "excite_bias": RNG.normal(size=(4,)),
        "fusion_kernel": RNG.normal(size=(8, 1)), "fusion_bias": RNG.normal(size=(1,)),
    }
    for name, value in values.items():
        getattr(layer, name).assign(value)
    expected = numpy_cdca(x.astype(np.float64), *(values[k] for k in values))
    np.testing.assert_allclose(np.asarray(layer(x)), expected, rtol=1e-5, atol=1e-5)
    run_layer_serialization_test(layer, x)


def test_channel_dual_branch_attention_keeps_at_least_one_se_unit():
    layer = ChannelDualBranchAttention()  # reduction 16 on 4 channels
    layer.build((None, 3, 3, 4))
    assert tuple(layer.squeeze_kernel.shape) == (4, 1)


# === the class-map vectors (ADD-GCN's SAM, averaged over positions) ===


def test_category_specific_vectors_match_numpy():
    x = RNG.normal(size=(2, 3, 4, 6)).astype("float32")
    layer = CategorySpecificVectors(NUM_CLASSES, 7)
    layer.build(x.shape)
    wc, wv, bv = RNG.normal(size=(6, NUM_CLASSES)), RNG.normal(size=(6, 7)), RNG.normal(size=(7,))
    layer.class_conv.kernel.assign(wc)
    layer.value_conv.kernel.assign(wv)
    layer.value_conv.bias.assign(bv)
    vectors, logits = (np.asarray(t) for t in layer(x))
    flat = x.reshape(2, 12, 6).astype(np.float64)
    expected_logits = flat @ wc
    expected = np.stack([sigmoid(expected_logits[b]).T @ (flat[b] @ wv + bv) / 12 for b in range(2)])
    np.testing.assert_allclose(logits, expected_logits, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(vectors, expected, rtol=1e-5, atol=1e-5)


# === MFR ===


def test_cross_layer_attention_starts_as_the_projections_and_gates_the_attention():
    shallow = RNG.normal(size=(2, 4, 4, 6)).astype("float32")
    deep = RNG.normal(size=(2, 2, 2, 10)).astype("float32")
    layer = CrossLayerAttention(8, num_heads=2)
    layer([shallow, deep])
    randomize_batch_norm(layer, RNG)
    projected = [
        np.maximum(numpy_batch_norm(tap @ np.asarray(conv.kernel), norm), 0)
        for tap, (conv, norm) in zip((shallow, deep), layer.projections)
    ]
    for got, expected in zip(layer([shallow, deep]), projected):  # γ = 0: the projections alone
        np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-5)

    layer.shallow_gate.assign(0.7)
    layer.deep_gate.assign(-0.3)
    f1, f2 = (p.reshape(2, -1, 8).astype("float32") for p in projected)
    new_f1 = f1 + 0.7 * np.asarray(layer.deep_to_shallow(f1, f2))
    pooled = new_f1.reshape(2, 2, 2, 2, 2, 8).mean(axis=(2, 4)).reshape(2, 4, 8)  # 4×4 → 2×2 averages
    new_f2 = f2 + -0.3 * np.asarray(layer.shallow_to_deep(f2, pooled.astype("float32")))
    got1, got2 = layer([shallow, deep])
    np.testing.assert_allclose(np.asarray(got1), new_f1.reshape(2, 4, 4, 8), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(got2), new_f2.reshape(2, 2, 2, 8), rtol=1e-4, atol=1e-5)
    clone = CrossLayerAttention.from_config(layer.get_config())
    clone([shallow, deep])
    clone.set_weights(layer.get_weights())
    for got, expected in zip(clone([shallow, deep]), (got1, got2)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(expected), rtol=1e-5, atol=1e-5)
    assert clone.get_config() == layer.get_config()


# === the head ===


def encoder(trainable=False):
    label_encoder = ASGEEncoder(NUM_CLASSES, units=8, name="label_encoder")
    label_encoder.build()
    label_encoder.trainable = trainable
    return label_encoder


def head(trainable_encoder=False):
    return MMDSRHead(NUM_CLASSES, encoder(trainable_encoder), feature_channels=16)


def batch(n=4):
    images = RNG.uniform(0, 255, (n, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    labels = (RNG.random((n, NUM_CLASSES)) < 0.4).astype("float32")
    return images, labels


def build(mmdsr, run_eagerly=False):
    model = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), mmdsr)
    # XLA compilation (and, for one or two steps, any tracing) takes longer than the steps run.
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=WeightedBinaryCrossentropy(),
        jit_compile=False, run_eagerly=run_eagerly,
    )
    return model


def test_head_logits_are_the_dsr_equations_on_its_layers():
    """From the outputs of CDCA and the class-map layers, the rest of DSR in numpy."""
    mmdsr = head()
    features = [RNG.normal(size=(2, 4, 4, 12)).astype("float32"), RNG.normal(size=(2, 2, 2, 20)).astype("float32")]
    mmdsr(features)
    mmdsr.reconstruction.shallow_gate.assign(0.5)
    mmdsr.reconstruction.deep_gate.assign(0.5)
    randomize_batch_norm(mmdsr, RNG)
    maps = mmdsr.reconstruction(features, training=False)
    parts = [
        layer(attention(scale))
        for attention, layer, scale in zip(mmdsr.channel_attention, mmdsr.category_vectors, maps)
    ]
    vectors = [np.asarray(v, np.float64) for v, _ in parts]
    class_logits = [np.asarray(l, np.float64) for _, l in parts]
    embeddings = np.asarray(mmdsr.label_embeddings(training=False), np.float64)
    prior = embeddings @ np.asarray(mmdsr.semantic_prior.kernel) + np.asarray(mmdsr.semantic_prior.bias)
    nodes = vectors[0] + vectors[1] + prior[None]
    adjacency = numpy_weighted_cosine_graph(nodes, np.asarray(mmdsr.graph.perspective_weights, np.float64), 0.0)[2]
    hidden = nodes
    for gcn in mmdsr.gcn:
        kernel, bias = np.asarray(gcn.kernel), np.asarray(gcn.bias)
        hidden = np.stack([leaky_relu(adjacency[b] @ hidden[b] @ kernel + bias) for b in range(2)])
    z = nodes + hidden
    s_r = (z * np.asarray(mmdsr.classifier.kernel)).sum(-1) + np.asarray(mmdsr.classifier.bias)
    s_m = np.mean([logits.max(axis=1) for logits in class_logits], axis=0)
    logits, attention = mmdsr(features, training=False, return_attention=True)
    np.testing.assert_allclose(np.asarray(logits), (s_m + s_r) / 2, rtol=1e-4, atol=1e-4)
    for got, scale_logits in zip(attention, class_logits):
        np.testing.assert_allclose(np.asarray(got), sigmoid(scale_logits).transpose(0, 2, 1), rtol=1e-5, atol=1e-6)


def test_head_shapes_over_the_tiny_backbone():
    mmdsr = head()
    backbone = small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS)
    images, _ = batch(3)
    features = backbone(images)
    logits, attention = mmdsr(features, return_attention=True)
    side = TINY_IMAGE_SIZE // 8  # the stride-8 tap; the deep tap is stride 16
    assert tuple(logits.shape) == (3, NUM_CLASSES)
    assert [tuple(a.shape) for a in attention] == [(3, NUM_CLASSES, side * side), (3, NUM_CLASSES, side * side // 4)]
    assert mmdsr.compute_output_shape([tuple(f.shape) for f in features]) == (3, NUM_CLASSES)
    assert MMDSRHead.from_config(mmdsr.get_config()).get_config() == mmdsr.get_config()


def test_keras_round_trip_keeps_a_frozen_label_encoder_frozen(tmp_path):
    model = build(head(), run_eagerly=True)
    images, labels = batch()
    model.fit(images, labels, epochs=1, verbose=0)  # non-trivial BN statistics before saving
    restored = run_model_saving_test(model, images, tmp_path)
    encoder_after = restored.head.label_encoder
    assert not encoder_after.trainable and encoder_after.trainable_weights == []
    before = [np.copy(w) for w in encoder_after.get_weights()]
    restored.compile(optimizer=keras.optimizers.SGD(0.01), loss=WeightedBinaryCrossentropy(), run_eagerly=True)
    restored.fit(images, labels, epochs=1, verbose=0)
    for old, new in zip(before, encoder_after.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.slow
def test_training_reduces_loss_on_a_fixed_batch():
    model = build(head())  # the compiled train step
    images, labels = batch(8)
    before = model.evaluate(images, labels, verbose=0, return_dict=True)["loss"]
    model.fit(images, labels, epochs=15, batch_size=8, verbose=0)
    assert model.evaluate(images, labels, verbose=0, return_dict=True)["loss"] < before


def test_the_factory_builds_it_from_a_config():
    from cma_tf import factory
    from cma_tf.config_base import get_base_config

    config = get_base_config()
    config.model.head = "mmdsr"
    config.model.feature_channels = 16
    built = factory.build_head(config, NUM_CLASSES, encoder())
    assert isinstance(built, MMDSRHead) and built.channels == 16
    config.model.feature_channels = None
    assert factory.build_head(config, NUM_CLASSES, encoder()).channels == 1024
