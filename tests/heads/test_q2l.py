"""Query2Label (Liu et al., 2021): the sine encoding against DETR's formula, the whole head against
a numpy re-derivation (encoder, query decoder with and without self-attention, group-wise
linear), and the head in a classifier (shapes, video, `.keras` round trip, training, defaults)."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_base_config
from cma_tf.heads.q2l import Query2LabelHead
from cma_tf.heads.registry import get_head
from cma_tf.layers.transformer import sine_positional_encoding
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

NUM_CLASSES = 4
RNG = np.random.default_rng(0)


def detr_position_embedding_sine(height, width, num_pos_feats, temperature=10000.0):
    """DETR's `PositionEmbeddingSine(normalize=True).forward` on an all-valid mask, as written
    there (cumsum of the mask, stack of sin/cos then flatten), returned `[H·W, 2·num_pos_feats]`."""
    not_mask = np.ones((1, height, width))
    y_embed, x_embed = not_mask.cumsum(1), not_mask.cumsum(2)
    eps, scale = 1e-6, 2 * math.pi
    y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
    x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
    dim_t = np.arange(num_pos_feats)
    dim_t = temperature ** (2 * (dim_t // 2) / num_pos_feats)
    pos_x, pos_y = x_embed[:, :, :, None] / dim_t, y_embed[:, :, :, None] / dim_t
    pos_x = np.stack((np.sin(pos_x[:, :, :, 0::2]), np.cos(pos_x[:, :, :, 1::2])), axis=4).reshape(1, height, width, -1)
    pos_y = np.stack((np.sin(pos_y[:, :, :, 0::2]), np.cos(pos_y[:, :, :, 1::2])), axis=4).reshape(1, height, width, -1)
    return np.concatenate((pos_y, pos_x), axis=3).reshape(height * width, -1)


def test_the_sine_encoding_is_detrs():
    np.testing.assert_allclose(sine_positional_encoding((3, 5), 16), detr_position_embedding_sine(3, 5, 8), atol=1e-6)
    np.testing.assert_allclose(sine_positional_encoding((14, 14), 2048), detr_position_embedding_sine(14, 14, 1024),
                               atol=1e-5)
    # A sequence: the same formula along its one axis, all features for it.
    np.testing.assert_allclose(sine_positional_encoding((6,), 8), detr_position_embedding_sine(1, 6, 8)[:, 8:], atol=1e-6)
    with pytest.raises(ValueError, match="divisible by 4"):
        sine_positional_encoding((3, 3), 6)


def np_feed_forward(x, layer):
    hidden = np.maximum(numpy_dense(x, layer.ffn_hidden), 0.0)
    return numpy_layer_norm(x + numpy_dense(hidden, layer.ffn_output), layer.ffn_norm)


def np_query2label(head, features):
    """The head in inference mode, written out from its weights in float64."""
    visual = numpy_dense(features.astype(np.float64), head.projection)
    batch, units = visual.shape[0], visual.shape[-1]
    positions = detr_position_embedding_sine(visual.shape[1], visual.shape[2], units // 2)
    memory = visual.reshape(batch, -1, units)
    for layer in head.encoder:
        keyed = memory + positions
        attended, _ = numpy_multi_head_attention(layer.attention, keyed, memory, key=keyed)
        memory = np_feed_forward(numpy_layer_norm(memory + attended, layer.attention_norm), layer)
    queries = np.asarray(head.queries, np.float64)
    targets = np.zeros((batch,) + queries.shape)
    for layer in head.decoder:
        if layer.self_attention:
            keyed = targets + queries
            attended, _ = numpy_multi_head_attention(layer.self_attention_block, keyed, targets, key=keyed)
            targets = numpy_layer_norm(targets + attended, layer.self_attention_norm)
        attended, attention = numpy_multi_head_attention(
            layer.cross_attention, targets + queries, memory, key=memory + positions
        )
        targets = np_feed_forward(numpy_layer_norm(targets + attended, layer.cross_attention_norm), layer)
    hidden = numpy_layer_norm(targets, head.decoder_norm)
    kernel, bias = (np.asarray(w, np.float64) for w in (head.classifier.kernel, head.classifier.bias))
    return (hidden * kernel).sum(-1) + bias, attention


@pytest.mark.parametrize("self_attention", [False, True], ids=["released", "with_self_attention"])
def test_head_matches_numpy(self_attention):
    head = Query2LabelHead(
        NUM_CLASSES, feature_channels=8, transformer_heads=2, transformer_ffn_units=12, encoder_layers=1,
        decoder_layers=2, decoder_self_attention=self_attention,
    )
    features = RNG.normal(size=(3, 3, 4, 16)).astype("float32")
    logits, attention = head([features], return_attention=True)
    expected_logits, expected_attention = np_query2label(head, features)
    np.testing.assert_allclose(np.asarray(logits), expected_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(attention[0]), expected_attention, rtol=1e-4, atol=1e-5)
    assert attention[0].shape == (3, NUM_CLASSES, 12)
    assert hasattr(head.decoder[0], "self_attention_block") == self_attention


def np_pre_norm_feed_forward(x, layer):
    """DETR's `forward_pre` feed-forward: `x + W₂ ReLU(W₁ LN(x))` (dropout off)."""
    hidden = np.maximum(numpy_dense(numpy_layer_norm(x, layer.ffn_norm), layer.ffn_hidden), 0.0)
    return x + numpy_dense(hidden, layer.ffn_output)


def np_query2label_pre_norm(head, features):
    """The head with `normalize_before=True`, written out from DETR's / query2labels'
    `TransformerEncoderLayer.forward_pre`, `TransformerDecoderLayer.forward_pre`, the encoder's
    final norm (`encoder_norm`, built only when pre-norm) and the decoder's (always), in float64."""
    visual = numpy_dense(features.astype(np.float64), head.projection)
    batch, units = visual.shape[0], visual.shape[-1]
    pos = detr_position_embedding_sine(visual.shape[1], visual.shape[2], units // 2)
    src = visual.reshape(batch, -1, units)
    for layer in head.encoder:
        src2 = numpy_layer_norm(src, layer.attention_norm)  # norm1
        q = src2 + pos
        src = src + numpy_multi_head_attention(layer.attention, q, src2, key=q)[0]  # value = src2
        src = np_pre_norm_feed_forward(src, layer)  # norm2
    memory = numpy_layer_norm(src, head.encoder_norm)
    query_pos = np.asarray(head.queries, np.float64)
    tgt = np.zeros((batch,) + query_pos.shape)
    for layer in head.decoder:
        if layer.self_attention:
            tgt2 = numpy_layer_norm(tgt, layer.self_attention_norm)  # norm1
            q = tgt2 + query_pos
            tgt = tgt + numpy_multi_head_attention(layer.self_attention_block, q, tgt2, key=q)[0]
        tgt2 = numpy_layer_norm(tgt, layer.cross_attention_norm)  # norm2
        attended, attention = numpy_multi_head_attention(layer.cross_attention, tgt2 + query_pos, memory, key=memory + pos)
        tgt = np_pre_norm_feed_forward(tgt + attended, layer)  # norm3
    hidden = numpy_layer_norm(tgt, head.decoder_norm)
    kernel, bias = (np.asarray(w, np.float64) for w in (head.classifier.kernel, head.classifier.bias))
    return (hidden * kernel).sum(-1) + bias, attention


@pytest.mark.parametrize("self_attention", [False, True], ids=["released", "with_self_attention"])
def test_pre_norm_matches_detrs_forward_pre(self_attention):
    head = Query2LabelHead(
        NUM_CLASSES, feature_channels=8, transformer_heads=2, transformer_ffn_units=12, encoder_layers=2,
        decoder_layers=2, decoder_self_attention=self_attention, pre_norm=True,
    )
    features = RNG.normal(size=(3, 3, 4, 16)).astype("float32")
    head([features])
    # Every LayerNorm gets its own scale and offset, so a norm read in the wrong place shows.
    norms = [w for w in head.weights if w.path.endswith(("/gamma", "/beta"))]
    assert len(norms) == 2 * (2 * 2 + 2 * (3 if self_attention else 2) + 2)  # + the encoder's and decoder's final norms
    for weight in norms:
        weight.assign(RNG.uniform(0.5, 1.5, weight.shape) if weight.path.endswith("gamma") else RNG.normal(0, 0.3, weight.shape))
    logits, attention = head([features], return_attention=True)
    expected_logits, expected_attention = np_query2label_pre_norm(head, features)
    np.testing.assert_allclose(np.asarray(logits), expected_logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(attention[0]), expected_attention, rtol=1e-4, atol=1e-5)
    post_norm = np_query2label(head, features)[0]  # the same weights read post-norm give other logits
    assert np.abs(post_norm - expected_logits).max() > 1e-2
    assert Query2LabelHead.from_config(head.get_config()).pre_norm


def test_post_norm_has_no_encoder_norm_and_pre_norm_without_encoder_has_none():
    """DETR builds the encoder's final norm only with `normalize_before`; with no encoder layer
    the memory is the projected map itself."""
    features = np.zeros((1, 2, 2, 8), "float32")
    post = Query2LabelHead(NUM_CLASSES, transformer_heads=2)
    post([features])
    assert post.encoder_norm is None and not any("encoder_norm" in w.path for w in post.weights)
    bare = Query2LabelHead(NUM_CLASSES, transformer_heads=2, encoder_layers=0, pre_norm=True)
    bare([features])
    assert bare.encoder_norm is None


def test_the_released_defaults_and_the_classifier_start():
    head = Query2LabelHead(NUM_CLASSES)
    head([np.zeros((1, 2, 2, 64), "float32")])
    assert head.units == 64  # no input projection: d is the backbone's channels (2048 for ResNet-101)
    assert len(head.encoder) == 1 and len(head.decoder) == 2
    layer = head.decoder[0]
    assert (layer.num_heads, layer.ffn_units, layer.dropout, layer.self_attention) == (4, 256, 0.1, False)
    assert layer.cross_attention_norm.epsilon == 1e-5
    assert np.abs(np.asarray(head.classifier.kernel)).max() <= 1 / 8 and np.abs(np.asarray(head.classifier.bias)).max() > 0
    spec = get_head("q2l")
    assert spec.options == (
        "feature_channels", "transformer_heads", "transformer_ffn_units", "transformer_dropout",
        "encoder_layers", "decoder_layers", "decoder_self_attention", "pre_norm", "init",
    )
    with pytest.raises(ValueError, match="decoder_layers ≥ 1"):
        Query2LabelHead(NUM_CLASSES, decoder_layers=0)


def tiny_config(backbone="small", **model):
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = "q2l", backbone, None
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.feature_channels, config.model.transformer_heads = 8, 2
    config.model.transformer_dropout = 0.0  # a train step then descends the loss the test measures
    for field, value in model.items():
        config.model[field] = value
    return config


def tiny_model(**options):
    model = factory.build_classifier(tiny_config(**options), NUM_CLASSES)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=AsymmetricLoss(0.0, 2.0, 0.0))
    return model


def batch(size=4):
    return tiny_batch(RNG, NUM_CLASSES, size)


@pytest.mark.parametrize("options", [pytest.param({}, id="released", marks=pytest.mark.slow),
                                     pytest.param({"pre_norm": True, "init": "official"}, id="pre_norm_official")])
def test_keras_round_trip(tmp_path, options):
    model = tiny_model(**options)
    images, labels = batch()
    model.train_step((images, labels))
    restored = run_model_saving_test(model, images, tmp_path)
    assert restored.head.get_config() == model.head.get_config()
    assert (restored.head.encoder_norm is not None) == bool(options)


def test_a_train_step_lowers_the_loss_and_reaches_every_head_weight():
    model = tiny_model()
    model.backbone.trainable = False  # then compile again: the step must see the frozen backbone
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=AsymmetricLoss(0.0, 2.0, 0.0))
    images, labels = batch(8)
    loss = AsymmetricLoss(0.0, 2.0, 0.0)
    with tf.GradientTape() as tape:
        before = loss(labels, model(images, training=False))
    gradients = tape.gradient(before, model.head.trainable_weights)
    assert any(w.path.endswith("queries") for w in model.head.trainable_weights)  # learnable, as released
    assert all(g is not None for g in gradients)
    for _ in range(5):
        model.train_step((images, labels))
    assert float(loss(labels, model(images, training=False))) < float(before)


def test_a_video_head_over_snet_positions():
    config = get_base_config()
    config.data.format, config.data.feature_names, config.data.frames = "yt8m_frame", ("rgb", "audio"), 64
    config.model.head, config.model.backbone, config.model.snet_filters = "q2l", "snet", (8, 8, 8, 8)
    config.model.feature_channels, config.model.transformer_heads = 8, 2
    model = factory.build_classifier(config, NUM_CLASSES)
    frames = RNG.normal(size=(2, 64, 1024 + 128)).astype("float32")
    logits, attention = model.head(model.backbone(frames), return_attention=True)
    # SNet pools time by 16: 4 positions, each with a 1-D sine position.
    assert logits.shape == (2, NUM_CLASSES) and attention[0].shape == (2, NUM_CLASSES, 4)
