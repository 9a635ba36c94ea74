"""Eq. 4 at any `N`: the label graph as its non-zero pairs, and the loss and the fit computed
without an `N × N` matrix.

`L_ge = Σ_ij w_ij σ_ij (c_ij − A'_ij)²` with `c_ij = u_i · u_j` (`u` the unit embeddings) splits
into the pairs where `A'_ij > 0` (a list, `P` long) and the zero pairs, whose term is
`w_0 σ_ij c_ij²`:

- without the relaxation (α = 0, σ = 1): `Σ_zero c² = Σ_all c² − Σ_P c²`, and
  `Σ_all c_ij² = ‖UᵀU‖²_F`, a `[C_e, C_e]` product. The loss and its gradient cost
  `O(N·C_e² + P·C_e)`: exact, no `N²` anywhere.
- with α > 0 a zero pair counts only where `c_ij ≥ α`, which has to be looked at for every pair.
  `zero_pair_term_blocks` walks `U Uᵀ` a block of rows at a time (memory `rows × N`) and
  returns the term and its gradient `4 (M ⊙ C) U` (M the mask, symmetric like C). Its cost is
  still `O(N²·C_e)` a step.

`graph_loss_and_gradient` returns the loss and its gradient in `U` computed outside the tape;
`ASGEModel.train_step` injects the gradient (`output_gradients`), so nothing `P` or `N²` long
is kept for backpropagation.

Both are the dense loss of `asge.graph_embedding_loss` rearranged; the tests check them
against it and against numpy.
"""

import dataclasses

import numpy as np
import scipy.sparse
import tensorflow as tf

from cma_tf.graph.asge import pearson, unit_rows
from cma_tf.graph.cooccurrence import symmetrize

BLOCK_BYTES = 1 << 26  # one block of `U Uᵀ` rows: 64 MiB of float32


@dataclasses.dataclass
class GraphPairs:
    """`A'` (Eq. 1) as its non-zero entries, diagonal included, both `(i, j)` and `(j, i)`.

    Attributes:
        num_labels: `N`.
        rows, cols: int32 `[P]`.
        values: float32 `[P]`, `A'_ij > 0`.
    """

    num_labels: int
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray

    @classmethod
    def from_adjacency(cls, adjacency):
        """From `A` (conditional probabilities, dense `[N, N]` or scipy sparse): symmetrises
        it to `A'` and keeps its positive entries."""
        if not scipy.sparse.issparse(adjacency):
            adjacency = np.asarray(adjacency, np.float32)
        symmetric = scipy.sparse.coo_matrix(symmetrize(adjacency))
        keep = symmetric.data > 0
        rows, cols, values = symmetric.row[keep], symmetric.col[keep], symmetric.data[keep]
        order = np.lexsort((cols, rows))
        return cls(int(adjacency.shape[0]), rows[order].astype(np.int32), cols[order].astype(np.int32),
                   values[order].astype(np.float32))

    @property
    def num_pairs(self):
        return len(self.values)

    def zero_pair_weight(self, balance=True):
        """`w_0 = min(1, P / (N² − P))` (1 without `balance`), as `asge.zero_pair_weight`."""
        if not balance:
            return 1.0
        zero = self.num_labels**2 - self.num_pairs
        return float(min(1.0, self.num_pairs / max(zero, 1)))

    def dense(self):
        """`A'` as a dense float32 array (for tests and small graphs)."""
        matrix = np.zeros((self.num_labels, self.num_labels), np.float32)
        matrix[self.rows, self.cols] = self.values
        return matrix


def default_block_rows(num_labels):
    """Rows of `U Uᵀ` per block so that a block is at most `BLOCK_BYTES` of float32."""
    return int(max(1, min(num_labels, BLOCK_BYTES // (4 * max(num_labels, 1)))))


PAIR_CHUNK = 1 << 16  # pairs handled at once (64 Ki × C_e floats for each of 3 temporaries)


def graph_loss_and_gradient(unit, pairs, alpha=0.0, zero_weight=1.0, block_rows=None):
    """Eq. 4 and its gradient in `unit` (`[N, C_e]`, unit-length or zero rows), without the
    tape: the caller injects the gradient (`tape.gradient(unit, weights, output_gradients=…)`),
    so nothing `P` or `N²` long is kept for backpropagation.

    The non-zero pairs contribute `σ (c − a)²` and are taken out of the zero-pair term, which is
    `w_0 ‖UᵀU‖²_F` (α = 0) or `zero_pair_term_blocks` (α > 0); see `pair_terms`.

    Returns:
        `(loss, gradient)`: a scalar and `[N, C_e]`.
    """
    unit = tf.stop_gradient(unit)
    loss, gradient = pair_terms(unit, pairs, alpha, zero_weight)
    if alpha > 0:
        value, zero_gradient = zero_pair_term_blocks(unit, alpha, zero_weight, block_rows)
    else:
        gram = tf.matmul(unit, unit, transpose_a=True)
        value, zero_gradient = zero_weight * tf.reduce_sum(tf.square(gram)), 4.0 * zero_weight * tf.matmul(unit, gram)
    return loss + value, gradient + zero_gradient


def pair_terms(unit, pairs, alpha=0.0, zero_weight=1.0, chunk=None):
    """`Σ_P σ (c − a)² − w_0 Σ_P m c²` (m = 1, or `[c ≥ α]` when α > 0: the share of the pair in
    the zero-pair term, taken back out) and its gradient in `unit`, `chunk` (default
    `PAIR_CHUNK`) pairs at a time: memory `chunk × C_e`, not `P × C_e`.

    Each unordered pair is visited once (the list's `i ≤ j` half): an off-diagonal one stands
    for `(i, j)` and `(j, i)`, whose cosines are the same sum, so it counts twice in the loss
    and, with `g` the derivative of its term in the cosine, adds `2 g u_j` to row `i` and
    `2 g u_i` to row `j` (the gradient `S U + Sᵀ U`, `S_ij = g`); a diagonal one counts once
    and adds `2 g u_i`.
    """
    chunk = chunk or PAIR_CHUNK
    upper = pairs.rows <= pairs.cols
    rows = tf.constant(pairs.rows[upper], tf.int32)
    cols = tf.constant(pairs.cols[upper], tf.int32)
    targets = tf.constant(pairs.values[upper], unit.dtype)
    count = int(upper.sum())
    chunks = -(-count // chunk)

    def body(index, loss, gradient):
        start = index * chunk
        size = tf.minimum(chunk, count - start)
        row, col = tf.slice(rows, [start], [size]), tf.slice(cols, [start], [size])
        left, right = tf.gather(unit, row), tf.gather(unit, col)
        target = tf.slice(targets, [start], [size])
        cosine = tf.reduce_sum(left * right, axis=-1)
        if alpha > 0:
            kept = tf.cast(cosine >= alpha, cosine.dtype)
            sigma = 1.0 - tf.cast((target < alpha) & (cosine < alpha), cosine.dtype)
        else:
            kept = sigma = tf.ones_like(cosine)
        off_diagonal = tf.cast(row != col, cosine.dtype)
        terms = sigma * tf.square(cosine - target) - zero_weight * kept * tf.square(cosine)
        loss += tf.reduce_sum((1.0 + off_diagonal) * terms)
        derivative = 2.0 * (2.0 * sigma * (cosine - target) - 2.0 * zero_weight * kept * cosine)
        gradient += tf.math.unsorted_segment_sum(derivative[:, None] * right, row, pairs.num_labels)
        gradient += tf.math.unsorted_segment_sum((off_diagonal * derivative)[:, None] * left, col, pairs.num_labels)
        return index + 1, loss, gradient

    _, loss, gradient = tf.while_loop(
        lambda index, *_: index < chunks, body,
        (tf.constant(0), tf.zeros((), unit.dtype), tf.zeros_like(unit)),
        parallel_iterations=1,
    )
    return loss, gradient


def zero_pair_term_blocks(unit, alpha, zero_weight=1.0, block_rows=None):
    """`w_0 Σ_ij [c_ij ≥ α] c_ij²` over all `N²` pairs and its gradient in `unit`,
    `4 w_0 (M ⊙ C) U`, one block of rows of `C = U Uᵀ` at a time (sequential: memory
    `block_rows × N`).

    Returns:
        `(value, gradient)`: a scalar and `[N, C_e]`.
    """
    num_labels = int(unit.shape[0])
    rows = block_rows or default_block_rows(num_labels)
    blocks = -(-num_labels // rows)
    # Zero rows pad U to whole blocks (their c is 0 < α: they count nowhere); the static block
    # shape keeps the loop compilable by XLA on an accelerator.
    padded = tf.pad(unit, [[0, blocks * rows - num_labels], [0, 0]])

    def body(index, value, gradient):
        block = tf.slice(padded, [index * rows, 0], [rows, -1])
        cosine = tf.matmul(block, unit, transpose_b=True)  # [rows, N]
        kept = tf.where(cosine >= alpha, cosine, tf.zeros_like(cosine))
        value += tf.reduce_sum(tf.square(kept))
        gradient = tf.tensor_scatter_nd_update(
            gradient, tf.range(index * rows, (index + 1) * rows)[:, None], 4.0 * tf.matmul(kept, unit)
        )
        return index + 1, value, gradient

    _, value, gradient = tf.while_loop(
        lambda index, *_: index < blocks, body,
        (tf.constant(0), tf.zeros((), unit.dtype), tf.zeros_like(padded)),
        parallel_iterations=1,
    )
    return zero_weight * value, zero_weight * gradient[:num_labels]


def pair_off_diagonal_fit(embeddings, pairs, seed=0):
    """`asge.off_diagonal_fit` from the pair list, in `O(N·C_e² + P·C_e)`: the RMSE and the
    Pearson r over all `N(N−1)` off-diagonal pairs come from sums (`Σ c` = ‖Σ u‖² − Σ‖u‖²,
    `Σ c²` = ‖UᵀU‖²_F − Σ‖u‖⁴, `Σ c·a` and `Σ a²` over the pair list); `pearson_balanced` draws
    its zero pairs by rejection sampling (seeded), so it differs from the dense version's
    draw by sampling noise only."""
    unit, finite, norms = unit_rows(embeddings)
    num_labels = len(unit)
    off = pairs.rows != pairs.cols
    rows, cols, target = pairs.rows[off], pairs.cols[off], pairs.values[off].astype(np.float64)
    cosine = _pair_cosines(unit, rows, cols)
    count = num_labels * (num_labels - 1)
    squared_norms = np.sum(unit**2, axis=1)
    sum_c = float(np.sum(unit.sum(axis=0) ** 2) - squared_norms.sum())
    sum_cc = float(np.sum((unit.T @ unit) ** 2) - np.sum(squared_norms**2))
    sum_a, sum_aa, sum_ca = target.sum(), np.sum(target**2), np.sum(cosine * target)
    report = {
        "rmse": float(np.sqrt(max(sum_cc - 2 * sum_ca + sum_aa, 0.0) / count)) if count else 0.0,
        "pearson": _pearson_from_sums(count, sum_c, sum_cc, sum_a, sum_aa, sum_ca),
        "pearson_nonzero": pearson(cosine, target),
        "nonzero_fraction": float(len(target) / max(count, 1)),
        "zero_rows": int(np.sum(finite & (norms == 0))),
        "nonfinite_rows": int(np.sum(~finite)),
    }
    sampled = _sample_zero_pairs(num_labels, rows, cols, min(len(target), count - len(target)), seed)
    zero_cosine = _pair_cosines(unit, *sampled)
    report["pearson_balanced"] = pearson(
        np.concatenate([cosine, zero_cosine]), np.concatenate([target, np.zeros(len(zero_cosine))])
    )
    return report


def _pair_cosines(unit, rows, cols):
    chunk = PAIR_CHUNK
    return np.concatenate([
        np.einsum("pc,pc->p", unit[rows[start:start + chunk]], unit[cols[start:start + chunk]])
        for start in range(0, len(rows), chunk)
    ] or [np.zeros(0)])


def _sample_zero_pairs(num_labels, rows, cols, how_many, seed):
    """`how_many` distinct off-diagonal pairs outside `(rows, cols)`, drawn uniformly."""
    taken = np.sort(rows.astype(np.int64) * num_labels + cols)
    rng = np.random.default_rng(seed)
    chosen = np.zeros(0, np.int64)
    while len(chosen) < how_many:
        draw = rng.integers(0, num_labels * num_labels, 2 * (how_many - len(chosen)) + 16)
        draw = draw[(draw // num_labels != draw % num_labels)]
        position = np.minimum(np.searchsorted(taken, draw), max(len(taken) - 1, 0))
        draw = draw[taken[position] != draw] if len(taken) else draw
        chosen = np.unique(np.concatenate([chosen, draw]))
    chosen = rng.permutation(chosen)[:how_many]
    return np.divmod(chosen, num_labels)


def _pearson_from_sums(count, sum_x, sum_xx, sum_y, sum_yy, sum_xy):
    if count < 2:
        return float("nan")
    var_x = sum_xx / count - (sum_x / count) ** 2
    var_y = sum_yy / count - (sum_y / count) ** 2
    if var_x <= 1e-15 or var_y <= 0:
        return float("nan")
    return float((sum_xy / count - sum_x * sum_y / count**2) / np.sqrt(var_x * var_y))
