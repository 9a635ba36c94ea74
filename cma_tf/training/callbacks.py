"""Keras callbacks for training runs."""

import math

import keras
import numpy as np
import scipy.special

from cma_tf.errors import DataError, TrainingDivergedError
from cma_tf.optimizers import averaging_optimizer


def predict_scores(model, dataset):
    """Runs `model` over a `(inputs, multi_hot)` dataset; returns `(σ(logits), targets)` as numpy.

    A dataset of `(inputs, labels, label_weights)` (rated YouTube-8M segments) gives the scores
    times the weights, so only rated classes count, as the starter code's `eval.py` does."""
    scores, targets = [], []
    for batch in dataset:
        inputs, labels = batch[0], batch[1]
        logits = keras.ops.convert_to_numpy(model(inputs, training=False)).astype(np.float64)
        probabilities = scipy.special.expit(logits)  # 1/(1+exp(-x)) overflows (warns) for x < -709
        if len(batch) > 2:
            probabilities = probabilities * keras.ops.convert_to_numpy(batch[2])
        scores.append(probabilities)
        targets.append(keras.ops.convert_to_numpy(labels))
    return np.concatenate(scores), np.concatenate(targets).astype(np.int64)


class ValidationMetrics(keras.callbacks.Callback):
    """Adds exact metrics on a validation set to the epoch logs (`val_mAP`, `val_CF1`, … for
    images; `val_GAP`, … for video), so that later callbacks (checkpoints, TensorBoard, CSV)
    see them. `keys` and `metrics_fn` are the data kind's (`DataKind.metric_keys`, `.metrics`).

    Put it before those callbacks in the list: Keras passes one logs dict along the list.
    """

    def __init__(self, dataset, keys, metrics_fn, non_finite_error=None):
        super().__init__()
        self.dataset = dataset
        self.keys = keys
        self.metrics_fn = metrics_fn
        self.non_finite_error = non_finite_error  # `() -> Exception` for NaN or infinite scores

    def on_epoch_end(self, epoch, logs=None):
        if logs is None:
            return
        scores, targets = predict_scores(self.model, self.dataset)
        if self.non_finite_error and not np.isfinite(scores).all():
            raise self.non_finite_error()
        metrics = self.metrics_fn(scores, targets)
        for key in self.keys:
            logs[f"val_{key}"] = metrics[key]


class SwapAveragedWeights(keras.callbacks.Callback):
    """At the end of each epoch, exchanges the model's weights with their moving averages
    (`config.train.ema_decay`, `optimizers.RecipeOptions.swap_averaged_weights`); nothing without
    one. Used twice: once before `ValidationMetrics` and the best-model checkpoint (they see the
    averaged weights), once before `EpochCheckpoint` (the raw weights come back, the run's
    checkpoint holds them and the averages, and training goes on from the raw ones)."""

    def on_epoch_end(self, epoch, logs=None):
        optimizer = averaging_optimizer(self.model)
        if optimizer is not None:
            optimizer.swap_averaged_weights()


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stops a run as soon as its loss is NaN or infinite, with one line saying where and what to
    change (`TrainingDivergedError`), instead of training on and saving a model that scores NaN.
    Checked after every batch (`model.fit`) and every epoch (the multi-worker loop). Put it first
    in the list: the checkpoint of a diverged epoch is then never written.

    Args:
        hint: what to change, e.g. "lower config.train.learning_rate (0.01)".
        find_bad_data: optional `() -> str or None`, called once the loss is not finite: a
            record whose inputs are NaN or infinite (one line naming it), the cause then
            reported as a `DataError` instead of the hint.
    """

    def __init__(self, hint, find_bad_data=None):
        super().__init__()
        self.hint = hint
        self.find_bad_data = find_bad_data
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def _check(self, logs, where):
        loss = (logs or {}).get("loss")
        if loss is None or math.isfinite(float(np.asarray(loss))):
            return
        stopped = f"the loss is {float(np.asarray(loss))} {where}"
        problem = self.find_bad_data() if self.find_bad_data else None
        if problem:
            raise DataError(f"training stopped: {stopped} because {problem}; fix or drop that record")
        raise TrainingDivergedError(f"training diverged: {stopped}; {self.hint}")

    def on_train_batch_end(self, batch, logs=None):
        self._check(logs, f"at epoch {self.epoch + 1}, step {batch + 1}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(logs, f"at the end of epoch {epoch + 1}")


class LearningRateLogger(keras.callbacks.Callback):
    """Adds the optimizer's current learning rate to the epoch logs (TensorBoard, CSV)."""

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, saves the whole model with its optimizer state
    (`checkpoint/epoch-NNNN.keras`) and the number of finished epochs (`state.json`), each
    atomically, so a run killed at any point resumes at the start of the epoch it was in. Only the chief writes under multi-worker."""

    def __init__(self, save_fn, is_chief=True):
        super().__init__()
        self.save_fn = save_fn
        self.is_chief = is_chief

    def on_epoch_end(self, epoch, logs=None):
        if self.is_chief:
            self.save_fn(self.model, epoch + 1)
