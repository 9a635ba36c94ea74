"""Runs the YouTube-8M starter code's own, unchanged `train.py`, `eval.py`, `inference.py` and
`segment_eval_inference.py` under TF 2.21, with the model classes of `models.py` (CMA,
self-attention, DBoF, NetVLAD, NeXtVLAD) available to their `--model` flag (`train.py`) and to
the `model_flags.json` that `eval.py` reads.

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
    python -m cma_tf.yt8m_starter.run --script=segment_eval_inference --starter_dir=/path/to/youtube-8m \\
        --eval_data_pattern='/path/to/frame/validate*.tfrecord' --submission_file=submission.csv
    python -m cma_tf.yt8m_starter.run --starter_dir=/path/to/youtube-8m \\
        --model=NetVladModel --cma_feature_streams=rgb:1024,audio:128 \\
        --frame_features --feature_names=rgb,audio --feature_sizes=1024,128 \\
        --train_data_pattern='/path/to/frame/train*.tfrecord' --train_dir=/tmp/netvlad

`--script` picks the starter script: `train` (the default), `eval`, `inference` or
`segment_eval_inference`; `--help` lists the runner's flags and the `--cma_*` flags, and with a
starter dir then the script's own (absl's `--help` of it). `eval.py` rebuilds the model class
named in the `model_flags.json` that `train.py` wrote, so it needs the same `--cma_*` flags as
training (the label embeddings file and the widths); it restores the latest checkpoint, reports
GAP, Hit@1, PERR and mAP, and writes the `inference_model/` graph that `inference.py` then
loads (no `--cma_*` flags there). Seen running: `eval.py --segment_labels`, `inference.py
--segment_labels` (the 2019 segment task) and `segment_eval_inference.py` (its mAP of a
submission, equal to `python -m cma_tf.evaluate`'s segment mAP to 10⁻⁶ on a synthetic set:
tests/yt8m_starter/test_segment_eval_inference.py).
`inference.py` without `--segment_labels` stops with `TypeError: can't concat str to bytes`
under Python 3 whatever the model: its `format_lines` adds a str to the bytes video id.

The `--cma_*` flags are not in `model_flags.json`, and the label embeddings E are a graph
constant outside the checkpoint, so other values at evaluation would score another model. The
training records them in `<train_dir>/cma_flags.json` (`flag_record.py`: the flags the model
reads, E's shape and sha256); `eval.py`, `inference.py` given a `--cma_*` flag, and a training
that resumes in that `train_dir` (without `--start_new_model`), are refused in one line naming
the flag if a value differs (`--cma_frames=300 but /tmp/cma_snet was trained with
--cma_frames=32 …`), as are `eval.py` and a resumed training in a `train_dir` of our model
without the record (trained before the runner kept one).

`--starter_dir` (default: the environment variable `YT8M_STARTER_DIR`) is a copy of
github.com/google/youtube-8m; every other flag is the starter script's own or one of
`models.py`: `--cma_label_embeddings` (CmaSnetModel, CmaFcModel), `--cma_frames`,
`--cma_snet_filters`, `--cma_fc_units`. `--model` takes CmaSnetModel, CmaFcModel,
SelfAttentionSnetModel and SelfAttentionFcModel (Table 4), DbofMoeModel, NetVladModel and
NextVladModel (the Keras heads dbof, netvlad and nextvlad; their `--cma_clusters`,
`--cma_hidden_units`, `--cma_feature_streams` and `--cma_nextvlad_*` flags), all frame-level
(`--frame_features` with frame-level records). The label embeddings file (ASGE's, written by the
first command) must have one row per class of the starter's reader: 3,862.
The learning-rate flags above are the paper's video schedule (lr 2e-4, ×0.8 every 2·10⁶
samples, batch 256). Its SGD with momentum 0.9 cannot be chosen: `train.py` builds
`optimizer_class(learning_rate)`, which `MomentumOptimizer` refuses (no momentum), so the
optimizer is the starter's default `AdamOptimizer` (or `GradientDescentOptimizer`).
A user's mistake (the runner's flags, a missing or wrong label-embeddings file, `--cma_*`
flags other than the training's, video-level input) is printed as one line `error: …`, exit
status 2.

The shims, all set up in this process before the starter code is imported, none touching its
files:
    1. `tf.compat.v1.disable_eager_execution()`: the starter builds graphs with queue runners
       (not for `segment_eval_inference.py`, which has none).
    2. `sys.modules["tensorflow"] = tf.compat.v1`: its `import tensorflow as tf`, `from
       tensorflow import app, flags, gfile, logging` get the TF1 API (`tensorflow.python.*`
       imports still resolve, their modules being loaded already).
    3. `tensorflow.contrib.slim` → the `tf_slim` package (pip install tf_slim), registered in
       `sys.modules` and as `tf.compat.v1.contrib.slim`; its
       `arg_scope`, `model_variable`, `variable` and `get_model_variables` are what `train.py`
       and `export_model.py` use. tf_slim 1.1's `batch_norm` (the starter's DBoF) tests
       `isinstance(x, ops.Tensor)`, a name TF 2.21's `tensorflow.python.framework.ops` no
       longer has: `tf.Tensor` is put back under it.
    4. The model classes are set as attributes of the starter's `frame_level_models`
       module, where `train.py`'s `find_class_by_name` looks for `--model`.
    5. For `train.py` each class writes `cma_flags.json` when its training graph is built, i.e.
       after `train.py` has made `train_dir` (and emptied it for `--start_new_model`).
    6. Once absl has parsed the script's flags, before its `main` (`absl.app.call_after_init`),
       the runner checks them (the `--cma_*` record, `--frame_features`) or, for
       `segment_eval_inference.py`, writes its inputs (`segment_eval_inputs.py`): under
       Python 3 the script keys the rated segments by `b'id':start` (mAP 0), chokes on the
       `Class,Segments` header, drops each class's last segment (split with its newline) and
       stops on a class without positives. So the runner reads the rated segments itself and
       passes them as the script's own `--label_cache` file, and passes a copy of the
       submission without the header, a space before each newline, and without (named on
       stderr) the classes that have no positive rating; `--label_cache` itself is refused.
Then the script runs as `__main__` (`runpy`), so its flag definitions and `app.run()` run as
they do from a shell. `inference.py` loads the graph `eval.py` saved and needs no model class.
"""

import argparse
import json
import os
import runpy
import sys
import tempfile
import textwrap
import types

from cma_tf import cli
from cma_tf.errors import ConfigError

STARTER_DIR_ENV = "YT8M_STARTER_DIR"

SCRIPTS = {
    "train": "trains --model on --train_data_pattern, checkpoints in --train_dir (the default)",
    "eval": "scores the latest checkpoint of --train_dir on --eval_data_pattern and exports its graph",
    "inference": "writes --output_file from the graph eval exported to --train_dir/inference_model",
    "segment_eval_inference": "scores a segment submission (--submission_file, Class,Segments) "
                              "against the rated segments of --eval_data_pattern: mAP (its inputs "
                              "rewritten for Python 3 by the runner, see run.py)",
}
HELP_FLAGS = ("--help", "-h", "-?", "--helpshort", "--helpfull")
USAGE = ("python -m cma_tf.yt8m_starter.run [--starter_dir=DIR] [--script=SCRIPT] "
         "[--cma_* flags] [the script's own flags]")


def runner_parser():
    """The runner's own flags; every other argument is left for the starter script."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--starter_dir", default=os.environ.get(STARTER_DIR_ENV))
    parser.add_argument("--script", default="train")
    return parser


def help_text(starter_dir):
    """The runner's `--help`: its own flags and the `--cma_*` flags of `models.py`."""
    from cma_tf.yt8m_starter import models as starter_models

    lines = [
        "usage: " + USAGE, "",
        "Runs a script of the YouTube-8M starter code (github.com/google/youtube-8m), unchanged, under",
        "TF 2.21, with the model classes of cma_tf/yt8m_starter/models.py for --model:",
        "  " + ", ".join(model.__name__ for model in starter_models.MODELS) + ".",
        "Documentation: the docstring of cma_tf/yt8m_starter/run.py.", "",
        "Runner flags:",
        "  --starter_dir: a copy of github.com/google/youtube-8m (default: $%s, now %s)"
        % (STARTER_DIR_ENV, starter_dir or "unset"),
        "  --script: the starter script to run (default: train):",
    ]
    lines += [textwrap.fill("%s: %s" % (name, summary), width=96, initial_indent="    ",
                            subsequent_indent="        ") for name, summary in SCRIPTS.items()]
    lines += ["", "Model flags (train, eval; recorded in --train_dir/cma_flags.json by train, and eval and",
              "inference refuse other values):"]
    for _, name, default, text in starter_models.FLAG_DEFINITIONS:
        lines.append(textwrap.fill("--%s: %s (default: %s)" % (name, text, default), width=96,
                                   initial_indent="  ", subsequent_indent="      "))
    lines.append("")
    if starter_dir:
        lines.append("The script's own flags follow (absl's --help of its .py; --helpfull lists all).")
    else:
        lines.append("The scripts' own flags: give the starter code and the script, e.g.")
        lines.append("  python -m cma_tf.yt8m_starter.run --starter_dir=/path/to/youtube-8m --script=eval --help")
    return "\n".join(lines)


def split_runner_args(argv):
    """`argv` → (the starter directory, the script's path, the arguments left for the script)."""
    known, rest = runner_parser().parse_known_args(argv)
    if known.script not in SCRIPTS:
        raise ConfigError("--script=%s: not one of %s (the starter code's %s)" % (
            known.script, ", ".join(SCRIPTS), ", ".join(name + ".py" for name in SCRIPTS)))
    if not known.starter_dir:
        raise ConfigError("pass --starter_dir=/path/to/youtube-8m (a copy of the YouTube-8M starter "
                          "code, github.com/google/youtube-8m) or set %s" % STARTER_DIR_ENV)
    script = os.path.join(known.starter_dir, known.script + ".py")
    if not os.path.isfile(script):
        raise ConfigError("--starter_dir=%s has no %s.py: it must be a copy of "
                          "github.com/google/youtube-8m" % (known.starter_dir, known.script))
    return os.path.abspath(known.starter_dir), os.path.abspath(script), rest


def install_tf1_shims(graph_mode=True):
    """Shims 1-3 of the module docstring (1 only with `graph_mode`); returns the TF1 API module."""
    import tensorflow as tf

    if graph_mode:
        tf.compat.v1.disable_eager_execution()
    try:
        import tf_slim
    except ImportError:
        raise ConfigError("the starter code imports tensorflow.contrib.slim, which TF 2 provides as "
                          "the tf_slim package: pip install tf_slim")
    from tensorflow.python.framework import ops

    if not hasattr(ops, "Tensor"):
        ops.Tensor = tf.Tensor
    contrib = types.ModuleType("tensorflow.contrib")
    contrib.slim = tf_slim
    tf.compat.v1.contrib = contrib  # `import tensorflow.contrib.slim as slim` reads attributes
    sys.modules["tensorflow"] = tf.compat.v1
    sys.modules["tensorflow.contrib"] = contrib
    sys.modules["tensorflow.contrib.slim"] = tf_slim
    return tf.compat.v1


def recording_class(model_class):
    """`model_class` whose training graph records its `--cma_*` flags in `--train_dir` (shim 5)
    once built: `train.py` builds it after it has made `--train_dir` (and emptied it for
    `--start_new_model`), and before its first checkpoint."""
    from absl import flags

    from cma_tf.yt8m_starter import flag_record

    def create_model(self, model_input, vocab_size, num_frames, is_training=True, **params):
        outputs = model_class.create_model(self, model_input, vocab_size, num_frames, is_training, **params)
        if is_training:  # once built: flags the model refuses are not recorded
            flag_values = flags.FLAGS
            flag_record.write_record(flag_values.train_dir, flag_record.current_record(model_class, flag_values))
        return outputs

    return type(model_class.__name__, (model_class,), {"create_model": create_model,
                                                        "__doc__": model_class.__doc__})


def register_models(starter_dir, record_flags=False):
    """Shim 4: our classes become attributes of the starter's `frame_level_models` module
    (wrapped by `recording_class` with `record_flags`)."""
    from cma_tf.yt8m_starter import models as starter_models  # defines the --cma_* flags

    if starter_dir not in sys.path:
        sys.path.insert(0, starter_dir)
    import frame_level_models

    for model_class in starter_models.MODELS:
        setattr(frame_level_models, model_class.__name__,
                recording_class(model_class) if record_flags else model_class)


def starter_model_class(name):
    """Our model class called `name`, or None for the starter's own models."""
    from cma_tf.yt8m_starter import models as starter_models

    return {model.__name__: model for model in starter_models.MODELS}.get(name)


def trained_model_name(train_dir):
    """`--model` of the training in `train_dir`, from the `model_flags.json` train.py wrote."""
    import tensorflow as tf

    path = os.path.join(train_dir, "model_flags.json")
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as f:
        return json.load(f).get("model")


def check_flags(script, flag_values):
    """Shim 6, run by absl once the script's flags are parsed and before its `main`: refuses in
    one line what would train, score or export another model than the one trained."""
    import tensorflow as tf

    from cma_tf.yt8m_starter import flag_record

    train_dir = flag_values.train_dir
    if script == "train":
        model_class = starter_model_class(flag_values.model)
        if model_class is None:
            return
        if not flag_values.frame_features:
            raise ConfigError(
                "--model=%s needs frame-level input: pass --frame_features with frame-level records "
                "(SequenceExamples, e.g. --feature_names=rgb --feature_sizes=1024)" % flag_values.model)
        if flag_values.start_new_model:
            return  # train.py empties train_dir; the new model's flags are recorded when it is built
        resume = (" (train.py would resume the model saved there); pass --start_new_model to train a new "
                  "model there (it deletes %s) or choose another --train_dir" % train_dir)
        if flag_record.read_record(train_dir) is not None:
            flag_record.check_same_flags(model_class, flag_values, train_dir, fix=resume)
        elif tf.train.latest_checkpoint(train_dir):
            flag_record.check_same_flags(model_class, flag_values, train_dir)  # no record: refused
        return
    if script == "inference" and not train_dir:
        return  # inference.py reads --input_model_tgz instead
    model_name = trained_model_name(train_dir)
    if script == "eval" and model_name is None:
        raise ConfigError("--train_dir=%s has no model_flags.json: give the folder train.py wrote "
                          "(run --script=train first)" % train_dir)
    model_class = starter_model_class(model_name)
    if model_class is None:
        return
    if script == "eval":
        flag_record.check_same_flags(model_class, flag_values, train_dir)
    elif script == "inference":  # the exported graph needs no --cma_* flag; one that is given must agree
        given = [name for name in model_class.flag_names() if flag_values[name].present]
        if given and flag_record.read_record(train_dir) is not None:
            flag_record.check_same_flags(model_class, flag_values, train_dir, names=given)


def find_user_error(error):
    """The `cli.USER_ERRORS` instance in `error`'s chain, or None. The starter's exporter builds
    the model inside `tf.map_fn`, whose AutoGraph re-raises errors as a StagingError."""
    while error is not None:
        if isinstance(error, cli.USER_ERRORS):
            return error
        error = error.__cause__ or error.__context__
    return None


def run_script(starter_dir, script, script_args, before_main=None):
    """Runs the starter `script` as `__main__` under the shims; `before_main(flag_values)` runs
    once absl has parsed its flags."""
    from absl import app, flags

    from cma_tf.yt8m_starter import models as starter_models  # noqa: F401  (imported with the real TF 2 module)

    name = os.path.splitext(os.path.basename(script))[0]
    install_tf1_shims(graph_mode=name != "segment_eval_inference")
    register_models(starter_dir, record_flags=name == "train")
    if before_main is not None:
        app.call_after_init(lambda: before_main(flags.FLAGS))
    sys.argv = [script] + script_args
    try:
        runpy.run_path(script, run_name="__main__")
    except Exception as error:  # noqa: BLE001  (re-raised unless it wraps a user's mistake)
        user_error = find_user_error(error)
        if user_error is None:
            raise
        raise user_error


def show_help(argv):
    """`--help`: the runner's flags, then (with a starter dir) the script's own, exit status 0."""
    known, rest = runner_parser().parse_known_args(argv)
    print(help_text(known.starter_dir))
    if not known.starter_dir:
        return
    starter_dir, script, script_args = split_runner_args(argv)
    print()
    sys.stdout.flush()
    try:
        run_script(starter_dir, script, script_args)
    except SystemExit:  # absl's --help exits with status 1 after printing
        pass


def run(argv):
    if any(arg.split("=", 1)[0] in HELP_FLAGS for arg in argv):
        show_help(argv)
        return
    starter_dir, script, script_args = split_runner_args(argv)
    name = os.path.splitext(os.path.basename(script))[0]
    if name == "segment_eval_inference":
        from cma_tf.yt8m_starter import segment_eval_inputs

        with tempfile.TemporaryDirectory(prefix="segment_eval_inference-") as folder:
            run_script(starter_dir, script, script_args, lambda flag_values: segment_eval_inputs.prepare(flag_values, folder))
        return
    run_script(starter_dir, script, script_args, lambda flag_values: check_flags(name, flag_values))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cli.quiet_tensorflow_logs()
    cli.run_reporting_user_errors(run, argv)


if __name__ == "__main__":
    main()
