"""Shared checks every layer and model goes through (docs/design.md §5 rules 7-8)."""

import collections
import json
import os

import keras
import numpy as np
import pytest

FIXTURES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
LABEL_STATS_FILES = {
    "coco": "coco2014_train_label_stats.json",  # MS-COCO train2014, 80 classes
    "voc": "voc2007_trainval_label_stats.json",  # PASCAL VOC 2007 trainval, 20 classes
}
TINY_WIDTHS = (8, 16, 32, 64)
TINY_IMAGE_SIZE = 32


def slow_for(values, slow):
    """`values` as parameters, those in `slow` marked `slow`: the variants of a check that take
    over about 8 s each on an idle 2-core machine run in `make test-slow` (CI runs both suites)."""
    assert set(slow) <= set(values), set(slow) - set(values)
    return [pytest.param(value, marks=pytest.mark.slow) if value in slow else value for value in values]


def tiny_batch(rng, num_classes, size=4):
    """`(images, labels)`: random pixels 0..255 at `TINY_IMAGE_SIZE` and random label sets (each
    label on with probability 0.4), for one train step of a tiny classifier."""
    images = rng.uniform(0, 255, (size, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    labels = (rng.random((size, num_classes)) < 0.4).astype("float32")
    return images, labels


def tiny_label_graph(num_classes, num_examples=200, seed=0):
    """A `LabelGraph` counted from random label sets (about 3 labels an example), for building
    heads that read the label graph (ML-GCN) in tests."""
    from cma_tf.graph.cooccurrence import LabelGraph

    labels = (np.random.default_rng(seed).random((num_examples, num_classes)) < 3.0 / num_classes).astype(np.int64)
    return LabelGraph(labels.T @ labels, num_examples)


def reference_image_spec():
    """The image record format written out independently of `records.FEATURE_SPEC`, so tests
    read records back with a reader that does not share the code under test."""
    import tensorflow as tf

    return {
        "image/encoded": tf.io.FixedLenFeature([], tf.string),
        "image/format": tf.io.FixedLenFeature([], tf.string),
        "image/height": tf.io.FixedLenFeature([], tf.int64),
        "image/width": tf.io.FixedLenFeature([], tf.int64),
        "image/source_id": tf.io.FixedLenFeature([], tf.string),
        "image/class/label": tf.io.VarLenFeature(tf.int64),
    }


class LabelStats(collections.namedtuple("LabelStats", "cooccurrence class_counts labels")):
    """Real label statistics: `cooccurrence` int64 [N, N] (images with both labels, diagonal 0),
    `class_counts` int64 [N] (images with each label), `labels` the N names in index order."""

    __slots__ = ()

    @property
    def counts(self):
        """The full count matrix of Eq. 1: co-occurrences off the diagonal, class counts on it."""
        return self.cooccurrence + np.diag(self.class_counts)


def label_stats(dataset):
    """The real label statistics of "coco" (train2014) or "voc" (2007 trainval) from
    tests/fixtures/ (published with ML-GCN; provenance and label order: tests/fixtures/README.md)."""
    with open(os.path.join(FIXTURES_DIR, LABEL_STATS_FILES[dataset])) as f:
        data = json.load(f)
    stats = LabelStats(
        np.array(data["cooccurrence"], np.int64), np.array(data["class_counts"], np.int64), list(data["labels"])
    )
    n = len(stats.labels)
    assert stats.cooccurrence.shape == (n, n) and stats.class_counts.shape == (n,), dataset
    return stats


def randomize_batch_norm(layer, rng):
    """Gives every BatchNormalization inside `layer` non-trivial statistics and affine terms,
    so inference-mode re-derivations actually test the normalisation."""
    for sub in layer._flatten_layers(include_self=True, recursive=True):
        if isinstance(sub, keras.layers.BatchNormalization):
            n = sub.gamma.shape[0]
            sub.gamma.assign(rng.uniform(0.5, 1.5, n))
            sub.beta.assign(rng.normal(0, 0.1, n))
            sub.moving_mean.assign(rng.normal(0, 0.1, n))
            sub.moving_variance.assign(rng.uniform(0.5, 1.5, n))


def numpy_batch_norm(x, bn):
    """Inference-mode BatchNormalization in numpy."""
    gamma, beta, mean, var = (np.asarray(w) for w in (bn.gamma, bn.beta, bn.moving_mean, bn.moving_variance))
    return (x - mean) / np.sqrt(var + bn.epsilon) * gamma + beta


def run_layer_serialization_test(layer, *args, **kwargs):
    """`from_config(get_config())` with the same weights gives the same output."""
    expected = keras.ops.convert_to_numpy(layer(*args, **kwargs))
    clone = layer.__class__.from_config(layer.get_config())
    clone(*args, **kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(keras.ops.convert_to_numpy(clone(*args, **kwargs)), expected, rtol=1e-5, atol=1e-5)
    assert clone.get_config() == layer.get_config()
    return clone


def run_model_saving_test(model, inputs, tmp_path):
    """A `.keras` round trip keeps the config, the weights and the predictions."""
    path = os.path.join(str(tmp_path), "model.keras")
    expected = model.predict(inputs, verbose=0)
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_allclose(restored.predict(inputs, verbose=0), expected, rtol=1e-5, atol=1e-5)
    assert type(restored) is type(model)
    assert len(restored.weights) == len(model.weights)
    assert [w.path for w in restored.trainable_weights] == [w.path for w in model.trainable_weights]
    return restored


def keras_scores(model, inputs):
    """σ(logits) of a Keras classifier in inference mode, in float64 numpy."""
    import tensorflow as tf

    logits = model(tf.constant(inputs, tf.float32), training=False).numpy().astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


def numpy_frames(inputs):
    """A model input as float numpy: 8-bit frames (`{"frame_codes", "num_frames"}`) dequantized
    in numpy as the starter code's `Dequantize` (`q · 4/255 + 4/512 − 2`), rows from
    `num_frames` on zero; float frames as they are."""
    if not isinstance(inputs, dict):
        return np.asarray(inputs, np.float32)
    codes, counts = np.asarray(inputs["frame_codes"]), np.asarray(inputs["num_frames"])
    floats = codes.astype(np.float32) * np.float32(4.0 / 255.0) + np.float32(4.0 / 512.0 - 2.0)
    present = np.arange(codes.shape[1])[None, :] < counts[:, None]
    return np.where(present[:, :, None], floats, np.float32(0.0))


def numpy_layer_norm(x, layer):
    """`keras.layers.LayerNormalization` on the last axis, in float64 numpy."""
    gamma, beta = np.asarray(layer.gamma, np.float64), np.asarray(layer.beta, np.float64)
    mean = x.mean(-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + layer.epsilon) * gamma + beta


def numpy_dense(x, layer):
    """`keras.layers.Dense` (its activation included), in float64 numpy."""
    y = x @ np.asarray(layer.kernel, np.float64)
    if layer.use_bias:
        y = y + np.asarray(layer.bias, np.float64)
    return np.maximum(y, 0.0) if layer.activation is keras.activations.relu else y


def numpy_multi_head_attention(layer, query, value, key=None):
    """`keras.layers.MultiHeadAttention` in inference mode written out: per head `h`,
    `softmax((Q W_q^h)(K W_k^h)ᵀ / √d_k) (V W_v^h)`, the heads concatenated and projected.
    Returns `(output [B, Nq, D], attention averaged over heads [B, Nq, Nk])`."""
    key = value if key is None else key

    def project(x, dense):
        return np.einsum("bnd,dhk->bnhk", x, np.asarray(dense.kernel, np.float64)) + np.asarray(dense.bias, np.float64)

    q, k, v = project(query, layer._query_dense), project(key, layer._key_dense), project(value, layer._value_dense)
    scores = np.einsum("bqhk,bnhk->bhqn", q, k) / np.sqrt(q.shape[-1])
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)
    heads = np.einsum("bhqn,bnhk->bqhk", weights, v)
    output = np.einsum("bqhk,hkd->bqd", heads, np.asarray(layer._output_dense.kernel, np.float64))
    return output + np.asarray(layer._output_dense.bias, np.float64), weights.mean(axis=1)
