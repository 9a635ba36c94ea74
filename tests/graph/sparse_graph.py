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


def topic_label_lists(num_labels, examples_per_label=20, topic_size=100, seed=0):
    """Label lists `[n, 5]` (-1 padded) of the same kind of synthetic videos, vectorised for any
    `N` (20,000 labels: 400,000 videos in seconds, no `N × N` array): each video's first label
    is every label once, then popularity-weighted (power law); up to 4 more come from the first
    label's topic, the topic's first members the likeliest. For `LabelCooccurrence`."""
    rng = np.random.default_rng(seed)
    videos = num_labels * examples_per_label
    order = rng.permutation(num_labels)  # topic t = order[bounds[t]:bounds[t + 1]]
    topics = max(1, num_labels // topic_size)
    bounds = np.linspace(0, num_labels, topics + 1).astype(np.int64)
    position = np.empty(num_labels, np.int64)
    position[order] = np.arange(num_labels)
    popularity = 1.0 / np.arange(1, num_labels + 1)[rng.permutation(num_labels)]
    firsts = np.concatenate([
        np.arange(num_labels), rng.choice(num_labels, videos - num_labels, p=popularity / popularity.sum())
    ])
    topic = np.searchsorted(bounds, position[firsts], side="right") - 1
    start, size = bounds[topic], bounds[topic + 1] - bounds[topic]
    others = order[start[:, None] + (size[:, None] * rng.random((videos, 4)) ** 2).astype(np.int64)]
    others[np.arange(4)[None, :] >= rng.integers(0, 5, videos)[:, None]] = -1
    return np.concatenate([firsts[:, None], others], axis=1)
