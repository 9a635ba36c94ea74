"""A training run: label graph → ASGE → classifier `fit` → evaluation, all inside a workdir.

Stages are cached, so re-running a killed run resumes and re-running a finished one only
re-evaluates: the label graph is kept next to the data, the ASGE encoder in `asge/` (refitted
when its settings change), the model with its optimizer state after every epoch in
`checkpoint/` (a killed run restarts the epoch it was in, and each epoch's data is seeded by
its number, so the resumed run sees what the uninterrupted one would have), and a run with
`final.keras` is not trained again.

`metrics.json` reports the final model (the recipe's result, with no choice made on the eval
split); `best.keras` is the epoch with the best validation mAP (GAP for video), kept for those
who want it. With a moving average of the weights (`config.train.ema_decay`), validation,
`best.keras` and `final.keras` use the averaged weights; training and `checkpoint/` the raw ones.
"""

import contextlib
import csv
import functools

import keras
import tensorflow as tf

from cma_tf import factory
from cma_tf.data.vocab import check_same_vocabulary
from cma_tf.errors import DataError
from cma_tf.graph.asge_model import check_graph
from cma_tf.graph.cooccurrence import load_or_build_label_graph
from cma_tf.graph.label_embeddings import label_embeddings, load_label_embedding_file
from cma_tf.optimizers import averaging_optimizer
from cma_tf.training import non_finite
from cma_tf.training import workdir as files
from cma_tf.training.callbacks import (
    EpochCheckpoint,
    LearningRateLogger,
    StopOnNonFiniteLoss,
    SwapAveragedWeights,
    ValidationMetrics,
    predict_scores,
)
from cma_tf.training.lock import hold_lock
from cma_tf.training.loop import fit_with_custom_loop
from cma_tf.training.strategy import is_chief, is_multi_worker
from cma_tf.training.unseen_labels import print_labels_without_training_examples


def load_dataset_info(config):
    """The vocabulary and the training label graph (built and cached on first use)."""
    data_dir = factory.data_kind(config).cache_dir(config)
    vocabulary = factory.read_vocabulary(config)
    split = config.data.train_split
    shards = factory.list_data_files(config, split)
    try:
        graph = load_or_build_label_graph(
            data_dir, len(vocabulary), vocabulary, split, path=config.data.label_graph,
            files=shards, parse_labels=factory.label_parser(config),
        )
    except DataError as error:
        # The label pass names the files only; find the record (shard, index, video id, label).
        problem = factory.data_kind(config).bad_label_record(config, shards, len(vocabulary))
        if problem is None:
            raise
        raise DataError(problem) from error
    return vocabulary, graph


def check_vocabulary_setting(config):
    """`config.data.vocabulary` names the records' labels; it does not map them by name: the
    records store class ids in the order of their data directory's own vocabulary
    (`labels.txt`, or a YouTube-8M `vocabulary.csv`), so a given file must list the same names in
    that order (`vocab.check_same_vocabulary`, the rule `evaluate`, `predict` and `export`
    apply). Nothing to check when the data directory has no vocabulary of its own."""
    if not config.data.vocabulary:
        return
    own = config.copy_and_resolve_references()
    own.data.vocabulary = None
    try:
        expected = factory.read_vocabulary(own)
    except FileNotFoundError:
        return
    check_same_vocabulary(
        factory.read_vocabulary(config), expected, f"config.data.vocabulary {config.data.vocabulary}",
        f"the vocabulary of the records in {config.data.data_dir}",
        "their class ids follow that vocabulary, and config.data.vocabulary does not map labels by name: "
        "leave it unset or give a copy of the records' own",
    )


def evaluate_model(config, model, dataset, vocabulary=None, graph=None):
    """Exact metrics of `model` on `dataset`: images mAP, C/O P/R/F1 at 0.5 and top-3; video
    GAP, Hit@1, PERR, mAP. With the training `graph`, first prints the labels of `dataset`
    without a training example."""
    metrics_fn, _, _ = factory.evaluation_metrics(config)
    scores, targets = predict_scores(model, dataset)
    if graph is not None:
        print_labels_without_training_examples(config, vocabulary, targets, graph)
    return metrics_fn(scores, targets)


DRY_RUN_STEPS = 2


def train_and_evaluate(config, workdir, strategy=None, dry_run=False, extra_callbacks=()):
    """Runs the whole recipe of `config` in `workdir`; returns the final metrics dict.

    A workdir keeps the config it was trained with: a workdir holding a run of another config
    is refused (`ConfigError` naming the fields), except for `files.RESUMABLE_FIELDS`, whose new
    values `config.json` records. The workdir is locked for the whole run (`lock.py`, local
    paths only): a second training of it is refused (`WorkdirLocked` naming the holder's pid).

    Args:
        strategy: a `tf.distribute.Strategy` (default: the current one). Under
            `MultiWorkerMirroredStrategy` the custom loop (`loop.py`) replaces `fit`.
        dry_run: check `config` against the workdir, then build everything, train one epoch of
            2 steps and evaluate 2 batches in `<workdir>/dry_run/` (replaced by every dry run;
            its `config.json` records the 2 steps), leaving the run's own files alone.
        extra_callbacks: more Keras callbacks for `fit` (tests use it to interrupt a run).
    """
    factory.validate_config(config)  # every numeric setting's range first (config_schema.py)
    strategy = strategy or tf.distribute.get_strategy()
    check_vocabulary_setting(config)
    # One training of a workdir at a time (a dry run writes only dry_run/, so it may run beside
    # one). Only the chief writes the workdir: the other workers, which may share it on one file
    # system, take no lock.
    lock = files.path(workdir, files.DRY_RUN_LOCK if dry_run else files.TRAIN_LOCK)
    command = "python -m cma_tf.train" + (" --dry_run" if dry_run else "")
    with hold_lock(lock, command) if is_chief(strategy) else contextlib.nullcontext():
        return _train_and_evaluate_locked(config, workdir, strategy, dry_run, extra_callbacks)


def _train_and_evaluate_locked(config, workdir, strategy, dry_run, extra_callbacks):
    """`train_and_evaluate` once the workdir's lock is held: what it reads of the workdir cannot
    change under it."""
    changed = files.check_resumable(workdir, config)
    if dry_run:
        workdir = files.path(workdir, files.DRY_RUN)
        if is_chief(strategy) and tf.io.gfile.exists(workdir):
            tf.io.gfile.rmtree(workdir)
        config = config.copy_and_resolve_references()
        config.train.epochs, config.train.steps_per_epoch = 1, DRY_RUN_STEPS
        changed = []
    tf.io.gfile.makedirs(workdir)
    keras.utils.set_random_seed(config.seed)
    if config.data.deterministic:
        tf.config.experimental.enable_op_determinism()
    factory.set_precision_policy(config)

    # A bounded scan of both splits' records first: a bad record is named before the label graph.
    factory.check_records(config, len(factory.read_vocabulary(config)))
    vocabulary, graph = load_dataset_info(config)
    if graph.num_examples == 0:
        split = config.data.train_split
        raise DataError(
            f"split '{split}' of {factory.data_kind(config).source(config)} holds no examples (its record files are empty): "
            "nothing to train on; convert data into it or set config.data.train_split"
        )
    if factory.needs_label_embeddings(config) and config.model.label_embedding == "asge":
        check_graph(graph.adjacency)  # a graph ASGE cannot embed is refused before the workdir is written
    if factory.needs_label_embeddings(config) and config.model.label_embedding == "file":
        load_label_embedding_file(config.model.label_embedding_file, len(vocabulary), vocabulary)  # so is a bad file
    trained = files.has_trained_state(workdir)
    final_path = files.path(workdir, files.FINAL_MODEL)
    if trained:
        files.check_labels(workdir, vocabulary)
        if not tf.io.gfile.exists(final_path):  # a finished run is only evaluated
            files.check_training_data(workdir, config.data.train_split, graph)
    _note_schedule_change(config, changed)
    num_classes = len(vocabulary)
    if is_chief(strategy):
        files.write_json(files.path(workdir, files.CONFIG), config.to_dict())
        files.write_labels(workdir, vocabulary)
        if not trained:
            files.record_training_data(workdir, config.data.train_split, graph)
    eval_data = factory.build_dataset(config, num_classes, config.data.eval_split, training=False)
    if dry_run:
        eval_data = eval_data.take(DRY_RUN_STEPS)
    try:
        if tf.io.gfile.exists(final_path):
            print(f"{final_path} exists: the run is finished, evaluating it (delete the workdir to retrain)")
        else:
            _fit(config, workdir, graph, num_classes, eval_data, strategy, extra_callbacks)
        if not is_chief(strategy):
            return {}
        metrics = evaluate_model(config, keras.saving.load_model(final_path), eval_data, vocabulary, graph)
    except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
        _raise_data_error(config, num_classes, error)
    metrics["model"] = config.model.head
    metrics["evaluated_on"] = factory.data_kind(config).evaluation_unit(config)
    files.write_json(files.path(workdir, files.METRICS), metrics)
    return metrics


def _note_schedule_change(config, changed):
    """A resumed run keeps its checkpoint's learning-rate schedule, whose decay epochs were set
    by the old `train.epochs`: says so when the new epochs would have added a decay step."""
    train = config.train
    for field, old, new in changed:
        if field == "train.epochs" and train.schedule == "onecycle":
            print(
                f"note: train.epochs {old} → {new}: the resumed optimizer keeps the one-cycle schedule of {old} "
                "epochs (past its end the learning rate stays at its last value)"
            )
            continue
        if field != "train.epochs" or train.lr_decay_examples:
            continue
        before = list(range(train.lr_decay_epochs, old, train.lr_decay_epochs))
        after = list(range(train.lr_decay_epochs, new, train.lr_decay_epochs))
        if before != after:
            print(
                f"note: train.epochs {old} → {new}: the resumed optimizer keeps the learning-rate schedule of "
                f"{old} epochs (decay after epochs {before or 'none'}), not the one of {new} (after {after})"
            )


def _best_validation_value(workdir, key):
    """The best `key` (e.g. `val_mAP`) of earlier epochs in `history.csv` (None if none), so a
    resumed run's first epoch does not overwrite `best.keras` with a worse model."""
    path = files.path(workdir, files.HISTORY)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path) as f:
        rows = list(csv.DictReader(f))
    values = [float(row[key]) for row in rows if row.get(key)]
    return max(values) if values else None


def _raise_data_error(config, num_classes, error):
    """Turns a bare TensorFlow data error into one naming the shard, record and field. The scan
    decodes every record until it finds the bad one (minutes on COCO), only after a failure."""
    shards = [
        path
        for split in (config.data.train_split, config.data.eval_split)
        for path in factory.list_data_files(config, split)
    ]
    problem = factory.first_bad_record(config, shards, num_classes)
    if problem is None:
        message = factory.data_kind(config).describe_read_error(shards, error)
        if message:
            raise DataError(message) from error
        raise error
    raise DataError(problem) from error


class _OneEpochPerFit(keras.callbacks.Callback):
    """Ends `fit` after one epoch: each epoch gets its own seeded dataset (exact resume) while
    the progress bar still counts epochs out of the total."""

    def on_epoch_end(self, epoch, logs=None):
        self.model.stop_training = True


def _build_or_resume(config, workdir, graph, num_classes, steps_per_epoch, strategy):
    """`(model, finished_epochs)`: the interrupted run's checkpoint (optimizer included), or a
    new compiled model."""
    finished, checkpoint = files.resume_point(workdir)
    if checkpoint:
        print(f"resuming from {checkpoint} after {finished} finished epochs")
        with strategy.scope():
            return keras.saving.load_model(checkpoint), finished
    # ASGE is fitted on its own, outside the strategy (Keras fit would distribute it).
    encoder = label_embeddings(config, graph, workdir) if factory.needs_label_embeddings(config) else None
    with strategy.scope():
        model = factory.build_classifier(config, num_classes, encoder, graph)
        model.compile(
            optimizer=factory.build_optimizer(config, steps_per_epoch, model),
            loss=factory.build_loss(config, graph.frequencies),
            # XLA under MirroredStrategy fails with Keras 3 (docs/design.md §2.11); "auto" elsewhere.
            jit_compile=False if strategy.num_replicas_in_sync > 1 else "auto",
        )
    return model, 0


def _fit(config, workdir, graph, num_classes, eval_data, strategy, extra_callbacks=()):
    steps_per_epoch = config.train.steps_per_epoch or max(1, graph.num_examples // config.train.batch_size)
    model, initial_epoch = _build_or_resume(config, workdir, graph, num_classes, steps_per_epoch, strategy)
    chief = is_chief(strategy)
    metrics_fn, keys, monitor = factory.evaluation_metrics(config)
    hint = (
        f"config.model.head={config.model.head!r} does not train with this recipe: lower "
        f"config.train.learning_rate ({config.train.learning_rate}), or train in float32 if "
        "config.train.mixed_precision is set. The checkpoints of the epochs before it are kept."
    )
    train_split, eval_split = config.data.train_split, config.data.eval_split
    # Non-finite loss or scores: the record that caused them, if the data holds one.
    bad_train_record = functools.partial(non_finite.non_finite_record, config, [train_split])
    nan_scores_error = functools.partial(non_finite.non_finite_scores_error, config, eval_split, "the model being trained")
    callbacks = [StopOnNonFiniteLoss(hint, bad_train_record)]
    if chief:
        # Between the two swaps the model holds its averaged weights, if it keeps an average.
        callbacks += [
            SwapAveragedWeights(),
            ValidationMetrics(eval_data, keys, metrics_fn, nan_scores_error),
            LearningRateLogger(),
            keras.callbacks.ModelCheckpoint(
                files.path(workdir, files.BEST_MODEL), monitor=f"val_{monitor}", mode="max", save_best_only=True,
                initial_value_threshold=_best_validation_value(workdir, f"val_{monitor}"),
            ),
            keras.callbacks.TensorBoard(files.path(workdir, files.TENSORBOARD)),
            keras.callbacks.CSVLogger(files.path(workdir, files.HISTORY), append=True),
            SwapAveragedWeights(),
            EpochCheckpoint(lambda m, finished: files.save_checkpoint(workdir, m, finished)),
        ]
    callbacks += list(extra_callbacks)

    if is_multi_worker(strategy):
        fit_with_custom_loop(
            model, strategy,
            lambda epoch, context: factory.build_dataset(
                config, num_classes, train_split, training=True, repeat=True, epoch=epoch, input_context=context
            ),
            initial_epoch, config.train.epochs, steps_per_epoch, callbacks,
        )
    else:
        for epoch in range(initial_epoch, config.train.epochs):
            data = factory.build_dataset(config, num_classes, train_split, training=True, repeat=True, epoch=epoch)
            model.fit(
                data, initial_epoch=epoch, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch,
                callbacks=callbacks + [_OneEpochPerFit()], verbose=1, shuffle=False,
            )
    if chief:
        averaging = averaging_optimizer(model)
        if averaging is not None:
            averaging.swap_averaged_weights()  # the final model is the averaged one
        files.save_model_atomically(model, files.path(workdir, files.FINAL_MODEL))
