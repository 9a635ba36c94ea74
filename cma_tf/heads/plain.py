"""The plain baseline (Table 3, "ResNet-101"): global average pooling + one Dense layer.

Pools over every position, so it serves image maps `[B, H, W, C]` and video sequences `[B, T, C]`."""

import keras

from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.heads.projection import deepest, deepest_shape
from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability


@register
class PlainHead(keras.layers.Layer):
    """Deepest backbone map → mean over positions → Dense(N) logits.

    Args:
        num_classes: int, `N`.

    Call args:
        features: list of backbone maps, shallow to deep; only the last is used.
    """

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.classifier = keras.layers.Dense(num_classes, name="classifier", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        self.classifier.build((None, deepest_shape(input_shape)[-1]))

    def call(self, features, training=None):
        return self.classifier(keras.ops.mean(flatten_positions(deepest(features)), axis=1))

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes})
        return config


register_head(HeadSpec("plain", PlainHead, description="global average pooling + Dense (the paper's ResNet-101 baseline)"))
