"""Files of a training run's working directory, and atomic JSON writing."""

import json
import os

import tensorflow as tf

CONFIG = "config.json"
ASGE_WEIGHTS = "asge/encoder_weights.npz"
ASGE_REPORT = "asge/report.json"
BACKUP = "backup"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
TENSORBOARD = "tensorboard"
HISTORY = "history.csv"
METRICS = "metrics.json"


def path(workdir: str, name: str) -> str:
    return os.path.join(workdir, name)


def write_json(file_path: str, data) -> None:
    """Writes JSON to a temp name and renames it, so a crash never leaves half a file."""
    tf.io.gfile.makedirs(os.path.dirname(file_path) or ".")
    tmp = file_path + ".tmp"
    with tf.io.gfile.GFile(tmp, "w") as f:
        json.dump(data, f, indent=2, sort_keys=True, default=float)
        f.write("\n")
    tf.io.gfile.rename(tmp, file_path, overwrite=True)


def read_json(file_path: str):
    with tf.io.gfile.GFile(file_path, "r") as f:
        return json.load(f)


def trained_model_path(workdir: str, checkpoint: str = "final") -> str:
    """`final.keras` (the recipe's result) or `best.keras` (best validation mAP) of a run."""
    name = {"final": FINAL_MODEL, "best": BEST_MODEL}[checkpoint]
    candidate = path(workdir, name)
    if not tf.io.gfile.exists(candidate):
        raise FileNotFoundError(f"No trained model in {workdir}: {name} is missing (has the run finished?)")
    return candidate
