"""HSVLT (Ouyang et al., ACM MM 2023): the interaction block (IVLA as released) and the head
against numpy re-derivations; the head in a classifier (shapes, `.keras` round trip, training);
the ConvNeXt-S backbone's four taps."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from scipy.special import erf

from cma_tf import factory
from cma_tf.backbones.convnext import CONVNEXT_SMALL_DEPTHS, convnext_small_backbone
from cma_tf.backbones.small import small_backbone
from cma_tf.config_base import get_base_config
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.hsvlt import HSVLTHead
from cma_tf.heads.registry import get_head
from cma_tf.layers.ivla import InteractionBlock
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS, run_model_saving_test

NUM_CLASSES = 4
EMBEDDING_DIM = 8
RNG = np.random.default_rng(0)


# === numpy re-derivation (float64) ===

def np_gelu(x):
    """The exact GELU, x·Φ(x), as PyTorch's `nn.GELU()`."""
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def np_layer_norm(x, gamma, beta, eps):
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + eps) * gamma + beta


def np_depthwise_same(x, kernel, bias):
    """Per-channel cross-correlation with zero padding (odd kernel), output the input's size;
    `x` is `[B, H, W, C]` with `kernel` `[kh, kw, C, 1]`, or `[B, T, C]` with `[k, C, 1]`."""
    if x.ndim == 3:  # a sequence is a 1×T map under a 1×k kernel
        return np_depthwise_same(x[:, None], kernel[None], bias)[:, 0]
    kh, kw = kernel.shape[:2]
    padded = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros_like(x)
    for i in range(x.shape[1]):
        for j in range(x.shape[2]):
            out[:, i, j, :] = (padded[:, i:i + kh, j:j + kw, :] * kernel[..., 0]).sum(axis=(1, 2))
    return out + bias


def np_dense(x, dense):
    y = x @ np.asarray(dense.kernel, np.float64)
    return y + np.asarray(dense.bias, np.float64) if dense.use_bias else y


def np_softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def np_interaction_block(block, visual, language):
    """IVLA as released (HSVLT `models/hsvlt.py`, `InteractionBlock` + `CrossAttention`)."""
    w = lambda v: np.asarray(v, np.float64)  # noqa: E731
    x = np_depthwise_same(visual, w(block.depthwise_kernel), w(block.depthwise_bias))
    x = np_layer_norm(x, w(block.norm.gamma), w(block.norm.beta), 1e-6)
    x = np_dense(np_gelu(np_dense(x, block.pointwise_expand)), block.pointwise_contract)
    visual = visual + w(block.layer_scale) * x
    b, c = visual.shape[0], visual.shape[-1]
    positions = visual.reshape(b, -1, c)
    q, k, v = np_dense(language, block.query), np_dense(positions, block.key), np_dense(positions, block.value)
    attention = np_softmax(q @ k.transpose(0, 2, 1) / math.sqrt(c))
    attended = np_dense(attention @ v, block.attention_output)
    multimodal = np_gelu(np_dense(np_gelu(np_dense(language, block.language_projection)) * attended,
                                  block.multimodal_projection))
    language = language + multimodal
    if block.gate_language:
        gate = np.tanh(np_dense(np.maximum(np_dense(language, block.gate_hidden), 0.0), block.gate_output))
        language = language + gate * language
    return visual, language, multimodal, attention


def np_hsvlt_head(head, taps, embeddings):
    """The head re-derived: per scale a 1×1 projection, the chained label tokens, the blocks;
    then every scale's last `S` side by side and one linear unit per class."""
    language = np.broadcast_to(embeddings, (taps[0].shape[0],) + embeddings.shape)
    multimodal, attention = [], []
    for stage, tap in zip(head.stages, taps):
        visual = np_dense(tap, stage.projection)
        language = np_dense(language, stage.language_projection)
        for block in stage.blocks:
            visual, language, s, a = np_interaction_block(block, visual, language)
        multimodal.append(s)
        attention.append(a)
    features = np.concatenate(multimodal, axis=-1)
    kernel, bias = np.asarray(head.classifier.kernel, np.float64), np.asarray(head.classifier.bias, np.float64)
    return (features * kernel).sum(-1) + bias, attention


def randomize(layer, rng, scale=0.4):
    """Every weight of `layer` to known random values (γ included, so the visual update counts)."""
    for weight in layer.weights:
        weight.assign(rng.normal(0.0, scale, weight.shape).astype("float32"))


# === the interaction block ===

@pytest.mark.parametrize("visual_shape", [(2, 3, 3, 8), (2, 5, 8)], ids=["image", "video"])
@pytest.mark.parametrize("gate_language", [True, False])
def test_interaction_block_matches_numpy(visual_shape, gate_language):
    visual = RNG.normal(size=visual_shape).astype("float32")
    language = RNG.normal(size=(2, 4, 8)).astype("float32")
    block = InteractionBlock(8, gate_language=gate_language)
    block.build(visual.shape, language.shape)
    randomize(block, RNG)
    outputs = [np.asarray(t) for t in block(visual, language, return_attention=True)]
    expected = np_interaction_block(block, visual.astype(np.float64), language.astype(np.float64))
    for name, got, want in zip(("visual", "language", "multimodal", "attention"), outputs, expected):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=name)
    assert (block.gate_hidden is None) == (not gate_language)
    assert block.compute_output_shape(visual.shape, language.shape) == (visual.shape, language.shape, language.shape)
    clone = InteractionBlock.from_config(block.get_config())
    clone.build(visual.shape, language.shape)
    clone.set_weights(block.get_weights())
    for got, want in zip(clone(visual, language), outputs):
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6, atol=1e-6)
    assert clone.get_config() == block.get_config()


def test_interaction_block_starts_as_the_released_one():
    """γ = 1e-6 (the visual update starts near identity); LayerNorm ε = 1e-6; no q/k/v bias."""
    block = InteractionBlock(8)
    block.build((2, 3, 3, 8), (2, 4, 8))
    np.testing.assert_array_equal(np.asarray(block.layer_scale), np.full(8, 1e-6, "float32"))
    assert block.norm.epsilon == 1e-6
    assert not (block.query.use_bias or block.key.use_bias or block.value.use_bias)
    assert tuple(block.depthwise_kernel.shape) == (7, 7, 8, 1)
    with pytest.raises(ValueError, match=r"language \[B, N, 8\]"):
        InteractionBlock(8)(np.zeros((1, 3, 3, 8), "float32"), np.zeros((1, 4, 6), "float32"))


# === the head ===

def label_encoder(trainable=False):
    encoder = ASGEEncoder(NUM_CLASSES, units=EMBEDDING_DIM, name="label_encoder")
    encoder.build()
    encoder.trainable = trainable
    return encoder


def tiny_model(**head_kwargs):
    head = HSVLTHead(NUM_CLASSES, label_encoder(), feature_channels=8, **head_kwargs)
    model = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), head)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss=WeightedBinaryCrossentropy())
    return model


def batch(n=4, rng=RNG):
    images = rng.uniform(0, 255, (n, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    labels = (rng.random((n, NUM_CLASSES)) < 0.4).astype("float32")
    return images, labels


@pytest.mark.parametrize(
    "tap_shapes",
    [
        [(2, 4, 4, 6), (2, 2, 2, 12)],  # ResNet-101 / small backbone: C4, C5
        [(2, 16, 16, 6), (2, 8, 8, 12), (2, 4, 4, 24), (2, 2, 2, 48)],  # ConvNeXt-S: four stages
        [(2, 6, 5), (2, 3, 7)],  # video sequences [B, T, C]
    ],
    ids=["2_taps", "4_taps", "video"],
)
def test_head_matches_numpy(tap_shapes):
    taps = [RNG.normal(size=shape).astype("float32") for shape in tap_shapes]
    head = HSVLTHead(NUM_CLASSES, label_encoder(), feature_channels=8, blocks_per_scale=2)
    head.build([t.shape for t in taps])
    for stage in head.stages:
        randomize(stage, RNG, scale=0.3)
    randomize(head.classifier, RNG)
    logits, attention = head(taps, return_attention=True)
    embeddings = np.asarray(head.label_embeddings(training=False), np.float64)
    expected_logits, expected_attention = np_hsvlt_head(head, [t.astype(np.float64) for t in taps], embeddings)
    np.testing.assert_allclose(np.asarray(logits), expected_logits, rtol=1e-5, atol=1e-5)
    assert len(attention) == len(taps)
    for got, want, tap in zip(attention, expected_attention, taps):
        assert tuple(got.shape) == (2, NUM_CLASSES, math.prod(tap.shape[1:-1]))
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-6)
    assert head.compute_output_shape([t.shape for t in taps]) == (2, NUM_CLASSES)
    # Only the last scale's last block drops the language gate (its updated L is read by nothing).
    gates = [block.gate_language for stage in head.stages for block in stage.blocks]
    assert gates == [True] * (len(gates) - 1) + [False]


def test_head_shapes_in_the_classifier_and_from_the_factory():
    model = tiny_model()
    images, _ = batch(3)
    assert model.predict(images, verbose=0).shape == (3, NUM_CLASSES)
    logits, attention = model.head(model.backbone(images), return_attention=True)
    assert tuple(logits.shape) == (3, NUM_CLASSES)
    side1, side2 = TINY_IMAGE_SIZE // 8, TINY_IMAGE_SIZE // 16  # the small backbone's two taps
    assert [tuple(a.shape) for a in attention] == [(3, NUM_CLASSES, side1**2), (3, NUM_CLASSES, side2**2)]
    np.testing.assert_allclose(np.asarray(attention[0]).sum(-1), 1.0, rtol=1e-5)
    # Symbolically, too (the functional classifier calls the head on KerasTensors).
    symbolic = model.head(model.backbone.outputs, return_attention=True)
    assert [tuple(a.shape) for a in symbolic[1]] == [(None, NUM_CLASSES, side1**2), (None, NUM_CLASSES, side2**2)]

    spec = get_head("hsvlt")
    assert (spec.layer, spec.label_embeddings, spec.taps, spec.options) == (
        HSVLTHead, True, 2, ("feature_channels", "blocks_per_scale", "init")
    )
    config = get_base_config()
    config.model.head, config.model.backbone = "hsvlt", "small"
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.feature_channels, config.asge.units = 8, EMBEDDING_DIM
    built = factory.build_classifier(config, NUM_CLASSES, factory.build_label_encoder(config, NUM_CLASSES))
    assert built.head.units == 8 and len(built.head.stages) == 2
    assert built(images).shape == (3, NUM_CLASSES)
    assert HSVLTHead(NUM_CLASSES, label_encoder(), feature_channels=None).units == 512


def test_keras_round_trip_keeps_the_label_encoder_frozen(tmp_path):
    model = tiny_model()
    images, labels = batch()
    model.train_step((images, labels))  # non-trivial BN statistics and moved weights before saving
    restored = run_model_saving_test(model, images, tmp_path)
    assert restored.head.get_config() == model.head.get_config()
    encoder = restored.head.label_encoder
    assert not encoder.trainable
    assert not any(w.path.startswith("label_encoder/") for w in restored.trainable_weights)
    before = [np.copy(w) for w in encoder.get_weights()]
    restored.compile(optimizer=keras.optimizers.SGD(0.1), loss=WeightedBinaryCrossentropy())
    restored.train_step((images, labels))
    for old, new in zip(before, encoder.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_a_train_step_lowers_the_loss_on_a_fixed_batch():
    """Head only (the backbone frozen, so BatchNorm is deterministic); every head weight gets a gradient."""
    model = tiny_model()
    model.backbone.trainable = False
    images, labels = batch(8)
    loss = WeightedBinaryCrossentropy()
    with tf.GradientTape() as tape:
        before = loss(labels, model(images, training=True))
    gradients = tape.gradient(before, model.head.trainable_weights)
    assert model.head.trainable_weights and all(g is not None for g in gradients)
    for _ in range(3):
        model.train_step((images, labels))
    after = loss(labels, model(images, training=True))
    assert float(after) < float(before)


# === the ConvNeXt-S backbone ===

def stage_outputs(features, images):
    """Each stage's output re-computed from the Keras ConvNeXt's own layers: the last block's
    input plus its residual branch (the `_identity` layer's output)."""
    tensors = []
    for stage, depth in enumerate(CONVNEXT_SMALL_DEPTHS):
        prefix = f"convnext_small_stage_{stage}_block_{depth - 1}"
        tensors.append(features.get_layer(f"{prefix}_depthwise_conv").input)
        tensors.append(features.get_layer(f"{prefix}_identity").output)
    values = [np.asarray(v) for v in keras.Model(features.input, tensors)(images)]
    return [values[2 * i] + values[2 * i + 1] for i in range(len(CONVNEXT_SMALL_DEPTHS))]


def test_convnext_small_gives_its_four_stage_outputs():
    size = 64
    backbone = convnext_small_backbone(image_size=size, weights="None")
    expected_shapes = [(None, size // s, size // s, c) for s, c in zip((4, 8, 16, 32), (96, 192, 384, 768))]
    assert [tuple(t.shape) for t in backbone.outputs] == expected_shapes
    images = np.random.default_rng(1).uniform(0, 255, (1, size, size, 3)).astype("float32")
    taps = backbone(images)
    for tap, expected in zip(taps, stage_outputs(backbone.get_layer("convnext_small_features"), images)):
        np.testing.assert_allclose(np.asarray(tap), expected, rtol=1e-5, atol=1e-5)
    # Keras' ConvNeXt normalises RGB [0, 255] itself (ImageNet mean and std, ×255).
    normalization = backbone.get_layer("convnext_small_features").get_layer("convnext_small_prestem_normalization")
    np.testing.assert_allclose(
        np.asarray(normalization(np.array([[[[0.485 * 255, 0.456 * 255, 0.406 * 255]]]], "float32"))), 0.0, atol=1e-4
    )


@pytest.mark.slow
def test_convnext_small_at_448_under_a_four_scale_hsvlt_head():
    backbone = convnext_small_backbone(image_size=448, weights=None)
    assert [tuple(t.shape) for t in backbone.outputs] == [
        (None, 112, 112, 96), (None, 56, 56, 192), (None, 28, 28, 384), (None, 14, 14, 768)
    ]
    assert backbone.count_params() == pytest.approx(49_453_152, rel=1e-3)  # ConvNeXt-S without its top
    encoder = ASGEEncoder(NUM_CLASSES, units=256, name="label_encoder")
    encoder.build()
    encoder.trainable = False
    model = MultiLabelClassifier(backbone, HSVLTHead(NUM_CLASSES, encoder, feature_channels=128))
    assert len(model.head.stages) == 4
    images = np.random.default_rng(2).uniform(0, 255, (1, 448, 448, 3)).astype("float32")
    logits, attention = model.head(model.backbone(images), return_attention=True)
    assert tuple(logits.shape) == (1, NUM_CLASSES) and np.all(np.isfinite(np.asarray(logits)))
    assert [tuple(a.shape)[-1] for a in attention] == [112 * 112, 56 * 56, 28 * 28, 14 * 14]
