"""Deep Bag of Frames pooling (Abu-El-Haija et al., "YouTube-8M: A Large-Scale Video
Classification Benchmark", 2016, §4.1; google/youtube-8m `frame_level_models.py` `DbofModel`,
L145-187):

    z_t = σ(BN_c(BN_in(x_t) · W_c))     W_c `[D, K]` ~ N(0, 1/√D), no bias (BatchNorm follows)
    v = max_t z_t                       `[K]`

The starter code's defaults: sigmoid activation (`dbof_activation`; relu6 the alternative) and
max pooling over the frames (`dbof_pooling_method`; average the alternative).
"""

import math

import keras
from keras import ops

from cma_tf.layers.context_gating import BN_EPSILON
from cma_tf.saving import register


@register
class DeepBagOfFrames(keras.layers.Layer):
    """`x` `[B, T, D]` → `v` `[B, K]`: each frame projected up to `K` units, max over frames.

    Args:
        clusters: int, `K` (`dbof_cluster_size`, 8192 in the starter code).
        batchnorm_momentum: float, slim's decay 0.999 by default.

    Examples:
    >>> DeepBagOfFrames(6)(keras.ops.ones((2, 5, 3))).shape
    (2, 6)
    """

    def __init__(self, clusters, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.clusters = clusters
        self.batchnorm_momentum = batchnorm_momentum
        bn = dict(momentum=batchnorm_momentum, epsilon=BN_EPSILON, dtype=self.dtype_policy)
        self.input_norm = keras.layers.BatchNormalization(name="input_norm", **bn)
        self.cluster_norm = keras.layers.BatchNormalization(name="cluster_norm", **bn)

    def build(self, input_shape):
        width = input_shape[-1]
        self.projection = self.add_weight(
            name="projection", shape=(width, self.clusters),
            initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(width)),
        )
        self.input_norm.build(tuple(input_shape))
        self.cluster_norm.build(tuple(input_shape[:-1]) + (self.clusters,))

    def call(self, x, training=None):
        projected = ops.matmul(self.input_norm(x, training=training), self.projection)
        return ops.max(ops.sigmoid(self.cluster_norm(projected, training=training)), axis=1)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.clusters)

    def get_config(self):
        config = super().get_config()
        config.update({"clusters": self.clusters, "batchnorm_momentum": self.batchnorm_momentum})
        return config
