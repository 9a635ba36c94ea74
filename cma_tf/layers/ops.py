"""Tensor helpers shared by the attention layers, the heads and ASGE."""

from keras import ops


def flatten_positions(features):
    """`[B, ..., C]` → `[B, M, C]`: every spatial or temporal position becomes one row."""
    channels = ops.shape(features)[-1]
    return ops.reshape(features, (ops.shape(features)[0], -1, channels))


def l2_normalize(x, epsilon):
    """x / max(‖x‖, ε) on the last axis (ε keeps an all-zero vector at zero instead of NaN)."""
    norm = ops.sqrt(ops.sum(ops.square(x), axis=-1, keepdims=True))
    return x / ops.maximum(norm, epsilon)


def tf_l2_normalize(x, axis):
    """`tf.math.l2_normalize(x, axis)`: `x / sqrt(max(Σx², 1e-12))` on `axis` (the form the
    YouTube-8M field's official code uses for NetVLAD's normalisations and per-frame inputs).
    Computed in float32: under float16 the sum of squares of a 300-frame aggregate overflows and
    1e-12 underflows to 0."""
    x32 = ops.cast(x, "float32")
    unit = x32 * ops.rsqrt(ops.maximum(ops.sum(ops.square(x32), axis=axis, keepdims=True), 1e-12))
    return ops.cast(unit, x.dtype)
