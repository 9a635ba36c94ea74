"""Adjacency-based Similarity Graph Embedding (ASGE), §3.1, Eq. 2-5.

Decisions the paper leaves open (DESIGN.md §4):
- Φ is 3 × (Dense → BatchNorm → ReLU), width 256. Its input is the one-hot `o_i`, so the
  first Dense is a lookup of a row of its kernel: we implement it as an `Embedding` (the
  first Dense's bias is absorbed by the BatchNorm that follows).
- BatchNorm sees a batch of all `N` labels at every step (the paper trains on the whole
  graph), so its batch statistics are statistics over labels. The embeddings handed to the
  classifier are computed in inference mode (moving statistics); with a fixed full batch the
  moving statistics converge to the batch statistics, and the tests measure the fit in
  inference mode.
- The relaxation of Eq. 5 as printed compares `A_ij` (the asymmetric conditional probability)
  with α. We gate on `A'_ij`, the value actually fitted (DESIGN.md §1): the mask is then
  symmetric (σ_ij = σ_ji), like the loss it masks.
- The loss is the plain sum of Eq. 3/4 (not a mean): with SGD lr 0.01 the sum converges
  and a mean stalls (DESIGN.md §6), the reduction and the learning rate go together.
- The classifier either freezes E after ASGE (the paper's two-stage recipe: the encoder's
  `trainable=False`, so BatchNorm stays in inference mode) or fine-tunes Φ jointly with the
  classification loss plus `λ · L_ge` (see `models/classifier.py`).
"""

import keras
import numpy as np
from keras import ops

from cma_tf.layers.cross_modality import PACKAGE, sync_sublayer_trainability, l2_normalize

COSINE_EPSILON = 1e-8


@keras.saving.register_keras_serializable(package=PACKAGE)
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
        x = ops.relu(self.norms[0](self.lookup(label_ids), training=training))
        for dense, norm in zip(self.dense, self.norms[1:]):
            x = ops.relu(norm(dense(x), training=training))
        return x

    def all_embeddings(self, training=None):
        """`E = [e_1 … e_N]`, shape `[N, units]`."""
        return self(ops.arange(self.num_labels), training=training)

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


def graph_embedding_loss(embeddings, symmetric_adjacency, alpha=0.0):
    """Eq. 4 with the mask σ of Eq. 5 (Eq. 3 when `alpha == 0`).

    `L_ge = Σ_ij σ_ij (cos(e_i, e_j) − A'_ij)²`, `σ_ij = 0` where `A'_ij < α` and
    `cos(e_i, e_j) < α`, else 1 (the paper's Eq. 5 reads `A_ij`; see the module docstring).
    """
    cosine = cosine_similarity_matrix(embeddings)
    target = ops.cast(symmetric_adjacency, cosine.dtype)
    squared = ops.square(cosine - target)
    if alpha > 0:
        relaxed = ops.logical_and(target < alpha, cosine < alpha)
        squared = ops.where(relaxed, ops.zeros_like(squared), squared)
    return ops.sum(squared)


@keras.saving.register_keras_serializable(package=PACKAGE)
class LabelGraphLoss(keras.layers.Layer):
    """Holds a label graph `A` (non-trainable) and computes `L_ge` of Eq. 4-5 for embeddings.

    The graph is a weight so that a classifier fine-tuning E jointly (models/classifier.py)
    carries its target with it through `.keras` saving.

    Args:
        num_labels: int, `N`.
        alpha: float, the relaxation threshold α of Eq. 5 (0 disables it). Default 0.
    """

    def __init__(self, num_labels, alpha=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.alpha = alpha

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
        return graph_embedding_loss(embeddings, symmetric, self.alpha)

    def get_config(self):
        config = super().get_config()
        config.update({"num_labels": self.num_labels, "alpha": self.alpha})
        return config


def off_diagonal_fit(embeddings, symmetric_adjacency):
    """RMSE and Pearson r between `cos(e_i, e_j)` and `A'_ij` over `i ≠ j` (numpy)."""
    embeddings = np.asarray(embeddings, np.float64)
    unit = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), COSINE_EPSILON)
    cosine = unit @ unit.T
    mask = ~np.eye(len(cosine), dtype=bool)
    predicted, target = cosine[mask], np.asarray(symmetric_adjacency, np.float64)[mask]
    rmse = float(np.sqrt(np.mean((predicted - target) ** 2)))
    pearson = float(np.corrcoef(predicted, target)[0, 1]) if target.std() > 0 else float("nan")
    return {"rmse": rmse, "pearson": pearson}
