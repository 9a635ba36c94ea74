"""The residual block that builds the third MS-CMA scale `I_3` from `I_2` (§4.1)."""

import keras
from keras import ops

from cma_tf.saving import register, sync_sublayer_trainability


@register
class BottleneckBlock(keras.layers.Layer):
    """A ResNet bottleneck block (1×1 → 3×3/stride → 1×1, each with BN; projection shortcut).

    The paper only says `I_3 ∈ R^{7×7×512}` is "obtained by applying a residual block on
    `I_2`" (14×14×2048 for ResNet-101 at 448). We use the standard ResNet v1 bottleneck with
    `filters=128` (output `4·128 = 512` channels) and stride 2, so 14×14×2048 → 7×7×512, with
    a 1×1 stride-2 conv + BN on the shortcut because channels and resolution both change.

    Args:
        filters: int, bottleneck width; output channels are `4 * filters`. Default 128.
        strides: int, stride of the 3×3 conv and of the shortcut. Default 2.
        frozen_sublayers: names of sublayers to freeze (`backbones/freezing.py` freezes the
            BatchNorms of a backbone's blocks); `get_config` records them, so they come back
            frozen from a `.keras` file. Default none.
    """

    expansion = 4

    def __init__(self, filters=128, strides=2, frozen_sublayers=(), **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.strides = strides
        out = self.expansion * filters
        conv = self._conv
        bn = self._batch_norm
        self.shortcut_conv = conv(out, 1, strides, "shortcut_conv")
        self.shortcut_bn = bn("shortcut_bn")
        self.conv1, self.bn1 = conv(filters, 1, 1, "conv1"), bn("bn1")
        self.conv2, self.bn2 = conv(filters, 3, strides, "conv2"), bn("bn2")
        self.conv3, self.bn3 = conv(out, 1, 1, "conv3"), bn("bn3")
        sync_sublayer_trainability(self)
        for name in frozen_sublayers:
            getattr(self, name).trainable = False

    def _conv(self, filters, kernel_size, strides, name):
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", use_bias=False,
            name=name, dtype=self.dtype_policy,
        )

    def _batch_norm(self, name):
        # epsilon as in keras.applications.ResNet, so the block matches the backbone's blocks.
        return keras.layers.BatchNormalization(epsilon=1.001e-5, name=name, dtype=self.dtype_policy)

    def build(self, input_shape):
        self.shortcut_conv.build(input_shape)
        self.conv1.build(input_shape)
        self.bn1.build(self.conv1.compute_output_shape(input_shape))
        shape = self.conv2.compute_output_shape(self.conv1.compute_output_shape(input_shape))
        self.conv2.build(self.conv1.compute_output_shape(input_shape))
        self.bn2.build(shape)
        self.conv3.build(shape)
        out_shape = self.conv3.compute_output_shape(shape)
        self.bn3.build(out_shape)
        self.shortcut_bn.build(out_shape)

    def call(self, x, training=None):
        shortcut = self.shortcut_bn(self.shortcut_conv(x), training=training)
        y = ops.relu(self.bn1(self.conv1(x), training=training))
        y = ops.relu(self.bn2(self.conv2(y), training=training))
        y = self.bn3(self.conv3(y), training=training)
        return ops.relu(y + shortcut)

    def compute_output_shape(self, input_shape):
        return self.conv3.compute_output_shape(
            self.conv2.compute_output_shape(self.conv1.compute_output_shape(input_shape))
        )

    def get_config(self):
        config = super().get_config()
        config.update({"filters": self.filters, "strides": self.strides})
        frozen = [layer.name for layer in self._layers if not layer.trainable] if self.trainable else []
        if frozen:  # only then: an unfrozen block's config stays as it was
            config["frozen_sublayers"] = frozen
        return config
