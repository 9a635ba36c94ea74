"""Eq. 6-11 layers against numpy re-derivations."""

import keras
import numpy as np
import pytest

from cma_tf.layers.cross_modality import CrossModalityAttention, CrossModalityTransformer, PerClassClassifier
from cma_tf.layers.fusion import MultiScaleScoreFusion
from cma_tf.layers.residual import BottleneckBlock
from cma_tf.layers.self_attention import SelfAttentionPooling
from tests.helpers import numpy_batch_norm, randomize_batch_norm, run_layer_serialization_test

RNG = np.random.default_rng(0)


def numpy_cma(features, projected, embeddings, eps=1e-6):
    """Eq. 7-9 written out position by position."""
    b, c = features.shape[0], features.shape[-1]
    visual = features.reshape(b, -1, c)
    semantic = projected.reshape(b, -1, projected.shape[-1])
    n, m = embeddings.shape[0], visual.shape[1]
    pooled = np.zeros((b, n, c))
    attention = np.zeros((b, n, m))
    for bi in range(b):
        for k in range(n):
            e = embeddings[k]
            z = np.array([
                max(0.0, semantic[bi, i] @ e / max(np.linalg.norm(semantic[bi, i]), eps) / max(np.linalg.norm(e), eps))
                for i in range(m)
            ])
            a = z / max(z.sum(), eps)
            attention[bi, k] = a
            pooled[bi, k] = (a[:, None] * visual[bi]).sum(0)
    return pooled, attention


@pytest.mark.parametrize("shape", [(2, 4, 5, 6), (3, 7, 6)])  # image map and video sequence
def test_cma_matches_numpy(shape):
    features = RNG.normal(size=shape).astype("float32")
    projected = RNG.normal(size=shape[:-1] + (8,)).astype("float32")
    embeddings = RNG.normal(size=(5, 8)).astype("float32")
    layer = CrossModalityAttention()
    pooled, attention = layer(features, projected, embeddings, return_attention=True)
    expected_pooled, expected_attention = numpy_cma(features, projected, embeddings)
    np.testing.assert_allclose(np.asarray(pooled), expected_pooled, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(attention), expected_attention, rtol=1e-4, atol=1e-6)
    assert layer.compute_output_shape(shape, projected.shape, embeddings.shape) == (shape[0], 5, shape[-1])
    run_layer_serialization_test(layer, features, projected, embeddings)


def test_cma_all_zero_scores_give_zero_not_nan():
    """A label whose embedding is negative against every (non-negative) position: z = 0 everywhere."""
    features = RNG.normal(size=(2, 3, 3, 4)).astype("float32")
    projected = np.abs(RNG.normal(size=(2, 3, 3, 6))).astype("float32")
    embeddings = np.stack([np.abs(RNG.normal(size=6)), -np.abs(RNG.normal(size=6)) - 0.1]).astype("float32")
    pooled, attention = CrossModalityAttention()(features, projected, embeddings, return_attention=True)
    pooled, attention = np.asarray(pooled), np.asarray(attention)
    assert np.all(np.isfinite(pooled))
    np.testing.assert_array_equal(pooled[:, 1], 0.0)
    np.testing.assert_array_equal(attention[:, 1], 0.0)
    np.testing.assert_allclose(attention[:, 0].sum(-1), 1.0, rtol=1e-5)


def test_cmt_matches_numpy_in_inference_mode():
    x = RNG.normal(size=(2, 5, 5, 12)).astype("float32")
    layer = CrossModalityTransformer(units=6, num_layers=2)
    layer.build(x.shape)
    randomize_batch_norm(layer, RNG)
    expected = x
    for conv, norm in layer.stages:
        expected = np.maximum(numpy_batch_norm(expected @ np.asarray(conv.kernel), norm), 0)
    np.testing.assert_allclose(np.asarray(layer(x, training=False)), expected, rtol=1e-4, atol=1e-5)
    assert layer.compute_output_shape(x.shape) == (2, 5, 5, 6)
    run_layer_serialization_test(layer, x, training=False)


def test_per_class_classifier_is_a_grouped_linear():
    pooled = RNG.normal(size=(3, 5, 7)).astype("float32")
    layer = PerClassClassifier(5, bias_initializer="random_normal")
    logits = np.asarray(layer(pooled))
    w, b = np.asarray(layer.kernel), np.asarray(layer.bias)
    expected = np.array([[pooled[i, k] @ w[k] + b[k] for k in range(5)] for i in range(3)])
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    run_layer_serialization_test(layer, pooled)


def test_self_attention_matches_numpy():
    features = RNG.normal(size=(2, 3, 4, 6)).astype("float32")
    layer = SelfAttentionPooling(4)
    pooled = np.asarray(layer(features))
    w, b = np.asarray(layer.score_conv.kernel), np.asarray(layer.score_conv.bias)
    visual = features.reshape(2, -1, 6)
    z = 1 / (1 + np.exp(-(visual @ w + b)))  # [B, M, N]
    a = z / z.sum(1, keepdims=True)
    expected = np.einsum("bmn,bmc->bnc", a, visual)
    np.testing.assert_allclose(pooled, expected, rtol=1e-4, atol=1e-5)
    run_layer_serialization_test(layer, features)


def test_fusion_is_the_mean_of_probabilities():
    logits = [RNG.normal(scale=4, size=(4, 6)).astype("float32") for _ in range(3)]
    logits[0][0, 0], logits[1][0, 0], logits[2][0, 0] = 60.0, -60.0, 0.0  # extreme, still finite
    fused = np.asarray(MultiScaleScoreFusion()(logits), np.float64)
    sigmoid = lambda v: 1 / (1 + np.exp(-np.asarray(v, np.float64)))  # noqa: E731
    mean_probability = np.mean([sigmoid(l) for l in logits], axis=0)
    np.testing.assert_allclose(sigmoid(fused), mean_probability, rtol=1e-5, atol=1e-6)
    assert np.all(np.isfinite(fused))


def test_bottleneck_block_builds_i3_shape():
    block = BottleneckBlock(filters=128, strides=2)
    assert block.compute_output_shape((None, 14, 14, 2048)) == (None, 7, 7, 512)
    x = RNG.normal(size=(1, 6, 6, 16)).astype("float32")
    small = BottleneckBlock(filters=4, strides=2)
    assert tuple(small(x).shape) == (1, 3, 3, 16)
    run_layer_serialization_test(small, x, training=False)


def test_caffe_normalization_matches_keras_resnet_preprocess_input():
    """The backbone's own normalisation equals keras.applications.resnet.preprocess_input."""
    from cma_tf.backbones.preprocessing import CaffeImageNormalization

    images = RNG.uniform(0, 255, (2, 5, 4, 3)).astype("float32")
    expected = keras.applications.resnet.preprocess_input(images.copy())
    np.testing.assert_allclose(np.asarray(CaffeImageNormalization()(images)), expected, rtol=1e-5, atol=1e-4)
