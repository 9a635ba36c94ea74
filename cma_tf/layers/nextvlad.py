"""NeXtVLAD pooling of frame features (Lin et al., "NeXtVLAD: An efficient neural network to
aggregate frame-level features for large-scale video classification", ECCV 2018 workshops,
§3.2, Eq. 4-8; linrongc/youtube-8m `nextvlad.py` `NeXtVLAD`, L25-83):

    ẋ_t = x_t · W_e + b_e                                   `[λN]`, expansion λ
    α_tg = σ(ẋ_t · W_a + b_a)_g                             attention of group g of G
    a_tgk = α_tg · softmax_k(BN(ẋ_t · W_c)_{g,k})           W_c `[λN, G·K]`, no bias
    V_dk = Σ_{t,g} a_tgk · x̃_tgd − (Σ_{t,g} a_tgk) · c_dk   x̃_tg = slice g of ẋ_t, `[λN/G]`
    v = BN(flatten(V_·k / ‖V_·k‖))                          `[K·λN/G]`, no global L2

The assignment of group g reads the whole `ẋ_t` (not its slice g), as the official code does.
The official code masks the padded frames of each video; this package's readers resample every
video to `T` of its own frames (`cma_tf/data/yt8m/frames.py`), so no row is padding and the
layer takes no mask. Weights are He-normal (the official code's slim variance scaling).
"""

import keras
from keras import ops

from cma_tf.layers.context_gating import BN_EPSILON
from cma_tf.layers.ops import tf_l2_normalize
from cma_tf.saving import register


@register
class NeXtVLAD(keras.layers.Layer):
    """`x` `[B, T, N]` → `v` `[B, K·λN/G]` (batch-normalised).

    Args:
        clusters: int, `K`.
        expansion: int, `λ`. Default 2.
        groups: int, `G`; `λN` must be divisible by it. Default 8.
        batchnorm_momentum: float, slim's decay 0.999 by default.

    Examples:
    >>> NeXtVLAD(4, expansion=2, groups=2)(keras.ops.ones((2, 5, 6))).shape
    (2, 24)
    """

    def __init__(self, clusters, expansion=2, groups=8, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.clusters = clusters
        self.expansion = expansion
        self.groups = groups
        self.batchnorm_momentum = batchnorm_momentum
        bn = dict(momentum=batchnorm_momentum, epsilon=BN_EPSILON, dtype=self.dtype_policy)
        self.assignment_norm = keras.layers.BatchNormalization(name="assignment_norm", **bn)
        self.output_norm = keras.layers.BatchNormalization(name="output_norm", **bn)

    def build(self, input_shape):
        expanded = self.expansion * input_shape[-1]
        if expanded % self.groups:
            raise ValueError(f"NeXtVLAD: λN = {expanded} is not divisible by the {self.groups} groups")
        self.group_width = expanded // self.groups
        self.expand_kernel = self.add_weight(name="expand_kernel", shape=(input_shape[-1], expanded), initializer="he_normal")
        self.expand_bias = self.add_weight(name="expand_bias", shape=(expanded,), initializer="zeros")
        self.attention_kernel = self.add_weight(name="attention_kernel", shape=(expanded, self.groups), initializer="he_normal")
        self.attention_bias = self.add_weight(name="attention_bias", shape=(self.groups,), initializer="zeros")
        self.assignment = self.add_weight(
            name="assignment", shape=(expanded, self.groups * self.clusters), initializer="he_normal"
        )
        self.centers = self.add_weight(name="centers", shape=(self.group_width, self.clusters), initializer="he_normal")
        self.assignment_norm.build(tuple(input_shape[:-1]) + (self.groups * self.clusters,))
        self.output_norm.build((input_shape[0], self.clusters * self.group_width))

    def call(self, x, training=None):
        batch, frames = ops.shape(x)[0], ops.shape(x)[1]
        expanded = ops.matmul(x, self.expand_kernel) + self.expand_bias  # [B, T, λN]
        attention = ops.sigmoid(ops.matmul(expanded, self.attention_kernel) + self.attention_bias)  # [B, T, G]
        logits = self.assignment_norm(ops.matmul(expanded, self.assignment), training=training)
        logits = ops.reshape(logits, (batch, frames, self.groups, self.clusters))
        assignment = ops.softmax(logits, axis=-1) * attention[..., None]  # [B, T, G, K]
        grouped = ops.reshape(expanded, (batch, frames, self.groups, self.group_width))  # [B, T, G, λN/G]
        residuals = (
            ops.einsum("btgk,btgd->bdk", assignment, grouped)
            - ops.sum(assignment, axis=(1, 2))[:, None, :] * self.centers
        )
        flat = ops.reshape(tf_l2_normalize(residuals, axis=1), (batch, self.clusters * self.group_width))
        return self.output_norm(flat, training=training)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.clusters * self.expansion * input_shape[-1] // self.groups)

    def get_config(self):
        config = super().get_config()
        config.update({
            "clusters": self.clusters, "expansion": self.expansion, "groups": self.groups,
            "batchnorm_momentum": self.batchnorm_momentum,
        })
        return config
