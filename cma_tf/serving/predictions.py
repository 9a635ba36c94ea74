"""Writing predictions: one row per item, CSV or JSON Lines, written to a temporary name and
renamed when complete (a crash never leaves a file that looks finished).

    CSV     id,valid,label_1,score_1,…,label_K,score_K     (labels empty for an invalid item)
    JSONL   {"id": …, "valid": true, "labels": […], "scores": […], "classes": […]}
"""

import csv
import json

import tensorflow as tf

from cma_tf.errors import ConfigError

FORMATS = ("csv", "jsonl")


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
        self._tmp = path + ".tmp"

    def __enter__(self):
        self._file = tf.io.gfile.GFile(self._tmp, "w")
        if self.format == "csv":
            self._csv = csv.writer(self._file, lineterminator="\n")
            header = ["id", "valid"]
            for rank in range(1, self.top_k + 1):
                header += [f"label_{rank}", f"score_{rank}"]
            self._csv.writerow(header)
        return self

    def write(self, ids, outputs):
        """One row per id from the signature's outputs (numpy arrays, batch first)."""
        k = self.top_k
        for i, item_id in enumerate(ids):
            valid = bool(outputs["valid"][i])
            labels = [label.decode("utf-8") for label in outputs["top_k_labels"][i][:k]] if valid else []
            scores = [float(score) for score in outputs["top_k_scores"][i][:k]] if valid else []
            if self.format == "csv":
                row = [item_id, int(valid)]
                for rank in range(k):
                    row += [labels[rank], f"{scores[rank]:.6f}"] if valid else ["", ""]
                self._csv.writerow(row)
            else:
                classes = [int(c) for c in outputs["top_k_classes"][i][:k]] if valid else []
                record = {"id": item_id, "valid": valid, "labels": labels, "scores": scores, "classes": classes}
                self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def __exit__(self, error_type, error, traceback):
        self._file.close()
        if error_type is None:
            tf.io.gfile.rename(self._tmp, self.path, overwrite=True)
        return False
