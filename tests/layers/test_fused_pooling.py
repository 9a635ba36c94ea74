"""Eq. 9-10 fused (`PerClassClassifier` given the attention and `I` instead of `h`): the same
logits and gradients as pooling `h` first, against numpy and against the unfused layers, for
the CMA and self-attention heads, image maps and video sequences."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.cma import CMABranch
from cma_tf.heads.self_attention import SelfAttentionHead
from cma_tf.layers.cross_modality import PerClassClassifier

RNG = np.random.default_rng(0)


def softmax_attention(b, n, m):
    scores = RNG.normal(size=(b, n, m))
    return (np.exp(scores) / np.exp(scores).sum(-1, keepdims=True)).astype("float32")


@pytest.mark.parametrize("feature_shape", [(3, 4, 5, 6), (3, 7, 6)])  # image map, video sequence
def test_fused_classifier_matches_numpy_and_the_unfused_one_with_gradients(feature_shape):
    b, c = feature_shape[0], feature_shape[-1]
    m, n = int(np.prod(feature_shape[1:-1])), 9
    attention = tf.Variable(softmax_attention(b, n, m))
    features = tf.Variable(RNG.normal(size=feature_shape).astype("float32"))
    classifier = PerClassClassifier(n, bias_initializer="random_normal")
    classifier.build((b, n, c))
    kernel, bias = classifier.kernel.numpy(), classifier.bias.numpy()

    visual = features.numpy().reshape(b, m, c)
    expected = np.einsum("bnm,bmc,nc->bn", attention.numpy(), visual, kernel) + bias  # Σ_i a_k^i w_k·I^i + b_k
    sources = [attention, features, classifier.kernel, classifier.bias]
    with tf.GradientTape(persistent=True) as tape:
        fused = classifier(attention, features=features)
        pooled = tf.einsum("bnm,bmc->bnc", attention, tf.reshape(features, (b, m, c)))
        unfused = classifier(pooled)
        weights = tf.constant(RNG.normal(size=(b, n)).astype("float32"))
        fused_loss, unfused_loss = tf.reduce_sum(fused * weights), tf.reduce_sum(unfused * weights)
    np.testing.assert_allclose(fused.numpy(), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(tape.gradient(fused_loss, sources), tape.gradient(unfused_loss, sources)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def unfused_branch_logits(branch, features, embeddings, training):
    """Eq. 6-10 the long way: `h` from the attention layer, then the classifier on `h`."""
    visual = branch.projection(features)
    semantic = branch.cmt(visual, training=training)
    return branch.classifier(branch.attention(visual, semantic, embeddings))


def unfused_self_attention_logits(head, features):
    return head.classifier(head.attention(head.projection(features[-1])))


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("feature_shape", [(2, 6, 6, 12), (2, 19, 12)])
def test_cma_branch_answers_and_trains_as_before(feature_shape, training):
    encoder = ASGEEncoder(7, units=8)
    branch = CMABranch(7, 8, feature_channels=10)
    features = RNG.normal(size=feature_shape).astype("float32")
    branch.build(feature_shape)
    embeddings = encoder.all_embeddings(training=False)
    weights = branch.trainable_weights
    assert len(weights) > 4
    with tf.GradientTape(persistent=True) as tape:
        fused = branch(features, embeddings, training=training)
        unfused = unfused_branch_logits(branch, features, embeddings, training)
        fused_loss, unfused_loss = tf.reduce_sum(tf.sin(fused)), tf.reduce_sum(tf.sin(unfused))
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(tape.gradient(fused_loss, weights), tape.gradient(unfused_loss, weights)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("feature_shape", [(2, 6, 6, 12), (2, 19, 12)])
def test_self_attention_head_answers_and_trains_as_before(feature_shape):
    head = SelfAttentionHead(7, feature_channels=10)
    features = [RNG.normal(size=feature_shape).astype("float32")]
    head.build([feature_shape])
    weights = head.trainable_weights
    with tf.GradientTape(persistent=True) as tape:
        fused = head(features, training=True)
        unfused = unfused_self_attention_logits(head, features)
        fused_loss, unfused_loss = tf.reduce_sum(tf.sin(fused)), tf.reduce_sum(tf.sin(unfused))
    np.testing.assert_allclose(fused.numpy(), unfused.numpy(), rtol=1e-5, atol=1e-5)
    for got, want in zip(tape.gradient(fused_loss, weights), tape.gradient(unfused_loss, weights)):
        np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-4, atol=1e-5)


def test_attention_maps_and_per_class_vectors_are_still_there():
    """Visualisation asks the heads for `a`, and the attention layer still gives `h`."""
    branch = CMABranch(7, 8)
    features = RNG.normal(size=(2, 5, 5, 12)).astype("float32")
    embeddings = ASGEEncoder(7, units=8).all_embeddings(training=False)
    logits, attention = branch(features, embeddings, return_attention=True)
    assert tuple(logits.shape) == (2, 7) and tuple(attention.shape) == (2, 7, 25)
    np.testing.assert_allclose(np.asarray(attention).sum(-1), 1.0, rtol=1e-5)
    visual = branch.projection(features)
    pooled = branch.attention(visual, branch.cmt(visual), embeddings)
    assert tuple(pooled.shape) == (2, 7, 12)
    assert keras.ops.convert_to_numpy(pooled).std() > 0
