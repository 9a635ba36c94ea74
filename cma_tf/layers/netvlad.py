"""NetVLAD pooling of frame features (Arandjelović et al. 2016), as the 2017 YouTube-8M winner
uses it (Miech et al., "Learnable pooling with Context Gating", 2017, §3.1;
antoine77340/Youtube-8M-WILLOW `frame_level_models.py` `NetVLAD`, L183-241):

    a_tk = softmax_k(BN(x_t · W))_k                       W `[D, K]` ~ N(0, 1/√D), no bias
    V_dk = Σ_t a_tk · x_td − (Σ_t a_tk) · c_dk            c `[D, K]` ~ N(0, 1/√D)
    V_·k ← V_·k / ‖V_·k‖  (intra-normalisation over d),   v = flatten(V) / ‖flatten(V)‖

`v` is flattened d-major (`d·K + k`), the official `[B, D, K]` reshape.
"""

import math

import keras
from keras import ops

from cma_tf.layers.context_gating import BN_EPSILON
from cma_tf.layers.ops import tf_l2_normalize
from cma_tf.saving import register


@register
class NetVLAD(keras.layers.Layer):
    """`x` `[B, T, D]` → `v` `[B, D·K]`, unit norm.

    Args:
        clusters: int, `K`.
        batchnorm_momentum: float, of the assignment's BatchNorm (slim's decay 0.999).

    Examples:
    >>> NetVLAD(4)(keras.ops.ones((2, 5, 3))).shape
    (2, 12)
    """

    def __init__(self, clusters, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.clusters = clusters
        self.batchnorm_momentum = batchnorm_momentum
        self.batch_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="batch_norm", dtype=self.dtype_policy
        )

    def build(self, input_shape):
        width = input_shape[-1]
        initializer = keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(width))
        self.assignment = self.add_weight(name="assignment", shape=(width, self.clusters), initializer=initializer)
        self.centers = self.add_weight(name="centers", shape=(width, self.clusters), initializer=initializer)
        self.batch_norm.build(tuple(input_shape[:-1]) + (self.clusters,))

    def call(self, x, training=None):
        assignment = ops.softmax(self.batch_norm(ops.matmul(x, self.assignment), training=training), axis=-1)
        residuals = ops.einsum("btk,btd->bdk", assignment, x) - ops.sum(assignment, axis=1)[:, None, :] * self.centers
        intra = tf_l2_normalize(residuals, axis=1)
        flat = ops.reshape(intra, (ops.shape(x)[0], -1))
        return tf_l2_normalize(flat, axis=-1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[-1] * self.clusters)

    def get_config(self):
        config = super().get_config()
        config.update({"clusters": self.clusters, "batchnorm_momentum": self.batchnorm_momentum})
        return config
