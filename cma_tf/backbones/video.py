"""Video backbones over frame features (§3.2, "Backbone", MLVC): SNet and the FC variant.

Both take `[B, T, D]` frame features (YouTube-8M: dequantized RGB 1024, optionally audio 128,
resampled to `T` frames; `cma_tf/data/yt8m/frames.py`) and return a one-element list
`[I]`, `I ∈ R^{T'×C}`, the same list-of-taps interface as the image backbones, so every head
runs on them unchanged (attention over `M = T'` positions).
"""

import keras

from cma_tf.architecture import BN_EPSILON, BN_MOMENTUM, FC_LAYERS, SNET_KERNEL, SNET_LAYERS, SNET_POOL

DEFAULT_SNET_FILTERS = (1024,) * SNET_LAYERS
DEFAULT_FC_UNITS = (1024,) * FC_LAYERS


def snet_backbone(frames, feature_size, filters=DEFAULT_SNET_FILTERS, kernel_size=SNET_KERNEL, name="snet"):
    """The Squeezing Network: 4 × (Conv1D → BatchNorm → ReLU → MaxPool1D 2) over time.

    The paper gives "4 successive 1D convolution and pooling layers" and no widths; ours are
    kernel 3, 'same' padding, pool 2 (300 frames → 19 positions), `filters` channels each.

    Args:
        frames: int, `T` (input frames).
        feature_size: int, `D`.
        filters: 4 ints, the channels of the convolutions (the last is `C`).
    """
    inputs = keras.Input((frames, feature_size), name="frames")
    x = inputs
    for index, width in enumerate(filters):
        x = keras.layers.Conv1D(width, kernel_size, padding="same", use_bias=False, name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
        x = keras.layers.MaxPooling1D(SNET_POOL, padding="same", name=f"pool{index}")(x)
    return keras.Model(inputs, [x], name=name)


def fc_backbone(frames, feature_size, units=DEFAULT_FC_UNITS, name="fc"):
    """The FC variant (Table 4): two frame-wise Dense → BatchNorm → ReLU layers; keeps all `T`
    positions for the attention."""
    inputs = keras.Input((frames, feature_size), name="frames")
    x = inputs
    for index, width in enumerate(units):
        x = keras.layers.Dense(width, use_bias=False, name=f"dense{index}")(x)
        x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=f"bn{index}")(x)
        x = keras.layers.ReLU(name=f"relu{index}")(x)
    return keras.Model(inputs, [x], name=name)
