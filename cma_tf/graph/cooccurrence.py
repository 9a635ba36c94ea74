"""The label graph of §3.1: co-occurrence counts → `A_ij = P(v_i | v_j)` → `A' = (A + Aᵀ)/2`.

Counts are accumulated streaming from sparse label lists (one batch at a time), never from an
`n × N` label matrix, so the graph of a dataset of any size fits in memory. Up to
`DENSE_MAX_LABELS` labels they are a dense int64 `[N, N]` array (119 MB at YouTube-8M's 3,862);
above it, a `scipy.sparse` CSR matrix of the pairs that occur (dense int64 would be 3.2 GB at
Open Images' 20,000 labels, where almost every pair is zero), and `A`, `A'` are sparse too.
Label frequencies `p_k` (Eq. 12) come from the same pass: `p_k = count_kk / n`.

A graph built from records carries a fingerprint of them (each file's name, size and
modification time) and of the vocabulary (the names in order); `load_or_build_label_graph`
reuses a saved graph only while both are unchanged, so a re-converted split or a new
`labels.txt` never leaves ASGE fitting the counts of the old data.
"""

import concurrent.futures
import dataclasses
import hashlib
import io
import json
import os
from typing import Iterable, Optional, Sequence

import numpy as np
import scipy.sparse
import tensorflow as tf
from tqdm.auto import tqdm

from cma_tf.atomic import write_bytes
from cma_tf.data import records
from cma_tf.data.vocab import first_difference
from cma_tf.data.validate import first_bad_record
from cma_tf.errors import ConfigError, DataError

DENSE_MAX_LABELS = 4096  # dense int64 counts up to 128 MB; sparse above
_PENDING_CELLS = 1 << 22  # sparse mode: merge the pairs gathered so far once this many wait


class LabelCooccurrence:
    """Streaming accumulator of `count_ij = #examples with labels i and j` (diagonal: `count_ii`
    = #examples with label i). Repeated labels within one example count once.

    Args:
        num_classes: `N`.
        sparse: keep the counts as sparse pairs; default: when `N > DENSE_MAX_LABELS`.
    """

    def __init__(self, num_classes: int, sparse: Optional[bool] = None):
        self.num_classes = num_classes
        self.sparse = num_classes > DENSE_MAX_LABELS if sparse is None else sparse
        self.num_examples = 0
        if self.sparse:
            self._cells = np.zeros(0, np.int64)  # flat index i·N + j of each pair seen, sorted
            self._cell_counts = np.zeros(0, np.int64)
            self._pending = []
        else:
            self._dense = np.zeros((num_classes, num_classes), np.int64)

    @property
    def counts(self):
        """int64 `[N, N]`: a numpy array, or a `scipy.sparse.csr_matrix` in sparse mode."""
        if not self.sparse:
            return self._dense
        self._merge()
        rows, cols = np.divmod(self._cells, self.num_classes)
        shape = (self.num_classes, self.num_classes)
        return scipy.sparse.csr_matrix((self._cell_counts, (rows, cols)), shape=shape, dtype=np.int64)

    def _merge(self):
        if not self._pending:
            return
        cells = np.concatenate([self._cells] + [cells for cells, _ in self._pending])
        counts = np.concatenate([self._cell_counts] + [counts for _, counts in self._pending])
        self._cells, inverse = np.unique(cells, return_inverse=True)
        self._cell_counts = np.bincount(inverse, weights=counts, minlength=len(self._cells)).astype(np.int64)
        self._pending = []

    def update(self, label_lists: Sequence[Sequence[int]]) -> None:
        """Adds a batch of examples, each a list of label ids (`-1` entries are padding).

        Counts the label pairs each example holds (`k²` for `k` labels), not a `batch × N`
        indicator product: at YouTube-8M's 3,862 labels the dense int64 product took minutes
        per 1,024 videos, the pairs take milliseconds."""
        rows = [np.asarray(labels, np.int64).reshape(-1) for labels in label_lists]
        width = max((len(row) for row in rows), default=0)
        ids = np.full((len(rows), max(width, 1)), -1, np.int64)
        for index, row in enumerate(rows):
            ids[index, : len(row)] = row
        if ids.size and ids.max() >= self.num_classes:
            raise ValueError(f"label id {int(ids.max())} is out of range for {self.num_classes} classes")
        ids.sort(axis=1)
        ids[:, 1:][ids[:, 1:] == ids[:, :-1]] = -1  # a label repeated within an example counts once
        valid = ids >= 0
        pairs = (ids[:, :, None] * self.num_classes + ids[:, None, :])[valid[:, :, None] & valid[:, None, :]]
        cells, counts = np.unique(pairs, return_counts=True)
        self.num_examples += len(label_lists)
        if not self.sparse:
            self._dense.reshape(-1)[cells] += counts
            return
        self._pending.append((cells, counts.astype(np.int64)))
        if sum(len(cells) for cells, _ in self._pending) > _PENDING_CELLS:
            self._merge()


def conditional_adjacency(counts):
    """`A_ij = count_ij / count_jj` (0 where label j never occurs), diagonal 1 (§3.1); sparse
    counts give a sparse float32 CSR `A`."""
    if scipy.sparse.issparse(counts):
        pairs = scipy.sparse.coo_matrix(counts)
        off = pairs.row != pairs.col
        occurrences = np.asarray(counts.diagonal(), np.float64)
        rows, cols = pairs.row[off], pairs.col[off]
        values = pairs.data[off] / occurrences[cols]  # count_ij > 0 implies count_jj > 0
        diagonal = np.arange(counts.shape[0])
        return scipy.sparse.csr_matrix(
            (np.concatenate([values, np.ones(len(diagonal))]).astype(np.float32),
             (np.concatenate([rows, diagonal]), np.concatenate([cols, diagonal]))),
            shape=counts.shape,
        )
    counts = np.asarray(counts, np.float64)
    occurrences = np.diag(counts)
    safe = np.where(occurrences > 0, occurrences, 1.0)
    adjacency = np.where(occurrences[None, :] > 0, counts / safe[None, :], 0.0)
    np.fill_diagonal(adjacency, 1.0)
    return adjacency.astype(np.float32)


def symmetrize(adjacency):
    """Eq. 1: `A' = (A + Aᵀ) / 2` (sparse in, sparse CSR out)."""
    if scipy.sparse.issparse(adjacency):
        return ((adjacency + adjacency.T) / 2).astype(np.float32).tocsr()
    return ((adjacency + adjacency.T) / 2).astype(np.float32)


@dataclasses.dataclass
class LabelGraph:
    """Co-occurrence statistics of a training set and the graphs derived from them.

    Attributes:
        counts: int64 `[N, N]` co-occurrence counts (diagonal = per-label counts): a numpy
            array, or a `scipy.sparse.csr_matrix` above `DENSE_MAX_LABELS` labels (`is_sparse`).
        num_examples: number of examples counted.
        vocabulary: label names, `N` of them (may be empty if unknown).
        fingerprint: `{"shards": …, "files": …, "vocabulary": …}` of the records and
            vocabulary it was counted from (`records_fingerprint`); None if unknown.
    """

    counts: np.ndarray
    num_examples: int
    vocabulary: Sequence[str] = ()
    fingerprint: Optional[dict] = None

    @property
    def num_classes(self) -> int:
        return self.counts.shape[0]

    @property
    def is_sparse(self) -> bool:
        return scipy.sparse.issparse(self.counts)

    @property
    def adjacency(self):
        """`A` (conditional probabilities, column j conditions on label j); sparse CSR when the
        counts are."""
        return conditional_adjacency(self.counts)

    @property
    def symmetric_adjacency(self):
        """`A'` of Eq. 1; sparse CSR when the counts are."""
        return symmetrize(self.adjacency)

    @property
    def frequencies(self) -> np.ndarray:
        """`p_k` of Eq. 12: the fraction of examples carrying label k."""
        return (np.asarray(self.counts.diagonal()) / max(self.num_examples, 1)).astype(np.float32)

    def dense_counts(self, needed_by: str) -> np.ndarray:
        """The counts as a dense array, for a consumer (`needed_by`, named in the error) whose
        computation is `N × N` dense; a `ConfigError` on a sparse graph, whose `N` is too large."""
        if self.is_sparse:
            gib = self.num_classes**2 * 8 / 2**30
            raise ConfigError(
                f"{needed_by} needs the label graph as a dense {self.num_classes} × {self.num_classes} matrix "
                f"({gib:.1f} GiB in float64); above {DENSE_MAX_LABELS} labels the graph is kept sparse and only "
                "ASGE (config.model.label_embedding=asge, config.model.graph_loss_weight=0) uses it"
            )
        return self.counts

    def sha1(self) -> str:
        """A digest of the counts (dense: of the int64 array's bytes)."""
        counts = self.counts
        if not self.is_sparse:
            return hashlib.sha1(np.ascontiguousarray(counts, np.int64).tobytes()).hexdigest()
        counts = counts.tocsr()
        counts.sort_indices()
        digest = hashlib.sha1(np.asarray(counts.shape, np.int64).tobytes())
        for part in (counts.indptr, counts.indices, counts.data):
            digest.update(np.ascontiguousarray(part, np.int64).tobytes())
        return digest.hexdigest()

    def save(self, path: str) -> None:
        """Writes an `.npz` (counts, num_examples, vocabulary, the fingerprint as a JSON string
        if known, and A, A', p for other tools). Sparse counts are stored as their non-zero
        cells (`counts_rows`, `counts_cols`, `counts_values`, `num_classes`), without A and A'."""
        buffer = io.BytesIO()
        fields = dict(
            num_examples=np.int64(self.num_examples),
            vocabulary=np.asarray(list(self.vocabulary), dtype=str),
            frequencies=self.frequencies,
        )
        if self.is_sparse:
            cells = scipy.sparse.coo_matrix(self.counts)
            fields.update(counts_rows=cells.row.astype(np.int32), counts_cols=cells.col.astype(np.int32),
                          counts_values=cells.data.astype(np.int64), num_classes=np.int64(self.num_classes))
        else:
            fields.update(counts=self.counts, adjacency=self.adjacency, symmetric_adjacency=self.symmetric_adjacency)
        if self.fingerprint is not None:
            fields["fingerprint"] = np.asarray(json.dumps(self.fingerprint, sort_keys=True))
        np.savez(buffer, **fields)
        write_bytes(path, buffer.getvalue())  # (workers of one multi-worker run may save the same graph at once)

    @classmethod
    def load(cls, path: str) -> "LabelGraph":
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"Label graph not found: {path}")
        with tf.io.gfile.GFile(path, "rb") as f:
            try:
                data = np.load(io.BytesIO(f.read()))
                counts = _sparse_counts(data) if "counts_values" in data.files else data["counts"]
                num_examples = int(data["num_examples"])
                vocabulary = [str(name) for name in data["vocabulary"]]
                fingerprint = json.loads(str(data["fingerprint"])) if "fingerprint" in data.files else None
            except (ValueError, KeyError, OSError) as error:  # (json's errors are ValueErrors)
                raise DataError(f"{path}: not a label graph file ({error})") from error
        if counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
            raise DataError(f"{path}: field 'counts' must be square, got shape {counts.shape}")
        if fingerprint is not None and not isinstance(fingerprint, dict):
            raise DataError(f"{path}: field 'fingerprint' must be a JSON object, got {fingerprint!r}")
        return cls(counts=counts, num_examples=num_examples, vocabulary=vocabulary, fingerprint=fingerprint)


def _sparse_counts(data):
    num_classes = int(data["num_classes"])
    rows, cols, values = data["counts_rows"], data["counts_cols"], data["counts_values"]
    if not (len(rows) == len(cols) == len(values)):
        raise ValueError(f"counts_rows, counts_cols and counts_values differ in length ({len(rows)}, {len(cols)}, {len(values)})")
    if len(rows) and max(rows.max(), cols.max()) >= num_classes:
        raise ValueError(f"a cell of counts_rows/counts_cols is out of range for {num_classes} labels")
    return scipy.sparse.csr_matrix((values, (rows, cols)), shape=(num_classes, num_classes), dtype=np.int64)


def label_graph_from_label_lists(
    label_lists: Iterable[Sequence[int]], num_classes: int, vocabulary: Sequence[str] = ()
) -> LabelGraph:
    """The graph of an in-memory collection of label lists."""
    accumulator = LabelCooccurrence(num_classes)
    accumulator.update(list(label_lists))
    return LabelGraph(accumulator.counts, accumulator.num_examples, list(vocabulary))


def label_graph_from_records(
    files: Sequence[str],
    num_classes: int,
    vocabulary: Sequence[str] = (),
    batch_size: int = 1024,
    progress: bool = True,
    parse_labels=None,
) -> LabelGraph:
    """One streaming pass over TFRecords, reading only the label field.

    Args:
        parse_labels: serialized records `[B]` → sparse label ids; default: the image format's
            `image/class/label`. YouTube-8M passes `cma_tf.data.yt8m.readers.parse_labels`.
    """
    image_format = parse_labels is None
    if image_format:
        parse_labels = lambda serialized: tf.io.parse_example(serialized, records.LABELS_ONLY_SPEC)[records.LABELS]  # noqa: E731
    dataset = tf.data.TFRecordDataset(list(files), num_parallel_reads=tf.data.AUTOTUNE)
    dataset = dataset.batch(batch_size).map(parse_labels, num_parallel_calls=tf.data.AUTOTUNE)
    accumulator = LabelCooccurrence(num_classes)
    with tqdm(desc="label graph", unit=" examples", disable=not progress) as bar:
        try:
            for sparse in dataset:
                dense = tf.sparse.to_dense(sparse, default_value=-1).numpy()
                accumulator.update(dense)
                bar.update(len(dense))
        except (ValueError, tf.errors.DataLossError, tf.errors.InvalidArgumentError) as error:
            problem = first_bad_record(files, num_classes) if image_format else None
            raise DataError(problem or f"{files}: reading the labels: {error}") from error
    return LabelGraph(accumulator.counts, accumulator.num_examples, list(vocabulary))


def _file_stat(path: str):
    """`(size, modification time in ns)`. Local files by `os.stat`: `tf.io.gfile.stat` rounds
    their time to whole seconds, which would miss a shard rewritten within the same second."""
    if "://" not in path:
        stat = os.stat(path)
        return stat.st_size, stat.st_mtime_ns
    stat = tf.io.gfile.stat(path)
    return int(stat.length), int(stat.mtime_nsec)


def records_fingerprint(files: Sequence[str], vocabulary: Sequence[str]) -> dict:
    """What a graph counted from `files` with `vocabulary` depends on: each file's name, size
    and modification time (`gs://` files too), and the label names in order."""
    paths = sorted(files)
    if any("://" in path for path in paths):  # one request per file: many at once
        with concurrent.futures.ThreadPoolExecutor(32) as pool:
            stats = list(pool.map(_file_stat, paths))
    else:
        stats = [_file_stat(path) for path in paths]
    listing = [[os.path.basename(path), *stat] for path, stat in zip(paths, stats)]
    digest = lambda value: hashlib.sha256(json.dumps(value, ensure_ascii=False).encode("utf-8")).hexdigest()  # noqa: E731
    return {"shards": digest(listing), "files": len(listing), "vocabulary": digest(list(vocabulary))}


def build_label_graph(
    files: Sequence[str], num_classes: int, vocabulary: Sequence[str], parse_labels=None, progress: bool = True,
    fingerprint: Optional[dict] = None,
) -> LabelGraph:
    """`label_graph_from_records` with the fingerprint of `files` and `vocabulary` attached
    (taken before reading, so a file changed during the pass makes the next use rebuild)."""
    fingerprint = fingerprint or records_fingerprint(files, vocabulary)
    graph = label_graph_from_records(files, num_classes, vocabulary, parse_labels=parse_labels, progress=progress)
    graph.fingerprint = fingerprint
    return graph


def default_graph_path(data_dir: str, split: str = "train") -> str:
    return os.path.join(data_dir, f"label_graph_{split}.npz")


def _why_stale(graph: LabelGraph, fingerprint: dict, num_classes: int) -> Optional[str]:
    """Why a saved graph does not describe the current records and vocabulary, or None."""
    if graph.fingerprint is None:
        return "records no fingerprint of the shards it was built from (an older cache)"
    reasons = []
    if graph.fingerprint.get("shards") != fingerprint["shards"]:
        reasons.append(
            f"was built from other shards ({graph.fingerprint.get('files', '?')} files then, "
            f"{fingerprint['files']} now, or their sizes or times changed)"
        )
    if graph.fingerprint.get("vocabulary") != fingerprint["vocabulary"] or graph.num_classes != num_classes:
        reasons.append(f"was built with another vocabulary ({graph.num_classes} labels then, {num_classes} now)")
    return " and ".join(reasons) or None


def _check_matches_vocabulary(path: str, graph: LabelGraph, num_classes: int, vocabulary: Sequence[str]) -> None:
    if graph.num_classes != num_classes:
        raise DataError(
            f"{path}: graph has {graph.num_classes} labels but the vocabulary has {num_classes}: "
            "point config.data.label_graph at a graph of this vocabulary, or unset it to build one"
        )
    if graph.vocabulary and vocabulary and list(graph.vocabulary) != list(vocabulary):
        raise DataError(
            f"{path}: field 'vocabulary' differs from the dataset's ({first_difference(graph.vocabulary, vocabulary)}): "
            "point config.data.label_graph at a graph of this vocabulary, or unset it to build one"
        )


def load_or_build_label_graph(
    data_dir: str, num_classes: int, vocabulary: Sequence[str], split: str = "train",
    path: Optional[str] = None,
    files: Optional[Sequence[str]] = None,
    parse_labels=None,
    log=print,
) -> LabelGraph:
    """The graph of `files` (default: the split's image shards), cached at `path` (default
    `<data_dir>/label_graph_<split>.npz`).

    A saved graph is reused while its fingerprint matches `files` and `vocabulary`; otherwise
    (other shards, another vocabulary, or no fingerprint: an older cache) it is rebuilt and
    saved over, and `log` gets one line saying so and why. The exception is a graph at an
    explicit `path` that records no fingerprint: someone else's precomputed graph, which is
    used as given once its label count and names match `vocabulary` (`log` says it is not
    checked against the shards).

    Raises:
        DataError: a precomputed graph at `path` does not match `vocabulary`, or a record is
            malformed.
    """
    explicit = bool(path)
    path = path or default_graph_path(data_dir, split)
    files = files if files is not None else records.list_shards(data_dir, split)
    fingerprint = None
    if tf.io.gfile.exists(path):
        graph = LabelGraph.load(path)
        if explicit and graph.fingerprint is None:
            _check_matches_vocabulary(path, graph, num_classes, vocabulary)
            log(f"label graph {path}: used as given ({graph.num_examples} examples); it records no fingerprint of "
                "the shards it was built from, so it is not checked against them (delete it to build it from them)")
            return graph
        fingerprint = records_fingerprint(files, vocabulary)
        stale = _why_stale(graph, fingerprint, num_classes)
        if stale is None:
            return graph
        log(f"label graph {path} {stale}: rebuilding")
    graph = build_label_graph(files, num_classes, vocabulary, parse_labels=parse_labels, fingerprint=fingerprint)
    graph.save(path)
    return graph
