"""Files of a training run's working directory, and atomic JSON writing."""

import json
import os

import numpy as np
import tensorflow as tf

from cma_tf.atomic import atomic_path, write_json  # noqa: F401 (write_json: files.write_json)
from cma_tf.data.vocab import check_same_vocabulary, read_vocabulary, write_vocabulary
from cma_tf.errors import ConfigError, DataError
# The label embeddings' cache (ASGE_WEIGHTS, ASGE_REPORT, WORD2VEC) is kept in the workdir.
from cma_tf.graph.label_embeddings import ASGE_REPORT, ASGE_WEIGHTS, WORD2VEC  # noqa: F401

CONFIG = "config.json"
VOCABULARY = "labels.txt"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE = "checkpoint/state.json"
BEST_MODEL = "best.keras"
FINAL_MODEL = "final.keras"
TENSORBOARD = "tensorboard"
HISTORY = "history.csv"
METRICS = "metrics.json"
TRAINING_DATA = "training_data.json"  # the training split a run started on (a resume must see the same)
DRY_RUN = "dry_run"  # `train --dry_run` trains here, never touching the run's own files
TRAIN_LOCK = "train.lock"  # held by the training of the workdir while it runs (`lock.py`)
DRY_RUN_LOCK = "dry_run.lock"  # held by a dry run: beside a training, not against it

# The fields a workdir accepts with a new value when its run is resumed or re-evaluated
# (`config.json` then records the new value); a difference in any other field is refused, as
# the workdir's model was (or is being) trained with the old one. None of these changes the
# model a run trains:
RESUMABLE_FIELDS = (
    # more epochs for an interrupted run (a finished run is not trained further, and an
    # interrupted one cannot end before the epochs it has finished: both are refused); the
    # resumed optimizer keeps its learning-rate schedule (the trainer says so when the new
    # epochs would have added a decay step)
    "train.epochs",
    # the dataset moved: its labels must still be the run's labels.txt (checked)
    "data.data_dir",
    "data.vocabulary",
    "data.tfds_data_dir",
    # where the label-graph cache lives (e.g. a writable copy for gs:// data); the ASGE fit
    # records the graph's counts and is refitted if they differ
    "data.label_graph",
    # evaluation batches only: the metrics are exact over the whole split at any batch size
    "train.eval_batch_size",
    # how many records of each shard are checked before any work (0: none): reads, never trains
    "data.check_records",
)
# Not among them: train.mixed_precision and data.shuffle_buffer / data.deterministic / the
# optimiser fields (a resumed checkpoint keeps its dtype policy and optimizer; the others
# change what the remaining epochs train on), data.eval_split (metrics.json and best.keras are
# chosen on it: `evaluate` takes another split without touching the run).

# The fields `evaluate`, `segment_inference` and the like take from the command line on top of
# a workdir's `config.json`: where the data is, which split, and batching; nothing the model
# depends on.
EVALUATION_FIELDS = ("data.data_dir", "data.tfds_data_dir", "data.vocabulary", "data.label_graph", "data.eval_split",
                     "train.eval_batch_size")


def path(workdir: str, name: str) -> str:
    return os.path.join(workdir, name)


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
    from cma_tf.config_base import config_from_dict

    config_path = path(workdir, CONFIG)
    if not tf.io.gfile.exists(config_path):
        raise FileNotFoundError(f"{workdir} is not a training workdir: {CONFIG} is missing")
    return config_from_dict(read_json(config_path))


def flatten(values, prefix=""):
    """`{"data.data_dir": …, "seed": …}` of a (nested) config dict or ConfigDict; lists become
    tuples, as `read_config` makes them, so a config and its JSON round trip compare equal."""
    if hasattr(values, "to_dict"):
        values = values.to_dict()
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "to_dict"):
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = _comparable(value)
    return flat


def _comparable(value):
    if isinstance(value, (list, tuple)):
        return tuple(_comparable(item) for item in value)
    return value


def config_differences(saved, given):
    """`[(field, saved value, given value)]` for the fields both configs have (a field only one
    of them has is read by no code that both runs share), in field order."""
    old, new = flatten(saved), flatten(given)
    return [(field, old[field], new[field]) for field in sorted(old.keys() & new.keys()) if old[field] != new[field]]


def describe_differences(differences):
    return ", ".join(f"{field} {old!r} → {new!r}" for field, old, new in differences)


def has_trained_state(workdir: str) -> bool:
    """Whether the workdir holds anything trained with its `config.json`: a finished epoch (a
    checkpoint, `history.csv`, `best.keras`) or a final model. A run that stopped before its
    first epoch ended (e.g. on a data error) leaves nothing that depends on its config."""
    names = (CHECKPOINT_STATE, HISTORY, BEST_MODEL, FINAL_MODEL, METRICS)
    return any(tf.io.gfile.exists(path(workdir, name)) for name in names)


def check_resumable(workdir: str, config):
    """Refuses (`ConfigError`, one line naming the fields, old → new) to train `config` in a
    workdir that holds a run of another config; returns the differences in `RESUMABLE_FIELDS`
    (those `config.json` will record), `[]` for a new workdir.

    The saved config is read over today's defaults (`read_config`), so a run written before a
    field existed compares as having that field's default."""
    if not tf.io.gfile.exists(path(workdir, CONFIG)) or not has_trained_state(workdir):
        return []
    differences = config_differences(read_config(workdir), config)
    refused = [d for d in differences if d[0] not in RESUMABLE_FIELDS]
    if refused:
        raise ConfigError(
            f"{workdir} holds a run of another config ({describe_differences(refused)}): train this config "
            f"into a new --workdir, or give the run's own values (a workdir keeps the config it was "
            f"trained with; only {', '.join(RESUMABLE_FIELDS)} may change)"
        )
    epochs = [d for d in differences if d[0] == "train.epochs"]
    if epochs:
        (_, old, new), = epochs
        if tf.io.gfile.exists(path(workdir, FINAL_MODEL)):
            raise ConfigError(
                f"train.epochs {old} → {new}: {workdir} is a finished run of {old} epochs ({FINAL_MODEL}) and is "
                f"not trained further; give --config.train.epochs={old} to re-evaluate it, or train into a new --workdir"
            )
        finished, _ = resume_point(workdir)
        if new < finished:
            raise ConfigError(
                f"train.epochs {old} → {new}: {workdir} has already finished {finished} epochs; give at least {finished}"
            )
    return differences


def record_training_data(workdir: str, split: str, graph) -> None:
    """Writes what a resume must find again: the training split, its example count and its
    label graph's SHA-1 (`LabelGraph.sha1`, of the co-occurrence counts the label embeddings,
    the loss and the steps per epoch were made from)."""
    write_json(path(workdir, TRAINING_DATA), {"split": split, "examples": int(graph.num_examples),
                                              "label_graph_sha1": graph.sha1()})


def check_training_data(workdir: str, split: str, graph) -> None:
    """Refuses (`DataError`) to resume a run whose training split changed since it started
    (images added or removed: another label graph). Its checkpoint carries the label embeddings
    fitted to the old graph and the optimizer of the old steps per epoch, so the resumed run
    would not end where a fresh run on the new data does, as resuming promises; refitting them
    mid-run would not either. Nothing to check for a run started before the file was kept."""
    recorded = path(workdir, TRAINING_DATA)
    if not tf.io.gfile.exists(recorded):
        return
    old = read_json(recorded)
    if old.get("split") == split and old.get("label_graph_sha1") == graph.sha1() and old.get("examples") == graph.num_examples:
        return
    raise DataError(
        f"the training split '{split}' changed since {workdir} started ({old.get('examples')} → {graph.num_examples} "
        f"examples, label graph {str(old.get('label_graph_sha1'))[:10]} → {graph.sha1()[:10]}; {recorded}): its "
        "checkpoint keeps the label embeddings and loss of the old data, so resuming would not equal a fresh run; "
        "train into a new --workdir (or restore the old data to resume)"
    )


def evaluation_config(workdir: str, overrides=None):
    """The config `workdir` was trained with (`config.json`), with `overrides` (`{dotted field:
    value}` from the command line) applied to the `EVALUATION_FIELDS`; an override of any other
    field must equal the run's own value (a `ConfigError` names it otherwise)."""
    config = read_config(workdir)
    for field, value in (overrides or {}).items():
        *sections, name = field.split(".")
        owner = config
        try:
            for section in sections:
                owner = owner[section]
            current = owner[name]
        except (KeyError, AttributeError, TypeError):
            raise ConfigError(f"--config.{field}: no such field in {path(workdir, CONFIG)}") from None
        if field in EVALUATION_FIELDS:
            with owner.unlocked():
                owner[name] = value
        elif _comparable(value) != _comparable(current):
            raise ConfigError(
                f"--config.{field}={value!r}, but {workdir} was trained with {current!r}: a workdir is used with the "
                f"config it was trained with ({CONFIG}); only {', '.join(EVALUATION_FIELDS)} can be given"
            )
    return config


def check_labels(workdir: str, vocabulary, given_name: str = "the dataset's vocabulary",
                 fix: str = "point config.data.data_dir (or config.data.vocabulary) at the run's dataset") -> None:
    """A `DataError` (`vocab.check_same_vocabulary`: the first id that differs, both names) if
    `vocabulary` (`given_name`: the dataset's, or a `--vocabulary` file) is not the workdir's
    `labels.txt` (the run's label names, in the order of its model's outputs). Nothing to check
    for a run trained before the file was kept."""
    own = path(workdir, VOCABULARY)
    if not tf.io.gfile.exists(own):
        return
    check_same_vocabulary(vocabulary, read_vocabulary(own, unique=False), given_name, f"the run's {own}", fix)


def thresholds_path(workdir: str, checkpoint: str = "final") -> str:
    """`<workdir>/thresholds_<checkpoint>.json`: the per-label thresholds `cma_tf.evaluate
    --calibrate` chose for that model."""
    return path(workdir, f"thresholds_{checkpoint}.json")


def write_thresholds(workdir, checkpoint, split, vocabulary, scores, targets):
    """Chooses each label's F1-maximising threshold on `split`'s scores (`metrics/thresholds.py`)
    and writes `thresholds_path(workdir, checkpoint)`; returns `(examples, labels left at 0.5)`."""
    from cma_tf.metrics.thresholds import calibrate_thresholds

    thresholds, f1 = calibrate_thresholds(scores, targets)
    write_json(thresholds_path(workdir, checkpoint), {
        "split": split, "checkpoint": checkpoint, "model_sha1": _file_sha1(trained_model_path(workdir, checkpoint)),
        "examples": int(len(scores)), "labels": list(vocabulary),
        "thresholds": [float(t) for t in thresholds],
        "calibration_F1": [None if f != f else float(f) for f in f1],
    })
    return int(len(scores)), int(sum(f != f for f in f1))


def read_thresholds(workdir, checkpoint, vocabulary):
    """The run's calibrated thresholds `[N]` for `checkpoint`, or None; a `DataError` when the
    file's labels are not the run's."""
    location = thresholds_path(workdir, checkpoint)
    if not tf.io.gfile.exists(location):
        return None
    stored = read_json(location)
    if stored.get("labels") != list(vocabulary):
        raise DataError(f"{location} holds thresholds of other labels than the run's: calibrate again (--calibrate=SPLIT)")
    model = trained_model_path(workdir, checkpoint)
    if stored.get("model_sha1") != _file_sha1(model):
        raise DataError(
            f"{location} was chosen for another {os.path.basename(model)} (the run was trained again since): "
            "calibrate again (cma_tf.evaluate --calibrate=SPLIT) or delete the file"
        )
    return np.asarray(stored["thresholds"], np.float64)


def _file_sha1(file_path):
    import hashlib

    digest = hashlib.sha1()
    with tf.io.gfile.GFile(file_path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def trained_model_path(workdir: str, checkpoint: str = "final") -> str:
    """`final.keras` (the recipe's result) or `best.keras` (best validation mAP) of a run."""
    name = {"final": FINAL_MODEL, "best": BEST_MODEL}[checkpoint]
    candidate = path(workdir, name)
    if not tf.io.gfile.exists(candidate):
        raise FileNotFoundError(f"No trained model in {workdir}: {name} is missing (has the run finished?)")
    return candidate


def save_model_atomically(model, file_path: str) -> None:
    """`model.save`, atomically: a crash never leaves half a model."""
    tf.io.gfile.makedirs(os.path.dirname(file_path) or ".")
    with atomic_path(file_path, keep_suffix=True) as tmp:
        model.save(tmp)


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
