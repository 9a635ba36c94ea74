"""ML-GCN's correlation matrix `Â` from a training set's label counts (Chen et al., CVPR 2019, §3.4).

As the official code builds it (github.com/megvii-research/ML-GCN, `util.py`: `gen_A`, `gen_adj`),
from `M_ij` (images carrying labels i and j, i ≠ j) and `N_i` (images carrying label i):

    P_ij = M_ij / N_i                             P(L_j | L_i)           (Eq. 6)
    A_ij = 1 if P_ij ≥ τ else 0                   τ = 0.4                (Eq. 7)
    A    = r · A / colsum(A) + I                  r = 0.25               (Eq. 8, as coded)
    Â    = D · Aᵀ · D,   D = diag(rowsum(A))^-½                          (the GCN's normalisation)

Eq. 8 as printed re-weights row-wise to `p / Σ_j A_ij` beside a self weight `1 − p` (p = 0.2);
the code divides by column sums with mass 0.25 beside a self weight 1, which the authors call the
same up to scale (0.25 / 1.25 = 0.2). Note the transpose: after it, label i aggregates label j's
features when `P(L_i | L_j) ≥ τ`. A label never seen in training (`N_i = 0`) keeps only its self
loop (the code would divide by zero).
"""

import numpy as np

THRESHOLD = 0.4  # τ, the official code's for COCO and VOC
REWEIGHT = 0.25  # the neighbours' mass beside a self weight of 1 (p = 0.2 after normalisation)


def mlgcn_correlation(counts, threshold=THRESHOLD, reweight=REWEIGHT):
    """`Â` `[N, N]` float32 from `counts` `[N, N]` (co-occurrence counts, diagonal = per-label
    counts `N_i`, as `cma_tf.graph.cooccurrence.LabelGraph.counts`)."""
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"label counts must be a square [N, N] matrix, got shape {counts.shape}")
    nums = np.diag(counts).copy()
    pairs = counts - np.diag(nums)
    with np.errstate(divide="ignore", invalid="ignore"):
        conditional = np.where(nums[:, None] > 0, pairs / np.maximum(nums[:, None], 1.0), 0.0)
    binary = (conditional >= threshold).astype(np.float64)
    adjacency = binary * reweight / (binary.sum(axis=0, keepdims=True) + 1e-6) + np.identity(len(nums))
    scale = np.power(adjacency.sum(axis=1), -0.5)
    return (scale[:, None] * adjacency.T * scale[None, :]).astype(np.float32)
