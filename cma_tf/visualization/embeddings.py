"""What the label embeddings learned (the paper's Fig. 3): `cos(e_i, e_j)` beside the graph `A'`
it was fitted to (Eq. 1, 4), in an order that makes co-occurring labels form blocks, and a 2-D
view of the embeddings."""

import numpy as np


def cosine_similarity(embeddings):
    """`[N, N]` cosine of every pair of rows (a zero row has cosine 0 with everything)."""
    embeddings = np.asarray(embeddings, np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.where(norms > 0, norms, 1.0)
    return unit @ unit.T


def cluster_order(similarity):
    """An order of the labels in which similar ones sit together: the leaves of an
    average-linkage clustering on the distance `1 − similarity` (scipy), optimally ordered."""
    from scipy.cluster.hierarchy import leaves_list, linkage, optimal_leaf_ordering
    from scipy.spatial.distance import squareform

    similarity = np.asarray(similarity, np.float64)
    if len(similarity) < 3:
        return np.arange(len(similarity))
    distance = np.clip(1.0 - (similarity + similarity.T) / 2.0, 0.0, None)
    np.fill_diagonal(distance, 0.0)
    condensed = squareform(distance, checks=False)
    tree = linkage(condensed, method="average")
    return leaves_list(optimal_leaf_ordering(tree, condensed))


def project_2d(embeddings):
    """`[N, 2]`: the unit-normalised embeddings on their first two principal axes (PCA by SVD),
    so that labels with a high cosine land close together."""
    embeddings = np.asarray(embeddings, np.float64)
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit = embeddings / np.where(norms > 0, norms, 1.0)
    centred = unit - unit.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    return centred @ axes[:2].T
