"""The `--cma_*` flags a starter-code model was trained with, kept in `<train_dir>/cma_flags.json`.

The starter's `train.py` records its own model flags in `model_flags.json`, which `eval.py`
reads to rebuild the model; the `--cma_*` flags are not among them, and the label embeddings E
are a graph constant that the checkpoint does not hold. So `eval.py` given other values builds
another model (another frame count `T` restores the same SNet weights and scores with exit 0;
another width dies in a reshape traceback). The record holds the flags the trained class reads
(`models.*.flag_names()`), E as its shape and the sha256 of its float32 bytes:

    {"model": "CmaSnetModel", "cma_frames": 32, "cma_snet_filters": 64,
     "cma_label_embeddings": {"path": "asge.npy", "shape": [3862, 256], "sha256": "…"}}

and a run whose flags differ is refused in one line naming the flag (`ConfigError`). The path
of E is kept for the message only: a moved copy of the same array is the same E.
"""

import hashlib
import json
import os

import tensorflow as tf

from cma_tf.atomic import write_text
from cma_tf.errors import ConfigError
from cma_tf.yt8m_starter import models

RECORD_FILENAME = "cma_flags.json"
EMBEDDINGS_FLAG = "cma_label_embeddings"


def record_path(train_dir):
    return os.path.join(train_dir, RECORD_FILENAME)


def embeddings_fingerprint(path):
    """`{"path", "shape", "sha256"}` of the label embeddings file `path` (unset: None)."""
    if path is None:
        return None
    array = models.read_label_embeddings(path)
    digest = hashlib.sha256(array.tobytes(order="C")).hexdigest()
    return {"path": path, "shape": list(array.shape), "sha256": digest}


def current_record(model_class, flag_values):
    """The record of the `--cma_*` values `flag_values` holds now, for `model_class`."""
    record = {"model": model_class.__name__}
    for name in model_class.flag_names():
        value = flag_values[name].value
        record[name] = embeddings_fingerprint(value) if name == EMBEDDINGS_FLAG else value
    return record


def read_record(train_dir):
    """The record in `train_dir`, or None if it has none."""
    path = record_path(train_dir)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f)


def write_record(train_dir, record):
    tf.io.gfile.makedirs(train_dir)
    write_text(record_path(train_dir), json.dumps(record, indent=2) + "\n")


def _compared(name, value):
    """What must be equal: the value, or for E its shape and checksum (not where the file is)."""
    if name == EMBEDDINGS_FLAG and value is not None:
        return value["shape"], value["sha256"]
    return value


def _describe_embeddings(fingerprint):
    return "shape %s, sha256 %s…" % (fingerprint["shape"], fingerprint["sha256"][:12])


def difference(recorded, current, train_dir, names=None):
    """One line on the first flag of `names` (default: all recorded) whose value differs between
    the `recorded` and the `current` record, or None if they agree."""
    where = "%s was trained with" % train_dir
    for name in names if names is not None else [key for key in recorded if key != "model"]:
        if _compared(name, recorded.get(name)) == _compared(name, current.get(name)):
            continue
        if name != EMBEDDINGS_FLAG:
            return "--%s=%s but %s --%s=%s (%s): pass --%s=%s" % (
                name, current.get(name), where, name, recorded.get(name), record_path(train_dir), name,
                recorded.get(name))
        if current.get(name) is None:
            return "--%s is not set but %s --%s=%s" % (name, where, name, recorded[name]["path"])
        if recorded.get(name) is None:
            return "--%s=%s but %s no label embeddings (%s)" % (
                name, current[name]["path"], where, record_path(train_dir))
        return "--%s=%s holds other label embeddings (%s) than %s: --%s=%s (%s; %s)" % (
            name, current[name]["path"], _describe_embeddings(current[name]), where, name,
            recorded[name]["path"], _describe_embeddings(recorded[name]), record_path(train_dir))
    return None


def check_same_flags(model_class, flag_values, train_dir, names=None, fix=""):
    """Raises a `ConfigError` if the `--cma_*` flags `names` (default: all of `model_class`) differ
    from those `train_dir` was trained with; `fix` is appended to the message."""
    recorded = read_record(train_dir)
    if recorded is None:
        raise ConfigError(
            "%s was trained with --model=%s but has no %s: the --cma_* flags it was trained with are "
            "unknown (trained by an older version of this runner?); train it again with --start_new_model"
            % (train_dir, model_class.__name__, RECORD_FILENAME))
    message = difference(recorded, current_record(model_class, flag_values), train_dir, names)
    if message:
        raise ConfigError(message + fix)
