"""Word2Vec label embeddings for the W2V-MS-CMA ablation (§4.1, "Ablation study").

The paper replaces the ASGE embeddings by Word2Vec ones: "we view the label set in each image
as a single sentence, and the window size in Word2vec is set as the length of longest sentence
to eliminate the influence of label order". This module fits those embeddings from the label
co-occurrence counts of `cooccurrence.py` and wraps them in `FixedLabelEmbedding`, a drop-in for
`ASGEEncoder` as a head's label encoder.

Why the counts suffice (the equivalence argument)
-------------------------------------------------
word2vec's skip-gram with negative sampling (SGNS) visits every token of every sentence and,
for every other token inside its window, makes one update of

    log σ(w_in · c_out) + Σ_{d=1..negatives} [k_d ≠ out] log σ(−w_in · c_{k_d}),   k_d ~ P_n,

where `w` are the input vectors (syn0, the embeddings word2vec returns), `c` the output vectors
(syn1neg), `P_n(k) ∝ count_k^0.75` the noise distribution built from the raw unigram counts,
and a noise draw equal to the target word is skipped, not redrawn (`if (target == word)
continue;` in word2vec.c; gensim does the same). With one sentence per image holding each of
its labels once, and a window as long as the longest sentence, every ordered pair (i, j),
i ≠ j, of labels of the same image is a (input, output) pair exactly once per image, whatever
the label order. Summed over the corpus, the objective's expectation over the noise draws is

    J = Σ_{i≠j} P_ij log σ(w_i·c_j) + negatives · Σ_{i,k} P_n(k) (n_i − P_ik) log σ(−w_i·c_k),

with `P_ij = count_ij` (images holding both i and j; `P_ii = 0`), `n_i = Σ_j P_ij` (the number
of pairs whose input is i) and the `− P_ik` term the skipped draws (a pair (i, k) cannot draw
its own target k as noise). `J` depends on the data only through the counts, so we maximise
it directly: full batch, deterministic, no sampling. We minimise `−J / Σ_ij P_ij` (the same
minimiser; the per-pair scale makes the learning rate independent of the dataset size) with
Adam, using the closed-form gradients

    S = W Cᵀ,  G = −P ⊙ σ(−S) + M ⊙ σ(S),  ∂/∂W = G C,  ∂/∂C = Gᵀ W,

where `M_ik = negatives · P_n(k) (n_i − P_ik)` is the weight of the noise terms (float64
numpy, one BLAS thread: bit-identical results for a given seed). This is the
objective word2vec's stochastic updates descend (their sum over one pass over the corpus);
word2vec itself runs plain SGD with a linearly decaying learning rate over a sampled version
of it, which converges towards the same minimisers but not to identical vectors.

Frequent-word subsampling (word2vec's `-sample t`) is optional: an occurrence of label k is
kept with probability `p_k = min(1, (sqrt(f_k / t) + 1) t / f_k)`, `f_k = count_kk / Σ_l
count_ll` (word2vec.c's formula), independently per occurrence, so a pair survives with
probability `p_i p_j` and `P_ij = count_ij p_i p_j`; the window still spans the whole
(shortened) sentence. `P_n` keeps the raw counts, as in word2vec.

Decisions the paper leaves open:
- The window spans the whole sentence for every token (gensim `shrink_windows=False`). With
  word2vec's default random window shrinking, a pair would be weighted by the chance that it
  falls within the shrunk window, which depends on the positions of the two labels in the
  sentence, i.e. on the label order the paper meant to eliminate.
- No `min_count`: every label with at least one occurrence gets trained; a label that never
  occurs keeps its (tiny) random initial vector.
- Initialisation as word2vec: `W ~ U(−0.5/dim, 0.5/dim)`, `C = 0`.
"""

import contextlib

import keras
import numpy as np
import scipy.sparse
from keras import ops

from cma_tf.saving import register

try:  # optional: not a declared dependency of cma_tf (it comes with scikit-learn)
    from threadpoolctl import threadpool_limits
except ImportError:  # pragma: no cover
    threadpool_limits = None

NOISE_POWER = 0.75


def _as_counts(counts):
    """A `LabelGraph` or a `[N, N]` count matrix → float64 counts (diagonal = label counts)."""
    if hasattr(counts, "dense_counts"):
        counts = counts.dense_counts("Word2Vec label embeddings")
    if scipy.sparse.issparse(counts):
        raise ValueError("Word2Vec's objective is N × N dense: give it dense counts (LabelGraph.dense_counts)")
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        raise ValueError(f"counts must be a square [N, N] matrix, got shape {counts.shape}")
    if np.any(counts < 0):
        raise ValueError("counts must be non-negative")
    return counts


def keep_probabilities(unigram_counts, subsample):
    """word2vec.c's probability of keeping one occurrence of each word under `-sample subsample`."""
    unigram_counts = np.asarray(unigram_counts, np.float64)
    if subsample is None or subsample <= 0:
        return np.ones_like(unigram_counts)
    threshold = subsample * unigram_counts.sum()
    safe = np.where(unigram_counts > 0, unigram_counts, 1.0)
    keep = (np.sqrt(safe / threshold) + 1.0) * threshold / safe
    return np.minimum(keep, 1.0)


def noise_distribution(unigram_counts, power=NOISE_POWER):
    """`P_n(k) ∝ count_k^power` (word2vec's unigram table)."""
    weights = np.asarray(unigram_counts, np.float64) ** power
    total = weights.sum()
    return weights / total if total > 0 else weights


def sgns_weights(counts, negatives=5, subsample=None):
    """The weights of the expected SGNS objective (module docstring).

    Args:
        counts: `[N, N]` co-occurrence counts, diagonal = per-label counts (`LabelGraph.counts`),
            or a `LabelGraph`.
        negatives: noise samples per (input, output) pair.
        subsample: word2vec's `sample` threshold, or None for no subsampling.

    Returns:
        `(positive, negative)`, float64 `[N, N]`: `P_ij` multiplies `log σ(w_i·c_j)` and `M_ik`
        multiplies `log σ(−w_i·c_k)`.
    """
    counts = _as_counts(counts)
    unigram = np.diag(counts).copy()
    keep = keep_probabilities(unigram, subsample)
    positive = counts * keep[:, None] * keep[None, :]
    np.fill_diagonal(positive, 0.0)
    pairs_per_input = positive.sum(axis=1)
    noise = noise_distribution(unigram)
    negative = negatives * noise[None, :] * (pairs_per_input[:, None] - positive)
    return positive, negative


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def sgns_loss(input_vectors, output_vectors, counts, negatives=5, subsample=None):
    """`−J` of the module docstring (a sum over the corpus, not normalised), as a float.

    `input_vectors` is `W` `[N, d]` (the embeddings), `output_vectors` is `C` `[N, d]`.
    """
    positive, negative = sgns_weights(counts, negatives, subsample)
    scores = np.asarray(input_vectors, np.float64) @ np.asarray(output_vectors, np.float64).T
    return float(-(positive * _log_sigmoid(scores)).sum() - (negative * _log_sigmoid(-scores)).sum())


def _single_blas_thread():
    """The fit multiplies `[N, dim]` matrices of a few hundred rows: one BLAS thread is several
    times faster than a contended pool, and makes the summation order independent of the
    machine's core count."""
    if threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _loss_and_gradients(w, c, positive, negative):
    scores = w @ c.T
    loss = -(positive * _log_sigmoid(scores)).sum() - (negative * _log_sigmoid(-scores)).sum()
    g = -positive * _sigmoid(-scores) + negative * _sigmoid(scores)
    return loss, g @ c, g.T @ w


def fit_word2vec(
    counts,
    dim=256,
    negatives=5,
    epochs=500,
    learning_rate=0.03,
    seed=0,
    subsample=None,
    return_losses=False,
):
    """Word2Vec (skip-gram, negative sampling) label embeddings from co-occurrence counts.

    The W2V-MS-CMA ablation of §4.1: each image's label set is a sentence and the window is
    the longest sentence, so SGNS sees every ordered pair of co-occurring labels once per image
    and its objective depends on the data only through the counts. We minimise the exact
    expectation of that objective over the noise draws (module docstring), full batch, with
    Adam (β = 0.9, 0.999, ε = 1e-8) in float64 numpy: deterministic for a given `seed`.

    Args:
        counts: `[N, N]` co-occurrence counts with the per-label counts on the diagonal
            (`LabelGraph.counts`), or a `LabelGraph`.
        dim: embedding width (the label encoder's `units`). Default 256.
        negatives: noise samples per pair (word2vec `-negative`). Default 5.
        epochs: full-batch Adam steps on the expected objective. Default 500 (on the COCO counts
            the per-pair loss is then within 0.03% of its value after 2000 steps).
        learning_rate: Adam's step size on the per-pair loss `−J / Σ_ij P_ij`. Default 0.03.
        seed: seeds the initialisation `W ~ U(−0.5/dim, 0.5/dim)` (`C` starts at 0).
        subsample: word2vec's `-sample` threshold (e.g. 1e-3), or None (default) for none.
        return_losses: also return the per-pair loss before each step and after the last.

    Returns:
        float32 `[N, dim]`: the input vectors `W` (what word2vec outputs); with `return_losses`,
        `(W, losses)` where `losses` has `epochs + 1` entries.
    """
    positive, negative = sgns_weights(counts, negatives, subsample)
    num_labels = positive.shape[0]
    scale = positive.sum()
    if scale <= 0:
        raise ValueError("no two labels ever co-occur: the Word2Vec objective is empty")
    positive, negative = positive / scale, negative / scale
    rng = np.random.default_rng(seed)
    params = [rng.uniform(-0.5 / dim, 0.5 / dim, (num_labels, dim)), np.zeros((num_labels, dim))]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-8
    losses = []
    with _single_blas_thread():
        for step in range(1, epochs + 1):
            loss, *grads = _loss_and_gradients(params[0], params[1], positive, negative)
            losses.append(float(loss))
            for p, g, m, v in zip(params, grads, first, second):
                m *= beta_1
                m += (1 - beta_1) * g
                v *= beta_2
                v += (1 - beta_2) * g * g
                m_hat = m / (1 - beta_1 ** step)
                v_hat = v / (1 - beta_2 ** step)
                p -= learning_rate * m_hat / (np.sqrt(v_hat) + epsilon)
        losses.append(float(_loss_and_gradients(params[0], params[1], positive, negative)[0]))
    vectors = params[0].astype(np.float32)
    return (vectors, losses) if return_losses else vectors


@register
class FixedLabelEmbedding(keras.layers.Layer):
    """A fixed label embedding table `E` `[num_labels, units]`, a drop-in for `ASGEEncoder`.

    Holds `E` as a non-trainable weight `embeddings` (set it with `set_embeddings`, e.g. to the
    output of `fit_word2vec` for W2V-MS-CMA); the values travel through `.keras` files as
    weights, the config holds only the shape.

    Args:
        num_labels: int, `N`.
        units: int, the embedding width `C_e`.

    Call args:
        label_ids: int tensor `[K]`; returns rows `[K, units]` (see `all_embeddings`).

    Examples:
    >>> table = FixedLabelEmbedding(num_labels=3, units=2)
    >>> table.set_embeddings(np.arange(6).reshape(3, 2))
    >>> keras.ops.convert_to_numpy(table.all_embeddings()).tolist()
    [[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]
    """

    def __init__(self, num_labels, units, **kwargs):
        super().__init__(**kwargs)
        self.num_labels = num_labels
        self.units = units

    @classmethod
    def from_array(cls, embeddings, **kwargs):
        """A layer holding `embeddings` `[N, units]`."""
        embeddings = np.asarray(embeddings)
        if embeddings.ndim != 2:
            raise ValueError(f"embeddings must be [num_labels, units], got shape {embeddings.shape}")
        layer = cls(embeddings.shape[0], embeddings.shape[1], **kwargs)
        layer.set_embeddings(embeddings)
        return layer

    def build(self, input_shape=None):
        if self.built:
            return
        self.embeddings = self.add_weight(
            name="embeddings", shape=(self.num_labels, self.units), initializer="zeros", trainable=False,
        )
        self.built = True

    def set_embeddings(self, embeddings):
        """Assigns `E`; it must be `[num_labels, units]`."""
        embeddings = np.asarray(embeddings, np.float32)
        if embeddings.shape != (self.num_labels, self.units):
            raise ValueError(
                f"embeddings must be [{self.num_labels}, {self.units}], got shape {embeddings.shape}"
            )
        if not self.built:
            self.build()
        self.embeddings.assign(embeddings)

    def call(self, label_ids, training=None):
        return ops.take(ops.cast(self.embeddings, self.compute_dtype), ops.cast(label_ids, "int32"), axis=0)

    def all_embeddings(self, training=None):
        """`E`, shape `[num_labels, units]`, in the layer's compute dtype."""
        if not self.built:
            self.build()
        return ops.cast(self.embeddings, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update({"num_labels": self.num_labels, "units": self.units})
        return config
