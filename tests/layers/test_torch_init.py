"""`init="official"` (docs/design.md §2.25): each head's weights, drawn at d = 128, against the
PyTorch formulas their official code is initialised with, per layer kind.

The expected bounds are written from PyTorch's own rules, on the shapes of the PyTorch
parameters (not of the Keras kernels):
- `nn.init._calculate_fan_in_and_fan_out(w)`: fan_in = w.size(1) · receptive field, fan_out =
  w.size(0) · receptive field;
- `xavier_uniform_`: U(±√(6 / (fan_in + fan_out)));
- `nn.Linear` / `nn.Conv*d` `reset_parameters`: `kaiming_uniform_(a=√5)`, i.e. bound
  gain·√(3 / fan_in) with gain = √(2 / (1 + a²)), and the bias U(±1/√fan_in);
- `nn.MultiheadAttention._reset_parameters`: Xavier over `in_proj_weight` `[3d, d]`, zero
  `in_proj_bias` and `out_proj.bias`.
A uniform U(±b) has std b/√3: each weight's largest magnitude and std are checked against b.
"""

import math

import keras
import numpy as np
import pytest

from cma_tf.config_base import get_base_config
from cma_tf.errors import ConfigError
from cma_tf import factory
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.hsvlt import HSVLTHead
from cma_tf.heads.ml_decoder import MLDecoderHead
from cma_tf.heads.q2l import Query2LabelHead

D = 128  # the review's width
HEADS = 4
FFN = 512
NUM_CLASSES = 6
BACKBONE_CHANNELS = 96


def torch_fans(torch_shape):
    """`torch.nn.init._calculate_fan_in_and_fan_out` for a parameter of `torch_shape`."""
    receptive = math.prod(torch_shape[2:])
    return torch_shape[1] * receptive, torch_shape[0] * receptive


def xavier_bound(torch_shape):
    fan_in, fan_out = torch_fans(torch_shape)
    return math.sqrt(6.0 / (fan_in + fan_out))


def kaiming_a_sqrt5_bound(torch_shape):
    """`nn.Linear` / `nn.Conv*d`'s weight: `kaiming_uniform_(a=√5)`, leaky-ReLU gain √(2 / (1 + 5))."""
    fan_in, _ = torch_fans(torch_shape)
    return math.sqrt(2.0 / (1.0 + 5.0)) * math.sqrt(3.0 / fan_in)


def linear_bias_bound(torch_weight_shape):
    return 1.0 / math.sqrt(torch_fans(torch_weight_shape)[0])


def assert_uniform(weight, bound, what):
    """`weight` looks drawn from U(±bound): inside it, reaching near it, std bound/√3."""
    values = np.asarray(weight, np.float64).ravel()
    n = values.size
    assert np.abs(values).max() <= bound * (1 + 1e-6), what
    if n >= 100:  # P(max |w| < 0.9 b) = 0.9ⁿ
        assert np.abs(values).max() >= 0.9 * bound, what
    # The sample std of n uniforms is within 4 of its standard errors (√(0.2 / n) relative) of b/√3.
    np.testing.assert_allclose(values.std(), bound / math.sqrt(3.0), rtol=4 * math.sqrt(0.2 / n) + 1e-3, err_msg=what)


def assert_zero(weight, what):
    assert not np.asarray(weight).any(), what


def attention_weights(attention):
    dense = (attention.query_dense, attention.key_dense, attention.value_dense, attention.output_dense)
    return [layer.kernel for layer in dense], [layer.bias for layer in dense]


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)


def test_query2label_is_initialised_as_its_transformer_reset_parameters():
    """`Transformer._reset_parameters`: Xavier-uniform over every parameter with dim > 1 (the
    packed in_proj `[3d, d]`, out_proj `[d, d]`, linear1 `[ffn, d]`, linear2 `[d, ffn]`); biases
    as their modules leave them; the input projection `nn.Conv2d(C, d, 1)` at its default."""
    head = Query2LabelHead(
        NUM_CLASSES, feature_channels=D, transformer_heads=HEADS, transformer_ffn_units=FFN, encoder_layers=1,
        decoder_layers=2, decoder_self_attention=True, init="official",
    )
    head([np.zeros((1, 3, 3, BACKBONE_CHANNELS), "float32")])
    conv = (D, BACKBONE_CHANNELS, 1, 1)
    assert_uniform(head.projection.kernel, kaiming_a_sqrt5_bound(conv), "input_proj.weight")
    assert_uniform(head.projection.bias, linear_bias_bound(conv), "input_proj.bias")
    layers = head.encoder + head.decoder
    attentions = [layers[0].attention] + [a for layer in head.decoder for a in (layer.self_attention_block, layer.cross_attention)]
    for attention in attentions:
        (q, k, v, out), biases = attention_weights(attention)
        # q, k and v are the rows of one in_proj_weight [3d, d]: together they are one Xavier draw.
        assert_uniform(np.concatenate([np.asarray(w).ravel() for w in (q, k, v)]), xavier_bound((3 * D, D)), "in_proj")
        assert_uniform(out, xavier_bound((D, D)), "out_proj.weight")
        for bias in biases:
            assert_zero(bias, "in_proj_bias / out_proj.bias")
    for layer in layers:
        assert_uniform(layer.ffn_hidden.kernel, xavier_bound((FFN, D)), "linear1.weight")
        assert_uniform(layer.ffn_output.kernel, xavier_bound((D, FFN)), "linear2.weight")
        assert_uniform(layer.ffn_hidden.bias, linear_bias_bound((FFN, D)), "linear1.bias")
        assert_uniform(layer.ffn_output.bias, linear_bias_bound((D, FFN)), "linear2.bias")
    # The review's numbers at d = 128: q/k/v std 0.0625, out_proj 0.088.
    np.testing.assert_allclose(np.asarray(layers[0].attention.query_dense.kernel).std(), 0.0625, rtol=0.03)
    np.testing.assert_allclose(np.asarray(layers[0].attention.output_dense.kernel).std(), 0.088, rtol=0.03)


def test_the_keras_default_is_todays():
    head = Query2LabelHead(NUM_CLASSES, feature_channels=D, transformer_heads=HEADS, transformer_ffn_units=FFN)
    head([np.zeros((1, 3, 3, BACKBONE_CHANNELS), "float32")])
    layer = head.encoder[0]
    # Keras 3's Glorot over the [d, heads, d/heads] query kernel counts fan_in d and fan_out d:
    # std √(2 / 2d) = 0.088 at d = 128 (the review's 0.021 counted the conv-kernel fans of older
    # Keras), against PyTorch's 0.0625 over the packed [3d, d].
    np.testing.assert_allclose(np.asarray(layer.attention.query_dense.kernel).std(), math.sqrt(1.0 / D), rtol=0.03)
    assert_zero(layer.ffn_hidden.bias, "Keras' zero biases")
    assert head.get_config()["init"] == "keras" and head.get_config()["pre_norm"] is False


def test_ml_decoder_is_initialised_as_released():
    """Nothing re-initialises the released decoder layer: `nn.MultiheadAttention`'s own reset
    (Xavier in_proj, zero biases, out_proj at `nn.Linear`'s default), `nn.Linear` defaults for
    linear1, linear2 and `embed_standart`."""
    head = MLDecoderHead(
        NUM_CLASSES, feature_channels=D, transformer_heads=8, transformer_ffn_units=FFN, decoder_groups=3, init="official"
    )
    head([np.zeros((1, 3, 3, BACKBONE_CHANNELS), "float32")])
    embed = (D, BACKBONE_CHANNELS)
    assert_uniform(head.embedding.kernel, kaiming_a_sqrt5_bound(embed), "embed_standart.weight")
    assert_uniform(head.embedding.bias, linear_bias_bound(embed), "embed_standart.bias")
    layer = head.decoder[0]
    (q, k, v, out), biases = attention_weights(layer.attention)
    assert_uniform(np.concatenate([np.asarray(w).ravel() for w in (q, k, v)]), xavier_bound((3 * D, D)), "in_proj")
    assert_uniform(out, kaiming_a_sqrt5_bound((D, D)), "out_proj.weight")
    for bias in biases:
        assert_zero(bias, "in_proj_bias / out_proj.bias")
    assert_uniform(layer.ffn_hidden.kernel, kaiming_a_sqrt5_bound((FFN, D)), "linear1.weight")
    assert_uniform(layer.ffn_hidden.bias, linear_bias_bound((FFN, D)), "linear1.bias")
    assert_uniform(layer.ffn_output.kernel, kaiming_a_sqrt5_bound((D, FFN)), "linear2.weight")
    assert_uniform(layer.ffn_output.bias, linear_bias_bound((D, FFN)), "linear2.bias")
    assert MLDecoderHead.from_config(head.get_config()).init == "official"


def test_hsvlt_is_initialised_with_pytorchs_defaults():
    """The released model is built from `nn.Linear`, 1×1 `nn.Conv1d`, a depthwise `nn.Conv2d(C, C,
    7, groups=C)` and `TextHead` (`kaiming_uniform_(a=√5)`), and calls no `init_weights`."""
    embedding_dim = 40
    encoder = ASGEEncoder(NUM_CLASSES, units=embedding_dim)
    head = HSVLTHead(NUM_CLASSES, encoder, feature_channels=D, blocks_per_scale=2, init="official")
    taps = [np.zeros((1, 4, 4, 64), "float32"), np.zeros((1, 2, 2, BACKBONE_CHANNELS), "float32")]
    head(taps)
    for stage, channels, language in zip(head.stages, (64, BACKBONE_CHANNELS), (embedding_dim, D)):
        assert_uniform(stage.projection.kernel, kaiming_a_sqrt5_bound((D, channels)), "tap projection")
        assert_uniform(stage.projection.bias, linear_bias_bound((D, channels)), "tap projection bias")
        assert_uniform(stage.language_projection.kernel, kaiming_a_sqrt5_bound((D, language)), "langs[i].weight")
        assert_uniform(stage.language_projection.bias, linear_bias_bound((D, language)), "langs[i].bias")
        for block in stage.blocks:
            square = [
                block.query, block.key, block.value, block.attention_output, block.language_projection,
                block.multimodal_projection,
            ] + ([block.gate_hidden, block.gate_output] if block.gate_language else [])
            for dense in square:
                assert_uniform(dense.kernel, kaiming_a_sqrt5_bound((D, D)), dense.name)
                if dense.use_bias:
                    assert_uniform(dense.bias, linear_bias_bound((D, D)), dense.name + " bias")
            assert_uniform(block.pointwise_expand.kernel, kaiming_a_sqrt5_bound((4 * D, D)), "pwconv1")
            assert_uniform(block.pointwise_expand.bias, linear_bias_bound((4 * D, D)), "pwconv1 bias")
            assert_uniform(block.pointwise_contract.kernel, kaiming_a_sqrt5_bound((D, 4 * D)), "pwconv2")
            assert_uniform(block.pointwise_contract.bias, linear_bias_bound((D, 4 * D)), "pwconv2 bias")
            depthwise = (D, 1, 7, 7)  # groups = C: one input channel per filter
            assert_uniform(block.depthwise_kernel, kaiming_a_sqrt5_bound(depthwise), "dwconv.weight")
            assert_uniform(block.depthwise_bias, linear_bias_bound(depthwise), "dwconv.bias")
    text_head = (NUM_CLASSES, 2 * D)  # TextHead(sum of the scales' widths, num_classes).weight
    assert_uniform(head.classifier.kernel, kaiming_a_sqrt5_bound(text_head), "text_head.weight")
    np.testing.assert_array_less(np.abs(np.asarray(head.classifier.bias)), linear_bias_bound(text_head))


def test_the_config_field_reaches_the_heads_and_is_checked():
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = "q2l", "small", None
    config.model.backbone_widths, config.data.image_size = (8, 16, 32, 64), 32
    config.model.feature_channels, config.model.transformer_heads = 8, 2
    config.model.init, config.model.pre_norm = "official", True
    model = factory.build_classifier(config, NUM_CLASSES)
    assert (model.head.init, model.head.pre_norm) == ("official", True)
    assert model.head.encoder[0].init == "official" and model.head.encoder[0].pre_norm
    config.model.init = "pytorch"
    with pytest.raises(ConfigError, match=r"config.model.init: unknown 'pytorch' \(keras, official\)"):
        factory.validate_config(config)
    with pytest.raises(ValueError, match="init must be one of 'keras', 'official'"):
        Query2LabelHead(NUM_CLASSES, init="torch")
