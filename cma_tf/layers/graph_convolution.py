"""The graph convolution of ML-GCN (Chen et al., CVPR 2019, Eq. 2): `H' = Â · H · W`, no bias.

As the official code's `GraphConvolution` (github.com/megvii-research/ML-GCN, `models.py`):
`W` starts uniform in ±1/√(out units), and the layer has no bias or activation of its own.
"""

import math

import keras
from keras import ops

from cma_tf.saving import register


@register
class GraphConvolution(keras.layers.Layer):
    """`Â · H · W` over the nodes of one graph (not batched: ML-GCN runs it once per step).

    Args:
        units: int, width of `W`'s output.

    Call args:
        nodes: `[N, D]` node features `H`.
        correlation: `[N, N]` the normalised correlation matrix `Â`.

    Returns:
        `[N, units]`.

    Examples:
    >>> layer = GraphConvolution(4)
    >>> tuple(layer(keras.ops.ones((3, 5)), keras.ops.eye(3)).shape)
    (3, 4)
    """

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, nodes_shape, correlation_shape=None):
        limit = 1.0 / math.sqrt(self.units)
        self.kernel = self.add_weight(
            name="kernel", shape=(nodes_shape[-1], self.units),
            initializer=keras.initializers.RandomUniform(-limit, limit),
        )

    def call(self, nodes, correlation):
        return ops.matmul(correlation, ops.matmul(nodes, self.kernel))

    def compute_output_shape(self, nodes_shape, correlation_shape=None):
        return (nodes_shape[0], self.units)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units})
        return config
