"""A per-image label graph learned from the label vectors, and the graph convolution over it.

RECONSTRUCTED for the MMDSR head (`cma_tf/heads/mmdsr.py`): the MMDSR paper (Kuang & Li,
Machine Learning 113, 2024) is public only as its abstract, which names a "multi-perspective
weighted cosine measure" building "content-based label dependencies for each image". The
measure here is IDGL's `weighted_cosine` graph learner (Chen, Wu & Zaki, NeurIPS 2020;
`hugochan/IDGL`, `src/core/layers/graphlearn.py`), with its ε-neighbourhood; the
normalisation `D^{-1/2}(S + I)D^{-1/2}` and the LeakyReLU(0.2) graph convolution follow
Kipf & Welling and ML-GCN / ADD-GCN (`Yejin0111/ADD-GCN`, `models/add_gcn.py`). None of it
is taken from the MMDSR paper's text.
"""

import keras
from keras import ops

from cma_tf.saving import register, sync_sublayer_trainability

# PyTorch's `F.normalize` default, which IDGL's weighted cosine uses: x / max(‖x‖, 1e-12).
NORM_EPSILON = 1e-12


def safe_l2_normalize(x, epsilon=NORM_EPSILON):
    """`x / max(‖x‖, ε)` on the last axis, written as `x · rsqrt(max(‖x‖², ε²))` so that an
    all-zero vector maps to zero with a finite gradient (`sqrt` at 0 has none)."""
    squared = ops.sum(ops.square(x), axis=-1, keepdims=True)
    return x * ops.rsqrt(ops.maximum(squared, epsilon * epsilon))


def normalize_adjacency(adjacency):
    """`D^{-1/2}(A + I)D^{-1/2}` for `A` `[..., N, N]` with non-negative entries, `D` the row
    sums of `A + I` (each ≥ 1, so no division by zero)."""
    size = ops.shape(adjacency)[-1]
    with_loops = adjacency + ops.eye(size, dtype=adjacency.dtype)
    inverse_root = ops.rsqrt(ops.sum(with_loops, axis=-1))
    return with_loops * inverse_root[..., :, None] * inverse_root[..., None, :]


@register
class WeightedCosineGraph(keras.layers.Layer):
    """The multi-perspective weighted cosine graph of IDGL, normalised per example.

        S_ij = (1/m) Σ_p cos(w_p ⊙ v_i, w_p ⊙ v_j)       (IDGL `weighted_cosine`)
        S_ij ← S_ij if S_ij > ε else 0                  (IDGL `build_epsilon_neighbourhood`)
        Â    = D^{-1/2}(S + I)D^{-1/2},  D_ii = Σ_j (S + I)_ij

    `W = [w_1 … w_m]` `[m, d]` is learned (Glorot-uniform, as IDGL's xavier_uniform). A node
    whose vector is all zero has cosine 0 with every node (itself included), so its row of
    `Â` is the self-loop alone. The similarities are computed in float32 whatever the layer's
    compute dtype (the ε of the normalisation underflows in float16); `Â` is returned in the
    compute dtype.

    Args:
        perspectives: int, `m`. Default 4 (IDGL's `graph_learn_num_pers`).
        epsilon: float ≥ 0, `ε` of the ε-neighbourhood. Default 0 (IDGL's). Must not be
            negative: every kept entry is then positive and every degree at least 1.

    Call args:
        nodes: `[B, N, d]` node vectors.
        return_similarity: also return the masked `S` `[B, N, N]` (before `+ I`).

    Returns:
        `Â` `[B, N, N]`.
    """

    def __init__(self, perspectives=4, epsilon=0.0, **kwargs):
        super().__init__(**kwargs)
        if epsilon < 0:
            raise ValueError(f"epsilon must be >= 0 (a negative one allows degrees <= 0), got {epsilon}")
        self.perspectives = perspectives
        self.epsilon = epsilon
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        self.perspective_weights = self.add_weight(
            name="perspective_weights", shape=(self.perspectives, input_shape[-1]), initializer="glorot_uniform"
        )

    def similarity(self, nodes):
        """The masked `S` `[B, N, N]`, in float32."""
        nodes = ops.cast(nodes, "float32")
        weights = ops.cast(self.perspective_weights, "float32")
        weighted = safe_l2_normalize(nodes[:, None, :, :] * weights[None, :, None, :])  # [B, m, N, d]
        cosines = ops.mean(ops.einsum("bpid,bpjd->bpij", weighted, weighted), axis=1)
        return ops.where(cosines > self.epsilon, cosines, ops.zeros_like(cosines))

    def call(self, nodes, return_similarity=False):
        similarity = self.similarity(nodes)
        adjacency = ops.cast(normalize_adjacency(similarity), self.compute_dtype)
        if return_similarity:
            return adjacency, ops.cast(similarity, self.compute_dtype)
        return adjacency

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[1])

    def get_config(self):
        config = super().get_config()
        config.update({"perspectives": self.perspectives, "epsilon": self.epsilon})
        return config


@register
class GraphConvolution(keras.layers.Layer):
    """One graph convolution over a per-example graph: `H' = LeakyReLU(Â H W + b)`.

    As ML-GCN's `GraphConvolution` followed by LeakyReLU(0.2), with `Â` given per example
    (ADD-GCN's dynamic GCN, `forward_dynamic_gcn`, also gives each image its own graph and
    a biased `W`).

    Args:
        units: int, output width.
        negative_slope: float, LeakyReLU slope. Default 0.2 (ML-GCN, ADD-GCN).
        use_bias: bool. Default True (ADD-GCN's `dynamic_weight` has a bias).

    Call args:
        nodes: `[B, N, d]`; adjacency: `[B, N, N]` (`Â`).

    Returns:
        `[B, N, units]`.
    """

    def __init__(self, units, negative_slope=0.2, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.negative_slope = negative_slope
        self.use_bias = use_bias
        sync_sublayer_trainability(self)

    def build(self, nodes_shape, adjacency_shape=None):
        self.kernel = self.add_weight(name="kernel", shape=(nodes_shape[-1], self.units), initializer="glorot_uniform")
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
        )

    def call(self, nodes, adjacency):
        outputs = ops.matmul(ops.matmul(adjacency, nodes), self.kernel)
        if self.bias is not None:
            outputs = outputs + self.bias
        return ops.leaky_relu(outputs, negative_slope=self.negative_slope)

    def compute_output_shape(self, nodes_shape, adjacency_shape=None):
        return tuple(nodes_shape)[:-1] + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "negative_slope": self.negative_slope, "use_bias": self.use_bias})
        return config
