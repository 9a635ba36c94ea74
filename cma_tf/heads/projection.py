"""The 1×1 convolution that reduces backbone channels to `C` (§3.2, "Backbone")."""

import keras


def feature_projection(channels, name, dtype=None):
    """A 1×1 conv (Dense on the last axis) to `channels`, or identity when `channels` is None."""
    if channels is None:
        return keras.layers.Identity(name=name, dtype=dtype)
    return keras.layers.Dense(channels, name=name, dtype=dtype)


def deepest(features):
    """The deepest map of a backbone's taps. A one-tap functional backbone called eagerly
    returns its tensor rather than a one-element list (Keras 3), so accept both."""
    return features[-1] if isinstance(features, (list, tuple)) else features


def deepest_shape(input_shape):
    """`deepest` for shapes: a list of shapes, or one shape."""
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return tuple(input_shape[-1])
    return tuple(input_shape)
