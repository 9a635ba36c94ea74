"""The YouTube-8M vocabularies as published: `vocabulary.csv` (3,862 classes; columns `Index`,
`TrainVideoCount`, `KnowledgeGraphId`, `Name`, …) and `segment_label_ids.csv` (header `Index`,
then the 1,000 class ids rated in the 2019 segment records)."""

import csv
import io
import os

import tensorflow as tf

from cma_tf.errors import DataError

VOCABULARY_FILENAME = "vocabulary.csv"
SEGMENT_LABEL_IDS_FILENAME = "segment_label_ids.csv"


def published_locations(data_dir: str, filename: str) -> list:
    """Where a dataset file may lie: in the records' folder, or in its parent (the published
    layout keeps `vocabulary.csv` beside the `frame/` and `video/` folders)."""
    return [os.path.join(data_dir, filename), os.path.join(os.path.dirname(os.path.normpath(data_dir)), filename)]


def first_existing(paths):
    """The first of `paths` that exists (local or `gs://`), or None."""
    return next((path for path in paths if tf.io.gfile.exists(path)), None)


def _read_text(path):
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"YouTube-8M vocabulary file not found: {path}")
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()


def read_yt8m_vocabulary(path: str) -> list:
    """Class names, list index = label id. Every id 0..N−1 must appear once; errors name the
    file, the line and the field. A class with an empty `Name` is called `class_<id>`."""
    rows = csv.DictReader(io.StringIO(_read_text(path)))
    missing = {"Index", "Name"} - set(rows.fieldnames or ())
    if missing:
        raise DataError(f"{path}: header lacks the column(s) {sorted(missing)} (a YouTube-8M vocabulary.csv has Index,…,Name,…)")
    names = {}
    for line, row in enumerate(rows, start=2):
        try:
            index = int(row["Index"])
        except (TypeError, ValueError):
            raise DataError(f"{path}: line {line}: field 'Index' is not an integer: {row['Index']!r}") from None
        if index in names:
            raise DataError(f"{path}: line {line}: Index {index} appears twice")
        names[index] = (row["Name"] or "").strip() or f"class_{index}"
    if not names:
        raise DataError(f"{path}: the vocabulary is empty")
    gaps = sorted(set(range(len(names))) - set(names))
    if gaps:
        raise DataError(f"{path}: Index values must be 0..{len(names) - 1}; missing {gaps[:5]}")
    return [names[index] for index in range(len(names))]


def read_segment_label_ids(path: str) -> list:
    """The rated class ids (ints), in file order; lines that are not integers (the header) are skipped,
    as the starter code's inference does."""
    ids = []
    for line in _read_text(path).splitlines():
        try:
            ids.append(int(line.strip()))
        except ValueError:
            continue
    if not ids:
        raise DataError(f"{path}: no class ids (one integer a line after the 'Index' header)")
    return ids
