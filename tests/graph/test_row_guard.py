"""The row guard beside Eq. 4 (`asge.row_guard_loss`): its value and gradient against numpy, and
what it is for: labels whose embedding is the zero vector come back, while without it they stay
dead (Eq. 4 sends them no gradient)."""

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.graph.asge import ROW_GUARD_MARGIN, ASGEEncoder, row_guard_loss
from cma_tf.graph.asge_model import ASGEModel, build_optimizer
from cma_tf.graph.graph_pairs import GraphPairs, pair_off_diagonal_fit
from tests.graph.sparse_graph import topic_label_lists

RNG = np.random.default_rng(0)


def test_value_and_gradient_match_numpy():
    z = RNG.normal(size=(9, 4)).astype("float32")
    z[2] -= 3.0  # every unit below the margin
    z[5] = [-1.0, 0.05, -0.2, 0.0]  # largest unit positive but under the margin
    z[7] = [0.2, -4.0, -4.0, -4.0]  # one unit above: untouched
    expected = np.sum(np.maximum(0.0, ROW_GUARD_MARGIN - z.max(axis=1)))
    variable = tf.Variable(z)
    with tf.GradientTape() as tape:
        value = row_guard_loss(variable)
    np.testing.assert_allclose(float(value), expected, rtol=1e-6)
    gradient = np.asarray(tape.gradient(value, variable))
    want = np.zeros_like(z)
    below = z.max(axis=1) < ROW_GUARD_MARGIN
    want[np.flatnonzero(below), z.argmax(axis=1)[below]] = -1.0  # only each guarded row's largest unit, pushed up
    np.testing.assert_array_equal(gradient, want)
    assert below[[2, 5]].all() and not below[7]


def dead_start_fit(row_guard, pairs, num_labels, steps):
    """Φ whose last BatchNorm shift is -3: most labels start as the zero vector."""
    tf.keras.utils.set_random_seed(0)
    encoder = ASGEEncoder(num_labels, units=64, depth=3)
    model = ASGEModel(encoder, pairs=pairs, row_guard=row_guard)
    encoder.norms[-1].beta.assign(np.full(64, -3.0, np.float32))
    dead_at_start = int(np.sum(np.asarray(encoder.all_last_preactivations(training=True)).max(axis=1) <= 0))
    model.compile(optimizer=build_optimizer("adam", None, 0.9))
    model.fit(tf.data.Dataset.from_tensors(0.0).repeat(), steps_per_epoch=steps, epochs=1, verbose=0)
    encoder.set_statistics_to_the_full_batch()
    report = pair_off_diagonal_fit(np.asarray(encoder.all_embeddings(training=False)), pairs)
    return dead_at_start, report


@pytest.fixture(scope="module")
def graph_pairs():
    from cma_tf.graph.cooccurrence import LabelCooccurrence, LabelGraph

    accumulator = LabelCooccurrence(300)
    accumulator.update(topic_label_lists(300, topic_size=30))
    return GraphPairs.from_adjacency(LabelGraph(accumulator.counts, accumulator.num_examples).adjacency)


def test_dead_labels_come_back_with_the_guard_and_stay_dead_without(graph_pairs):
    dead_unguarded, unguarded = dead_start_fit(0.0, graph_pairs, 300, steps=40)
    dead_guarded, guarded = dead_start_fit(1.0, graph_pairs, 300, steps=40)
    assert dead_unguarded == dead_guarded > 100  # the same start
    assert unguarded["zero_rows"] > 50, unguarded
    assert guarded["zero_rows"] == 0, guarded
