"""Training ASGE on its own (the paper's first stage): a Keras model with its own `train_step`."""

import io

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from cma_tf.graph.asge import ASGEEncoder, LabelGraphLoss, off_diagonal_fit


class ASGEModel(keras.Model):
    """Fits Φ (`ASGEEncoder`) to a label graph by minimising Eq. 4 over all `N` labels per step.

    The data fed to `fit` is ignored (the whole graph is the batch); pass any dataset with
    `steps_per_epoch`, or use `fit_asge`.

    Args:
        encoder: an `ASGEEncoder`.
        graph_loss: a `LabelGraphLoss` holding `A`.
    """

    def __init__(self, encoder, graph_loss, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.graph_loss = graph_loss
        for layer in (self.encoder, self.graph_loss):
            if not layer.built:
                layer.build()
        self.loss_tracker = keras.metrics.Mean(name="graph_loss")

    def call(self, inputs=None, training=None):
        return self.encoder.all_embeddings(training=training)

    @property
    def metrics(self):
        return [self.loss_tracker]

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self.graph_loss(self.encoder.all_embeddings(training=True))
        weights = self.encoder.trainable_weights
        self.optimizer.apply_gradients(zip(tape.gradient(loss, weights), weights))
        self.loss_tracker.update_state(loss)
        return {"graph_loss": self.loss_tracker.result()}


def save_encoder_weights(encoder, path):
    """Writes Φ's weights to an `.npz`, atomically (temp name, then rename)."""
    buffer = io.BytesIO()
    np.savez(buffer, *encoder.get_weights())
    tmp = path + ".tmp"
    with tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(buffer.getvalue())
    tf.io.gfile.rename(tmp, path, overwrite=True)


def load_encoder_weights(encoder, path):
    """Restores weights written by `save_encoder_weights` into a built encoder of the same shape."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = np.load(io.BytesIO(f.read()))
        encoder.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])


def fit_asge(
    adjacency,
    units=256,
    depth=3,
    steps=3000,
    learning_rate=0.01,
    momentum=0.9,
    alpha=0.0,
    seed=0,
    verbose=0,
):
    """Fits ASGE (Eq. 2-5) to `A` with SGD (the paper: momentum 0.9, lr 0.01).

    Returns:
        `(encoder, report)`: the fitted `ASGEEncoder` and a dict with the final training loss
        and the off-diagonal RMSE / Pearson r of `cos(e_i, e_j)` against `A'` in inference mode.
    """
    adjacency = np.asarray(adjacency, np.float32)
    num_labels = adjacency.shape[0]
    keras.utils.set_random_seed(seed)
    encoder = ASGEEncoder(num_labels, units=units, depth=depth, name="asge_encoder")
    graph_loss = LabelGraphLoss(num_labels, alpha=alpha, name="graph_loss")
    graph_loss.set_adjacency(adjacency)
    model = ASGEModel(encoder, graph_loss)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=momentum))
    history = model.fit(
        tf.data.Dataset.from_tensors(0.0).repeat(), steps_per_epoch=steps, epochs=1, verbose=verbose,
        shuffle=False,
    )
    embeddings = ops.convert_to_numpy(encoder.all_embeddings(training=False))
    report = {"final_loss": float(history.history["graph_loss"][-1]), "steps": steps}
    report.update(off_diagonal_fit(embeddings, (adjacency + adjacency.T) / 2))
    return encoder, report
