"""Cross-modality layers of CMA (You et al., AAAI 2020, §3.2): Eq. 6 (CMT), Eq. 7-9 (CMA),
Eq. 10 (per-class classifier).

All layers work on image feature maps `[B, H, W, C]` and on video feature sequences `[B, T, C]`
alike: a 1×1 convolution is a Dense on the last axis, and attention runs over the flattened
positions `M = H·W` (or `T`).
"""

import keras
from keras import ops

from cma_tf.architecture import ATTENTION_EPSILON, BN_EPSILON, BN_MOMENTUM, CMT_LAYERS
from cma_tf.layers.ops import flatten_positions, l2_normalize
from cma_tf.saving import register, sync_sublayer_trainability

@register
class CrossModalityTransformer(keras.layers.Layer):
    """Cross-Modality Transformer, Eq. 6: `I_s = f_cmt(I)`.

    `num_layers` × (1×1 conv → BatchNorm → ReLU) projecting visual features into the label
    embedding space of width `units` (`C_e`). The paper says "several" layers; we default to 2.

    Args:
        units: int, output channels `C_e`; must equal the label embedding width. Default 256.
        num_layers: int, number of conv-BN-ReLU stages. Default 2.

    Examples:
    >>> cmt = CrossModalityTransformer(units=8)
    >>> cmt(keras.random.normal((2, 7, 7, 16))).shape
    (2, 7, 7, 8)
    """

    def __init__(self, units=256, num_layers=CMT_LAYERS, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.num_layers = num_layers
        self.stages = []
        for index in range(num_layers):
            self.stages.append(
                (
                    keras.layers.Dense(units, use_bias=False, name=f"conv1x1_{index}", dtype=self.dtype_policy),
                    keras.layers.BatchNormalization(
                        momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"bn_{index}", dtype=self.dtype_policy
                    ),
                )
            )
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = tuple(input_shape)
        for conv, norm in self.stages:
            conv.build(shape)
            shape = shape[:-1] + (self.units,)
            norm.build(shape)

    def call(self, features, training=None):
        x = features
        for conv, norm in self.stages:
            x = ops.relu(norm(conv(x), training=training))
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)[:-1] + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "num_layers": self.num_layers})
        return config


@register
class CrossModalityAttention(keras.layers.Layer):
    """Cross-Modality Attention, Eq. 7-9.

    For label k and position i:
        z_k^i = ReLU(cos(I_s^i, e_k))                 (Eq. 7)
        a_k^i = z_k^i / Σ_i z_k^i                      (Eq. 8)
        h_k   = Σ_i a_k^i I^i                          (Eq. 9)
    The attention is computed in the embedding space (`I_s`) but pools the visual features
    `I` themselves. When every z_k^i of a label is zero the denominator is clamped to
    `epsilon`, so that label's attention and `h_k` are zero rather than NaN.

    Call args:
        features: `[B, ..., C]` visual features `I`.
        projected: `[B, ..., C_e]` CMT output `I_s` (same positions as `features`).
        embeddings: `[N, C_e]` label embeddings `E`.
        return_attention: if True also return `a` as `[B, N, M]`.
        return_pooled: if False return `a` `[B, N, M]` alone and skip Eq. 9: the heads hand
            `a` and `I` to `PerClassClassifier`, which applies Eq. 9-10 without `h`.

    Returns:
        `h` of shape `[B, N, C]` (and `a` when asked), or `a` alone.
    """

    def __init__(self, epsilon=ATTENTION_EPSILON, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = epsilon

    def call(self, features, projected, embeddings, return_attention=False, return_pooled=True):
        semantic = l2_normalize(flatten_positions(projected), self.epsilon)
        labels = l2_normalize(embeddings, self.epsilon)
        scores = ops.relu(ops.einsum("bmd,nd->bnm", semantic, labels))
        attention = scores / ops.maximum(ops.sum(scores, axis=-1, keepdims=True), self.epsilon)
        if not return_pooled:
            return attention
        pooled = ops.einsum("bnm,bmc->bnc", attention, flatten_positions(features))
        if return_attention:
            return pooled, attention
        return pooled

    def compute_output_shape(self, features_shape, projected_shape, embeddings_shape):
        return (features_shape[0], embeddings_shape[0], features_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update({"epsilon": self.epsilon})
        return config


@register
class PerClassClassifier(keras.layers.Layer):
    """Per-class linear classifier, Eq. 10: `logit_k = w_k · h_k + b_k`.

    One weight vector per class (a grouped linear, not a shared Dense): input `[B, N, C]`,
    output logits `[B, N]`; `y*_k = σ(logit_k)`. The paper writes a single `b`; we learn one
    bias per class, which contains the shared case and lets rare classes start calibrated.

    Called with the attention `a` `[B, N, M]` and `features=I` `[B, ..., C]` instead of `h`,
    it applies Eq. 9 and 10 together without forming `h`: with `h_k = Σ_i a_k^i I^i`,
    `logit_k = Σ_i a_k^i (w_k · I^i) + b_k`, so `I` is projected onto the `N` class weights
    once (`[B, N, M]`) and weighted by the attention. At YouTube-8M's setting (batch 256,
    3,862 labels, SNet's 19 positions of 1,024 channels) `h` is 4 GB of float32 and as much
    again for its gradient; the projection is 75 MB (docs/design.md §2.22).

    Call args:
        pooled: `h` `[B, N, C]`; or, with `features`, the attention `a` `[B, N, M]`.
        features: None, or `I` `[B, ..., C]` (M positions) to apply Eq. 9-10 fused.

    Args:
        num_classes: int, `N`.
        bias_initializer: initializer of the per-class bias. Default "zeros".
        kernel_initializer: initializer of the `[N, C]` weights. Default "glorot_uniform".
    """

    def __init__(self, num_classes, bias_initializer="zeros", kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

    def build(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=(self.num_classes, channels), initializer=self.kernel_initializer
        )
        self.bias = self.add_weight(
            name="bias", shape=(self.num_classes,), initializer=self.bias_initializer
        )

    def call(self, pooled, features=None):
        if features is None:
            return ops.sum(pooled * self.kernel, axis=-1) + self.bias
        projected = ops.einsum("bmc,nc->bnm", flatten_positions(features), self.kernel)
        return ops.sum(pooled * projected, axis=-1) + self.bias

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
