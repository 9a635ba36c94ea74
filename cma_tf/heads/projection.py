"""The 1×1 convolution that reduces backbone channels to `C` (§3.2, "Backbone")."""

import keras


def feature_projection(channels, name, dtype=None):
    """A 1×1 conv (Dense on the last axis) to `channels`, or identity when `channels` is None."""
    if channels is None:
        return keras.layers.Identity(name=name, dtype=dtype)
    return keras.layers.Dense(channels, name=name, dtype=dtype)
