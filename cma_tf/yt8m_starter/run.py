"""Runs the YouTube-8M starter code's own, unchanged `train.py`, `eval.py` and `inference.py`
under TF 2.21, with the CMA and self-attention model classes of `models.py` available
to their `--model` flag (`train.py`) and to the `model_flags.json` that `eval.py` reads.

    python -m cma_tf.label_embeddings --config=configs/yt8m.py:cma_snet \\
        --workdir=runs/yt8m_cma_snet --output=runs/yt8m_cma_snet/label_embeddings.npy
    python -m cma_tf.yt8m_starter.run --starter_dir=/path/to/youtube-8m \\
        --model=CmaSnetModel --cma_label_embeddings=runs/yt8m_cma_snet/label_embeddings.npy \\
        --frame_features --feature_names=rgb --feature_sizes=1024 \\
        --train_data_pattern='/path/to/frame/train*.tfrecord' --train_dir=/tmp/cma_snet \\
        --batch_size=256 --base_learning_rate=0.0002 --learning_rate_decay=0.8 \\
        --learning_rate_decay_examples=2000000
    python -m cma_tf.yt8m_starter.run --script=eval --starter_dir=/path/to/youtube-8m \\
        --cma_label_embeddings=runs/yt8m_cma_snet/label_embeddings.npy \\
        --eval_data_pattern='/path/to/frame/validate*.tfrecord' --segment_labels \\
        --train_dir=/tmp/cma_snet --run_once
    python -m cma_tf.yt8m_starter.run --script=inference --starter_dir=/path/to/youtube-8m \\
        --input_data_pattern='/path/to/frame/test*.tfrecord' --segment_labels \\
        --segment_label_ids_file=/path/to/segment_label_ids.csv \\
        --train_dir=/tmp/cma_snet --output_file=/tmp/cma_snet/submission.csv

`--script` picks the starter script: `train` (the default), `eval` or `inference`.
`eval.py` rebuilds the model class named in the `model_flags.json` that `train.py` wrote, so it
needs the same `--cma_*` flags as training (the label embeddings file and the widths); it
restores the latest checkpoint, reports GAP, Hit@1, PERR and mAP, and writes the
`inference_model/` graph that `inference.py` then loads (no `--cma_*` flags there). Seen
running: `eval.py --segment_labels` and `inference.py --segment_labels` (the 2019 segment task).
`inference.py` without `--segment_labels` stops with `TypeError: can't concat str to bytes`
under Python 3 whatever the model: its `format_lines` adds a str to the bytes video id.

`--starter_dir` (default: the environment variable `YT8M_STARTER_DIR`) is a copy of
github.com/google/youtube-8m; every other flag is the starter `train.py`'s own or one of
`models.py`: `--cma_label_embeddings` (CmaSnetModel, CmaFcModel), `--cma_frames`,
`--cma_snet_filters`, `--cma_fc_units`. `--model` takes CmaSnetModel, CmaFcModel,
SelfAttentionSnetModel and SelfAttentionFcModel (Table 4). The label embeddings file (ASGE's,
written by the first command) must have one row per class of the starter's reader: 3,862.
The learning-rate flags above are the paper's video schedule (lr 2e-4, ×0.8 every 2·10⁶
samples, batch 256). Its SGD with momentum 0.9 cannot be chosen: `train.py` builds
`optimizer_class(learning_rate)`, which `MomentumOptimizer` refuses (no momentum), so the
optimizer is the starter's default `AdamOptimizer` (or `GradientDescentOptimizer`).
A wrong label-embeddings file or frame count is printed as one line (exit status 2).

The shims, all set up in this process before the starter code is imported, none touching its
files:
    1. `tf.compat.v1.disable_eager_execution()`: the starter builds graphs with queue runners.
    2. `sys.modules["tensorflow"] = tf.compat.v1`: its `import tensorflow as tf`, `from
       tensorflow import app, flags, gfile, logging` get the TF1 API (`tensorflow.python.*`
       imports still resolve, their modules being loaded already).
    3. `tensorflow.contrib.slim` → the `tf_slim` package (pip install tf_slim), registered in
       `sys.modules` and as `tf.compat.v1.contrib.slim`; its
       `arg_scope`, `model_variable`, `variable` and `get_model_variables` are what `train.py`
       and `export_model.py` use.
    4. The four model classes are set as attributes of the starter's `frame_level_models`
       module, where `train.py`'s `find_class_by_name` looks for `--model`.
Then the script runs as `__main__` (`runpy`), so its flag definitions and `app.run()` run as
they do from a shell. `inference.py` loads the graph `eval.py` saved and needs no model class;
the shims are the same for all three.
"""

import argparse
import os
import runpy
import sys
import types

from cma_tf import cli

STARTER_DIR_ENV = "YT8M_STARTER_DIR"


SCRIPTS = ("train", "eval", "inference")


def split_runner_args(argv):
    """`argv` → (the starter directory, the script's path, the arguments left for the script)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--starter_dir", default=os.environ.get(STARTER_DIR_ENV))
    parser.add_argument("--script", default="train")
    known, rest = parser.parse_known_args(argv)
    if known.script not in SCRIPTS:
        raise SystemExit("--script=%s: not one of %s (the starter's train.py, eval.py, inference.py)"
                         % (known.script, ", ".join(SCRIPTS)))
    if not known.starter_dir:
        raise SystemExit("Pass --starter_dir=/path/to/youtube-8m (a copy of the YouTube-8M starter "
                         "code) or set %s" % STARTER_DIR_ENV)
    script = os.path.join(known.starter_dir, known.script + ".py")
    if not os.path.isfile(script):
        raise SystemExit("--starter_dir=%s has no %s.py: it must be a copy of "
                         "github.com/google/youtube-8m" % (known.starter_dir, known.script))
    return os.path.abspath(known.starter_dir), os.path.abspath(script), rest


def install_tf1_shims():
    """Shims 1-3 of the module docstring; returns the TF1 API module."""
    import tensorflow as tf

    tf.compat.v1.disable_eager_execution()
    try:
        import tf_slim
    except ImportError:
        raise SystemExit("The starter code imports tensorflow.contrib.slim, which TF 2 provides as "
                         "the tf_slim package: pip install tf_slim")
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.slim = tf_slim
    tf.compat.v1.contrib = contrib  # `import tensorflow.contrib.slim as slim` reads attributes
    sys.modules["tensorflow"] = tf.compat.v1
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.slim"] = tf_slim
    return tf.compat.v1


def register_models(starter_dir):
    """Shim 4: our classes become attributes of the starter's `frame_level_models` module."""
    from cma_tf.yt8m_starter import models as starter_models  # defines the --cma_* flags

    if starter_dir not in sys.path:
        sys.path.insert(0, starter_dir)
    import frame_level_models

    for model_class in starter_models.MODELS:
        setattr(frame_level_models, model_class.__name__, model_class)


def find_user_error(error):
    """The `cli.USER_ERRORS` instance in `error`'s chain, or None. The starter's exporter builds
    the model inside `tf.map_fn`, whose AutoGraph re-raises errors as a StagingError."""
    while error is not None:
        if isinstance(error, cli.USER_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    starter_dir, script, script_args = split_runner_args(argv)
    cli.quiet_tensorflow_logs()
    from cma_tf.yt8m_starter import models as starter_models  # noqa: F401  (imported with the real TF 2 module)

    install_tf1_shims()
    register_models(starter_dir)
    sys.argv = [script] + script_args
    try:
        runpy.run_path(script, run_name="__main__")
    except Exception as error:  # noqa: BLE001  (re-raised unless it wraps a user's mistake)
        user_error = find_user_error(error)
        if user_error is None:
            raise
        print("error: %s" % user_error, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
