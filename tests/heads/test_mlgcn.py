"""ML-GCN (Chen et al., CVPR 2019): the correlation matrix against the official code's `gen_A` /
`gen_adj` written out on the real COCO counts, the head against numpy (with ASGE node features,
and with the shipped GloVe vectors over COCO's counts), and the head in a classifier (shapes,
`.keras` round trip, training, the factory, node features from a file or the shipped name)."""

import hashlib
import os

import keras
import numpy as np
import pytest
import scipy.sparse
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_base_config
from cma_tf.data import vocab
from cma_tf.datasets import coco_stats
from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.errors import ConfigError, DataError
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.cooccurrence import LabelGraph
from cma_tf.graph.correlation import mlgcn_correlation
from cma_tf.graph.label_embeddings import load_label_embedding_file
from cma_tf.graph.label_vectors import shipped_vectors
from cma_tf.heads.mlgcn import MLGCNHead
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.training.trainer import train_and_evaluate
from tests.helpers import (
    TINY_IMAGE_SIZE,
    TINY_WIDTHS,
    label_stats,
    run_model_saving_test,
    tiny_batch,
    tiny_label_graph,
)

NUM_CLASSES = 5
RNG = np.random.default_rng(0)


def official_gen_adj(adj, nums, t=0.4):
    """`util.gen_A` then `util.gen_adj` of github.com/megvii-research/ML-GCN, line by line, on the
    pickle's `adj` (co-occurrences, zero diagonal) and `nums` (per-class counts)."""
    _adj = adj / nums[:, np.newaxis]
    _adj[_adj < t] = 0
    _adj[_adj >= t] = 1
    _adj = _adj * 0.25 / (_adj.sum(0, keepdims=True) + 1e-6)
    _adj = _adj + np.identity(len(nums), int)
    D = np.power(_adj.sum(1), -0.5)
    D = np.diag(D)
    return np.matmul(np.matmul(_adj, D).T, D)


def test_the_correlation_matrix_is_the_official_one_on_the_real_coco_counts():
    stats = label_stats("coco")
    expected = official_gen_adj(stats.cooccurrence.astype(np.float64), stats.class_counts.astype(np.float64))
    got = mlgcn_correlation(stats.counts)
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)
    # What the matrix means: every label keeps 0.8 of itself (self 1 against neighbours 0.25 after
    # normalisation) where it has neighbours, and is directed (P(L_j | L_i) ≠ P(L_i | L_j)).
    assert not np.allclose(got, got.T)
    assert 0 < (np.asarray(got) > 0).sum() - 80 < 80 * 79


def test_the_correlation_matrix_by_hand():
    """Labels 0, 1 co-occur (P(1|0) = 2/4, P(0|1) = 2/3, both ≥ τ); label 2 stands alone; label 3
    never occurs in training and keeps only its self loop instead of a division by zero."""
    counts = np.array([[4, 2, 0, 0], [2, 3, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]])
    expected = np.array([[0.8, 0.2, 0, 0], [0.2, 0.8, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(mlgcn_correlation(counts), expected, atol=1e-6)
    # τ is a ≥ test on P(L_j | L_i): at τ = 0.6, P(1|0) = 0.5 drops out, P(0|1) = 0.67 stays, and
    # after the transpose label 0 aggregates label 1 (Â[0, 1] > 0) but not the other way round.
    directed = mlgcn_correlation(counts, threshold=0.6)
    assert directed[0, 1] > 0 and directed[1, 0] == 0
    with pytest.raises(ValueError, match="square"):
        mlgcn_correlation(np.ones((2, 3)))


def label_encoder(units=8):
    encoder = ASGEEncoder(NUM_CLASSES, units=units, name="label_encoder")
    encoder.build()
    encoder.trainable = False
    return encoder


# ML-GCN's own data/coco/coco_glove_word2vec.pkl (megvii-research/ML-GCN), where a copy was fetched.
MLGCN_GLOVE = os.environ.get("MLGCN_GLOVE_PKL", "")


def glove_encoder(num_classes=80):
    """The shipped GloVe vectors as the head's fixed label table, as the factory builds it."""
    config = tiny_config(label_embedding="file", label_embedding_file="coco_glove_300d")
    return factory.build_label_encoder(config, num_classes, load_label_embedding_file("coco_glove_300d", num_classes))


@pytest.mark.parametrize("node_features", ["asge", "coco_glove_300d"])
def test_head_matches_numpy(node_features):
    """Â, E, W1, W2 written out: with ASGE codes on a tiny graph, and with ML-GCN's own setting,
    the shipped 300-d GloVe vectors over COCO's real counts (Â from the official `gen_adj`)."""
    if node_features == "asge":
        counts = tiny_label_graph(NUM_CLASSES).counts
        encoder, correlation = label_encoder(), mlgcn_correlation(counts).astype(np.float64)
    else:
        stats = label_stats("coco")
        counts, encoder = stats.counts, glove_encoder()
        correlation = official_gen_adj(stats.cooccurrence.astype(np.float64), stats.class_counts.astype(np.float64))
    head = MLGCNHead(counts.shape[0], encoder, label_counts=counts, gcn_hidden_units=12)
    features = RNG.normal(size=(3, 4, 4, 16)).astype("float32")
    logits = np.asarray(head([features]), np.float64)

    embeddings = np.asarray(head.label_embeddings(training=False), np.float64)
    if node_features == "coco_glove_300d":  # X0 is the file's rows, untouched
        np.testing.assert_array_equal(embeddings, np.load(shipped_vectors("coco_glove_300d").path))
    w1, w2 = (np.asarray(layer.kernel, np.float64) for layer in (head.gcn_hidden, head.gcn_output))
    hidden = correlation @ embeddings @ w1
    hidden = np.where(hidden > 0, hidden, 0.2 * hidden)
    classifiers = correlation @ hidden @ w2  # [N, C]
    pooled = features.astype(np.float64).reshape(3, -1, 16).max(axis=1)  # global max pooling
    np.testing.assert_allclose(logits, pooled @ classifiers.T, rtol=1e-4, atol=1e-4)
    assert w2.shape == (12, 16) and np.abs(w1).max() <= 1 / np.sqrt(12)  # ±1/√out, as released


def tiny_config(**model):
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = "mlgcn", "small", None
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.gcn_hidden_units, config.asge.units = 12, 8
    for field, value in model.items():
        config.model[field] = value
    return config


def tiny_model(graph=None):
    config = tiny_config()
    model = factory.build_classifier(
        config, NUM_CLASSES, factory.build_label_encoder(config, NUM_CLASSES), graph or tiny_label_graph(NUM_CLASSES)
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=WeightedBinaryCrossentropy())
    return model


def batch(size=4):
    return tiny_batch(RNG, NUM_CLASSES, size)


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_the_factory_builds_it_from_the_label_graph_and_refuses_without_one():
    graph = tiny_label_graph(NUM_CLASSES)
    model = tiny_model(graph)
    assert model.predict(batch(3)[0], verbose=0).shape == (3, NUM_CLASSES)
    np.testing.assert_allclose(np.asarray(model.head.correlation), mlgcn_correlation(graph.counts))
    assert not model.head.correlation.trainable
    config = tiny_config()
    with pytest.raises(ConfigError, match="config.model.head='mlgcn' is built from the label graph"):
        factory.build_classifier(config, NUM_CLASSES, factory.build_label_encoder(config, NUM_CLASSES))
    sparse = LabelGraph(scipy.sparse.csr_matrix(graph.counts), graph.num_examples)  # as above 4,096 labels
    with pytest.raises(ConfigError, match=r"the mlgcn head .* needs the label graph as a dense"):
        factory.build_classifier(config, NUM_CLASSES, factory.build_label_encoder(config, NUM_CLASSES), sparse)


def test_keras_round_trip_keeps_the_correlation_and_the_frozen_embeddings(tmp_path):
    model = tiny_model()
    images, labels = batch()
    model.train_step((images, labels))
    restored = run_model_saving_test(model, images, tmp_path)
    np.testing.assert_array_equal(np.asarray(restored.head.correlation), np.asarray(model.head.correlation))
    assert restored.head.get_config() == model.head.get_config()
    assert "label_counts" not in restored.head.get_config()  # N² numbers travel as a weight, not in JSON
    assert not any(w.path.startswith("label_encoder/") for w in restored.trainable_weights)


def test_a_train_step_lowers_the_loss_and_reaches_both_gcn_layers():
    model = tiny_model()
    model.backbone.trainable = False
    images, labels = batch(8)
    loss = WeightedBinaryCrossentropy()
    with tf.GradientTape() as tape:
        before = loss(labels, model(images, training=True))
    gradients = tape.gradient(before, model.head.trainable_weights)
    assert {w.path.split("/")[-2] for w in model.head.trainable_weights} == {"gcn_1", "gcn_2"}
    assert all(g is not None and np.abs(np.asarray(g)).sum() > 0 for g in gradients)
    for _ in range(3):
        model.train_step((images, labels))
    assert float(loss(labels, model(images, training=True))) < float(before)


def test_node_features_from_a_file(tmp_path):
    """ML-GCN's own setting: fixed 300-d word vectors (GloVe) as `X0`, read from a `.npy`."""
    vectors = RNG.normal(size=(NUM_CLASSES, 300)).astype("float32")
    path = str(tmp_path / "glove.npy")
    np.save(path, vectors)
    config = tiny_config(label_embedding="file", label_embedding_file=path)
    loaded = load_label_embedding_file(path, NUM_CLASSES)
    model = factory.build_classifier(config, NUM_CLASSES, loaded, tiny_label_graph(NUM_CLASSES))
    np.testing.assert_array_equal(np.asarray(model.head.label_embeddings()), vectors)
    assert model.head.gcn_hidden.kernel.shape == (300, 12)
    assert not any(w.path.startswith("label_encoder/") for w in model.trainable_weights)

    np.save(str(tmp_path / "short.npy"), vectors[:3])
    with pytest.raises(ConfigError, match=r"short\.npy holds an array of shape \(3, 300\); expected \[5, D\]"):
        load_label_embedding_file(str(tmp_path / "short.npy"), NUM_CLASSES)
    vectors[2, 7] = np.nan
    np.save(str(tmp_path / "nan.npy"), vectors)
    with pytest.raises(ConfigError, match=r"nan\.npy has non-finite values in rows \[2\]"):
        load_label_embedding_file(str(tmp_path / "nan.npy"), NUM_CLASSES)
    with pytest.raises(ConfigError, match="missing.npy does not exist"):
        load_label_embedding_file(str(tmp_path / "missing.npy"), NUM_CLASSES)
    with pytest.raises(ConfigError, match="label_embedding_file .* goes with config.model.label_embedding='file'"):
        factory.validate_config(tiny_config(label_embedding_file=path))
    with pytest.raises(ConfigError, match="fixed table: no fine-tuning"):
        factory.validate_config(tiny_config(label_embedding="file", label_embedding_file=path,
                                            finetune_label_embeddings=True))


def test_the_shipped_coco_glove_vectors_are_ml_gcns_in_the_coco_stats_vocabulary_order(tmp_path):
    shipped = shipped_vectors("coco_glove_300d")
    with open(shipped.path, "rb") as f:
        assert hashlib.sha256(f.read()).hexdigest() == shipped.sha256  # the file its JSON describes
    vectors = np.load(shipped.path)
    assert vectors.shape == (80, 300) and vectors.dtype == np.float32 and np.isfinite(vectors).all()
    # Row i is label i of the coco_stats dataset: the labels.txt it writes, and the fixture's names.
    coco_stats.generate_coco_stats_dataset(str(tmp_path), num_train=4, num_val=2, image_size=32, num_shards=1,
                                           progress=False)
    labels = vocab.read_vocabulary(vocab.vocabulary_path(str(tmp_path)))
    assert list(shipped.labels) == labels == label_stats("coco").labels == sorted(labels)
    assert (labels[0], labels[49], labels[79]) == ("airplane", "person", "zebra")
    # Word vectors mean what they say: the nearest name by cosine, for a few unambiguous ones.
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosines = unit @ unit.T - 2 * np.eye(80)
    for name, near in (("cat", "dog"), ("dog", "cat"), ("car", "truck"), ("fork", "spoon"), ("cow", "sheep")):
        assert labels[int(np.argmax(cosines[labels.index(name)]))] == near


@pytest.mark.skipif(not os.path.exists(MLGCN_GLOVE), reason="MLGCN_GLOVE_PKL does not name ML-GCN's coco_glove_word2vec.pkl")
def test_the_shipped_vectors_equal_ml_gcns_pickle():
    import pickle

    with open(MLGCN_GLOVE, "rb") as f:
        source = np.asarray(pickle.load(f))
    np.testing.assert_array_equal(np.load(shipped_vectors("coco_glove_300d").path), source)


def test_the_shipped_name_is_checked_against_the_vocabulary():
    labels = label_stats("coco").labels
    vectors = load_label_embedding_file("coco_glove_300d", 80, labels)
    assert vectors.shape == (80, 300)
    swapped = list(labels)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(DataError, match=r"the vocabulary of the training data differs from the rows of "
                       r"config.model.label_embedding_file='coco_glove_300d' .* at id 0 \(line 1\): 'apple' instead of "
                       r"'airplane'; row i of the file is the features of label i"):
        load_label_embedding_file("coco_glove_300d", 80, swapped)
    with pytest.raises(DataError, match="at id 20 .*the end of the list"):
        load_label_embedding_file("coco_glove_300d", 20, labels[:20])
    assert shipped_vectors("coco_glove_300d.npy") is None  # anything else is a path
    with pytest.raises(ConfigError, match="coco_glove_300d.npy does not exist"):
        load_label_embedding_file("coco_glove_300d.npy", 80, labels)


def test_training_refuses_the_coco_vectors_for_other_labels_before_writing_the_workdir(tmp_path):
    data_dir = str(tmp_path / "data")
    generate_demo_dataset(data_dir, num_train=8, num_val=4, image_size=32, seed=0, num_shards=1, progress=False)
    config = tiny_config(label_embedding="file", label_embedding_file="coco_glove_300d")
    config.data.data_dir, config.data.image_size = data_dir, 32
    workdir = tmp_path / "run"
    with pytest.raises(DataError, match="differs from the rows of config.model.label_embedding_file='coco_glove_300d'"):
        train_and_evaluate(config, str(workdir))
    assert not workdir.exists()
