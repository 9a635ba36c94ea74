"""The asymmetric loss (ASL) against its formula written directly in numpy, and its focusing
weights held without gradient (the repositories' `disable_torch_grad_focal_loss`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.losses import AsymmetricLoss, WeightedBinaryCrossentropy

RNG = np.random.default_rng(11)


def numpy_asl(labels, logits, gamma_pos, gamma_neg, clip):
    """L = −Σ_k [y (1−p)^γ+ log p + (1−y) (1−p_m)^γ− log p_m], p_m = min(1, 1−p+m); mean over the batch."""
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    p_m = np.minimum(1.0, 1.0 - p + clip)
    positive = labels * (1 - p) ** gamma_pos * np.log(p)
    negative = (1 - labels) * (1 - p_m) ** gamma_neg * np.log(p_m)
    return -(positive + negative).sum(-1).mean()


@pytest.mark.parametrize("gamma_pos,gamma_neg,clip", [(0.0, 4.0, 0.05), (0.0, 2.0, 0.0), (1.0, 3.0, 0.2)])
def test_matches_the_formula(gamma_pos, gamma_neg, clip):
    labels = (RNG.random((9, 6)) < 0.3).astype("float32")
    logits = RNG.normal(scale=3, size=(9, 6)).astype("float32")
    loss = AsymmetricLoss(gamma_pos, gamma_neg, clip)
    np.testing.assert_allclose(float(loss(labels, logits)), numpy_asl(labels, logits, gamma_pos, gamma_neg, clip), rtol=1e-5)


def test_without_focusing_or_margin_it_is_the_summed_bce():
    labels = (RNG.random((5, 7)) < 0.5).astype("float32")
    logits = RNG.normal(size=(5, 7)).astype("float32")
    np.testing.assert_allclose(
        float(AsymmetricLoss(0.0, 0.0, 0.0)(labels, logits)), float(WeightedBinaryCrossentropy()(labels, logits)), rtol=1e-6
    )


def test_easy_negatives_below_the_margin_cost_nothing():
    # p = σ(−4) ≈ 0.018 < m = 0.05: p_m = 1, so the negative contributes 0 (and no gradient).
    labels = np.zeros((1, 3), "float32")
    logits = tf.constant([[-4.0, -5.0, -6.0]])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = AsymmetricLoss(0.0, 4.0, 0.05)(labels, logits)
    assert float(value) == 0.0
    np.testing.assert_array_equal(tape.gradient(value, logits).numpy(), 0.0)


def test_focusing_weights_carry_no_gradient():
    # With clip 0 and γ+ = 0: a positive's gradient is −(1 − p); a negative's, with the weight
    # p^γ− held constant, is p^γ− · p (d/dz of −log(1 − p) is p).
    labels = np.array([[1.0, 0.0, 0.0]], "float32")
    z = np.array([[0.3, 1.2, -0.7]], "float32")
    logits = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(logits)
        value = AsymmetricLoss(0.0, 2.0, 0.0)(labels, logits)
    p = 1 / (1 + np.exp(-z.astype(np.float64)))
    expected = np.where(labels == 1, -(1 - p), p**2 * p)
    np.testing.assert_allclose(tape.gradient(value, logits).numpy(), expected, rtol=1e-5)


def test_finite_for_extreme_logits():
    labels = np.array([[1.0, 0.0, 1.0, 0.0]], "float32")
    logits = np.array([[-200.0, 200.0, 200.0, -200.0]], "float32")
    for clip in (0.0, 0.05):
        assert np.isfinite(float(AsymmetricLoss(0.0, 4.0, clip)(labels, logits)))


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="ASL"):
        AsymmetricLoss(0.0, -1.0, 0.05)
    with pytest.raises(ValueError, match="ASL"):
        AsymmetricLoss(0.0, 4.0, 1.0)


def test_config_round_trip():
    loss = AsymmetricLoss(1.0, 3.0, 0.1, detach_focusing=False)
    restored = keras.losses.deserialize(keras.losses.serialize(loss))
    assert isinstance(restored, AsymmetricLoss)
    assert (restored.gamma_pos, restored.gamma_neg, restored.clip, restored.detach_focusing) == (1.0, 3.0, 0.1, False)
