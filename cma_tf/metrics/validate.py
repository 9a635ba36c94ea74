"""Input checks shared by the image and the video metrics (each raises ValueError naming the argument).

What the two families check differently (0/1 targets, finiteness, equal shapes) stays in their
modules, with their own messages.
"""

import numpy as np


def as_numeric_array(values, name):
    """``values`` as an array; raises unless its dtype is integer, floating or bool."""
    array = np.asarray(values)
    if not (
        np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.floating)
        or array.dtype == bool
    ):
        raise ValueError(f"`{name}` must be numeric, got dtype {array.dtype}")
    return array


def check_axes(array, name, axes):
    """Raises unless ``array`` has one dimension per entry of ``axes`` (their names, for the message)."""
    if array.ndim != len(axes):
        raise ValueError(f"`{name}` must be {len(axes)}-D [{', '.join(axes)}], got shape {array.shape}")


def positive_integer(value, name):
    """``value`` as an int; raises unless it is a positive integer (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"`{name}` must be a positive integer, got {value!r}")
    return int(value)
