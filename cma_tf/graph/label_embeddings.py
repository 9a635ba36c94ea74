"""The label embeddings `E` a head starts from: config + label graph → `E`, fitted or read, cached.

The one place that makes them, for training (`training/trainer.py`), the `label_embeddings`
command, the head selection (`selection/feature_head.py`) and the embedding figures. By
`config.model.label_embedding`:

- `asge` (the paper): the ASGE encoder fitted to the graph's `A'` (Eq. 2-5, `asge_model.py`);
- `word2vec`: skip-gram vectors of the training label sets (the paper's Table 3 ablation);
- `file`: the rows of `config.model.label_embedding_file` (a `.npy`, or a shipped name such
  as `coco_glove_300d`, `label_vectors.py`), checked.

Fits are cached in a folder (a run's workdir) with the settings they were made with, under
the names below; a cache made with other settings is fitted again.
"""

import json
import os

import numpy as np
import tensorflow as tf

from cma_tf.atomic import atomic_write, write_json
from cma_tf.data.vocab import check_same_vocabulary
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.asge_model import fit_asge, fit_summary, load_encoder_weights, save_encoder_weights
from cma_tf.graph.label_vectors import shipped_vectors
from cma_tf.graph.word2vec import fit_word2vec

# The cache, relative to its folder (a run's workdir: `training/workdir.py` names them too).
ASGE_WEIGHTS = "asge/encoder_weights.npz"
ASGE_REPORT = "asge/report.json"
WORD2VEC = "word2vec/embeddings.npy"


def label_embeddings(config, graph, cache_dir, verbose=1):
    """What the head's label encoder starts from, for a head that reads label embeddings: the
    ASGE encoder, Word2Vec vectors `[N, asge.units]`, or the vectors of
    `config.model.label_embedding_file` `[N, D]` (`verbose=0`: ASGE fits quietly)."""
    if config.model.label_embedding == "word2vec":
        return fit_or_load_word2vec(config, graph, cache_dir)
    if config.model.label_embedding == "file":
        return load_label_embedding_file(config.model.label_embedding_file, graph.num_classes, graph.vocabulary or None)
    return fit_or_load_asge(config, graph, cache_dir, verbose)


def asge_settings(config, graph):
    """What an ASGE fit depends on: the `asge.*` fields, the number of labels, the seed and the graph."""
    settings = dict(config.asge.to_dict(), num_labels=graph.num_classes, seed=config.seed)
    settings["graph_sha1"] = graph.sha1()
    return settings


def cached_asge_settings(cache_dir):
    """The settings of the ASGE fit cached in `cache_dir`, or None when there is none."""
    report_path = os.path.join(cache_dir, ASGE_REPORT)
    if not tf.io.gfile.exists(report_path):
        return None
    with tf.io.gfile.GFile(report_path, "r") as f:
        return json.load(f).get("settings", {})


def fit_or_load_asge(config, graph, cache_dir, verbose=1):
    """The ASGE encoder fitted to the graph's `A`, cached in `cache_dir/asge/` together with the
    settings it was fitted with; a cache fitted with other settings is refitted (`verbose=0`:
    without the fit's progress bar and summary)."""
    weights_path = os.path.join(cache_dir, ASGE_WEIGHTS)
    report_path = os.path.join(cache_dir, ASGE_REPORT)
    asge, settings = config.asge, asge_settings(config, graph)
    if tf.io.gfile.exists(weights_path):
        cached = cached_asge_settings(cache_dir)
        if cached == settings:
            encoder = ASGEEncoder(graph.num_classes, units=asge.units, depth=asge.depth, name="asge_encoder")
            encoder.build()
            load_encoder_weights(encoder, weights_path)
            return encoder
        if cached is not None:
            print(f"ASGE settings differ from the cached fit in {report_path}: fitting again")
    encoder, report = fit_asge(
        graph.adjacency, units=asge.units, depth=asge.depth, steps=asge.steps,
        learning_rate=asge.learning_rate, momentum=asge.momentum, alpha=asge.alpha,
        optimizer=asge.optimizer, balance_pairs=asge.balance_pairs, row_guard=asge.row_guard, seed=config.seed,
        verbose=verbose,
    )
    if verbose:
        print(fit_summary(report))
    tf.io.gfile.makedirs(os.path.dirname(weights_path))
    save_encoder_weights(encoder, weights_path)
    write_json(report_path, dict(report, settings=settings))
    return encoder


def fit_or_load_word2vec(config, graph, cache_dir):
    """Word2Vec (SGNS, window = longest label set) vectors of the labels, cached in `cache_dir`."""
    path = os.path.join(cache_dir, WORD2VEC)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path, "rb") as f:
            vectors = np.load(f)
        if vectors.shape == (graph.num_classes, config.asge.units):
            return vectors
    vectors = fit_word2vec(graph.dense_counts("config.model.label_embedding=word2vec"), dim=config.asge.units, seed=config.seed)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with atomic_write(path) as f:
        np.save(f, vectors)
    return vectors


def load_label_embedding_file(path, num_classes, vocabulary=None):
    """The `[N, D]` label vectors of `config.model.label_embedding_file` (a `.npy`, rows in the
    vocabulary's order, or a shipped name such as "coco_glove_300d", `label_vectors.py`),
    checked: a `ConfigError` naming the file on a wrong shape or a non-finite value; for shipped
    vectors, a `DataError` when `vocabulary` is given and is not their names in their order."""
    shipped = shipped_vectors(path)
    if shipped is not None:
        if vocabulary is not None:
            check_same_vocabulary(
                vocabulary, shipped.labels, "the vocabulary of the training data",
                f"the rows of config.model.label_embedding_file={path!r} ({len(shipped.labels)} names, {shipped.source})",
                "row i of the file is the features of label i: give a .npy of vectors in your vocabulary's order "
                "(config.model.label_embedding_file=PATH) or the data whose labels these are",
            )
        path = shipped.path
    if not tf.io.gfile.exists(path):
        raise ConfigError(f"config.model.label_embedding_file: {path} does not exist")
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            vectors = np.load(f, allow_pickle=False)
    except ValueError as error:
        raise ConfigError(f"config.model.label_embedding_file: {path} is not a .npy array ({error})") from None
    if vectors.ndim != 2 or vectors.shape[0] != num_classes:
        raise ConfigError(
            f"config.model.label_embedding_file: {path} holds an array of shape {vectors.shape}; "
            f"expected [{num_classes}, D], one row per label of the vocabulary, in its order"
        )
    if not np.all(np.isfinite(vectors)):
        rows = np.flatnonzero(~np.all(np.isfinite(vectors), axis=1))
        raise ConfigError(f"config.model.label_embedding_file: {path} has non-finite values in rows {rows[:10].tolist()}")
    return vectors.astype(np.float32)
