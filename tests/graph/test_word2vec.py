"""Word2Vec label embeddings (W2V-MS-CMA, §4.1): the expected SGNS loss against a literal
re-derivation from the sentences and against sampled word2vec updates, the closed-form
gradients against autodiff, block structure, determinism, the real COCO counts, and
`FixedLabelEmbedding` as a label encoder."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.graph.cooccurrence import label_graph_from_label_lists
from cma_tf.graph.word2vec import (
    FixedLabelEmbedding,
    _loss_and_gradients,
    fit_word2vec,
    sgns_loss,
    sgns_weights,
)
from cma_tf.heads.cma import CMAHead
from tests.helpers import label_stats, run_layer_serialization_test, run_model_saving_test


def log_sigmoid(x):
    return -np.log1p(np.exp(-x))


def random_sentences(rng, num_labels, num_images, max_labels=4):
    """Label sets (each label once per image), as a multi-label dataset gives them."""
    return [
        sorted(rng.choice(num_labels, size=rng.integers(1, max_labels + 1), replace=False).tolist())
        for _ in range(num_images)
    ]


def keep_probability(count, total, sample):
    """word2vec.c: `ran = (sqrt(cn / (sample * train_words)) + 1) * (sample * train_words) / cn`."""
    if sample is None:
        return 1.0
    return min(1.0, (np.sqrt(count / (sample * total)) + 1) * (sample * total) / count)


def corpus_loss(sentences, num_labels, w, c, negatives, sample=None):
    """The expected SGNS loss, re-derived sentence by sentence from word2vec's skip-gram loop:
    every token, every other token of the (whole-sentence) window, input = context token,
    output = centre token, `negatives` noise draws from `count^0.75`, a draw equal to the
    output skipped; subsampling keeps each occurrence with word2vec.c's probability."""
    unigram = np.zeros(num_labels)
    for sentence in sentences:
        for label in sentence:
            unigram[label] += 1
    noise = unigram ** 0.75 / (unigram ** 0.75).sum()
    keep = [keep_probability(unigram[k], unigram.sum(), sample) if unigram[k] else 1.0 for k in range(num_labels)]
    total = 0.0
    for sentence in sentences:
        for centre in sentence:
            for context in sentence:
                if context == centre:
                    continue
                weight = keep[centre] * keep[context]
                term = log_sigmoid(w[context] @ c[centre])
                for k in range(num_labels):
                    if k != centre:
                        term += negatives * noise[k] * log_sigmoid(-(w[context] @ c[k]))
                total -= weight * term
    return total


@pytest.mark.parametrize("sample", [None, 0.05])
def test_loss_matches_sentence_by_sentence_derivation(sample):
    rng = np.random.default_rng(0)
    sentences = random_sentences(rng, 6, 25)
    counts = label_graph_from_label_lists(sentences, 6).counts
    w, c = rng.normal(size=(2, 6, 4))
    expected = corpus_loss(sentences, 6, w, c, negatives=3, sample=sample)
    np.testing.assert_allclose(sgns_loss(w, c, counts, negatives=3, subsample=sample), expected, rtol=1e-10)
    if sample is not None:  # the threshold is low enough to actually subsample here
        assert abs(sgns_loss(w, c, counts, negatives=3) - expected) > 1e-3 * abs(expected)


def test_loss_is_the_mean_of_sampled_word2vec_updates():
    """Monte Carlo over word2vec's sampling (shuffled label order, noise drawn from the
    unigram table with the skip rule) converges to `sgns_loss`."""
    rng = np.random.default_rng(1)
    num_labels, negatives, repeats = 5, 4, 4000
    sentences = random_sentences(rng, num_labels, 12)
    counts = label_graph_from_label_lists(sentences, num_labels).counts
    w, c = rng.normal(size=(2, num_labels, 3))
    unigram = np.diag(counts).astype(float)
    noise = unigram ** 0.75 / (unigram ** 0.75).sum()
    longest = max(len(s) for s in sentences)
    pairs = []
    for sentence in sentences:
        order = rng.permutation(sentence)  # the label order must not matter
        for position, centre in enumerate(order):
            for offset in range(-longest, longest + 1):
                if offset and 0 <= position + offset < len(order):
                    pairs.append((order[position + offset], centre))
    inputs, outputs = np.array(pairs).T
    draws = rng.choice(num_labels, p=noise, size=(repeats, len(pairs), negatives))
    noise_terms = np.where(draws != outputs[None, :, None], log_sigmoid(-np.einsum("pd,rpkd->rpk", w[inputs], c[draws])), 0.0)
    sampled = -(log_sigmoid(np.sum(w[inputs] * c[outputs], axis=1)).sum() + noise_terms.sum(axis=(1, 2)))
    np.testing.assert_allclose(sampled.mean(), sgns_loss(w, c, counts, negatives), rtol=3 * sampled.std() / np.sqrt(repeats) / abs(sampled.mean()) + 1e-6)


def test_closed_form_gradients_match_autodiff():
    rng = np.random.default_rng(2)
    counts = label_graph_from_label_lists(random_sentences(rng, 7, 40), 7).counts
    positive, negative = sgns_weights(counts, negatives=5, subsample=0.1)
    w, c = rng.normal(size=(2, 7, 5))
    loss, grad_w, grad_c = _loss_and_gradients(w, c, positive, negative)
    tw, tc = tf.Variable(w), tf.Variable(c)
    with tf.GradientTape() as tape:
        scores = tf.matmul(tw, tc, transpose_b=True)
        tf_loss = -tf.reduce_sum(positive * tf.math.log_sigmoid(scores)) - tf.reduce_sum(negative * tf.math.log_sigmoid(-scores))
    expected_w, expected_c = tape.gradient(tf_loss, [tw, tc])
    np.testing.assert_allclose(loss, tf_loss.numpy(), rtol=1e-10)
    np.testing.assert_allclose(grad_w, expected_w.numpy(), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(grad_c, expected_c.numpy(), rtol=1e-8, atol=1e-10)


def block_counts(sizes, num_images=600, seed=0):
    """Label sets drawn inside one group each: labels co-occur only within their group."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum([0] + list(sizes))
    sentences = []
    for _ in range(num_images):
        group = rng.integers(len(sizes))
        size = rng.integers(2, sizes[group] + 1)
        sentences.append((starts[group] + rng.choice(sizes[group], size, replace=False)).tolist())
    groups = np.repeat(np.arange(len(sizes)), sizes)
    return label_graph_from_label_lists(sentences, sum(sizes)).counts, groups


def cosine(vectors):
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return unit @ unit.T


def test_block_structure_loss_decreases_and_determinism():
    counts, groups = block_counts([5, 6, 7])
    vectors, losses = fit_word2vec(counts, dim=32, epochs=300, learning_rate=0.03, seed=0, return_losses=True)
    assert vectors.shape == (18, 32) and vectors.dtype == np.float32
    assert len(losses) == 301 and losses[-1] < 0.5 * losses[0]
    assert np.all(np.diff(losses[100:]) <= 0)  # full batch: monotone once Adam's early wobble is over
    positive, _ = sgns_weights(counts, 5)
    np.testing.assert_allclose(losses[0], sgns_loss(np.zeros((18, 32)), np.zeros((18, 32)), counts, 5) / positive.sum())
    sim = cosine(vectors)
    same = groups[:, None] == groups[None, :]
    within, across = sim[same & ~np.eye(18, dtype=bool)], sim[~same]
    # Every within-group pair above every across-group pair (margin 0.06-0.21 over 8 init and
    # 3 data seeds), and far apart on average (~0.4). Across pairs are not near 0: SGNS pushes
    # all never-seen pairs down through one shared offset direction of W and C.
    assert within.min() > across.max(), (within.min(), across.max())
    assert within.mean() > across.mean() + 0.3, (within.mean(), across.mean())
    again = fit_word2vec(counts, dim=32, epochs=300, learning_rate=0.03, seed=0)
    np.testing.assert_array_equal(again, vectors)
    other = fit_word2vec(counts, dim=32, epochs=300, learning_rate=0.03, seed=1)
    assert not np.array_equal(other, vectors)


def test_accepts_label_graph_and_rejects_bad_counts():
    graph = label_graph_from_label_lists([[0, 1], [1, 2], [0, 2, 3]], 4)
    np.testing.assert_array_equal(
        fit_word2vec(graph, dim=4, epochs=5), fit_word2vec(graph.counts, dim=4, epochs=5)
    )
    with pytest.raises(ValueError, match="square"):
        fit_word2vec(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="co-occur"):
        fit_word2vec(np.diag([3, 4, 5]))


# COCO supercategories (instances_*.json), used to judge neighbours without hand-picking them.
COCO_SUPERCATEGORIES = {
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"],
    "outdoor": ["traffic light", "fire hydrant", "stop sign", "parking meter", "bench"],
    "animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe"],
    "accessory": ["backpack", "umbrella", "handbag", "tie", "suitcase"],
    "sports": ["frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
               "skateboard", "surfboard", "tennis racket"],
    "kitchen": ["bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl"],
    "food": ["banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake"],
    "furniture": ["chair", "couch", "potted plant", "bed", "dining table", "toilet"],
    "electronic": ["tv", "laptop", "mouse", "remote", "keyboard", "cell phone"],
    "appliance": ["microwave", "oven", "toaster", "sink", "refrigerator"],
    "indoor": ["book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush"],
}


@pytest.fixture(scope="module")
def coco():
    stats = label_stats("coco")
    return stats.labels, stats.counts, fit_word2vec(stats.counts, dim=256, seed=0)


def test_coco_nearest_neighbours(coco):
    names, counts, vectors = coco
    assert vectors.shape == (80, 256) and np.all(np.isfinite(vectors))
    sim = cosine(vectors)
    np.fill_diagonal(sim, -np.inf)
    nearest = {name: names[j] for name, j in zip(names, sim.argmax(axis=1))}
    group = {name: key for key, members in COCO_SUPERCATEGORIES.items() for name in members}
    assert sorted(group) == sorted(names)
    dining = set(COCO_SUPERCATEGORIES["kitchen"] + COCO_SUPERCATEGORIES["food"] + ["dining table"])
    assert nearest["fork"] in dining
    assert nearest["knife"] in dining
    assert nearest["tennis racket"] in {"sports ball", "baseball bat", "baseball glove"}
    assert nearest["baseball bat"] in {"sports ball", "baseball glove", "tennis racket"}
    assert nearest["skis"] in {"snowboard", "skateboard", "surfboard"}
    assert group[nearest["giraffe"]] == "animal"
    assert nearest["mouse"] in {"keyboard", "laptop", "remote", "tv"}
    assert nearest["toaster"] in set(COCO_SUPERCATEGORIES["appliance"])
    assert nearest["toothbrush"] in {"hair drier", "sink", "toilet"}
    # Over all labels: the nearest neighbour shares the supercategory far more often than chance (~0.1).
    assert np.mean([group[name] == group[nearest[name]] for name in names]) > 0.4


def test_fixed_label_embedding_shape_config_and_values():
    values = np.random.default_rng(3).normal(size=(5, 4)).astype("float32")
    table = FixedLabelEmbedding(num_labels=5, units=4, name="w2v")
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        table.set_embeddings(values[:, :3])
    table.set_embeddings(values)
    assert table.trainable_weights == [] and len(table.non_trainable_weights) == 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(table.all_embeddings(training=True)), values)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(table(np.array([4, 0]))), values[[4, 0]])
    config = table.get_config()
    assert {k: config[k] for k in ("num_labels", "units")} == {"num_labels": 5, "units": 4}
    assert set(config) - {"num_labels", "units"} <= set(keras.layers.Layer(name="w2v").get_config())
    clone = run_layer_serialization_test(table, np.arange(5))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(clone.all_embeddings()), values)
    np.testing.assert_array_equal(FixedLabelEmbedding.from_array(values).embeddings.numpy(), values)


def test_fixed_label_embedding_in_a_head_survives_keras_saving(tmp_path):
    values = np.random.default_rng(4).normal(size=(5, 8)).astype("float32")
    encoder = FixedLabelEmbedding.from_array(values, name="w2v_embeddings")
    inputs = [keras.Input((8, 8, 16)), keras.Input((4, 4, 32))]
    model = keras.Model(inputs, CMAHead(5, encoder, name="head")(inputs))
    batch = [np.random.default_rng(5).normal(size=s).astype("float32") for s in ((2, 8, 8, 16), (2, 4, 4, 32))]
    restored = run_model_saving_test(model, batch, tmp_path)
    restored_encoder = restored.get_layer("head").label_encoder
    assert isinstance(restored_encoder, FixedLabelEmbedding)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(restored_encoder.all_embeddings()), values)
