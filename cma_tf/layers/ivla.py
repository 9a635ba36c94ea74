"""The interaction block of HSVLT: Interactive Visual-Linguistic Attention (IVLA), as released.

Ouyang et al., "Hierarchical Scale-Aware Vision-Language Transformer for Multi-Label Image
Classification", ACM MM 2023 (arXiv 2407.16244). The paper describes IVLA as updating visual,
linguistic and multi-modal features jointly; this layer follows what the official code does
(github.com/NaturalKnight/HSVLT, `models/hsvlt.py`, `InteractionBlock` and `CrossAttention`,
commit cd7c5ca), where the language never feeds back into the visual features:

    V ← V + γ ⊙ PW₂(GELU(PW₁(LN(DWConv7×7(V)))))          (a ConvNeXt block; γ starts at 1e-6)
    A = softmax((L W_q)(V W_k)ᵀ / √C)                      ([B, N, M], one head)
    X = (A · V W_v) W_o + b_o                              ([B, N, C])
    S = GELU(W_b (GELU(W_a L + a) ⊙ X) + b)                (the multi-modal feature)
    L ← L + S
    L ← L + tanh(W₂ ReLU(W₁ L)) ⊙ L                        (bias-free gated residual)

`W_q`, `W_k`, `W_v` have no bias (the released `qkv_bias=False`); `W_a`, `W_b` are the released
1×1 `Conv1d`s (a Dense on the channel axis, with bias). GELU is the exact (erf) form, as
PyTorch's `nn.GELU()`; LayerNorm ε = 1e-6 as in ConvNeXt.

What differs from the released code: one attention head only (the released config sets
`num_heads: 1`); no dropout or DropPath (all rates are 0 in the released config); by default
(`init="keras"`) Keras' initialisers (Glorot-uniform kernels, zero biases) instead of the PyTorch
defaults the released layers are built with (nothing calls its `init_weights`): `init="official"`
draws every Dense (`nn.Linear`, the 1×1 `nn.Conv1d`) and the depthwise convolution (fan_in = its
kernel area, `groups = C`) at U(±1/√fan_in), weights and biases (`layers/torch_init.py`); and the block
also takes video sequences `[B, T, C]` (the depthwise convolution is then 1-D, kernel 7 over
time), which the released code, image-only, does not.
"""

import math

import keras
from keras import ops

from cma_tf.layers import torch_init
from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register

LAYER_NORM_EPSILON = 1e-6  # ConvNeXt's and the released code's
LAYER_SCALE_INIT = 1e-6  # ConvNeXt's layer scale γ at initialisation, as released


@register
class InteractionBlock(keras.layers.Layer):
    """One HSVLT interaction block (IVLA as released): updates `(V, L)` and returns `S`.

    Args:
        units: int, `C`, the width of the visual and the language features alike.
        kernel_size: int, side of the depthwise convolution. Default 7 (ConvNeXt).
        expansion: int, hidden width of the pointwise MLP as a multiple of `C`. Default 4.
        layer_scale_init: float, initial value of every entry of γ. Default 1e-6.
        epsilon: float, LayerNorm ε. Default 1e-6.
        gate_language: bool, apply the gated residual to `L` (the last step above). False
            returns `L' = L + S`: for a last block whose `L'` nothing reads, where the gate's
            weights would get no gradient. Default True.
        init: "keras" (default) or "official" (PyTorch's default initialisation, as released).

    Call args:
        visual: `[B, H, W, C]` (image) or `[B, T, C]` (video) visual features `V`.
        language: `[B, N, C]` label tokens `L`.
        return_attention: if True also return `A` `[B, N, M]` (`M = H·W` or `T`).

    Returns:
        `(V', L', S)`: `V'` shaped as `visual`, `L'` and `S` `[B, N, C]` (and `A` when asked).

    Examples:
    >>> block = InteractionBlock(8)
    >>> v, l, s = block(keras.random.normal((2, 3, 3, 8)), keras.random.normal((2, 4, 8)))
    >>> tuple(v.shape), tuple(l.shape), tuple(s.shape)
    ((2, 3, 3, 8), (2, 4, 8), (2, 4, 8))
    """

    def __init__(
        self, units, kernel_size=7, expansion=4, layer_scale_init=LAYER_SCALE_INIT,
        epsilon=LAYER_NORM_EPSILON, gate_language=True, init="keras", **kwargs
    ):
        super().__init__(**kwargs)
        torch_init.check_init(init, self.name)
        self.units = units
        self.kernel_size = kernel_size
        self.expansion = expansion
        self.layer_scale_init = layer_scale_init
        self.epsilon = epsilon
        self.gate_language = gate_language
        self.init = init
        dense = self._dense
        # The ConvNeXt block (visual update).
        self.norm = keras.layers.LayerNormalization(epsilon=epsilon, name="norm", dtype=self.dtype_policy)
        self.pointwise_expand = dense(expansion * units, "pointwise_conv_1")
        self.pointwise_contract = dense(units, "pointwise_conv_2", fan_in=expansion * units)
        # Cross-attention from the label tokens to the visual positions.
        self.query = dense(units, "query", bias=False)
        self.key = dense(units, "key", bias=False)
        self.value = dense(units, "value", bias=False)
        self.attention_output = dense(units, "attention_output")
        # The multi-modal feature S (the released `vis_project` and `project_mm`).
        self.language_projection = dense(units, "language_projection")
        self.multimodal_projection = dense(units, "multimodal_projection")
        # The gated language residual (the released `res_gate`).
        self.gate_hidden = dense(units, "gate_hidden", bias=False) if gate_language else None
        self.gate_output = dense(units, "gate_output", bias=False) if gate_language else None

    def _dense(self, width, name, bias=True, fan_in=None):
        """A Dense over `fan_in` inputs (None: `units`)."""
        official = {}
        if self.init == "official":
            fan_in = fan_in or self.units
            official = dict(
                kernel_initializer=torch_init.linear_default(fan_in), bias_initializer=torch_init.linear_default(fan_in)
            )
        return keras.layers.Dense(width, use_bias=bias, name=name, dtype=self.dtype_policy, **official)

    def build(self, visual_shape, language_shape):
        visual_shape, language_shape = tuple(visual_shape), tuple(language_shape)
        if len(visual_shape) not in (3, 4):
            raise ValueError(
                f"{self.name}: visual features must be [B, H, W, C] or [B, T, C], got shape {visual_shape}"
            )
        if visual_shape[-1] != self.units or language_shape[-1] != self.units or len(language_shape) != 3:
            raise ValueError(
                f"{self.name}: visual [..., {self.units}] and language [B, N, {self.units}] expected, "
                f"got {visual_shape} and {language_shape}"
            )
        spatial = (self.kernel_size,) * (len(visual_shape) - 2)
        kernel, bias = "glorot_uniform", "zeros"
        if self.init == "official":  # nn.Conv2d(groups=C): fan_in = 1 channel × the kernel's area
            kernel, bias = (torch_init.linear_default(math.prod(spatial)) for _ in range(2))
        self.depthwise_kernel = self.add_weight(
            name="depthwise_kernel", shape=spatial + (self.units, 1), initializer=kernel
        )
        self.depthwise_bias = self.add_weight(name="depthwise_bias", shape=(self.units,), initializer=bias)
        self.layer_scale = self.add_weight(
            name="layer_scale", shape=(self.units,), initializer=keras.initializers.Constant(self.layer_scale_init)
        )
        self.norm.build(visual_shape)
        self.pointwise_expand.build(visual_shape)
        self.pointwise_contract.build(visual_shape[:-1] + (self.expansion * self.units,))
        for layer in (
            self.query, self.key, self.value, self.attention_output, self.language_projection,
            self.multimodal_projection, self.gate_hidden, self.gate_output,
        ):
            if layer is not None:
                layer.build((None, None, self.units))

    def call(self, visual, language, return_attention=False):
        # ConvNeXt block: 'same' zero padding, as the released `padding=3` for a 7×7 kernel.
        x = ops.depthwise_conv(visual, self.depthwise_kernel, strides=1, padding="same") + self.depthwise_bias
        x = self.pointwise_contract(ops.gelu(self.pointwise_expand(self.norm(x)), approximate=False))
        visual = visual + self.layer_scale * x

        positions = flatten_positions(visual)
        scores = ops.einsum("bnc,bmc->bnm", self.query(language), self.key(positions))
        attention = ops.softmax(scores * (1.0 / math.sqrt(self.units)), axis=-1)
        attended = self.attention_output(ops.einsum("bnm,bmc->bnc", attention, self.value(positions)))

        gate = ops.gelu(self.language_projection(language), approximate=False)
        multimodal = ops.gelu(self.multimodal_projection(gate * attended), approximate=False)
        language = language + multimodal
        if self.gate_language:
            language = language + ops.tanh(self.gate_output(ops.relu(self.gate_hidden(language)))) * language
        if return_attention:
            return visual, language, multimodal, attention
        return visual, language, multimodal

    def compute_output_shape(self, visual_shape, language_shape):
        return tuple(visual_shape), tuple(language_shape), tuple(language_shape)

    def compute_output_spec(self, visual, language, return_attention=False):
        spec = lambda shape: keras.KerasTensor(shape, dtype=self.compute_dtype)  # noqa: E731
        outputs = (spec(visual.shape), spec(language.shape), spec(language.shape))
        if return_attention:
            positions = math.prod(visual.shape[1:-1]) if None not in visual.shape[1:-1] else None
            outputs += (spec((language.shape[0], language.shape[1], positions)),)
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_size": self.kernel_size,
                "expansion": self.expansion,
                "layer_scale_init": self.layer_scale_init,
                "epsilon": self.epsilon,
                "gate_language": self.gate_language,
                "init": self.init,
            }
        )
        return config
