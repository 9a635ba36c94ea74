"""Predictions as rows, and writing them: one row per item, CSV or JSON Lines, written
atomically (`cma_tf.atomic`: a crash never leaves a file that looks finished).

    CSV     id,valid,label_1,score_1,…,label_K,score_K,predicted     (labels empty for an invalid item)
    JSONL   {"id": …, "valid": true, "labels": […], "scores": […], "classes": […], "predicted": […]}

`predicted` holds the labels whose score reaches their threshold (the run's calibrated ones,
`cma_tf.evaluate --calibrate`, else 0.5), `;`-separated in the CSV; a SavedModel exported before
it had this output gives none.
"""

import contextlib
import csv
import json

import numpy as np

from cma_tf.atomic import atomic_write
from cma_tf.errors import ConfigError
from cma_tf.serving.module import PREDICTED_SEPARATOR, VALID_KEY

FORMATS = ("csv", "jsonl")


def rows_of(outputs, top_k=None):
    """The signature's outputs (columns, batch first: numpy arrays or lists) → one dict per item:
    `valid`, and its top-k `labels`, `scores`, `classes` (empty when the item is not valid).
    Signatures without `valid` (the float ones) give valid rows; non-finite scores, invalid ones."""
    count = len(outputs["top_k_scores"])
    valid = outputs.get(VALID_KEY, [True] * count)
    decided = outputs.get("predicted_labels", [b""] * count)
    rows = []
    for i in range(count):
        # Non-finite scores are no answer (a SavedModel exported before `valid` checked them).
        ok = bool(valid[i]) and bool(np.isfinite(np.asarray(outputs["top_k_scores"][i], np.float64)).all())
        labels = [label.decode("utf-8") if isinstance(label, bytes) else label for label in outputs["top_k_labels"][i]]
        rows.append({
            "valid": ok,
            "labels": labels[:top_k] if ok else [],
            "scores": [float(score) for score in outputs["top_k_scores"][i]][:top_k] if ok else [],
            "classes": [int(c) for c in outputs["top_k_classes"][i]][:top_k] if ok else [],
            "predicted": _names(decided[i]) if ok else [],
        })
    return rows


def _names(joined):
    text = joined.decode("utf-8") if isinstance(joined, bytes) else str(joined)
    return text.split(PREDICTED_SEPARATOR) if text else []


def format_of(path: str) -> str:
    for name in FORMATS:
        if path.lower().endswith("." + name):
            return name
    raise ConfigError(f"--output {path}: name it .csv or .jsonl (the format follows the extension)")


class PredictionWriter:
    """`with PredictionWriter(path, top_k) as writer: writer.write(ids, outputs)`."""

    def __init__(self, path: str, top_k: int):
        self.path = path
        self.format = format_of(path)
        self.top_k = top_k

    def __enter__(self):
        with contextlib.ExitStack() as stack:
            self._file = stack.enter_context(atomic_write(self.path, "w"))
            if self.format == "csv":
                self._csv = csv.writer(self._file, lineterminator="\n")
                header = ["id", "valid"]
                for rank in range(1, self.top_k + 1):
                    header += [f"label_{rank}", f"score_{rank}"]
                self._csv.writerow(header + ["predicted"])
            self._open = stack.pop_all()
        return self

    def write(self, ids, outputs):
        """One row per id from the signature's outputs (numpy arrays, batch first)."""
        for item_id, row in zip(ids, rows_of(outputs, self.top_k)):
            if self.format == "jsonl":
                self._file.write(json.dumps({"id": item_id, **row}, ensure_ascii=False) + "\n")
                continue
            cells = [item_id, int(row["valid"])]
            for rank in range(self.top_k):
                cells += [row["labels"][rank], f"{row['scores'][rank]:.6f}"] if row["valid"] else ["", ""]
            self._csv.writerow(cells + [PREDICTED_SEPARATOR.join(row["predicted"])])

    def __exit__(self, error_type, error, traceback):
        return self._open.__exit__(error_type, error, traceback)
