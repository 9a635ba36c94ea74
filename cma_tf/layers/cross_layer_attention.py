"""Multi-scale feature reconstruction by cross-layer attention (MFR), as reconstructed for the
MMDSR head.

RECONSTRUCTED: the MMDSR paper (Kuang & Li, Machine Learning 113, 2024) is public only as its
abstract, which says the module "aggregates complementary information at different levels in
[the] CNN through cross-layer attention". The layer here is ours, assembled from public
conventions: 1×1 conv → BatchNorm → ReLU to a common width, multi-head attention between the
two levels (Vaswani et al.), and a learnable residual gate initialised to 0 (DANet's and the
non-local block's convention, so the layer starts as the projection alone). None of it is
taken from the MMDSR paper's text.
"""

import math

import keras
from keras import ops

from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability

POOL_SIZE = 2  # the shallow map is pooled 2×2 before the deep map attends to it


@register
class CrossLayerAttention(keras.layers.Layer):
    """Two backbone maps, shallow `I_1` `[B, H_1, W_1, C_1]` and deep `I_2` `[B, H_2, W_2, C_2]`,
    reconstructed at a common width `C`:

        F_l  = ReLU(BN(conv1×1_C(I_l)))                            l = 1, 2
        F_1' = F_1 + γ_1 · MHA(q = F_1, k = v = F_2)                (deep → shallow)
        F_2' = F_2 + γ_2 · MHA(q = F_2, k = v = AvgPool_2×2(F_1'))  (shallow → deep)

    Attention runs over the flattened positions; `γ_1`, `γ_2` are learnable scalars starting
    at 0. The 2×2 pooling uses 'same' padding, so an odd-sided shallow map is accepted.

    Args:
        channels: int, `C`. Paper scale (ResNet-101 at 448, `I_1` 28×28×1024, `I_2`
            14×14×2048): 1024.
        num_heads: int, attention heads (each of width `max(C // num_heads, 1)`). Paper
            scale: 8; the CPU demo's 128 channels use 4. Default 4.

    Call args:
        features: `[I_1, I_2]`.

    Returns:
        `[F_1', F_2']`, with the spatial sizes of `I_1` and `I_2` and `C` channels.
    """

    def __init__(self, channels, num_heads=4, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.num_heads = num_heads
        head_width = max(channels // num_heads, 1)
        self.projections = [
            (
                keras.layers.Dense(channels, use_bias=False, name=f"conv1x1_{index}", dtype=self.dtype_policy),
                keras.layers.BatchNormalization(name=f"bn_{index}", dtype=self.dtype_policy),
            )
            for index in (1, 2)
        ]
        self.deep_to_shallow = keras.layers.MultiHeadAttention(
            num_heads, head_width, head_width, name="deep_to_shallow", dtype=self.dtype_policy
        )
        self.shallow_to_deep = keras.layers.MultiHeadAttention(
            num_heads, head_width, head_width, name="shallow_to_deep", dtype=self.dtype_policy
        )
        self.pool = keras.layers.AveragePooling2D(POOL_SIZE, padding="same", name="pool", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shapes = []
        for (conv, norm), shape in zip(self.projections, input_shape[-2:]):
            conv.build(tuple(shape))
            shape = tuple(shape)[:-1] + (self.channels,)
            norm.build(shape)
            shapes.append(shape)
        shallow, deep = shapes
        pooled = self.pool.compute_output_shape(shallow)
        self.deep_to_shallow.build(self._sequence(shallow), self._sequence(deep))
        self.shallow_to_deep.build(self._sequence(deep), self._sequence(pooled))
        self.shallow_gate = self.add_weight(name="shallow_gate", shape=(), initializer="zeros")
        self.deep_gate = self.add_weight(name="deep_gate", shape=(), initializer="zeros")

    @staticmethod
    def _sequence(shape):
        spatial = shape[1:-1]
        positions = None if any(side is None for side in spatial) else math.prod(spatial)
        return (shape[0], positions, shape[-1])

    def project(self, features, training=None):
        """`[F_1, F_2]` (before any attention)."""
        return [
            ops.relu(norm(conv(tap), training=training))
            for (conv, norm), tap in zip(self.projections, features[-2:])
        ]

    def call(self, features, training=None):
        shallow, deep = self.project(features, training=training)
        shallow_tokens, deep_tokens = flatten_positions(shallow), flatten_positions(deep)
        attended = self.deep_to_shallow(shallow_tokens, deep_tokens, training=training)
        shallow_tokens = shallow_tokens + ops.cast(self.shallow_gate, shallow.dtype) * attended
        shallow = ops.reshape(shallow_tokens, ops.shape(shallow))
        pooled = flatten_positions(self.pool(shallow))
        attended = self.shallow_to_deep(deep_tokens, pooled, training=training)
        deep_tokens = deep_tokens + ops.cast(self.deep_gate, deep.dtype) * attended
        return [shallow, ops.reshape(deep_tokens, ops.shape(deep))]

    def compute_output_shape(self, input_shape):
        return [tuple(shape)[:-1] + (self.channels,) for shape in input_shape[-2:]]

    def get_config(self):
        config = super().get_config()
        config.update({"channels": self.channels, "num_heads": self.num_heads})
        return config
