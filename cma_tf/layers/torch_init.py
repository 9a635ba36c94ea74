"""PyTorch's weight initialisations as Keras initializers: what a head's `init="official"` uses
(docs/design.md §2.25).

The official Query2Label, ML-Decoder and HSVLT code is PyTorch; where its layers start from
PyTorch's defaults or its own re-initialisation and Keras' differ, `init="official"` draws as
PyTorch does. Fans are counted as PyTorch counts them (`nn.init._calculate_fan_in_and_fan_out`):
a weight `[out, in, *kernel]` has fan_in = in · prod(kernel) and fan_out = out · prod(kernel),
whatever the layout of the Keras kernel that holds it.

- `linear_default(fan_in)`: `nn.Linear`'s and `nn.Conv*d`'s own initialisation,
  `kaiming_uniform_(a=√5)` for the weight (bound √(6 / ((1 + 5) · fan_in)) = 1/√fan_in) and
  U(±1/√fan_in) for the bias: both U(±1/√fan_in). A depthwise convolution (`groups = C`) has
  fan_in = kernel area.
- `xavier_uniform(fan_in, fan_out)`: U(±√(6 / (fan_in + fan_out))).
- `in_projection(units)`: `nn.MultiheadAttention._reset_parameters`, Xavier-uniform over the packed
  `in_proj_weight` `[3d, d]` (fan_in d, fan_out 3d: std √(1 / (2d)), 0.0625 at d = 128, where
  Keras 3.15's Glorot over its `[d, heads, d/heads]` kernels, fans d and d, gives 0.088), zero `in_proj_bias` and
  `out_proj.bias` (Keras' zero biases already); its `out_proj.weight` keeps `nn.Linear`'s default
  unless a model re-initialises it.

Keras' `MultiHeadAttention` takes one kernel initializer for its query, key, value and output
projections alike; `set_output_projection` re-draws the output kernel after the layer is built
where PyTorch's differs from its q/k/v (a draw, not a formula: the layer stays a stock Keras one).
"""

import math

import keras

INITS = ("keras", "official")


def check_init(init, owner):
    """A `ValueError` naming `owner` unless `init` is one of `INITS`."""
    if init not in INITS:
        raise ValueError(f"{owner}: init must be one of {', '.join(map(repr, INITS))}, got {init!r}")


def uniform(bound):
    """U(±bound); a new initializer each call (one per weight, so that no two draw alike)."""
    return keras.initializers.RandomUniform(-bound, bound)


def linear_default(fan_in):
    """U(±1/√fan_in): PyTorch's default for a `nn.Linear` / `nn.Conv*d` weight and its bias."""
    return uniform(1.0 / math.sqrt(fan_in))


def xavier_uniform(fan_in, fan_out):
    """U(±√(6 / (fan_in + fan_out))): `nn.init.xavier_uniform_` (gain 1)."""
    return uniform(math.sqrt(6.0 / (fan_in + fan_out)))


def in_projection(units):
    """`nn.MultiheadAttention`'s q/k/v weights: Xavier-uniform over the packed `[3d, d]`."""
    return xavier_uniform(units, 3 * units)


def set_linear_default(dense, fan_in):
    """Gives an unbuilt `keras.layers.Dense` PyTorch's `nn.Linear` initialisation for `fan_in`
    inputs (for a layer whose input width is known only when its owner is built)."""
    dense.kernel_initializer = linear_default(fan_in)
    if dense.use_bias:
        dense.bias_initializer = linear_default(fan_in)


def set_output_projection(attention, initializer):
    """Re-draws a built `keras.layers.MultiHeadAttention`'s output kernel `[heads, d/heads, d]`
    from `initializer` (its bias stays zero, as PyTorch's `out_proj.bias`)."""
    kernel = attention.output_dense.kernel
    attention.output_dense.kernel.assign(initializer(tuple(kernel.shape), dtype=kernel.dtype))
