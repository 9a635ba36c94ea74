"""Category-specific vectors from class activation maps: ADD-GCN's semantic attention module
(SAM; Ye et al., ECCV 2020; `Yejin0111/ADD-GCN`, `models/add_gcn.py`, `forward_sam` and
`forward_classification_sm`), used by the MMDSR head (`cma_tf/heads/mmdsr.py`)."""

import math

import keras
from keras import ops

from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability


@register
class CategorySpecificVectors(keras.layers.Layer):
    """One vector per class pooled under its own class map, on `Y` `[B, ..., C_in]` (`M` positions):

        L = conv1×1_N(Y)       `[B, M, N]`, no bias (ADD-GCN's `fc`)
        M = σ(L)               the class maps
        V = Mᵀ · conv1×1_C(Y) / M_positions   `[B, N, C]`
        s_m = max_positions L  `[B, N]` (ADD-GCN's top-1 `s_m`)

    Departure from ADD-GCN: its `forward_sam` sums over positions; we divide by the number of
    positions (a mean). MMDSR adds the vectors of two scales whose position counts differ 4×
    (28×28 and 14×14 for ResNet-101 at 448), and a sum would let the larger map dominate and
    make the vectors' size grow with the input resolution.

    Args:
        num_classes: int, `N`.
        channels: int, `C` of the vectors (ADD-GCN: 1024).

    Call args:
        features: `[B, ..., C_in]`.

    Returns:
        `(V [B, N, C], L [B, M, N])`: the vectors and the pre-sigmoid class-map logits.
    """

    def __init__(self, num_classes, channels, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.channels = channels
        self.class_conv = keras.layers.Dense(num_classes, use_bias=False, name="class_conv", dtype=self.dtype_policy)
        self.value_conv = keras.layers.Dense(channels, name="value_conv", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        self.class_conv.build(tuple(input_shape))
        self.value_conv.build(tuple(input_shape))

    def call(self, features):
        x = flatten_positions(features)
        class_logits = self.class_conv(x)
        values = self.value_conv(x)
        positions = ops.cast(ops.shape(x)[1], values.dtype)
        vectors = ops.einsum("bmn,bmc->bnc", ops.sigmoid(class_logits), values) / positions
        return vectors, class_logits

    def compute_output_shape(self, input_shape):
        spatial = input_shape[1:-1]
        positions = None if any(side is None for side in spatial) else math.prod(spatial)
        return (input_shape[0], self.num_classes, self.channels), (input_shape[0], positions, self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "channels": self.channels})
        return config
