"""Self-attention baseline of the paper's ablation (§4.1, Table 3).

Eq. 7 is replaced by `z^i = σ(f_conv(I^i))` with `f_conv` a 1×1 convolution; Eq. 8-9 stay.
The paper does not say how many maps `f_conv` produces. We give it one output channel per
class (`z_k^i`), so the baseline differs from CMA only in where the attention comes from
(learned from pixels instead of guided by label embeddings) and feeds the same per-class
classifier (Eq. 10).
"""

import keras
from keras import ops

from cma_tf.architecture import ATTENTION_EPSILON
from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability


@register
class SelfAttentionPooling(keras.layers.Layer):
    """Class-wise self-attention pooling: `z_k^i = σ(w_k·I^i + b_k)`, Eq. 8-9 on top.

    Args:
        num_classes: int, `N` (one attention map per class).
        epsilon: float, clamp of the normalizer Σ_i z_k^i. Default 1e-6.

    Call args:
        features: `[B, ..., C]`; return_attention: also return `a` `[B, N, M]`;
        return_pooled: if False return `a` alone and skip Eq. 9 (see
        `cross_modality.PerClassClassifier`, which then applies Eq. 9-10 without `h`).

    Returns:
        `h` `[B, N, C]` (and `a` when asked), or `a` alone.
    """

    def __init__(self, num_classes, epsilon=ATTENTION_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.epsilon = epsilon
        self.score_conv = keras.layers.Dense(num_classes, name="conv1x1", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        self.score_conv.build(input_shape)

    def call(self, features, return_attention=False, return_pooled=True):
        visual = flatten_positions(features)
        scores = ops.transpose(ops.sigmoid(self.score_conv(visual)), (0, 2, 1))
        attention = scores / ops.maximum(ops.sum(scores, axis=-1, keepdims=True), self.epsilon)
        if not return_pooled:
            return attention
        pooled = ops.einsum("bnm,bmc->bnc", attention, visual)
        if return_attention:
            return pooled, attention
        return pooled

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "epsilon": self.epsilon})
        return config
