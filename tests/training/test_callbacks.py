"""`predict_scores`: σ(logits) of a model over a dataset, exact and without overflow warnings."""

import math
import warnings

import keras
import numpy as np
import tensorflow as tf

from cma_tf.training.callbacks import predict_scores

LOGITS = np.array([[-1000.0, -80.0, -3.5, 0.0], [2.25, 40.0, 710.0, 1000.0]], np.float32)


def reference_sigmoid(x):
    """σ(x) one value at a time, each side written so it cannot overflow."""
    x = float(x)
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def identity_model():
    inputs = keras.Input((LOGITS.shape[1],))
    return keras.Model(inputs, keras.layers.Identity()(inputs))


def test_scores_of_extreme_logits_are_exact_and_warn_nothing():
    """ML-GCN's logits reach ±1000: np.exp(-logits) overflowed and its RuntimeWarning broke
    into the progress bar."""
    labels = (LOGITS > 0).astype(np.int64)
    weights = np.array([[1, 0, 1, 1], [1, 1, 0, 1]], np.float32)
    expected = np.vectorize(reference_sigmoid)(LOGITS.astype(np.float64))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores, targets = predict_scores(identity_model(), tf.data.Dataset.from_tensors((LOGITS, labels)))
        weighted, _ = predict_scores(identity_model(), tf.data.Dataset.from_tensors((LOGITS, labels, weights)))
    np.testing.assert_allclose(scores, expected, rtol=1e-12, atol=0)
    np.testing.assert_array_equal(targets, labels)
    np.testing.assert_allclose(weighted, expected * weights, rtol=1e-12, atol=0)
