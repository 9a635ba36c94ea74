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
