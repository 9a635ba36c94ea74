"""Training ASGE on its own (the paper's first stage): a Keras model with its own `train_step`."""

import io

import keras
import numpy as np
import scipy.sparse
import tensorflow as tf
from keras import ops

from cma_tf.atomic import write_bytes
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import (
    COSINE_EPSILON, ASGEEncoder, LabelGraphLoss, dense_graph_loss_with_guard, guarded_rows, off_diagonal_fit,
    row_guard_loss,
)
from cma_tf.graph.graph_pairs import GraphPairs, graph_loss_and_gradient, pair_off_diagonal_fit
from cma_tf.layers.ops import l2_normalize

OPTIMIZERS = ("adam", "sgd")
METHODS = ("pairs", "dense")
DEFAULT_LEARNING_RATES = {"adam": 0.001, "sgd": 0.01}  # sgd: the paper's
LOSS_CURVE_POINTS = 100
MIN_LABELS = 3  # see `check_graph`: BatchNorm over a batch of fewer labels leaves nothing to fit
NO_LABEL_EMBEDDINGS_ADVICE = (
    "train a head that reads no label embeddings (--config.model.head=plain, or self_attention, q2l, ml_decoder) "
    "or give label vectors of your own (--config.model.label_embedding=file)"
)


class LossCurve(keras.callbacks.Callback):
    """`curve`: `[steps done, mean loss over the steps since the previous point]`, about
    `LOSS_CURVE_POINTS` points over a one-epoch fit of `steps` steps. Keras' batch logs hold the
    running mean `M_b` of the epoch so far; the mean over steps a+1…b is `(b·M_b − a·M_a)/(b − a)`."""

    def __init__(self, steps, points=LOSS_CURVE_POINTS):
        super().__init__()
        self.every = max(1, steps // points)
        self.steps = steps
        self.curve = []
        self._previous = (0, 0.0)

    def on_train_batch_end(self, batch, logs=None):
        done = batch + 1
        self._last = (done, float(logs["graph_loss"]))
        if done % self.every == 0 or done == self.steps:
            self._add_point()

    def on_train_end(self, logs=None):
        """A fit stopped early (a callback's `stop_training`) still ends with its last step."""
        if getattr(self, "_last", None) and self._last[0] != self._previous[0]:
            self._add_point()

    def _add_point(self):
        done, running = self._last
        steps_before, mean_before = self._previous
        self.curve.append([done, (done * running - steps_before * mean_before) / (done - steps_before)])
        self._previous = (done, running)


class ASGEModel(keras.Model):
    """Fits Φ (`ASGEEncoder`) to a label graph by minimising Eq. 4 over all `N` labels per step.

    The data fed to `fit` is ignored (the whole graph is the batch); pass any dataset with
    `steps_per_epoch`, or use `fit_asge`.

    Args:
        encoder: an `ASGEEncoder`.
        pairs: a `GraphPairs` (`A'` as its non-zero pairs): the loss is computed without an
            `N × N` matrix (`graph_pairs.py`), blocked over rows of `U Uᵀ` when `alpha > 0`.
        graph_loss: instead of `pairs`, a `LabelGraphLoss` holding the dense `A` (the direct
            computation, `N²` floats; the reference the pair computation is tested against).
        alpha, balance: Eq. 5's α and the zero-pair weighting (`pairs` only; a
            `graph_loss` carries its own).
        block_rows: rows of `U Uᵀ` per block (default: 64 MiB of them).
        row_guard: weight of `row_guard_loss` added to Eq. 4 (0: Eq. 4 alone). The tracked
            `graph_loss` is Eq. 4 alone either way; `guarded_rows` counts the labels the
            guard acted on at the step.
    """

    def __init__(self, encoder, pairs=None, graph_loss=None, alpha=0.0, balance=True, block_rows=None, row_guard=0.0,
                 **kwargs):
        super().__init__(**kwargs)
        if (pairs is None) == (graph_loss is None):
            raise ValueError("give ASGEModel either pairs or graph_loss")
        self.encoder = encoder
        self.graph_loss = graph_loss
        self.pairs = pairs
        self.alpha = alpha
        self.block_rows = block_rows
        self.row_guard = float(row_guard)
        self.zero_weight = None if pairs is None else pairs.zero_pair_weight(balance)
        for layer in (self.encoder, self.graph_loss):
            if layer is not None and not layer.built:
                layer.build()
        self.loss_tracker = keras.metrics.Mean(name="graph_loss")

    def call(self, inputs=None, training=None):
        return self.encoder.all_embeddings(training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        weights = self.encoder.trainable_weights
        with tf.GradientTape() as tape:
            preactivations = self.encoder.all_last_preactivations(training=True)
            if self.graph_loss is not None:
                loss, total = dense_graph_loss_with_guard(self.graph_loss, preactivations, self.row_guard)
            else:
                unit = l2_normalize(ops.relu(preactivations), COSINE_EPSILON)
                guard = row_guard_loss(preactivations)
        if self.graph_loss is not None:
            gradients = tape.gradient(total, weights)
        else:
            loss, gradient = graph_loss_and_gradient(unit, self.pairs, self.alpha, self.zero_weight, self.block_rows)
            targets, output_gradients = [unit], [gradient]
            if self.row_guard:
                targets.append(guard)
                output_gradients.append(tf.constant(self.row_guard, guard.dtype))
            gradients = tape.gradient(targets, weights, output_gradients=output_gradients)
        self.optimizer.apply_gradients(zip(gradients, weights))
        self.loss_tracker.update_state(loss)
        return {"graph_loss": self.loss_tracker.result(), "guarded_rows": guarded_rows(preactivations)}


def save_encoder_weights(encoder, path):
    """Writes Φ's weights to an `.npz`, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, *encoder.get_weights())
    write_bytes(path, buffer.getvalue())


def load_encoder_weights(encoder, path):
    """Restores weights written by `save_encoder_weights` into a built encoder of the same shape."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        encoder.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])


class DegenerateFitError(ConfigError):
    """ASGE ended in embeddings a classifier cannot use (zero, NaN, or all alike)."""


def build_optimizer(name, learning_rate, momentum):
    """`adam` (our default) or `sgd` with momentum (the paper's); `learning_rate` None takes
    `DEFAULT_LEARNING_RATES`."""
    if name in DEFAULT_LEARNING_RATES and learning_rate is None:
        learning_rate = DEFAULT_LEARNING_RATES[name]
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum)
    raise ConfigError(f"config.asge.optimizer: unknown optimizer {name!r} ({', '.join(OPTIMIZERS)})")


def check_graph(adjacency):
    """Raises `DegenerateFitError` before a fit when `A` (dense or scipy sparse, `[N, N]`) is a
    graph ASGE cannot embed whatever its settings (docs/design.md §2.3):

    - fewer than `MIN_LABELS` labels: every step's batch is all `N` labels, so each BatchNorm
      normalises a unit over `N` values. Over 2 that leaves only which label is larger: the last
      stage outputs `β ± γ` per unit, so from `β = 0` the two embeddings never share a unit after
      the ReLU, their cosine is exactly 0 whatever `A'` says, and Eq. 4 sends no gradient back
      (over 1 label every unit is `β = 0`: a zero embedding).
    - the same non-zero `A'_ij` for every pair (e.g. every training image has every label): the
      graph says nothing about which labels go together, and the fit it asks for, every cosine
      alike, is the degenerate one `check_fit` refuses.
    """
    num_labels = adjacency.shape[0]
    if num_labels < MIN_LABELS:
        raise DegenerateFitError(
            f"ASGE cannot embed a graph of {num_labels} label{'s' if num_labels != 1 else ''}: its BatchNorm normalises "
            f"each unit over the batch of all labels, and over {num_labels} that leaves "
            + ("only which of the two is larger, so the two embeddings never share a unit and their cosine is 0 "
               "whatever the label graph says" if num_labels == 2 else "nothing (a zero embedding)")
            + f"; ASGE needs at least {MIN_LABELS} labels: {NO_LABEL_EMBEDDINGS_ADVICE}"
        )
    off_diagonal = _off_diagonal_targets(adjacency)
    if off_diagonal.size == num_labels * (num_labels - 1) and off_diagonal.min() > 0 and np.ptp(off_diagonal) == 0:
        value = float(off_diagonal[0])
        cause = "every training image has every label" if value == 1 else "every two labels co-occur alike"
        raise DegenerateFitError(
            f"the label graph carries no information for ASGE to embed: A'_ij = {value:.3g} for every pair of the "
            f"{num_labels} labels ({cause}), so every label embedding would be alike; {NO_LABEL_EMBEDDINGS_ADVICE}, "
            "or train on data whose images differ in their labels"
        )


def _off_diagonal_targets(adjacency):
    """The stored off-diagonal values of `A' = (A + Aᵀ)/2` (a sparse graph's zeros are not stored)."""
    if scipy.sparse.issparse(adjacency):
        symmetric = ((adjacency + adjacency.T) / 2).tocoo()
        values = symmetric.data[symmetric.row != symmetric.col]
        return values[values != 0]
    adjacency = np.asarray(adjacency, np.float64)
    return ((adjacency + adjacency.T) / 2)[~np.eye(len(adjacency), dtype=bool)]


def fit_summary(report):
    """The one line a command prints about a fit of `fit_asge`: RMSE and Pearson r of the cosines
    against `A'`; a correlation that is undefined (no pairs, or one side constant: e.g. every
    non-zero pair of a block graph is 1) is written "undefined", not `nan`."""
    def r(key):
        value = report[key]
        return "undefined" if np.isnan(value) else f"{value:.3f}"

    return (
        f"ASGE: off-diagonal RMSE {report['rmse']:.4f}, Pearson r {r('pearson')} vs A' "
        f"({r('pearson_nonzero')} on the {100 * report['nonzero_fraction']:.1f} % non-zero pairs, "
        f"{r('pearson_balanced')} with as many zero pairs); "
        f"{report['guarded_rows']} of {report['num_labels']} labels held up by the row guard"
    )


def check_fit(report, settings=""):
    """Raises `DegenerateFitError` naming the cause when the fit in `report` (of `fit_asge`) is
    unusable: a label with a NaN/inf or an all-zero embedding (its CMA scores would all be 0,
    Eq. 7), or every pair at the same cosine while `A'` varies."""
    num_labels = report["num_labels"]
    hint = (
        "try --config.asge.optimizer=adam, a lower --config.asge.learning_rate, "
        "--config.asge.balance_pairs=True, --config.asge.row_guard=1, or more --config.asge.units (the paper's 256)"
    )
    where = f" ({settings})" if settings else ""
    if report["nonfinite_rows"]:
        raise DegenerateFitError(
            f"ASGE diverged{where}: {report['nonfinite_rows']} of {num_labels} label embeddings hold NaN or inf "
            f"(final loss {report['final_loss']}); {hint}"
        )
    if report["zero_rows"]:
        raise DegenerateFitError(
            f"ASGE collapsed{where}: {report['zero_rows']} of {num_labels} label embeddings are all zero "
            "(the last ReLU of Φ is dead for them), so CMA would score those labels 0 in every image; "
            f"{hint}"
        )
    if num_labels > 2 and report["nonzero_fraction"] > 0 and np.isnan(report["pearson_balanced"]):
        raise DegenerateFitError(
            f"ASGE degenerated{where}: every pair of label embeddings has the same cosine, so they carry "
            f"no graph structure; {hint}"
        )


def fit_asge(
    adjacency,
    units=256,
    depth=3,
    steps=3000,
    learning_rate=None,
    momentum=0.9,
    alpha=0.0,
    optimizer="adam",
    balance_pairs=True,
    seed=0,
    verbose=0,
    check=True,
    method="pairs",
    block_rows=None,
    callbacks=(),
    row_guard=1.0,
):
    """Fits ASGE (Eq. 2-5) to `A`.

    The paper fits with SGD (momentum 0.9, lr 0.01) and the plain sum of Eq. 4. That works at
    COCO's 80 labels (off-diagonal RMSE 0.026, Pearson 0.947 in 3,000 steps) but collapses
    to all-zero embeddings on graphs as sparse as YouTube-8M's (1,000 or 3,862 labels, 1-10 %
    non-zero pairs): the sum's gradient grows with `N²` at a fixed learning rate and drives
    the last BatchNorm/ReLU dead. Our default is Adam (lr 0.001), whose steps do not scale
    with the loss, on the balanced loss of `graph_embedding_loss`; on the COCO graph it fits
    better than SGD (RMSE 0.020, Pearson 0.973). At thousands of labels single labels still
    die during a long fit, and `row_guard` (see `asge.row_guard_loss`) keeps them alive.
    `optimizer="sgd", balance_pairs=False, row_guard=0` is the paper's literal recipe (lr 0.01).

    Args:
        adjacency: `A` (`A_ij = P(v_i | v_j)`), a dense `[N, N]` array or a scipy sparse
            matrix (`LabelGraph.adjacency` above `DENSE_MAX_LABELS` labels).
        check: raise `DegenerateFitError` when the graph cannot be embedded (`check_graph`, before
            fitting) or the fit is unusable (`check_fit`).
        method: "pairs" (default): Eq. 4 from the non-zero pairs of `A'`, memory
            `O(N·C_e + P)` (+ `block_rows × N` when `alpha > 0`; `graph_pairs.py`), the only
            one that runs at Open Images' 20,000 labels; "dense": the direct `N × N`
            computation (dense `adjacency` only), the reference it is tested against.
        block_rows: see `ASGEModel`.
        callbacks: more Keras callbacks for the fit (e.g. one that stops it at a fit quality).
        row_guard: weight of `asge.row_guard_loss` beside Eq. 4 (0: Eq. 4 alone).

    Returns:
        `(encoder, report)`: the fitted `ASGEEncoder` and a dict with the training loss (its
        curve: `[steps done, mean loss over the last chunk]` about every 1 % of the steps, and
        the last chunk's mean as `final_loss`) and the fit of `cos(e_i, e_j)` to `A'` in
        inference mode (`off_diagonal_fit`), and `guarded_rows`: labels whose largest
        last-stage pre-activation ends below the guard's margin.
    """
    if method not in METHODS:
        raise ConfigError(f"ASGE method must be one of {', '.join(METHODS)}, got {method!r}")
    sparse = scipy.sparse.issparse(adjacency)
    if not sparse:
        adjacency = np.asarray(adjacency, np.float32)
    num_labels = adjacency.shape[0]
    if not (isinstance(steps, (int, np.integer)) and steps >= 1):
        # Keras' fit reads steps_per_epoch=0 as "until the data ends", and this data never does.
        raise ConfigError(f"ASGE steps={steps!r}: give an integer ≥ 1 (config.asge.steps)")
    if check:
        check_graph(adjacency)
    keras.utils.set_random_seed(seed)
    encoder = ASGEEncoder(num_labels, units=units, depth=depth, name="asge_encoder")
    if method == "dense":
        if sparse:
            raise ConfigError(f"ASGE method 'dense' needs a dense [N, N] graph; this one of {num_labels} labels is sparse")
        graph_loss = LabelGraphLoss(num_labels, alpha=alpha, balance=balance_pairs, name="graph_loss")
        graph_loss.set_adjacency(adjacency)
        model = ASGEModel(encoder, graph_loss=graph_loss, row_guard=row_guard)
    else:
        pairs = GraphPairs.from_adjacency(adjacency)
        model = ASGEModel(
            encoder, pairs=pairs, alpha=alpha, balance=balance_pairs, block_rows=block_rows, row_guard=row_guard
        )
    model.compile(optimizer=build_optimizer(optimizer, learning_rate, momentum))
    learning_rate = float(model.optimizer.learning_rate)
    recorder = LossCurve(steps)
    model.fit(
        tf.data.Dataset.from_tensors(0.0).repeat(), steps_per_epoch=steps, epochs=1, verbose=verbose,
        shuffle=False, callbacks=[recorder, *callbacks],
    )
    curve = recorder.curve
    encoder.set_statistics_to_the_full_batch()
    preactivations = ops.convert_to_numpy(encoder.all_last_preactivations(training=False))
    embeddings = np.maximum(preactivations, 0.0)
    report = {
        "final_loss": curve[-1][1], "steps": curve[-1][0], "num_labels": num_labels, "loss_curve": curve,
        "guarded_rows": int(guarded_rows(preactivations)),
    }
    if sparse:
        report.update(pair_off_diagonal_fit(embeddings, model.pairs, seed=seed))
    else:
        report.update(off_diagonal_fit(embeddings, (adjacency + adjacency.T) / 2, seed=seed))
    if check:
        check_fit(
            report,
            f"optimizer={optimizer}, learning_rate={learning_rate}, row_guard={row_guard}, {steps} steps, {num_labels} labels",
        )
    return encoder, report
