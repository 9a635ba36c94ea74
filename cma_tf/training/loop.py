"""The custom training loop: the multi-worker driver.

Keras 3's `model.fit` fails under `MultiWorkerMirroredStrategy` (keras-team/keras#20585, still
open when this was written), so multi-worker training runs this loop instead. It calls the
very same `model.train_step` as `fit` does, under `strategy.run`: one step function, two
drivers. Each worker reads its own shards (`distribute_datasets_from_function`).

A worker that dies mid-run makes the collective ops of the others fail; each survivor stops
with one line (`WorkerLostError`) naming the lost worker and the last finished epoch, which the
chief has checkpointed: running every worker's command again resumes there.
"""

import keras
import tensorflow as tf

from cma_tf.errors import WorkerLostError
from cma_tf.training.strategy import PEER_LOST_ERRORS, describe_lost_peer


def fit_with_custom_loop(model, strategy, dataset_fn, initial_epoch, epochs, steps_per_epoch, callbacks=()):
    """Trains `model` (compiled inside `strategy.scope()`) for epochs `initial_epoch..epochs-1`.

    Args:
        dataset_fn: `(epoch, input_context) → tf.data.Dataset` of per-replica batches.
        callbacks: Keras callbacks; `on_epoch_end` receives the epoch's metric results.
    """
    with strategy.scope():
        model.optimizer.build(model.trainable_variables)

    @tf.function
    def train_steps(iterator):
        for _ in tf.range(steps_per_epoch):
            strategy.run(model.train_step, args=(next(iterator),))

    callback_list = keras.callbacks.CallbackList(list(callbacks), model=model)
    finished = initial_epoch
    # Any step can be the first to miss a dead peer: the training steps, and also the callbacks
    # and metric resets, which read the replicas' variables through collectives.
    try:
        callback_list.on_train_begin()
        for epoch in range(initial_epoch, epochs):
            callback_list.on_epoch_begin(epoch)
            model.reset_metrics()
            dataset = strategy.distribute_datasets_from_function(lambda context, e=epoch: dataset_fn(e, context))
            train_steps(iter(dataset))
            logs = {name: float(value) for name, value in model.get_metrics_result().items()}
            print(f"epoch {epoch + 1}/{epochs}: " + " - ".join(f"{k}: {v:.4f}" for k, v in logs.items()), flush=True)
            callback_list.on_epoch_end(epoch, logs)
            finished = epoch + 1
        callback_list.on_train_end()
    except PEER_LOST_ERRORS as error:
        raise WorkerLostError(lost_worker_message(describe_lost_peer(strategy, error), finished, epochs)) from None
    return model


def lost_worker_message(peer, finished, epochs):
    """The one line a survivor prints when `peer` was lost after `finished` of `epochs` epochs
    (the chief checkpoints each epoch as it finishes)."""
    if finished == epochs:
        where = f"after the last epoch ({epochs}) had finished"
    else:
        where = f"during epoch {finished + 1} of {epochs}"
    if finished:
        what = f"the last finished epoch is {finished}: run the same command again on every worker to resume from there"
    else:
        what = "no epoch had finished: run the same command again on every worker to start again"
    return f"lost {peer}: it stopped answering {where}; {what}"
