"""Gating a vector by itself: Context Gating (Miech et al. 2017) and NeXtVLAD's SE form.

Context Gating, `y = x ⊙ σ(BN(x · W))` (Miech et al., "Learnable pooling with Context Gating
for video classification", 2017, §3.2; antoine77340/Youtube-8M-WILLOW `frame_level_models.py`
L698-726: `W` `[D, D]` ~ N(0, 1/√D), no bias since BatchNorm follows). WILLOW applies it to
the hidden vector and, as probability gating, to the MoE's probabilities.

SE context gating, `y = x ⊙ σ(ReLU(BN(x · W_1)) · W_2)` with `W_1` `[D, D/r]`, `W_2`
`[D/r, D]`, no biases and no BatchNorm after `W_2` (Lin et al., "NeXtVLAD", ECCV 2018
workshops, §3.2; linrongc/youtube-8m `nextvlad.py` L152-175; the paper's Fig. 4 draws a
BatchNorm after `W_2` that the code does not have: we follow the code).
"""

import math

import keras
from keras import ops

from cma_tf.saving import register

BN_EPSILON = 1e-3  # slim's batch_norm epsilon (Keras' default too)


@register
class ContextGating(keras.layers.Layer):
    """`x` `[..., D]` → `x ⊙ σ(BN(x · W))`.

    Args:
        kernel_initializer: of `W` (default N(0, 1/√D), WILLOW's, drawn at build).
        batchnorm_momentum: float, slim's decay 0.999 by default.
    """

    def __init__(self, kernel_initializer=None, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer) if kernel_initializer else None
        self.batchnorm_momentum = batchnorm_momentum
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="batch_norm", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        width = input_shape[-1]
        initializer = self.kernel_initializer or keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(width))
        self.kernel = self.add_weight(name="kernel", shape=(width, width), initializer=initializer)
        self.batch_norm.build(tuple(input_shape))

    def gate_logits(self, x, training=None):
        """`z = BN(x · W)`, the pre-sigmoid gate."""
        return self.batch_norm(ops.matmul(x, self.kernel), training=training)

    def call(self, x, training=None):
        return x * ops.sigmoid(self.gate_logits(x, training=training))

    def gate_probabilities(self, p, q, training=None):
        """Probability gating of `p` (with `q = 1 − p` carried beside it): `p ⊙ σ(z)` and
        `1 − p ⊙ σ(z) = q + p ⊙ σ(−z)`, both without a subtraction."""
        z = self.gate_logits(p, training=training)
        return p * ops.sigmoid(z), q + p * ops.sigmoid(-z)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer) if self.kernel_initializer else None,
            "batchnorm_momentum": self.batchnorm_momentum,
        })
        return config


@register
class SqueezeExcitationGating(keras.layers.Layer):
    """`x` `[..., D]` → `x ⊙ σ(ReLU(BN(x · W_1)) · W_2)`, He-normal weights (slim's variance
    scaling in the official code).

    Args:
        reduction: int, `r` (`W_1` is `[D, D/r]`). Default 8 (NeXtVLAD's single model).
        batchnorm_momentum: float, slim's decay 0.999 by default.
    """

    def __init__(self, reduction=8, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.reduction = reduction
        self.batchnorm_momentum = batchnorm_momentum
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="batch_norm", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        width = input_shape[-1]
        if width % self.reduction:
            raise ValueError(f"SE gating: the width {width} is not divisible by the reduction {self.reduction}")
        self.squeeze = self.add_weight(name="squeeze", shape=(width, width // self.reduction), initializer="he_normal")
        self.excite = self.add_weight(name="excite", shape=(width // self.reduction, width), initializer="he_normal")
        self.batch_norm.build(tuple(input_shape[:-1]) + (width // self.reduction,))

    def call(self, x, training=None):
        squeezed = ops.relu(self.batch_norm(ops.matmul(x, self.squeeze), training=training))
        return x * ops.sigmoid(ops.matmul(squeezed, self.excite))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"reduction": self.reduction, "batchnorm_momentum": self.batchnorm_momentum})
        return config
