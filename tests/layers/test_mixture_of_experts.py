"""The mixture-of-experts classifier (YouTube-8M starter code `MoeModel`), Context Gating and the
SE context gating, re-derived in numpy from the layers' own weights: per class, a softmax over
M + 1 gates (the last, a dummy expert answering 0) weighting M sigmoid experts, columns
class-major; σ of the returned logits is the mixture's probability."""

import keras
import numpy as np
import pytest

from cma_tf.layers.context_gating import ContextGating, SqueezeExcitationGating
from cma_tf.layers.mixture_of_experts import PROBABILITY_EPSILON, MixtureOfExperts, PerClassMixtureOfExperts
from tests.helpers import numpy_batch_norm, randomize_batch_norm, run_layer_serialization_test

RNG = np.random.default_rng(0)
B, D, V, M = 3, 6, 5, 3


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def np_moe(h, gate_kernel, expert_kernel, expert_bias, mixtures):
    """The starter code's MoE, one class and one video at a time: `[B, d]` → `p` `[B, V]`."""
    batch, classes = h.shape[0], expert_bias.shape[0] // mixtures
    p = np.zeros((batch, classes))
    for b in range(batch):
        for c in range(classes):
            gates = h[b] @ gate_kernel[:, c * (mixtures + 1):(c + 1) * (mixtures + 1)]
            experts = h[b] @ expert_kernel[:, c * mixtures:(c + 1) * mixtures] + expert_bias[c * mixtures:(c + 1) * mixtures]
            weights = softmax(gates)
            p[b, c] = sum(weights[m] * sigmoid(experts[m]) for m in range(mixtures))  # weights[mixtures]: the dummy's 0
    return p


def np_context_gating(x, gating):
    z = numpy_batch_norm(x @ np.asarray(gating.kernel, np.float64), gating.batch_norm)
    return x * sigmoid(z), z


def moe_weights(layer):
    return (np.asarray(layer.gates.kernel, np.float64), np.asarray(layer.experts.kernel, np.float64),
            np.asarray(layer.experts.bias, np.float64))


def test_moe_probabilities_match_numpy_and_sigmoid_of_the_logits_is_p():
    layer = MixtureOfExperts(V, mixtures=M)
    h = RNG.normal(size=(B, D)).astype("float32")
    layer(h)
    layer.experts.bias.assign(RNG.normal(size=V * M))  # a non-zero bias, at its class-major place
    logits = np.asarray(layer(h), np.float64)
    p = np_moe(h.astype(np.float64), *moe_weights(layer), M)
    assert layer.gates.kernel.shape == (D, V * (M + 1)) and layer.gates.bias is None
    np.testing.assert_allclose(sigmoid(logits), p, atol=2 * PROBABILITY_EPSILON)
    # exactly log(p + ε) − log(1 − p + ε): BCE on these logits is the starter code's loss + a constant
    eps = PROBABILITY_EPSILON
    np.testing.assert_allclose(logits, np.log(p + eps) - np.log(1 - p + eps), rtol=1e-4, atol=1e-4)


def test_a_mixture_sure_of_a_label_gives_finite_large_logits():
    """p within 1e-9 of 1 or 0: `log p − log(1 − p)` in float32 would be inf; the layer's q is summed."""
    layer = MixtureOfExperts(2, mixtures=1)
    layer.build((None, 1))
    # class 0: gate of the expert ≫ dummy's, expert ≫ 0 → p ≈ 1; class 1: dummy gate wins → p ≈ 0
    layer.gates.kernel.assign(np.array([[40.0, -40.0, -40.0, 40.0]]))
    layer.experts.kernel.assign(np.array([[40.0, 40.0]]))
    logits = np.asarray(layer(np.ones((1, 1), "float32")))
    assert np.all(np.isfinite(logits))
    np.testing.assert_allclose(logits[0], [np.log(1 / PROBABILITY_EPSILON), -np.log(1 / PROBABILITY_EPSILON)], rtol=1e-3)


def test_probability_gating_gates_p_with_context_gating_in_label_space():
    layer = MixtureOfExperts(V, mixtures=2, probability_gating=True)
    h = RNG.normal(size=(B, D)).astype("float32")
    layer(h)
    randomize_batch_norm(layer, RNG)
    p = np_moe(h.astype(np.float64), *moe_weights(layer), 2)
    gated, _ = np_context_gating(p, layer.gate)
    assert layer.gate.kernel.shape == (V, V)
    np.testing.assert_allclose(sigmoid(np.asarray(layer(h, training=False), np.float64)), gated, atol=3e-5)


def test_moe_l2_is_slims_half_lambda_on_the_weights_only():
    layer = MixtureOfExperts(V, mixtures=M, l2=1e-2)
    layer(np.ones((1, D), "float32"))
    gates, experts, _ = moe_weights(layer)
    expected = 1e-2 / 2 * ((gates ** 2).sum() + (experts ** 2).sum())  # slim: λ Σw² / 2, no bias
    np.testing.assert_allclose(float(sum(layer.losses)), expected, rtol=1e-5)


def test_per_class_moe_is_the_moe_when_every_class_reads_the_same_vector():
    layer = PerClassMixtureOfExperts(V, mixtures=M)
    h = RNG.normal(size=(B, D)).astype("float32")
    layer(np.repeat(h[:, None], V, axis=1))
    layer.bias.assign(RNG.normal(size=(V, M)))
    kernel = np.asarray(layer.kernel, np.float64)  # [V, C, M+1 gates | M experts]
    gate_kernel = np.concatenate([kernel[c, :, :M + 1] for c in range(V)], axis=1)  # class-major columns
    expert_kernel = np.concatenate([kernel[c, :, M + 1:] for c in range(V)], axis=1)
    p = np_moe(h.astype(np.float64), gate_kernel, expert_kernel, np.asarray(layer.bias, np.float64).ravel(), M)
    logits = np.asarray(layer(np.repeat(h[:, None], V, axis=1)), np.float64)
    np.testing.assert_allclose(sigmoid(logits), p, atol=2 * PROBABILITY_EPSILON)


def test_per_class_moe_fused_with_attention_equals_pooling_first():
    """Eq. 9 fused: the attention-weighted projections equal the MoE of `h_k = Σ_i a_k^i I^i`."""
    layer = PerClassMixtureOfExperts(V, mixtures=2)
    features = RNG.normal(size=(B, 4, 2, D)).astype("float32")  # 8 positions
    attention = RNG.random(size=(B, V, 8)).astype("float32")
    pooled = np.einsum("bkp,bpc->bkc", attention, features.reshape(B, 8, D))
    expected = np.asarray(layer(pooled))
    np.testing.assert_allclose(np.asarray(layer(attention, features=features)), expected, rtol=1e-4, atol=1e-4)


def test_context_gating_matches_numpy():
    layer = ContextGating()
    x = RNG.normal(size=(B, D)).astype("float32")
    layer(x)
    randomize_batch_norm(layer, RNG)
    expected, _ = np_context_gating(x.astype(np.float64), layer)
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    assert layer.kernel.shape == (D, D) and layer.batch_norm.momentum == 0.999


def test_se_gating_matches_numpy():
    layer = SqueezeExcitationGating(reduction=2)
    x = RNG.normal(size=(B, 8)).astype("float32")
    layer(x)
    randomize_batch_norm(layer, RNG)
    squeezed = np.maximum(numpy_batch_norm(x @ np.asarray(layer.squeeze, np.float64), layer.batch_norm), 0.0)
    expected = x * sigmoid(squeezed @ np.asarray(layer.excite, np.float64))
    assert layer.squeeze.shape == (8, 4) and layer.excite.shape == (4, 8)
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="not divisible by the reduction 3"):
        SqueezeExcitationGating(reduction=3)(x)


@pytest.mark.parametrize("make, shape", [
    (lambda: MixtureOfExperts(V, mixtures=2, l2=1e-6, probability_gating=True), (B, D)),
    (lambda: PerClassMixtureOfExperts(V, mixtures=2), (B, V, D)),
    (lambda: ContextGating(), (B, D)),
    (lambda: SqueezeExcitationGating(reduction=3), (B, D)),
], ids=["moe", "per_class_moe", "context_gating", "se_gating"])
def test_serialization(make, shape):
    run_layer_serialization_test(make(), RNG.normal(size=shape).astype("float32"))
    keras.backend.clear_session()
