"""Video backbones over frame features (§3.2, "Backbone", MLVC): SNet and the FC variant, and
`frames`, the identity, for heads that pool raw frame features (DBoF, NetVLAD, NeXtVLAD).

Both take `[B, T, D]` frame features (YouTube-8M: dequantized RGB 1024, optionally audio 128,
resampled to `T` frames; `cma_tf/data/yt8m/frames.py`) and return a one-element list
`[I]`, `I ∈ R^{T'×C}`, the same list-of-taps interface as the image backbones, so every head
runs on them unchanged (attention over `M = T'` positions).
"""

import keras
import tensorflow as tf

from cma_tf.architecture import BN_EPSILON, BN_MOMENTUM, FC_LAYERS, SNET_KERNEL, SNET_LAYERS, SNET_POOL
from cma_tf.data.yt8m.frames import FRAME_CODES, NUM_FRAMES
from cma_tf.data.yt8m.readers import mask_and_dequantize
from cma_tf.saving import register

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


def frames_backbone(frames, feature_size, name="frames"):
    """The identity over `[T, D]` frame features: `[I]` with `I` the frames themselves, for the
    YouTube-8M field's heads (`dbof`, `netvlad`, `nextvlad`), which pool the raw frames. No weights."""
    inputs = keras.Input((frames, feature_size), name="frames")
    return keras.Model(inputs, [keras.layers.Identity(name="identity")(inputs)], name=name)


def is_frame_codes(inputs) -> bool:
    """Whether a model input is the 8-bit form `{FRAME_CODES, NUM_FRAMES}`."""
    return isinstance(inputs, dict) and FRAME_CODES in inputs


def frames_from_codes(inputs):
    """`{FRAME_CODES: uint8 [B, T, D], NUM_FRAMES: int [B]}` → float32 `[B, T, D]` (see
    `FrameDequantization`)."""
    missing = [key for key in (FRAME_CODES, NUM_FRAMES) if key not in inputs]
    if missing or len(inputs) != 2:
        raise ValueError(f"8-bit frames are {{{FRAME_CODES!r}, {NUM_FRAMES!r}}}, got the keys {sorted(inputs)}")
    codes = tf.convert_to_tensor(inputs[FRAME_CODES])
    if codes.dtype != tf.uint8:
        raise TypeError(f"{FRAME_CODES} must be uint8 codes, got {codes.dtype.name}")
    return mask_and_dequantize(codes, tf.cast(inputs[NUM_FRAMES], tf.int32))


@register
class FrameDequantization(keras.layers.Layer):
    """8-bit frames → the float features the backbones take, as the model's first step.

    The published frames are uint8 codes; the readers hand them to the model as they are,
    `{FRAME_CODES: uint8 [B, T, D], NUM_FRAMES: int [B]}`, and this layer dequantizes them
    exactly as the starter code's `Dequantize` (`readers.mask_and_dequantize`: `q · 4/255 + 4/512 − 2`,
    float32) and zeroes each video's rows from `NUM_FRAMES` on. Four elementwise ops that XLA
    (or the GPU's kernel fusion) runs with what follows, so the host copies and the
    accelerator receives a byte per feature instead of four (docs/design.md §2.23).

    `NUM_FRAMES` counts the real rows of the codes: `T` for a video resampled to `T` frames
    (`frames.py`: every position is a frame of it), 0 for a video without frames (all rows
    zero, as the float path gives them). The layer has no weights.
    """

    def call(self, inputs):
        return frames_from_codes(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape[FRAME_CODES]
