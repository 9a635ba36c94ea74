"""Evaluates trained workdirs: `python -m cma_tf.evaluate --config=… --workdirs=a,b,…`.

Loads each workdir's final model (or, with `--checkpoint=best`, the epoch with the best
validation mAP/GAP, which was chosen on this same split), runs it over the eval split of
the config's dataset, writes `<workdir>/eval_metrics_{final,best}.json` and `.md` (images: mAP,
CP, CR, CF1, OP, OR, OF1 at threshold 0.5 and for the top-3 labels; YouTube-8M: GAP, Hit@1,
PERR, mAP, on the rated segments when `config.data.eval_segments`) and prints one table
comparing the workdirs.

Example:
    python -m cma_tf.evaluate --config=configs/demo.py --workdirs=runs/demo/plain,runs/demo/cma
"""

import os

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Config file naming the dataset (config.data.*) and eval batch size; overrides as in train.",
)
_WORKDIRS = flags.DEFINE_list("workdirs", None, "Comma-separated training workdirs to evaluate.")
_NAMES = flags.DEFINE_list(
    "names", None, "Row names for the table, one per workdir (default: the workdir's base name)."
)
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"],
    "Which model of each workdir: 'final' (end of training) or 'best' (best val_mAP epoch; val_GAP for video).",
)
_FULL = flags.DEFINE_bool("full", False, "Print every metric, not only mAP / CF1 / OF1 (images; video always prints all four).")
_PER_CLASS = flags.DEFINE_bool(
    "per_class", False, "Also print each label's AP for every workdir (and store it in eval_metrics.json)."
)
_OUTPUT = flags.DEFINE_string("output", None, "Also write the table as Markdown to this file.")
flags.mark_flags_as_required(["config", "workdirs"])


def evaluate_workdirs(config, workdirs, names, checkpoint="final"):
    import keras

    from cma_tf import factory
    from cma_tf.training import workdir as files
    import tensorflow as tf

    from cma_tf.metrics.image import per_class_average_precision
    from cma_tf.metrics.report import FULL_KEYS, format_metrics_table
    from cma_tf.training.callbacks import predict_scores
    from cma_tf.training.trainer import load_dataset_info

    vocabulary, _ = load_dataset_info(config)
    dataset = factory.build_dataset(config, len(vocabulary), config.data.eval_split, training=False)
    metrics_fn, video_keys, _ = factory.evaluation_metrics(config)
    keys = video_keys if factory.is_video(config) else FULL_KEYS
    rows = {}
    for name, workdir in zip(names, workdirs):
        model = keras.saving.load_model(files.trained_model_path(workdir, checkpoint))
        scores, targets = predict_scores(model, dataset)
        metrics = metrics_fn(scores, targets)
        per_class = per_class_average_precision(scores, targets)
        metrics["AP_per_class"] = {label: float(ap) for label, ap in zip(vocabulary, per_class)}
        files.write_json(files.path(workdir, f"eval_metrics_{checkpoint}.json"), metrics)
        with tf.io.gfile.GFile(files.path(workdir, f"eval_metrics_{checkpoint}.md"), "w") as f:
            f.write(format_metrics_table({name: metrics}, keys) + "\n")
        rows[name] = metrics
    return vocabulary, rows, keys


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cma_tf.metrics.report import FULL_KEYS, SUMMARY_KEYS, format_metrics_table, format_per_class_table

    config = cli.config_value(_CONFIG)
    workdirs = _WORKDIRS.value
    names = _NAMES.value or [os.path.basename(os.path.normpath(w)) for w in workdirs]
    if len(names) != len(workdirs):
        raise app.UsageError(f"--names has {len(names)} entries but --workdirs has {len(workdirs)}")
    vocabulary, rows, keys = cli.run_reporting_user_errors(evaluate_workdirs, config, workdirs, names, _CHECKPOINT.value)
    if keys == FULL_KEYS and not _FULL.value:
        keys = SUMMARY_KEYS
    table = format_metrics_table(rows, keys)
    if _PER_CLASS.value:
        per_class = {name: [metrics["AP_per_class"][label] for label in vocabulary] for name, metrics in rows.items()}
        table += "\n\nAP (%) per label:\n\n" + format_per_class_table(vocabulary, per_class)
    print(f"\nMetrics (%) on split '{_CONFIG.value.data.eval_split}' of {_CONFIG.value.data.data_dir}:\n")
    print(table)
    if _OUTPUT.value:
        with open(_OUTPUT.value, "w") as f:
            f.write(table + "\n")


if __name__ == "__main__":
    cli.run(main)
