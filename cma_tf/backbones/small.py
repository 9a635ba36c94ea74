"""A small residual CNN with the same two-tap interface as the ResNet-101 backbone.

For tests and the CPU demo: it returns a stride-8 map (`I_1`) and a stride-16 map (`I_2`),
so at a 96 input MS-CMA sees 12×12, 6×6 and (after its extra block) 3×3 maps, the same
ratios as ResNet-101 at 448 (28, 14, 7).
"""

import keras

from cma_tf.errors import ConfigError
from cma_tf.layers.residual import BottleneckBlock

DEFAULT_WIDTHS = (32, 64, 128, 256)


def small_backbone(image_size=96, widths=DEFAULT_WIDTHS, name="small_cnn", weights=None):
    """A functional model: RGB images `[B, S, S, 3]` in [0, 255] → `[stride-8 map, stride-16 map]`.

    Layout: 3×3/2 conv stem (`widths[0]`), then bottleneck blocks with stride 2 whose outputs
    have `widths[1:]` channels (strides 4, 8, 16). The last two are the taps.

    Args:
        image_size: int, input side (a multiple of 16).
        widths: 4 ints, stem width and the output channels of the three stages.
        weights: None (random initialisation) or the path of a `.weights.h5` file of a small
            backbone of these widths (a preset's file, `backbones/presets.py`, resolved by
            `backbones/weights.resolve_small_weights`). A file of other widths is a `ConfigError`.
    """
    if image_size % 16:
        raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
    images = keras.Input((image_size, image_size, 3), name="images")
    x = keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(images)
    x = keras.layers.Conv2D(widths[0], 3, strides=2, padding="same", use_bias=False, name="stem_conv")(x)
    x = keras.layers.BatchNormalization(name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    taps = []
    for stage, width in enumerate(widths[1:], start=1):
        x = BottleneckBlock(filters=width // BottleneckBlock.expansion, strides=2, name=f"stage{stage}")(x)
        taps.append(x)
    backbone = keras.Model(images, taps[-2:], name=name)
    if weights is not None:
        try:
            backbone.load_weights(weights)
        except ValueError as error:
            raise ConfigError(
                f"config.model.backbone_weights: {weights} does not hold the weights of a small backbone of widths "
                f"{tuple(widths)} ({' '.join(str(error).split())[:200]}); set config.model.backbone_widths to the "
                "file's widths, or use None for random weights"
            ) from error
    return backbone
