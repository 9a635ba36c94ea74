"""Files of a training run's working directory, and atomic JSON writing."""

import json
import os

import tensorflow as tf

from cma_tf.data.vocab import write_vocabulary

CONFIG = "config.json"
VOCABULARY = "labels.txt"
ASGE_WEIGHTS = "asge/encoder_weights.npz"
ASGE_REPORT = "asge/report.json"
WORD2VEC = "word2vec/embeddings.npy"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE = "checkpoint/state.json"
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


def write_labels(workdir: str, names) -> None:
    """The run's label names, one a line (line = class id), written atomically: the workdir
    then carries what an export needs without the dataset."""
    write_vocabulary(path(workdir, VOCABULARY), names, unique=False)


def read_json(file_path: str):
    with tf.io.gfile.GFile(file_path, "r") as f:
        return json.load(f)


def read_config(workdir: str):
    """The run's `config.json` as a ConfigDict, over today's defaults (a run written before a
    field existed gets the field's default)."""
    from cma_tf.config_base import get_base_config

    config_path = path(workdir, CONFIG)
    if not tf.io.gfile.exists(config_path):
        raise FileNotFoundError(f"{workdir} is not a training workdir: {CONFIG} is missing")
    config = get_base_config()
    with config.unlocked():
        _merge(config, read_json(config_path))
    return config


def _merge(config, values):
    import ml_collections

    for key, value in values.items():
        if isinstance(value, dict) and isinstance(config.get(key), ml_collections.ConfigDict):
            _merge(config[key], value)
        else:
            config[key] = tuple(value) if isinstance(value, list) else value


def trained_model_path(workdir: str, checkpoint: str = "final") -> str:
    """`final.keras` (the recipe's result) or `best.keras` (best validation mAP) of a run."""
    name = {"final": FINAL_MODEL, "best": BEST_MODEL}[checkpoint]
    candidate = path(workdir, name)
    if not tf.io.gfile.exists(candidate):
        raise FileNotFoundError(f"No trained model in {workdir}: {name} is missing (has the run finished?)")
    return candidate


def save_model_atomically(model, file_path: str) -> None:
    """`model.save` to a temporary name, then rename: a crash never leaves half a model."""
    tf.io.gfile.makedirs(os.path.dirname(file_path) or ".")
    tmp = file_path + ".tmp.keras"
    model.save(tmp)
    tf.io.gfile.rename(tmp, file_path, overwrite=True)


def save_checkpoint(workdir: str, model, finished_epochs: int) -> None:
    """The resume point. The model (with its optimizer state) goes to its own file, then
    `state.json` is switched to it in one atomic write, then older files are removed: a crash
    at any moment leaves a state that names a complete model of the epoch it records."""
    directory = path(workdir, CHECKPOINT_DIR)
    name = f"epoch-{finished_epochs:04d}.keras"
    save_model_atomically(model, os.path.join(directory, name))
    write_json(path(workdir, CHECKPOINT_STATE), {"finished_epochs": finished_epochs, "model": name})
    for old in tf.io.gfile.listdir(directory):
        if old.startswith("epoch-") and old != name:
            tf.io.gfile.remove(os.path.join(directory, old))


def resume_point(workdir: str):
    """`(finished_epochs, model path)` of an interrupted run of this workdir, or `(0, None)`."""
    state = path(workdir, CHECKPOINT_STATE)
    if not tf.io.gfile.exists(state):
        return 0, None
    data = read_json(state)
    return int(data["finished_epochs"]), os.path.join(path(workdir, CHECKPOINT_DIR), data["model"])
