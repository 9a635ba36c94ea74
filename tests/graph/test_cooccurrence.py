"""The label graph (Eq. 1) against a hand-computed example, a dense numpy reference, the real
COCO and VOC statistics (tests/fixtures/), and a streaming pass over TFRecords; the cache is
rebuilt when its shards or vocabulary change."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse

from cma_tf.data import records
from cma_tf.errors import ConfigError, DataError
from cma_tf.graph import cooccurrence
from cma_tf.graph.cooccurrence import (
    LabelGraph,
    conditional_adjacency,
    default_graph_path,
    label_graph_from_label_lists,
    label_graph_from_records,
    load_or_build_label_graph,
    symmetrize,
)
from tests.helpers import label_stats

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


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
    """COCO train2014 (ML-GCN's coco_adj.pkl): the paper's Fig. 3-4 conditional probabilities."""
    stats = label_stats("coco")
    index = {name: i for i, name in enumerate(stats.labels)}
    a = conditional_adjacency(stats.counts)
    assert a[index["dog"], index["frisbee"]] == pytest.approx(0.23, abs=0.005)
    assert a[index["sports ball"], index["tennis racket"]] == pytest.approx(0.53, abs=0.005)
    assert a[index["dining table"], index["fork"]] == pytest.approx(0.77, abs=0.005)
    sym = symmetrize(a)
    np.testing.assert_allclose(sym, sym.T)
    np.testing.assert_allclose(np.diag(sym), 1.0)
    assert np.all((sym >= 0) & (sym <= 1))


@pytest.mark.parametrize("dataset", ["coco", "voc"])
def test_real_label_graph_matches_numpy(dataset):
    """A and A' of the real COCO (80 labels, 82 % non-zero pairs) and VOC (20 labels, 56 %)
    graphs, re-derived element by element from the published counts: A_ij = adj_ij / nums_j, A_ii = 1."""
    stats = label_stats(dataset)
    graph = LabelGraph(counts=stats.counts, num_examples=0, vocabulary=stats.labels)
    n = len(stats.labels)
    expected = np.ones((n, n))
    for i in range(n):
        for j in range(n):
            if i != j:
                expected[i, j] = stats.cooccurrence[i, j] / stats.class_counts[j]
    np.testing.assert_allclose(graph.adjacency, expected, rtol=1e-6)
    np.testing.assert_allclose(graph.symmetric_adjacency, (expected + expected.T) / 2, rtol=1e-6)
    assert graph.num_classes == n


# VOC 2007 development kit, Table 1, "trainval img": images with a non-difficult object of the class.
VOC2007_TRAINVAL_IMAGES = {
    "aeroplane": 238, "bicycle": 243, "bird": 330, "boat": 181, "bottle": 244, "bus": 186, "car": 713,
    "cat": 337, "chair": 445, "cow": 141, "diningtable": 200, "dog": 421, "horse": 287, "motorbike": 245,
    "person": 2008, "pottedplant": 245, "sheep": 96, "sofa": 229, "train": 261, "tvmonitor": 256,
}


def test_real_statistics_are_in_the_repositorys_label_order():
    """The fixtures' label order is the vocabulary the converters write (data/*_labels.txt), and
    the VOC class counts are the devkit's, class by class (README of tests/fixtures/)."""
    for dataset, vocabulary in (("coco", "coco_labels.txt"), ("voc", "voc2007_labels.txt")):
        with open(os.path.join(REPO_ROOT, "data", vocabulary)) as f:
            assert label_stats(dataset).labels == [line.strip() for line in f if line.strip()], dataset
    voc = label_stats("voc")
    assert dict(zip(voc.labels, voc.class_counts.tolist())) == VOC2007_TRAINVAL_IMAGES
    for dataset in ("coco", "voc"):
        stats = label_stats(dataset)
        np.testing.assert_array_equal(stats.cooccurrence, stats.cooccurrence.T)
        assert not np.diag(stats.cooccurrence).any()
        assert (stats.cooccurrence <= np.minimum.outer(stats.class_counts, stats.class_counts)).all()


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


# --------------------------------------------------------------------------- the cached graph


def write_train_split(data_dir, count, seed, num_shards=3):
    """`count` records of 6 labels; returns their label lists (the reference)."""
    os.makedirs(data_dir, exist_ok=True)
    rng = np.random.default_rng(seed)
    label_lists = [sorted(set(rng.integers(0, 6, rng.integers(1, 4)).tolist())) for _ in range(count)]
    serialized = [records.encode_image_example(b"x", "png", 1, 1, str(i), labels) for i, labels in enumerate(label_lists)]
    records.write_split(data_dir, "train", serialized, num_shards=num_shards)
    return label_lists


def reference_counts(label_lists, num_classes=6):
    dense = np.zeros((len(label_lists), num_classes), np.int64)
    for row, labels in enumerate(label_lists):
        dense[row, labels] = 1
    return dense.T @ dense


@pytest.fixture
def load(capsys):
    """`load(data_dir, …)` → `(graph, the lines it printed)`, with training's arguments."""

    def load(data_dir, vocabulary=tuple("abcdef"), **kwargs):
        capsys.readouterr()
        graph = load_or_build_label_graph(data_dir, len(vocabulary), list(vocabulary), "train", **kwargs)
        return graph, capsys.readouterr().out.splitlines()

    return load


def test_a_reconverted_split_rebuilds_the_cached_graph(tmp_path, load):
    data_dir = str(tmp_path)
    write_train_split(data_dir, 45, seed=0)
    graph, lines = load(data_dir)
    assert graph.num_examples == 45 and lines == []
    assert os.path.exists(default_graph_path(data_dir))

    smaller = write_train_split(data_dir, 19, seed=1)  # re-converted: same shard names, other content
    graph, lines = load(data_dir)
    assert graph.num_examples == 19
    np.testing.assert_array_equal(graph.counts, reference_counts(smaller))
    assert len(lines) == 1 and lines[0].startswith(f"label graph {default_graph_path(data_dir)} was built from other shards")
    assert lines[0].endswith(": rebuilding")
    # and the rebuilt file is what the next run finds
    on_disk = LabelGraph.load(default_graph_path(data_dir))
    assert on_disk.num_examples == 19 and load(data_dir)[1] == []


def test_an_unchanged_split_and_vocabulary_reuse_the_cache(tmp_path, monkeypatch, load):
    data_dir = str(tmp_path)
    write_train_split(data_dir, 30, seed=0)
    first, _ = load(data_dir)

    def must_not_count(*args, **kwargs):
        raise AssertionError("the graph was counted again")

    monkeypatch.setattr(cooccurrence, "label_graph_from_records", must_not_count)
    graph, lines = load(data_dir)
    assert lines == [] and graph.num_examples == 30
    np.testing.assert_array_equal(graph.counts, first.counts)


def test_another_vocabulary_rebuilds_the_cached_graph(tmp_path, load):
    data_dir = str(tmp_path)
    write_train_split(data_dir, 30, seed=0)
    load(data_dir)
    graph, lines = load(data_dir, vocabulary=tuple("fedcba"))
    assert len(lines) == 1 and "was built with another vocabulary" in lines[0] and "other shards" not in lines[0]
    assert graph.vocabulary == list("fedcba")
    assert LabelGraph.load(default_graph_path(data_dir)).vocabulary == list("fedcba")


def test_an_old_cache_without_fingerprint_is_rebuilt(tmp_path, load):
    data_dir = str(tmp_path)
    label_lists = write_train_split(data_dir, 30, seed=0)
    stale = label_graph_from_label_lists([[0, 1]] * 7, 6, list("abcdef"))  # what an older version saved
    stale.save(default_graph_path(data_dir))
    graph, lines = load(data_dir)
    assert len(lines) == 1 and "records no fingerprint" in lines[0] and lines[0].endswith("rebuilding")
    np.testing.assert_array_equal(graph.counts, reference_counts(label_lists))


def test_a_precomputed_graph_at_an_explicit_path_is_used_as_given(tmp_path, load):
    """A graph someone computed elsewhere (no fingerprint) is what the user asked for: it is
    used once its labels match, and never overwritten."""
    data_dir = str(tmp_path / "data")
    write_train_split(data_dir, 30, seed=0)
    path = str(tmp_path / "precomputed.npz")
    given = label_graph_from_label_lists([[0, 1], [2, 3, 4, 5]] * 50, 6, list("abcdef"))
    given.save(path)
    before = open(path, "rb").read()
    graph, lines = load(data_dir, path=path)
    np.testing.assert_array_equal(graph.counts, given.counts)
    assert len(lines) == 1 and "used as given" in lines[0] and path in lines[0]
    assert open(path, "rb").read() == before

    with pytest.raises(DataError) as raised:
        load(data_dir, vocabulary=tuple("abcdeg"), path=path)
    assert str(raised.value).startswith(f"{path}: field 'vocabulary' differs") and "line 6: 'f' vs 'g'" in str(raised.value)
    with pytest.raises(DataError, match="graph has 6 labels but the vocabulary has 5"):
        load(data_dir, vocabulary=tuple("abcde"), path=path)


def test_an_explicit_path_written_by_training_is_checked_like_the_default(tmp_path, load):
    """config.data.label_graph is also where a run caches the graph when data_dir is read-only
    (gs://): a graph built there from other shards is rebuilt."""
    data_dir = str(tmp_path / "data")
    path = str(tmp_path / "cache" / "graph.npz")
    os.makedirs(os.path.dirname(path))
    write_train_split(data_dir, 45, seed=0)
    assert load(data_dir, path=path)[0].num_examples == 45
    write_train_split(data_dir, 19, seed=1)
    graph, lines = load(data_dir, path=path)
    assert graph.num_examples == 19 and len(lines) == 1 and "other shards" in lines[0]


def test_fingerprint_sees_size_time_name_and_vocabulary(tmp_path):
    from cma_tf.graph.cooccurrence import records_fingerprint

    data_dir = str(tmp_path)
    write_train_split(data_dir, 20, seed=0, num_shards=2)
    files = records.list_shards(data_dir, "train")
    base = records_fingerprint(files, list("abcdef"))
    assert records_fingerprint(list(reversed(files)), list("abcdef")) == base  # order of listing: no matter
    assert records_fingerprint(files, list("abcdeg"))["vocabulary"] != base["vocabulary"]
    assert records_fingerprint(files, list("abcdeg"))["shards"] == base["shards"]
    stat = os.stat(files[0])
    os.utime(files[0], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1000))  # same size, a microsecond later
    assert records_fingerprint(files, list("abcdef"))["shards"] != base["shards"]
    assert records_fingerprint(files[:1], list("abcdef"))["shards"] != base["shards"]


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_label_graph_command_line_writes_a_graph_training_reuses(tmp_path, monkeypatch, load):
    data_dir = str(tmp_path)
    label_lists = write_train_split(data_dir, 25, seed=3)
    with open(os.path.join(data_dir, "labels.txt"), "w") as f:
        f.write("".join(name + "\n" for name in "abcdef"))
    env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-m", "cma_tf.label_graph", f"--data_dir={data_dir}"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "25 examples, 6 labels" in result.stdout
    np.testing.assert_array_equal(LabelGraph.load(default_graph_path(data_dir)).counts, reference_counts(label_lists))

    monkeypatch.setattr(cooccurrence, "label_graph_from_records", None)  # reused: not called
    graph, lines = load(data_dir)
    assert lines == [] and graph.num_examples == 25

    help_text = subprocess.run([sys.executable, "-m", "cma_tf.label_graph", "--help"],
                               env=env, capture_output=True, text=True, timeout=120).stdout
    assert "fingerprint" in help_text and "always counts again" in help_text.lower()


def test_cooccurrence_at_youtube8m_size_with_repeats_and_padding():
    """3,862 labels, repeated ids and -1 padding, against a per-example numpy count."""
    rng = np.random.default_rng(1)
    num_classes = 3862
    lists = [list(rng.integers(0, num_classes, rng.integers(0, 8))) + [-1] * int(rng.integers(0, 3)) for _ in range(300)]
    lists[0] = [5, 5, 7, -1]
    accumulator = cooccurrence.LabelCooccurrence(num_classes)
    accumulator.update(lists[:150])
    accumulator.update(lists[150:])
    expected = np.zeros((num_classes, num_classes), np.int64)
    for labels in lists:
        ids = np.unique([label for label in labels if label >= 0]).astype(np.int64)
        expected[np.ix_(ids, ids)] += 1
    np.testing.assert_array_equal(accumulator.counts, expected)
    assert accumulator.counts[5, 5] >= 1 and accumulator.num_examples == 300


def sparse_lists(num_classes, count, seed):
    rng = np.random.default_rng(seed)
    return [list(rng.integers(0, num_classes, rng.integers(0, 7))) + [-1] * int(rng.integers(0, 2)) for _ in range(count)]


def numpy_counts(lists, num_classes):
    expected = np.zeros((num_classes, num_classes), np.int64)
    for labels in lists:
        ids = np.unique([label for label in labels if label >= 0]).astype(np.int64)
        expected[np.ix_(ids, ids)] += 1
    return expected


def test_sparse_counts_equal_a_per_example_numpy_count_across_merges(monkeypatch):
    """Sparse mode merges pending pairs every few batches (forced often here); the result is the
    same counts as the dense numpy re-derivation."""
    monkeypatch.setattr(cooccurrence, "_PENDING_CELLS", 50)
    lists = sparse_lists(300, 400, seed=2)
    accumulator = cooccurrence.LabelCooccurrence(300, sparse=True)
    for start in range(0, 400, 37):
        accumulator.update(lists[start:start + 37])
    assert scipy.sparse.issparse(accumulator.counts)
    np.testing.assert_array_equal(accumulator.counts.toarray(), numpy_counts(lists, 300))
    assert accumulator.num_examples == 400


def test_graphs_above_the_dense_limit_are_sparse_and_agree_with_the_dense_ones(monkeypatch, tmp_path):
    lists = sparse_lists(40, 300, seed=3)
    dense = label_graph_from_label_lists(lists, 40, [f"l{k}" for k in range(40)])
    monkeypatch.setattr(cooccurrence, "DENSE_MAX_LABELS", 30)
    sparse = label_graph_from_label_lists(lists, 40, [f"l{k}" for k in range(40)])
    assert sparse.is_sparse and not dense.is_sparse
    np.testing.assert_array_equal(sparse.counts.toarray(), dense.counts)
    np.testing.assert_allclose(sparse.adjacency.toarray(), dense.adjacency, rtol=1e-6)
    np.testing.assert_allclose(sparse.symmetric_adjacency.toarray(), dense.symmetric_adjacency, rtol=1e-6)
    np.testing.assert_allclose(sparse.frequencies, dense.frequencies)
    assert sparse.sha1() == label_graph_from_label_lists(lists, 40).sha1() != dense.sha1()
    path = str(tmp_path / "sparse.npz")
    sparse.save(path)
    with np.load(path) as saved:
        assert "counts" not in saved.files and "counts_values" in saved.files  # no N × N array on disk
    loaded = LabelGraph.load(path)
    assert loaded.is_sparse and loaded.sha1() == sparse.sha1() and loaded.vocabulary == sparse.vocabulary
    with pytest.raises(ConfigError, match=r"the mlgcn head .* dense 40 × 40 .*above 30 labels"):
        sparse.dense_counts("the mlgcn head")
    np.testing.assert_array_equal(dense.dense_counts("anything"), dense.counts)


def test_a_sparse_graph_file_with_a_cell_out_of_range_names_the_file(tmp_path):
    path = str(tmp_path / "bad.npz")
    np.savez(path, counts_rows=np.array([0, 9]), counts_cols=np.array([0, 1]), counts_values=np.array([3, 1]),
             num_classes=np.int64(5), num_examples=np.int64(3), vocabulary=np.array(list("abcde")))
    with pytest.raises(DataError, match=r"bad.npz: not a label graph file .*out of range for 5 labels"):
        LabelGraph.load(path)


@pytest.mark.slow  # ~10 s: 400,000 synthetic videos
def test_open_images_sized_graph_is_counted_sparse_in_little_memory():
    """20,000 labels: dense int64 counts would be 3.2 GB; the sparse ones hold ~1 M cells."""
    from tests.graph.sparse_graph import topic_label_lists

    lists = topic_label_lists(20_000)
    accumulator = cooccurrence.LabelCooccurrence(20_000)
    for start in range(0, len(lists), 65_536):
        accumulator.update(lists[start:start + 65_536])
    counts = accumulator.counts
    assert scipy.sparse.issparse(counts) and counts.shape == (20_000, 20_000)
    assert 0.5e6 < counts.nnz < 2e6
    sample = lists[:2000]
    touched = np.unique(sample[sample >= 0])[:50]
    assert (counts.diagonal()[touched] > 0).all()
    graph = LabelGraph(counts, accumulator.num_examples)
    np.testing.assert_allclose(graph.adjacency.diagonal(), 1.0)
    assert graph.symmetric_adjacency.nnz == counts.nnz
