"""A training run: label graph → ASGE → classifier `fit` → evaluation, all inside a workdir.

Stages are cached in the workdir, so re-running a finished or killed run resumes: the label
graph is kept next to the data, the ASGE encoder in `asge/`, and `BackupAndRestore` restores
model, optimizer and epoch after a crash.
"""

import os

import keras
import tensorflow as tf

from cma_tf import factory
from cma_tf.errors import ConfigError
from cma_tf.data.vocab import read_vocabulary, vocabulary_path
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.asge_model import fit_asge, load_encoder_weights, save_encoder_weights
from cma_tf.graph.label_graph import load_or_build_label_graph
from cma_tf.metrics.image import multilabel_metrics
from cma_tf.training import workdir as files
from cma_tf.training.callbacks import ValidationMetrics, predict_scores


def load_dataset_info(config):
    """The vocabulary and the training label graph (built and cached on first use)."""
    data_dir = config.data.data_dir
    if not data_dir:
        raise ConfigError("config.data.data_dir is empty: point it at a converted dataset")
    vocabulary = read_vocabulary(vocabulary_path(data_dir))
    graph = load_or_build_label_graph(data_dir, len(vocabulary), vocabulary, config.data.train_split)
    return vocabulary, graph


def fit_or_load_asge(config, graph, workdir):
    """The ASGE encoder fitted to the graph's `A` (cached in `workdir/asge/`)."""
    weights_path = files.path(workdir, files.ASGE_WEIGHTS)
    asge = config.asge
    if tf.io.gfile.exists(weights_path):
        encoder = ASGEEncoder(graph.num_classes, units=asge.units, depth=asge.depth, name="asge_encoder")
        encoder.build()
        load_encoder_weights(encoder, weights_path)
        return encoder
    encoder, report = fit_asge(
        graph.adjacency, units=asge.units, depth=asge.depth, steps=asge.steps,
        learning_rate=asge.learning_rate, momentum=asge.momentum, alpha=asge.alpha,
        seed=config.seed, verbose=1,
    )
    print(f"ASGE: off-diagonal RMSE {report['rmse']:.4f}, Pearson r {report['pearson']:.3f} vs A'")
    tf.io.gfile.makedirs(os.path.dirname(weights_path))
    save_encoder_weights(encoder, weights_path)
    files.write_json(files.path(workdir, files.ASGE_REPORT), report)
    return encoder


def evaluate_model(model, dataset):
    """Exact metrics (mAP, C/O P/R/F1 at 0.5 and top-3) of `model` on `dataset`."""
    return multilabel_metrics(*predict_scores(model, dataset))


def train_and_evaluate(config, workdir):
    """Runs the whole recipe of `config` in `workdir`; returns the final metrics dict."""
    tf.io.gfile.makedirs(workdir)
    keras.utils.set_random_seed(config.seed)
    if config.data.deterministic:
        tf.config.experimental.enable_op_determinism()
    files.write_json(files.path(workdir, files.CONFIG), config.to_dict())

    vocabulary, graph = load_dataset_info(config)
    num_classes = len(vocabulary)
    encoder = fit_or_load_asge(config, graph, workdir) if factory.needs_label_embeddings(config) else None
    model = factory.build_classifier(config, num_classes, encoder, graph.adjacency)

    steps_per_epoch = config.train.steps_per_epoch or max(1, graph.num_examples // config.train.batch_size)
    model.compile(
        optimizer=factory.build_optimizer(config, steps_per_epoch),
        loss=factory.build_loss(config, graph.frequencies),
    )
    train_data = factory.build_dataset(config, num_classes, config.data.train_split, training=True, repeat=True)
    eval_data = factory.build_dataset(config, num_classes, config.data.eval_split, training=False)
    callbacks = [
        ValidationMetrics(eval_data),
        keras.callbacks.BackupAndRestore(files.path(workdir, files.BACKUP)),
        keras.callbacks.ModelCheckpoint(
            files.path(workdir, files.BEST_MODEL), monitor="val_mAP", mode="max", save_best_only=True
        ),
        keras.callbacks.TensorBoard(files.path(workdir, files.TENSORBOARD)),
        keras.callbacks.CSVLogger(files.path(workdir, files.HISTORY), append=True),
    ]
    model.fit(
        train_data, epochs=config.train.epochs, steps_per_epoch=steps_per_epoch,
        callbacks=callbacks, verbose=1, shuffle=False,
    )
    model.save(files.path(workdir, files.FINAL_MODEL))

    best = keras.saving.load_model(files.trained_model_path(workdir))
    metrics = evaluate_model(best, eval_data)
    metrics["model"] = config.model.head
    files.write_json(files.path(workdir, files.METRICS), metrics)
    return metrics
