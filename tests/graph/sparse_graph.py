"""A label graph shaped like YouTube-8M's, in numpy: many labels, few non-zero pairs.

Videos draw 1-5 labels from one latent topic (a block of `topic_size` labels); label popularity
follows a power law; every label occurs at least once (the first `num_labels` videos each start
from their own label). With 1,000 labels in topics of 100, about 5 % of the off-diagonal pairs
are non-zero; with 3,862 labels, under 1 %.
"""

import numpy as np


def sparse_topic_counts(num_labels, videos=60_000, topic_size=100, seed=0):
    """Co-occurrence counts `[N, N]` (diagonal: label counts) of the synthetic videos."""
    rng = np.random.default_rng(seed)
    topics = np.array_split(rng.permutation(num_labels), max(1, num_labels // topic_size))
    topic_of = np.empty(num_labels, np.int64)
    for index, members in enumerate(topics):
        topic_of[members] = index
    popularity = (1.0 / np.arange(1, num_labels + 1))[rng.permutation(num_labels)]
    firsts = np.concatenate([
        np.arange(num_labels), rng.choice(num_labels, videos - num_labels, p=popularity / popularity.sum())
    ])
    sizes = rng.integers(1, 6, videos)
    counts = np.zeros((num_labels, num_labels), np.int64)
    for first, size in zip(firsts, sizes):
        members = topics[topic_of[first]]
        weights = popularity[members] / popularity[members].sum()
        others = rng.choice(members, size=min(size - 1, len(members)), replace=False, p=weights)
        ids = np.unique(np.append(others, first))
        counts[np.ix_(ids, ids)] += 1
    return counts


def conditional_adjacency(counts):
    """`A_ij = count_ij / count_jj`, diagonal 1 (§3.1), re-derived here for the tests."""
    occurrences = np.diag(counts).astype(np.float64)
    adjacency = counts / np.maximum(occurrences[None, :], 1)
    np.fill_diagonal(adjacency, 1.0)
    return adjacency.astype(np.float32)
