"""The label graph (Eq. 1) against a hand-computed example, a dense numpy reference, real COCO
statistics, and a streaming pass over TFRecords."""

import pickle

import numpy as np
import pytest

from cma_tf.data import records
from cma_tf.graph.label_graph import (
    LabelGraph,
    conditional_adjacency,
    label_graph_from_label_lists,
    label_graph_from_records,
    symmetrize,
)
from tests.helpers import shared_data



def test_hand_computed_example():
    # 4 images; label 0 in three, label 1 in three, label 2 in two; a repeated label counts once.
    label_lists = [[0, 1], [0], [1, 2, 2], [0, 1, 2]]
    graph = label_graph_from_label_lists(label_lists, 3, ["a", "b", "c"])
    np.testing.assert_array_equal(graph.counts, [[3, 2, 1], [2, 3, 2], [1, 2, 2]])
    # A_ij = P(i | j) = count_ij / count_jj
    expected_a = np.array([[1, 2 / 3, 1 / 2], [2 / 3, 1, 1], [1 / 3, 2 / 3, 1]])
    np.testing.assert_allclose(graph.adjacency, expected_a, rtol=1e-6)
    expected_sym = np.array([[1, 2 / 3, 5 / 12], [2 / 3, 1, 5 / 6], [5 / 12, 5 / 6, 1]])
    np.testing.assert_allclose(graph.symmetric_adjacency, expected_sym, rtol=1e-6)
    np.testing.assert_allclose(graph.frequencies, [3 / 4, 3 / 4, 1 / 2])


def test_label_that_never_occurs_has_zero_column_and_unit_diagonal():
    graph = label_graph_from_label_lists([[0], [0, 1]], 3)
    a = graph.adjacency
    np.testing.assert_array_equal(a[:, 2], [0, 0, 1])
    np.testing.assert_array_equal(np.diag(a), 1)


def test_matches_dense_numpy_reference_on_random_lists():
    rng = np.random.default_rng(0)
    n, num_classes = 500, 12
    dense = (rng.random((n, num_classes)) < rng.uniform(0.05, 0.5, num_classes)).astype(np.int64)
    label_lists = [np.flatnonzero(row).tolist() for row in dense]
    graph = label_graph_from_label_lists(label_lists, num_classes)
    np.testing.assert_array_equal(graph.counts, dense.T @ dense)
    occurrences = dense.sum(0)
    expected = np.where(occurrences > 0, (dense.T @ dense) / np.maximum(occurrences, 1), 0.0)
    np.fill_diagonal(expected, 1)
    np.testing.assert_allclose(graph.adjacency, expected, rtol=1e-6)


def test_real_coco_conditional_probabilities():
    """coco_adj.pkl (ML-GCN, COCO train2014): off-diagonal counts + per-label counts."""
    with open(shared_data("coco_adj.pkl"), "rb") as f:
        data = pickle.load(f)
    names = open(shared_data("coco_labels_sorted.txt")).read().split("\n")
    index = {name: i for i, name in enumerate(names)}
    counts = data["adj"].astype(np.int64) + np.diag(data["nums"].astype(np.int64))
    a = conditional_adjacency(counts)
    assert a[index["dog"], index["frisbee"]] == pytest.approx(0.23, abs=0.005)
    assert a[index["sports ball"], index["tennis racket"]] == pytest.approx(0.53, abs=0.005)
    assert a[index["dining table"], index["fork"]] == pytest.approx(0.77, abs=0.005)
    sym = symmetrize(a)
    np.testing.assert_allclose(sym, sym.T)
    np.testing.assert_allclose(np.diag(sym), 1.0)
    assert np.all((sym >= 0) & (sym <= 1))


def test_streaming_pass_over_records_and_npz_round_trip(tmp_path):
    rng = np.random.default_rng(1)
    label_lists = [sorted(set(rng.integers(0, 6, rng.integers(0, 4)).tolist())) for _ in range(137)]
    serialized = [
        records.encode_image_example(b"not decoded here", "png", 1, 1, str(i), labels)
        for i, labels in enumerate(label_lists)
    ]
    files = records.write_split(str(tmp_path), "train", serialized, num_shards=3)
    graph = label_graph_from_records(files, 6, list("abcdef"), batch_size=16, progress=False)
    reference = label_graph_from_label_lists(label_lists, 6)
    np.testing.assert_array_equal(graph.counts, reference.counts)
    assert graph.num_examples == 137
    path = str(tmp_path / "graph.npz")
    graph.save(path)
    loaded = LabelGraph.load(path)
    np.testing.assert_array_equal(loaded.counts, graph.counts)
    assert loaded.vocabulary == list("abcdef") and loaded.num_examples == 137


def test_out_of_range_label_in_records_names_the_field(tmp_path):
    serialized = [records.encode_image_example(b"x", "png", 1, 1, "0", [0, 7])]
    files = records.write_split(str(tmp_path), "train", serialized, num_shards=1)
    with pytest.raises(ValueError, match=r"record 0: .*field 'image/class/label' has id 7 outside \[0, 3\)"):
        label_graph_from_records(files, 3, progress=False)
