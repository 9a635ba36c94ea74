"""ML-Decoder's decoder layer and group fully-connected classifier.

Ridnik, Sharir, Ben-Cohen, Ben-Baruch, Noy, "ML-Decoder: Scalable and Versatile Classification
Head", WACV 2023 (arXiv 2111.12933); official code github.com/Alibaba-MIIL/ML_Decoder,
`src_files/ml_decoder/ml_decoder.py` (`TransformerDecoderLayerOptimal`, `GroupFC`), commit 8a9e984.

The decoder layer drops self-attention (its place keeps only `T ← LN(T + Drop(T))`, as
released) and has no positional encoding:

    T ← LN₁(T + Drop(T))
    T ← LN₂(T + Drop(MHA(q = T, k = M, v = M)))
    T ← LN₃(T + Drop(W₂ Drop(ReLU(W₁ T))))

`init="official"` draws as the released layer is left (nothing re-initialises it): the
attention's packed q/k/v Xavier-uniform with zero biases, its output projection and both
feed-forward layers at `nn.Linear`'s default U(±1/√fan_in) for weights and biases
(`layers/torch_init.py`); "keras" (default) keeps Keras' Glorot kernels and zero biases.

Group decoding: `K` query tokens each answer for `g = ⌈N / K⌉` labels through their own
`[d, g]` weights, so the head's cost grows with `K`, not with `N`:

    logits = flatten_k(T_k · W_k)[:, :N] + b                   (`W` `[K, d, g]`, `b` `[N]`)
"""

import math

import keras
from keras import ops

from cma_tf.layers.transformer import LAYER_NORM_EPSILON, TransformerBlock
from cma_tf.saving import register


@register
class GroupDecoderLayer(TransformerBlock):
    """ML-Decoder's decoder layer: query tokens `[B, K, d]` attend to memory `[B, M, d]`.

    Args:
        units: int, `d`.
        num_heads: int, attention heads.
        ffn_units: int, feed-forward width.
        dropout: float. Default 0.1.
        epsilon: float, LayerNorm ε. Default 1e-5.
        init: "keras" (default) or "official" (the released layer's PyTorch defaults).

    Call args:
        queries: `[B, K, d]`.
        memory: `[B, M, d]`.
        return_attention: also return the cross-attention `[B, K, M]`, averaged over heads.

    Examples:
    >>> layer = GroupDecoderLayer(8, num_heads=2, ffn_units=16)
    >>> tuple(layer(keras.ops.ones((2, 3, 8)), keras.ops.ones((2, 5, 8))).shape)
    (2, 3, 8)
    """

    XAVIER_EVERY_KERNEL = False  # the released model re-initialises nothing: PyTorch's defaults stand

    def __init__(self, units, num_heads, ffn_units, dropout=0.1, epsilon=LAYER_NORM_EPSILON, init="keras", **kwargs):
        super().__init__(units, num_heads, ffn_units, dropout, epsilon, pre_norm=False, init=init, **kwargs)
        self.query_norm = self._norm("query_norm")
        self.attention = self._attention("attention")
        self.attention_norm = self._norm("attention_norm")

    def build(self, queries_shape, memory_shape=None):
        queries_shape, memory_shape = tuple(queries_shape), tuple(memory_shape)
        self.query_norm.build(queries_shape)
        self._build_attention(self.attention, queries_shape, memory_shape)
        self.attention_norm.build(queries_shape)
        self._build_ffn(queries_shape)

    def call(self, queries, memory, training=None, return_attention=False):
        x = self.query_norm(queries + self.drop(queries, training=training))
        attended, scores = self.attention(x, memory, training=training, return_attention_scores=True)
        x = self.attention_norm(x + self.drop(attended, training=training))
        x = self._feed_forward(x, training)
        return (x, ops.mean(scores, axis=1)) if return_attention else x

    def compute_output_shape(self, queries_shape, memory_shape=None):
        return tuple(queries_shape)

    def get_config(self):
        config = super().get_config()
        config.pop("pre_norm")  # the released layer is post-norm only
        return config


@register
class GroupFullyConnected(keras.layers.Layer):
    """The group fully-connected classifier: `[B, K, d]` → logits `[B, N]`.

    `W` `[K, d, g]` starts Xavier-normal with PyTorch's fans for a 3-D tensor (fan in `d·g`,
    fan out `K·g`), `b` at zero, as released.

    Args:
        num_classes: int, `N`; `g = ⌈N / K⌉` with `K` the input's second axis.

    Examples:
    >>> layer = GroupFullyConnected(5)
    >>> tuple(layer(keras.ops.ones((2, 3, 4))).shape)   # K = 3 groups of g = 2: 6 outputs, 5 kept
    (2, 5)
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes

    def build(self, input_shape):
        groups, units = input_shape[-2], input_shape[-1]
        per_group = math.ceil(self.num_classes / groups)
        std = math.sqrt(2.0 / (units * per_group + groups * per_group))
        self.kernel = self.add_weight(
            name="kernel", shape=(groups, units, per_group), initializer=keras.initializers.RandomNormal(stddev=std)
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer="zeros")

    def call(self, tokens):
        grouped = ops.einsum("bkd,kdg->bkg", tokens, self.kernel)
        flat = ops.reshape(grouped, (ops.shape(grouped)[0], -1))
        return flat[:, : self.num_classes] + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config
