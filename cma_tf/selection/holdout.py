"""The held-out part of a training split: the examples a search scores its candidates on.

The part is drawn from the training split's examples alone (by their position in the split's
deterministic, unshuffled order), fixed by a seed, and the same for every head that is compared:
the eval split is never read while choosing.
"""

import numpy as np

DEFAULT_FRACTION = 0.15
DEFAULT_SEED = 0


def holdout_split(num_examples, fraction=DEFAULT_FRACTION, seed=DEFAULT_SEED):
    """`(fit, held_out)`: sorted int64 indices of `range(num_examples)`, disjoint, covering it.

    `held_out` holds `round(fraction · num_examples)` examples (at least one of each part when
    `num_examples ≥ 2`) chosen by a permutation seeded with `seed` alone, so every head, rerun
    or machine gets the same part.

    Examples:
    >>> fit, held = holdout_split(10, 0.2, seed=0)
    >>> len(fit), len(held), sorted(set(fit) | set(held)) == list(range(10))
    (8, 2, True)
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"the held-out fraction must be in (0, 1), got {fraction}")
    if num_examples < 2:
        raise ValueError(f"a held-out part needs at least 2 training examples, got {num_examples}")
    count = min(num_examples - 1, max(1, int(round(fraction * num_examples))))
    order = np.random.default_rng(seed).permutation(num_examples)
    return np.sort(order[count:]).astype(np.int64), np.sort(order[:count]).astype(np.int64)
