"""A head trained on cached backbone maps: the frozen-backbone regime of a head comparison.

The model is the package's `MultiLabelClassifier` (the same head, loss, optimizer and train step
as `cma_tf.train`, built by `factory.build_classifier`) over `maps_backbone`, an identity over
the cached maps instead of a CNN over images: what the frozen backbone would compute is read
from `feature_cache.py`. So a head's run costs the head alone, and every head of a comparison
sees exactly the same features.

What differs from `cma_tf.train` with a frozen backbone: no augmentation (the maps are computed
once), and the label graph (and the ASGE codes from it) is counted on the examples trained on,
so a search that holds part of the training split out does not count the held-out labels.
"""

import fcntl
import os
import time

import keras
import numpy as np
import scipy.special
import tensorflow as tf

from cma_tf import factory
from cma_tf.graph.cooccurrence import label_graph_from_label_lists
from cma_tf.metrics.image import mean_average_precision, per_class_average_precision
from cma_tf.optimizers import averaging_optimizer


def maps_backbone(shapes, name="cached_maps"):
    """A functional model with one input per cached map (`shapes`: `[H, W, C]` each) that
    returns them as they are: the backbone of a classifier trained on cached maps."""
    inputs = [keras.Input(tuple(shape), name=f"map{i}") for i, shape in enumerate(shapes)]
    outputs = [keras.layers.Identity(name=f"map{i}_out")(x) for i, x in enumerate(inputs)]
    return keras.Model(inputs, outputs, name=name)


class InputFeatures:
    """The "backbone" whose maps are the model's own float inputs (video: the frame features
    `[T, D]`, dequantized from the records' 8-bit codes exactly as the model's first step does):
    caching its maps caches the decoded inputs, and the classifier trained on them keeps its own
    trainable backbone (SNet, FC), since video models have no pretrained one. No weights."""

    weights = ()

    def __call__(self, inputs, training=False):
        from cma_tf.models.classifier import MultiLabelClassifier

        return MultiLabelClassifier.frames(inputs)


def label_graph_of(labels, vocabulary):
    """The co-occurrence graph of a multi-hot `[n, N]` label matrix."""
    return label_graph_from_label_lists([np.flatnonzero(row) for row in labels], labels.shape[1], vocabulary)


def _dataset(maps, labels, batch_size, seed=None):
    """`((map0, map1, …), labels)` batches as float32; shuffled every epoch with `seed` if given."""
    data = tf.data.Dataset.from_tensor_slices((tuple(np.asarray(m) for m in maps), np.asarray(labels)))
    if seed is not None:
        data = data.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    if len(maps) == 1:  # a single-input model (the inputs themselves, video) takes a tensor
        cast = lambda x, y: (tf.cast(x[0], tf.float32), tf.cast(y, tf.float32))  # noqa: E731
    else:
        cast = lambda x, y: (tuple(tf.cast(m, tf.float32) for m in x), tf.cast(y, tf.float32))  # noqa: E731
    return data.batch(batch_size, drop_remainder=seed is not None).map(cast).prefetch(2)


def predict_scores(model, maps, batch_size):
    """σ(logits) `[n, N]` (float64) of the cached `maps`."""
    logits = model.predict(_dataset(maps, np.zeros((len(maps[0]), 1), np.uint8), batch_size), verbose=0)
    return scipy.special.expit(np.asarray(logits, np.float64))


def weighted(scores, weights):
    """`scores` times the eval set's label weights when it has them (`[weights]`, rated YouTube-8M
    segments: only the rated classes count, as `training/callbacks.predict_scores` scores them)."""
    return scores * np.asarray(weights[0], scores.dtype) if weights else scores


class _StopOnNonFinite(keras.callbacks.Callback):
    """Keras' `TerminateOnNaN` without its line on stdout: a diverged run is a result the caller
    reports (`{"diverged": …}`), and `cma_tf.select`'s table is on stdout."""

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            self.model.stop_training = True


class _EpochMetric(keras.callbacks.Callback):
    """Adds `<name>_<metric>` of every evaluation set to the epoch logs (for convergence):
    the mAP, or with `metrics_fn` (`factory.evaluation_metrics`' first) any metric it computes,
    e.g. the GAP of video models, whose mAP over 3,862 mostly rare labels barely moves."""

    def __init__(self, eval_sets, batch_size, metric="mAP", metrics_fn=None):
        super().__init__()
        self.eval_sets, self.batch_size, self.metric, self.metrics_fn = eval_sets, batch_size, metric, metrics_fn

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or not np.isfinite(logs.get("loss", np.nan)):
            return
        for name, (maps, labels, *weights) in self.eval_sets.items():
            scores = weighted(predict_scores(self.model, maps, self.batch_size), weights)
            if not np.all(np.isfinite(scores)):
                continue
            if self.metric == "mAP":
                logs[f"{name}_mAP"] = mean_average_precision(scores, labels)
            else:
                logs[f"{name}_{self.metric}"] = float(self.metrics_fn(scores, np.asarray(labels))[self.metric])


def compiled_model(config, train_maps, train_labels, vocabulary, embeddings_dir, train_backbone=False):
    """The classifier of `config` over the cached maps (or, with `train_backbone`, over the cached
    inputs with the config's own backbone), compiled with the package's loss and optimizer;
    the label graph and its embeddings are those of `train_labels`. Seeded by `config.seed`."""
    from cma_tf.graph.label_embeddings import label_embeddings  # the trainer's cache of E

    keras.utils.set_random_seed(config.seed)
    graph = label_graph_of(train_labels, vocabulary)
    # One folder per training labels and seed (what the fit depends on), so runs on the held-out
    # search's labels and on the whole split do not refit each other's; a lock makes processes that
    # need the same fit (heads run side by side) wait for one another instead of writing it twice.
    folder = os.path.join(embeddings_dir, f"{graph.sha1()[:12]}-seed{config.seed}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        encoder = label_embeddings(config, graph, folder, verbose=0) if factory.needs_label_embeddings(config) else None
    shapes = [m.shape[1:] for m in train_maps]
    backbone = None if train_backbone else maps_backbone(shapes)  # None: the factory builds the config's
    model = factory.build_classifier(config, len(vocabulary), encoder, graph, backbone=backbone)
    steps_per_epoch = max(1, len(train_labels) // config.train.batch_size)
    model.compile(optimizer=factory.build_optimizer(config, steps_per_epoch, model),
                  loss=factory.build_loss(config, graph.frequencies), jit_compile=False)
    return model


def step_seconds(config, train_maps, train_labels, vocabulary, embeddings_dir, train_backbone=False, steps=5):
    """Median seconds of one train step of `config`'s model on a batch of the cached maps
    (after one traced, untimed step): what a run of the grid costs per step."""
    model = compiled_model(config, train_maps, train_labels, vocabulary, embeddings_dir, train_backbone)
    batch = min(config.train.batch_size, len(train_labels))
    data = _dataset([m[:batch] for m in train_maps], train_labels[:batch], batch).repeat()
    model.fit(data, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)  # trace
    iterator, times = iter(data), []
    for _ in range(steps):
        begin = time.perf_counter()
        float(model.train_function(iterator)["loss"])
        times.append(time.perf_counter() - begin)
    return float(np.median(times))


def train_head_on_features(config, train_maps, train_labels, eval_sets, vocabulary, embeddings_dir,
                           epoch_metrics=True, verbose=0, train_backbone=False, return_scores=False, epoch_metric="mAP"):
    """Trains `config`'s head on cached maps and evaluates it.

    Args:
        config: the run's config (head, loss, optimizer and schedule, `train.epochs`,
            `train.batch_size`, `seed`); `config.model.backbone` is not built.
        train_maps, train_labels: the maps (list of `[n, H_i, W_i, C_i]`) and multi-hot labels
            `[n, N]` trained on.
        eval_sets: `{name: (maps, labels)}` scored at the end (and after every epoch if
            `epoch_metrics`), e.g. `{"holdout": …}` in a search, `{"val": …}` in a final run;
            `(maps, labels, label_weights)` scores `σ(logits) · label_weights` (rated segments).
        epoch_metrics: True scores every eval set after each epoch too, a list of names only
            those, False none.
        epoch_metric: what those epoch scores are: "mAP", or a metric of the config's
            evaluation (`factory.evaluation_metrics`), e.g. "GAP" for video.
        vocabulary: the label names (the label graph's, and `AP_per_class`'s keys).
        embeddings_dir: where the label embeddings (ASGE) fitted to the training labels' graph
            are cached (`graph/label_embeddings.py`; one folder per set of training labels).
        train_backbone: the cached "maps" are the model's inputs (`InputFeatures`, video):
            the config's own backbone is built and trained with the head.
        return_scores: also return `"scores": {name: σ(logits) [n, N] float32}` of each eval set.

    Returns:
        `{"metrics": {name: multilabel metrics + AP_per_class}, "history": [{epoch, loss,
        <name>_<epoch_metric>}], "seconds": …}`, or `{"diverged": reason, …}` when the loss or the scores
        became non-finite.
    """
    start = time.perf_counter()
    model = compiled_model(config, train_maps, train_labels, vocabulary, embeddings_dir, train_backbone)
    batch_size = config.train.batch_size
    callbacks = [_StopOnNonFinite()]
    metrics_fn, _, _ = factory.evaluation_metrics(config)
    if epoch_metrics:
        tracked = eval_sets if epoch_metrics is True else {name: eval_sets[name] for name in epoch_metrics}
        callbacks.insert(0, _EpochMetric(tracked, config.train.eval_batch_size, epoch_metric, metrics_fn))
    fit = model.fit(_dataset(train_maps, train_labels, batch_size, seed=config.seed), epochs=config.train.epochs,
                    callbacks=callbacks, verbose=verbose, shuffle=False)
    history = [
        {"epoch": epoch + 1, **{key: float(values[epoch]) for key, values in fit.history.items() if epoch < len(values)}}
        for epoch in range(len(fit.history.get("loss", [])))
    ]
    result = {"history": history, "seconds": time.perf_counter() - start}
    losses = fit.history.get("loss", [])
    if len(train_labels) < batch_size:
        raise ValueError(f"{len(train_labels)} examples to train on, fewer than a batch ({batch_size}): no step can run")
    if len(losses) < config.train.epochs or not np.all(np.isfinite(losses)):
        return dict(result, diverged=f"the training loss became non-finite in epoch {len(losses)}")
    averaged = averaging_optimizer(model)
    if averaged is not None:  # the final model is the moving average (config.train.ema_decay), as in cma_tf.train
        averaged.swap_averaged_weights()
    result["metrics"], scores_by_set = {}, {}
    for name, (maps, labels, *weights) in eval_sets.items():
        scores = weighted(predict_scores(model, maps, config.train.eval_batch_size), weights)
        if not np.all(np.isfinite(scores)):
            return dict(result, diverged=f"the scores on '{name}' are not finite")
        metrics = metrics_fn(scores, np.asarray(labels))
        per_class = per_class_average_precision(scores, np.asarray(labels))
        metrics["AP_per_class"] = {label: float(ap) for label, ap in zip(vocabulary, per_class)}
        result["metrics"][name] = metrics
        scores_by_set[name] = scores.astype(np.float32)
    if return_scores:
        result["scores"] = scores_by_set
    return result
