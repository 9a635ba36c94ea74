"""Adjacency-based Similarity Graph Embedding (ASGE), §3.1, Eq. 2-5.

Decisions the paper leaves open (docs/design.md §2.2-2.4):
- Φ is 3 × (Dense → BatchNorm → ReLU), width 256. Its input is the one-hot `o_i`, so the
  first Dense is a lookup of a row of its kernel: we implement it as an `Embedding` (the
  first Dense's bias is absorbed by the BatchNorm that follows).
- BatchNorm sees a batch of all `N` labels at every step (the paper trains on the whole
  graph), so its batch statistics are statistics over labels. The embeddings handed to the
  classifier are computed in inference mode (moving statistics); with a fixed full batch the
  moving statistics converge to the batch statistics, and the tests measure the fit in
  inference mode.
- The relaxation of Eq. 5 as printed compares `A_ij` (the asymmetric conditional probability)
  with α. We gate on `A'_ij`, the value actually fitted (docs/design.md §2.2): the mask is then
  symmetric (σ_ij = σ_ji), like the loss it masks.
- The loss is the sum of Eq. 3/4 (not a mean), as in the paper, with one addition for
  sparse graphs: when zero pairs (`A'_ij = 0`) outnumber the non-zero ones, each zero pair is
  weighted `w_0 = #non-zero / #zero` so both kinds carry the same total weight. A graph as
  dense as COCO's (82 % non-zero) or VOC's (56 %) gets `w_0 = 1`, Eq. 4 unchanged. At
  YouTube-8M's 3,862 labels 99 % of the pairs are zero: unweighted, the cheapest way to lower
  the loss is to push every `cos` to 0, and Φ's last ReLU gets there by outputting the zero
  vector (`cos(0, x) = 0` by the epsilon below), a dead state gradients cannot leave. See
  `asge_model.fit_asge` for the optimizer side of the same problem.
- Zero pairs balanced is not enough at thousands of labels: during a long fit single labels
  still fall into that dead state one by one (3 of 3,862 by step 300, then a cascade of 160 at
  step 700 that took the fit with it). `row_guard_loss` is added to Eq. 4 (weight
  `config.asge.row_guard`, 1 by default, 0 for the paper's loss alone): it is zero for a label
  with any last-stage unit above δ = 0.1 and lifts the largest unit of one below it.
- The classifier either freezes E after ASGE (the paper's two-stage recipe: the encoder's
  `trainable=False`, so BatchNorm stays in inference mode) or fine-tunes Φ jointly with the
  classification loss plus `λ · L_ge` (see `models/classifier.py`).
"""

import keras
import numpy as np
from keras import ops

from cma_tf.layers.ops import l2_normalize
from cma_tf.saving import register, sync_sublayer_trainability

COSINE_EPSILON = 1e-8
ROW_GUARD_MARGIN = 0.1  # δ of `row_guard_loss`, in units of the last BatchNorm's output


@register
class ASGEEncoder(keras.layers.Layer):
    """Φ of Eq. 2: label id → embedding `e_i` (`depth` × Dense-BN-ReLU, width `units`).

    Args:
        num_labels: int, `N`.
        units: int, hidden and output width `C_e`. Default 256.
        depth: int, number of Dense-BN-ReLU stages. Default 3.

    Call args:
        label_ids: int tensor `[K]`; usually `ops.arange(N)` (see `all_embeddings`).

    Examples:
    >>> encoder = ASGEEncoder(num_labels=5, units=8)
    >>> encoder.all_embeddings().shape
    (5, 8)
    """

    def __init__(self, num_labels, units=256, depth=3, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.units = units
        self.depth = depth
        self.lookup = keras.layers.Embedding(num_labels, units, name="dense_0", dtype=self.dtype_policy)
        self.dense = [
            keras.layers.Dense(units, use_bias=False, name=f"dense_{i}", dtype=self.dtype_policy)
            for i in range(1, depth)
        ]
        self.norms = [
            keras.layers.BatchNormalization(name=f"bn_{i}", dtype=self.dtype_policy)
            for i in range(depth)
        ]
        sync_sublayer_trainability(self)

    def build(self, input_shape=None):
        self.lookup.build((None,))
        for dense in self.dense:
            dense.build((None, self.units))
        for norm in self.norms:
            norm.build((None, self.units))

    def call(self, label_ids, training=None):
        return ops.relu(self.last_preactivations(label_ids, training=training))

    def last_preactivations(self, label_ids, training=None):
        """The last stage's BatchNorm outputs, before its ReLU: `e_i = ReLU(z_i)`."""
        z = self.norms[0](self.lookup(label_ids), training=training)
        for dense, norm in zip(self.dense, self.norms[1:]):
            z = norm(dense(ops.relu(z)), training=training)
        return z

    def all_embeddings(self, training=None):
        """`E = [e_1 … e_N]`, shape `[N, units]`."""
        return self(ops.arange(self.num_labels), training=training)

    def all_last_preactivations(self, training=None):
        """`Z = [z_1 … z_N]` of `last_preactivations`, shape `[N, units]` (`E = ReLU(Z)`)."""
        return self.last_preactivations(ops.arange(self.num_labels), training=training)

    def set_statistics_to_the_full_batch(self):
        """Sets every BatchNorm's moving mean and variance to its statistics over all `N`
        labels, the batch every ASGE step sees: inference mode then computes exactly the
        embeddings the loss was minimised for. Without it the moving averages (momentum
        0.99) lag the weights, and a short fit's inference embeddings differ from its
        training ones (at 1,000 labels after 200 steps, most rows came out all zero)."""
        momenta = [norm.momentum for norm in self.norms]
        for norm in self.norms:
            norm.momentum = 0.0
        try:
            self.all_embeddings(training=True)
        finally:
            for norm, momentum in zip(self.norms, momenta):
                norm.momentum = momentum

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_labels": self.num_labels, "units": self.units, "depth": self.depth})
        return config


def cosine_similarity_matrix(embeddings):
    """`cos(e_i, e_j)` for all pairs, `[N, N]`."""
    unit = l2_normalize(embeddings, COSINE_EPSILON)
    return ops.matmul(unit, ops.transpose(unit))


def zero_pair_weight(symmetric_adjacency):
    """`w_0 = min(1, #(A'_ij > 0) / #(A'_ij = 0))` over all `N²` pairs (1 when there is no zero)."""
    nonzero = ops.sum(ops.cast(symmetric_adjacency > 0, "float32"))
    zero = ops.cast(ops.size(symmetric_adjacency), "float32") - nonzero
    return ops.minimum(1.0, nonzero / ops.maximum(zero, 1.0))


def graph_embedding_loss(embeddings, symmetric_adjacency, alpha=0.0, balance=True):
    """Eq. 4 with the mask σ of Eq. 5 (Eq. 3 when `alpha == 0`).

    `L_ge = Σ_ij w_ij σ_ij (cos(e_i, e_j) − A'_ij)²`, `σ_ij = 0` where `A'_ij < α` and
    `cos(e_i, e_j) < α`, else 1 (the paper's Eq. 5 reads `A_ij`; see the module docstring);
    `w_ij = 1` where `A'_ij > 0`, `w_0` of `zero_pair_weight` where it is 0 (1 for every pair
    when `balance` is False, the paper's literal loss).
    """
    cosine = cosine_similarity_matrix(embeddings)
    target = ops.cast(symmetric_adjacency, cosine.dtype)
    squared = ops.square(cosine - target)
    if alpha > 0:
        relaxed = ops.logical_and(target < alpha, cosine < alpha)
        squared = ops.where(relaxed, ops.zeros_like(squared), squared)
    if balance:
        weight = ops.cast(zero_pair_weight(target), squared.dtype)
        squared = ops.where(target > 0, squared, weight * squared)
    return ops.sum(squared)


@register
class LabelGraphLoss(keras.layers.Layer):
    """Holds a label graph `A` (non-trainable) and computes `L_ge` of Eq. 4-5 for embeddings.

    The graph is a weight so that a classifier fine-tuning E jointly (models/classifier.py)
    carries its target with it through `.keras` saving.

    Args:
        num_labels: int, `N`.
        alpha: float, the relaxation threshold α of Eq. 5 (0 disables it). Default 0.
        balance: bool, weight zero pairs by `zero_pair_weight` (see `graph_embedding_loss`).
    """

    def __init__(self, num_labels, alpha=0.0, balance=True, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.alpha = alpha
        self.balance = balance

    def build(self, input_shape=None):
        self.adjacency = self.add_weight(
            name="adjacency", shape=(self.num_labels, self.num_labels),
            initializer="identity", trainable=False,
        )

    def set_adjacency(self, adjacency):
        """Sets `A` (conditional probabilities, `A_ij = P(v_i | v_j)`)."""
        adjacency = np.asarray(adjacency, np.float32)
        if adjacency.shape != (self.num_labels, self.num_labels):
            raise ValueError(
                f"adjacency must be [{self.num_labels}, {self.num_labels}], got {adjacency.shape}"
            )
        if not self.built:
            self.build()
        self.adjacency.assign(adjacency)

    def call(self, embeddings):
        adjacency = ops.convert_to_tensor(self.adjacency)
        symmetric = (adjacency + ops.transpose(adjacency)) / 2
        return graph_embedding_loss(embeddings, symmetric, self.alpha, self.balance)

    def get_config(self):
        config = super().get_config()
        config.update({"num_labels": self.num_labels, "alpha": self.alpha, "balance": self.balance})
        return config


def row_guard_loss(preactivations, margin=ROW_GUARD_MARGIN):
    """`Σ_i max(0, δ − max_k z_ik)` over the last stage's pre-ReLU outputs `z_i` (our addition to
    Eq. 4, docs/design.md §2.21).

    Zero for every label that has a unit above the margin `δ`, so it leaves a healthy fit alone;
    for a label about to die (every `z_ik < δ`: `e_i = ReLU(z_i)` near or at the zero vector,
    where Eq. 4 sends no gradient back) it raises that label's largest pre-activation. Eq. 4
    itself never prefers a dead label: its cosine to every label becomes 0 while `A'` has non-zero
    entries in its row; the ReLU just stops the gradient that would say so.
    """
    return ops.sum(ops.relu(margin - ops.max(preactivations, axis=1)))


def guarded_rows(preactivations, margin=ROW_GUARD_MARGIN):
    """How many labels `row_guard_loss` acts on: those whose largest `z_ik` is below `δ`."""
    return ops.sum(ops.cast(ops.max(preactivations, axis=1) < margin, "int32"))


def dense_graph_loss_with_guard(graph_loss, preactivations, row_guard):
    """`(L_ge, L_ge + row_guard · row_guard_loss)` for `E = ReLU(Z)`, `graph_loss` a
    `LabelGraphLoss`: Eq. 4 alone (what is tracked) and what is minimised."""
    loss = graph_loss(ops.relu(preactivations))
    if not row_guard:
        return loss, loss
    return loss, loss + row_guard * row_guard_loss(preactivations)


def off_diagonal_fit(embeddings, symmetric_adjacency, seed=0):
    """How well `cos(e_i, e_j)` fits `A'_ij` over `i ≠ j` (numpy), and whether Φ degenerated.

    Returns a dict:
        rmse, pearson: over all off-diagonal pairs (on a sparse graph both are dominated by
            the zero pairs: all-zero embeddings score RMSE ≈ 0.02 at 3,862 labels).
        pearson_nonzero: over the pairs with `A'_ij > 0` (does the fit rank related labels?).
        pearson_balanced: over the non-zero pairs plus as many zero pairs drawn at random
            (seeded), so related and unrelated pairs weigh the same.
        nonzero_fraction: of the off-diagonal pairs.
        zero_rows: labels whose embedding is the zero vector (a dead last ReLU).
        nonfinite_rows: labels whose embedding holds NaN or inf.
    NaN marks a correlation that is undefined (no pairs, or a constant side).
    """
    target_matrix = np.asarray(symmetric_adjacency, np.float64)
    unit, finite, norms = unit_rows(embeddings)
    cosine = unit @ unit.T
    off = ~np.eye(len(cosine), dtype=bool)
    nonzero = off & (target_matrix > 0)
    zero = off & ~(target_matrix > 0)
    sampled = np.flatnonzero(zero.ravel())
    sampled = np.random.default_rng(seed).choice(sampled, min(len(sampled), int(nonzero.sum())), replace=False)
    balanced = np.concatenate([np.flatnonzero(nonzero.ravel()), sampled])
    return {
        "rmse": float(np.sqrt(np.mean((cosine[off] - target_matrix[off]) ** 2))) if off.any() else 0.0,
        "pearson": pearson(cosine[off], target_matrix[off]),
        "pearson_nonzero": pearson(cosine[nonzero], target_matrix[nonzero]),
        "pearson_balanced": pearson(cosine.ravel()[balanced], target_matrix.ravel()[balanced]),
        "nonzero_fraction": float(nonzero.sum() / max(off.sum(), 1)),
        "zero_rows": int(np.sum(finite & (norms == 0))),
        "nonfinite_rows": int(np.sum(~finite)),
    }


def unit_rows(embeddings):
    """float64 `(unit, finite, norms)`: each row scaled to length 1 (zero and non-finite rows
    to zero), whether a row is all finite, and its norm (non-finite entries counted as 0)."""
    embeddings = np.asarray(embeddings, np.float64)
    finite = np.isfinite(embeddings).all(axis=1)
    norms = np.linalg.norm(np.where(np.isfinite(embeddings), embeddings, 0.0), axis=1)
    unit = np.where(finite[:, None], embeddings, 0.0) / np.maximum(norms, COSINE_EPSILON)[:, None]
    return unit, finite, norms


def pearson(predicted, target):
    """Pearson r, NaN where undefined (fewer than two values, or a constant side)."""
    if len(target) < 2 or target.std() == 0 or predicted.std() == 0:
        return float("nan")
    return float(np.corrcoef(predicted, target)[0, 1])
