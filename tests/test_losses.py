"""Eq. 12 (corrected) against numpy and against Keras' own binary cross-entropy."""

import keras
import numpy as np

from cma_tf.losses import WeightedBinaryCrossentropy

RNG = np.random.default_rng(3)


def numpy_weighted_bce(labels, logits, p, beta):
    y_star = 1 / (1 + np.exp(-logits.astype(np.float64)))
    w = labels * np.exp(beta * (1 - p)) + (1 - labels) * np.exp(beta * p)
    per_example = -(w * (labels * np.log(y_star) + (1 - labels) * np.log(1 - y_star))).sum(-1)
    return per_example.mean()


def test_matches_numpy_with_beta():
    labels = (RNG.random((8, 5)) < 0.3).astype("float32")
    logits = RNG.normal(scale=2, size=(8, 5)).astype("float32")
    p = RNG.uniform(0.01, 0.6, 5)
    loss = WeightedBinaryCrossentropy(p, beta=0.4)
    np.testing.assert_allclose(float(loss(labels, logits)), numpy_weighted_bce(labels, logits, p, 0.4), rtol=1e-5)


def test_beta_zero_is_keras_bce_summed_over_classes():
    labels = (RNG.random((6, 7)) < 0.5).astype("float32")
    logits = RNG.normal(size=(6, 7)).astype("float32")
    keras_mean = keras.losses.BinaryCrossentropy(from_logits=True)(labels, logits)
    np.testing.assert_allclose(float(WeightedBinaryCrossentropy()(labels, logits)), 7 * float(keras_mean), rtol=1e-5)


def test_finite_for_extreme_logits():
    labels = np.array([[1.0, 0.0]], "float32")
    logits = np.array([[-200.0, 200.0]], "float32")
    value = float(WeightedBinaryCrossentropy()(labels, logits))
    np.testing.assert_allclose(value, 400.0, rtol=1e-5)


def test_config_round_trip():
    loss = WeightedBinaryCrossentropy([0.1, 0.2], beta=0.4)
    assert WeightedBinaryCrossentropy.from_config(loss.get_config()).get_config() == loss.get_config()
