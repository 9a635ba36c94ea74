"""DETR-style transformer layers (post-norm or pre-norm) and the sine positional encoding, as Query2Label uses them.

Liu, Zhang, Yang, Su, Zhu, "Query2Label: A Simple Transformer Way to Multi-Label Classification"
(arXiv 2107.10834); official code github.com/SlongLiu/query2labels, `lib/models/transformer.py`
and `lib/models/position_encoding.py` (both from DETR), commit 55eb050. Post-norm by default (the
released `pre_norm=False`), ReLU feed-forward, LayerNorm ε = 1e-5 (PyTorch's), dropout on the
attention weights, after the attention and inside and after the feed-forward, as released.

    encoder:  X ← LN(X + Drop(MHA(q = X + P, k = X + P, v = X)))
              X ← LN(X + Drop(W₂ Drop(ReLU(W₁ X))))
    decoder:  T ← LN(T + Drop(MHA(q = T + Q, k = T + Q, v = T)))        (only with self-attention)
              T ← LN(T + Drop(MHA(q = T + Q, k = M + P, v = M)))
              T ← LN(T + Drop(W₂ Drop(ReLU(W₁ T))))

`P` is the positional encoding of the memory's positions, `Q` the label queries. With
`pre_norm=True` (DETR's `normalize_before`, its `forward_pre`) each sub-layer reads the
normalised input and the residual adds to the raw one; the memory `M` is not normalised by the
decoder layer (the head normalises the encoder's output once, as DETR's final encoder norm):

    encoder:  Y = LN(X);  X ← X + Drop(MHA(q = Y + P, k = Y + P, v = Y))
              X ← X + Drop(W₂ Drop(ReLU(W₁ LN(X))))
    decoder:  Y = LN(T);  T ← T + Drop(MHA(q = Y + Q, k = Y + Q, v = Y))  (only with self-attention)
              T ← T + Drop(MHA(q = LN(T) + Q, k = M + P, v = M))
              T ← T + Drop(W₂ Drop(ReLU(W₁ LN(T))))

(The released `forward_pre` reads `norm1` even where the self-attention and `norm1` were removed,
so the released configuration fails with `--pre_norm`; here the removed block is skipped.)

`init="official"` draws the weights as `Transformer._reset_parameters` leaves them: Xavier-uniform
for every weight with more than one axis (the packed q/k/v `[3d, d]`, the output projection, both
feed-forward kernels), zero attention biases, the feed-forward biases at `nn.Linear`'s
U(±1/√fan_in) (`layers/torch_init.py`); "keras" (default) keeps Keras' Glorot kernels and zero biases.
"""

import math

import keras
import numpy as np
from keras import ops

from cma_tf.layers import torch_init
from cma_tf.saving import register

LAYER_NORM_EPSILON = 1e-5  # PyTorch's nn.LayerNorm default, which DETR and Query2Label keep
TEMPERATURE = 10000.0


def sine_positional_encoding(spatial_shape, units, temperature=TEMPERATURE):
    """DETR's normalised sine encoding (`PositionEmbeddingSine(normalize=True)`, scale 2π) of
    every position of a `spatial_shape` grid, flattened row-major: `[prod(spatial_shape), units]`.

    A 2-D grid `(H, W)` gets `units / 2` features for y, then `units / 2` for x, each
    interleaving sin (even index) and cos (odd); a 1-D sequence `(T,)` (video) gets `units`
    features of its one axis in the same way.
    """
    spatial_shape = tuple(int(size) for size in spatial_shape)
    if len(spatial_shape) not in (1, 2) or units % (2 * len(spatial_shape)):
        raise ValueError(
            f"sine positional encoding: a (T,) or (H, W) grid and a width divisible by {2 * len(spatial_shape)}, "
            f"got {spatial_shape} and {units}"
        )
    features = units // len(spatial_shape)
    index = np.arange(features)
    frequencies = temperature ** (2 * (index // 2) / features)
    axes = []
    for axis, size in enumerate(spatial_shape):
        steps = np.arange(1, size + 1, dtype=np.float64) / (size + 1e-6) * 2 * math.pi
        angles = steps[:, None] / frequencies[None, :]
        encoded = np.where(index % 2 == 0, np.sin(angles), np.cos(angles))  # [size, features]
        shape = [1] * len(spatial_shape) + [features]
        shape[axis] = size
        axes.append(np.broadcast_to(encoded.reshape(shape), spatial_shape + (features,)))
    return np.concatenate(axes, axis=-1).reshape(-1, units).astype(np.float32)


class TransformerBlock(keras.layers.Layer):
    """What the decoder and encoder layers (and ML-Decoder's, `group_decoding.py`) share: the
    attention blocks' construction and initialisation, and the feed-forward block, post-norm
    `LN(X + Drop(W₂ Drop(ReLU(W₁ X))))` or pre-norm `X + Drop(W₂ Drop(ReLU(W₁ LN(X))))`.

    Args:
        pre_norm: bool, LayerNorm before each sub-layer instead of after its residual. Default False.
        init: "keras" (default) or "official", the official PyTorch code's initialisation.
    """

    # `init="official"`: DETR's `Transformer._reset_parameters` (Query2Label) Xavier-initialises every
    # weight with more than one axis; a layer whose model does not (ML-Decoder) keeps PyTorch's defaults.
    XAVIER_EVERY_KERNEL = True

    def __init__(
        self, units, num_heads, ffn_units, dropout=0.1, epsilon=LAYER_NORM_EPSILON, pre_norm=False, init="keras",
        **kwargs
    ):
        super().__init__(**kwargs)
        if units % num_heads:
            raise ValueError(f"{self.name}: width {units} is not divisible by {num_heads} attention heads")
        torch_init.check_init(init, self.name)
        self.units = units
        self.num_heads = num_heads
        self.ffn_units = ffn_units
        self.dropout = dropout
        self.epsilon = epsilon
        self.pre_norm = pre_norm
        self.init = init
        self.ffn_hidden = keras.layers.Dense(
            ffn_units, name="ffn_hidden", dtype=self.dtype_policy, **self._linear_initializers(units, ffn_units)
        )
        self.ffn_output = keras.layers.Dense(
            units, name="ffn_output", dtype=self.dtype_policy, **self._linear_initializers(ffn_units, units)
        )
        self.ffn_norm = self._norm("ffn_norm")
        self.drop = keras.layers.Dropout(dropout, dtype=self.dtype_policy)

    def _linear_initializers(self, fan_in, fan_out):
        """A feed-forward Dense's initializers: Keras' defaults, or the official code's."""
        if self.init == "keras":
            return {}
        kernel = (
            torch_init.xavier_uniform(fan_in, fan_out) if self.XAVIER_EVERY_KERNEL else torch_init.linear_default(fan_in)
        )
        return dict(kernel_initializer=kernel, bias_initializer=torch_init.linear_default(fan_in))

    def _attention(self, name):
        official = {} if self.init == "keras" else dict(kernel_initializer=torch_init.in_projection(self.units))
        return keras.layers.MultiHeadAttention(
            self.num_heads, self.units // self.num_heads, dropout=self.dropout, name=name, dtype=self.dtype_policy,
            **official,
        )

    def _build_attention(self, attention, query_shape, memory_shape):
        attention.build(query_shape, memory_shape, memory_shape)
        if self.init == "official":
            output = (
                torch_init.xavier_uniform(self.units, self.units) if self.XAVIER_EVERY_KERNEL
                else torch_init.linear_default(self.units)
            )
            torch_init.set_output_projection(attention, output)

    def _norm(self, name):
        return keras.layers.LayerNormalization(epsilon=self.epsilon, name=name, dtype=self.dtype_policy)

    def _build_ffn(self, shape):
        self.ffn_hidden.build(shape)
        self.ffn_output.build(tuple(shape[:-1]) + (self.ffn_units,))
        self.ffn_norm.build(shape)

    def _sublayer_input(self, x, norm):
        """What a sub-layer reads: `LN(x)` pre-norm, `x` post-norm."""
        return norm(x) if self.pre_norm else x

    def _residual(self, x, update, norm, training):
        """`x + Drop(update)` pre-norm, `LN(x + Drop(update))` post-norm."""
        x = x + self.drop(update, training=training)
        return x if self.pre_norm else norm(x)

    def _feed_forward(self, x, training):
        hidden = self.drop(ops.relu(self.ffn_hidden(self._sublayer_input(x, self.ffn_norm))), training=training)
        return self._residual(x, self.ffn_output(hidden), self.ffn_norm, training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "num_heads": self.num_heads,
                "ffn_units": self.ffn_units,
                "dropout": self.dropout,
                "epsilon": self.epsilon,
                "pre_norm": self.pre_norm,
                "init": self.init,
            }
        )
        return config


@register
class TransformerEncoderLayer(TransformerBlock):
    """One encoder layer over `[B, M, units]` tokens with positional encoding `[M, units]`
    (post-norm, or pre-norm with `pre_norm=True`).

    Examples:
    >>> layer = TransformerEncoderLayer(8, num_heads=2, ffn_units=16)
    >>> tuple(layer(keras.ops.ones((2, 5, 8)), keras.ops.zeros((5, 8))).shape)
    (2, 5, 8)
    """

    def __init__(self, units, num_heads, ffn_units, dropout=0.1, epsilon=LAYER_NORM_EPSILON, **kwargs):
        super().__init__(units, num_heads, ffn_units, dropout, epsilon, **kwargs)
        self.attention = self._attention("attention")
        self.attention_norm = self._norm("attention_norm")

    def build(self, tokens_shape, positions_shape=None):
        tokens_shape = tuple(tokens_shape)
        self._build_attention(self.attention, tokens_shape, tokens_shape)
        self.attention_norm.build(tokens_shape)
        self._build_ffn(tokens_shape)

    def call(self, tokens, positions, training=None):
        x = self._sublayer_input(tokens, self.attention_norm)
        keyed = x + positions
        attended = self.attention(keyed, x, key=keyed, training=training)
        tokens = self._residual(tokens, attended, self.attention_norm, training)
        return self._feed_forward(tokens, training)

    def compute_output_shape(self, tokens_shape, positions_shape=None):
        return tuple(tokens_shape)


@register
class TransformerDecoderLayer(TransformerBlock):
    """One decoder layer: label tokens `[B, N, units]` attend to memory `[B, M, units]` (post-norm,
    or pre-norm with `pre_norm=True`).

    Args:
        self_attention: bool, a self-attention block among the label tokens before the
            cross-attention (the standard decoder; Query2Label's released code removes it).

    Call args:
        targets: `[B, N, units]` the label tokens `T` (zeros before the first layer).
        memory: `[B, M, units]` the encoded visual tokens `M`.
        queries: `[N, units]` the label queries `Q` (added to `T` before each attention).
        positions: `[M, units]` the positional encoding `P` of the memory.
        return_attention: also return the cross-attention `[B, N, M]`, averaged over heads.

    Examples:
    >>> layer = TransformerDecoderLayer(8, num_heads=2, ffn_units=16)
    >>> tuple(layer(keras.ops.zeros((2, 3, 8)), keras.ops.ones((2, 5, 8)),
    ...             keras.ops.ones((3, 8)), keras.ops.zeros((5, 8))).shape)
    (2, 3, 8)
    """

    def __init__(
        self, units, num_heads, ffn_units, dropout=0.1, epsilon=LAYER_NORM_EPSILON, self_attention=False, **kwargs
    ):
        super().__init__(units, num_heads, ffn_units, dropout, epsilon, **kwargs)
        self.self_attention = self_attention
        if self_attention:
            self.self_attention_block = self._attention("self_attention")
            self.self_attention_norm = self._norm("self_attention_norm")
        self.cross_attention = self._attention("cross_attention")
        self.cross_attention_norm = self._norm("cross_attention_norm")

    def build(self, targets_shape, memory_shape=None, queries_shape=None, positions_shape=None):
        targets_shape, memory_shape = tuple(targets_shape), tuple(memory_shape)
        if self.self_attention:
            self._build_attention(self.self_attention_block, targets_shape, targets_shape)
            self.self_attention_norm.build(targets_shape)
        self._build_attention(self.cross_attention, targets_shape, memory_shape)
        self.cross_attention_norm.build(targets_shape)
        self._build_ffn(targets_shape)

    def call(self, targets, memory, queries, positions, training=None, return_attention=False):
        if self.self_attention:
            x = self._sublayer_input(targets, self.self_attention_norm)
            keyed = x + queries
            attended = self.self_attention_block(keyed, x, key=keyed, training=training)
            targets = self._residual(targets, attended, self.self_attention_norm, training)
        attended, scores = self.cross_attention(
            self._sublayer_input(targets, self.cross_attention_norm) + queries, memory, key=memory + positions,
            training=training, return_attention_scores=True,
        )
        targets = self._residual(targets, attended, self.cross_attention_norm, training)
        targets = self._feed_forward(targets, training)
        return (targets, ops.mean(scores, axis=1)) if return_attention else targets

    def compute_output_shape(self, targets_shape, memory_shape=None, queries_shape=None, positions_shape=None):
        return tuple(targets_shape)

    def get_config(self):
        config = super().get_config()
        config.update({"self_attention": self.self_attention})
        return config
