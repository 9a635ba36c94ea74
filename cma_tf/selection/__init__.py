"""Choosing a head on held-out training data: the protocol of `bench/heads.py` (and `cma_tf.select`).

    feature_cache.py   the backbone's maps of a split, computed once and kept on disk
    holdout.py         the held-out part of the training split (fixed by a seed, the same for every head)
    feature_head.py    a head trained on cached maps (the frozen-backbone regime), evaluated exactly
    grid.py            the tuning budget every head gets: the grid of learning rates and schedules
    search.py          one head's grid search, resumable, selected on the held-out part

Nothing here reads the evaluation split while choosing: the search trains on the training split
minus the held-out part and scores on the held-out part; only the final runs, with the chosen
point, train on the whole training split and are evaluated on the eval split.
"""
