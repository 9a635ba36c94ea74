"""ML-Decoder (Ridnik et al., WACV 2023): group decoding against a numpy re-derivation (K < N, so
every query answers for several labels and the last group is cut), the released defaults, the
head in a classifier (`.keras` round trip, training), and the video head at YouTube-8M's 3,862
labels over SNet."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_base_config, get_paper_video_config
from cma_tf.heads.ml_decoder import MLDecoderHead
from cma_tf.heads.registry import get_head
from cma_tf.losses import AsymmetricLoss
from tests.helpers import (
    TINY_IMAGE_SIZE,
    TINY_WIDTHS,
    numpy_dense,
    numpy_layer_norm,
    numpy_multi_head_attention,
    run_model_saving_test,
    tiny_batch,
)

NUM_CLASSES = 5
RNG = np.random.default_rng(0)


def np_ml_decoder(head, features):
    """The head in inference mode from its weights (dropout is the identity, so the released
    `tgt + dropout1(tgt)` is `2·tgt`), float64."""
    memory = numpy_dense(features.astype(np.float64).reshape(features.shape[0], -1, features.shape[-1]), head.embedding)
    tokens = np.broadcast_to(np.asarray(head.queries, np.float64), (features.shape[0],) + tuple(head.queries.shape))
    for layer in head.decoder:
        x = numpy_layer_norm(2.0 * tokens, layer.query_norm)
        attended, attention = numpy_multi_head_attention(layer.attention, x, memory)
        x = numpy_layer_norm(x + attended, layer.attention_norm)
        hidden = np.maximum(numpy_dense(x, layer.ffn_hidden), 0.0)
        tokens = numpy_layer_norm(x + numpy_dense(hidden, layer.ffn_output), layer.ffn_norm)
    kernel = np.asarray(head.classifier.kernel, np.float64)  # [K, d, g]
    groups, _, per_group = kernel.shape
    logits = np.zeros((features.shape[0], groups * per_group))
    for k in range(groups):  # query k answers for labels k·g … k·g + g − 1
        logits[:, k * per_group:(k + 1) * per_group] = tokens[:, k] @ kernel[k]
    return logits[:, :NUM_CLASSES] + np.asarray(head.classifier.bias, np.float64), attention


@pytest.mark.parametrize("groups", [NUM_CLASSES, 2], ids=["one_query_per_label", "groups_of_3"])
def test_head_matches_numpy(groups):
    head = MLDecoderHead(NUM_CLASSES, feature_channels=8, transformer_heads=2, transformer_ffn_units=12,
                         decoder_groups=groups)
    features = RNG.normal(size=(3, 3, 4, 16)).astype("float32")
    logits, attention = head([features], return_attention=True)
    expected_logits, expected_attention = np_ml_decoder(head, features)
    np.testing.assert_allclose(np.asarray(logits), expected_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(attention[0]), expected_attention, rtol=1e-4, atol=1e-5)
    assert head.classifier.kernel.shape == (groups, 8, -(-NUM_CLASSES // groups))


def test_the_released_defaults():
    head = MLDecoderHead(NUM_CLASSES)
    head([np.zeros((1, 2, 2, 32), "float32")])
    layer = head.decoder[0]
    assert (head.units, head.groups, len(head.decoder)) == (768, NUM_CLASSES, 1)
    assert (layer.num_heads, layer.ffn_units, layer.dropout, layer.query_norm.epsilon) == (8, 2048, 0.1, 1e-5)
    assert not head.queries.trainable and not any(w is head.queries for w in head.trainable_weights)  # frozen random queries
    assert MLDecoderHead(3862).groups == 100 and MLDecoderHead(80).groups == 80
    assert np.all(np.asarray(head.classifier.bias) == 0)
    assert get_head("ml_decoder").options == (
        "feature_channels", "transformer_heads", "transformer_ffn_units", "transformer_dropout",
        "decoder_layers", "decoder_groups", "init",
    )
    with pytest.raises(ValueError, match="decoder_groups ≤ 5"):
        MLDecoderHead(NUM_CLASSES, decoder_groups=6)


def tiny_model():
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = "ml_decoder", "small", None
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.feature_channels, config.model.transformer_heads, config.model.decoder_groups = 8, 2, 3
    config.model.transformer_dropout = 0.0  # a train step then descends the loss the test measures
    model = factory.build_classifier(config, NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=AsymmetricLoss())
    return model


def batch(size=4):
    return tiny_batch(RNG, NUM_CLASSES, size)


def test_keras_round_trip_keeps_the_frozen_queries(tmp_path):
    model = tiny_model()
    images, labels = batch()
    queries = np.copy(model.head.queries)
    model.train_step((images, labels))
    np.testing.assert_array_equal(np.asarray(model.head.queries), queries)  # not trained
    restored = run_model_saving_test(model, images, tmp_path)
    np.testing.assert_array_equal(np.asarray(restored.head.queries), queries)
    assert restored.head.get_config() == model.head.get_config()


def test_a_train_step_lowers_the_loss():
    model = tiny_model()
    model.backbone.trainable = False  # then compile again: the step must see the frozen backbone
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss=AsymmetricLoss())
    images, labels = batch(8)
    loss = AsymmetricLoss()
    with tf.GradientTape() as tape:
        before = loss(labels, model(images, training=False))
    assert all(g is not None for g in tape.gradient(before, model.head.trainable_weights))
    for _ in range(5):
        model.train_step((images, labels))
    assert float(loss(labels, model(images, training=False))) < float(before)


def test_the_youtube8m_head_at_3862_labels_over_snet():
    """`configs/yt8m.py:ml_decoder_snet` as configured (SNet 1024 wide, d = 768, 100 queries of
    39 labels each), on 300 frames: logits for every label, finite and not constant."""
    config = get_paper_video_config("ml_decoder_snet")
    model = factory.build_classifier(config, 3862)
    assert model.head.classifier.kernel.shape == (100, 768, 39)
    frames = RNG.normal(size=(2, 300, 1024)).astype("float32")
    logits, attention = model.head(model.backbone(frames), return_attention=True)
    logits = np.asarray(logits)
    assert logits.shape == (2, 3862) and np.all(np.isfinite(logits)) and logits.std() > 0
    assert attention[0].shape == (2, 100, 19)  # SNet: 300 frames → 19 positions
