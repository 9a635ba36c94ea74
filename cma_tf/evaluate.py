"""Evaluates trained workdirs: `python -m cma_tf.evaluate --workdirs=a,b,…`.

Loads each workdir's final model (or, with `--checkpoint=best`, the epoch with the best
validation mAP/GAP, which was chosen on this same split), runs it over the eval split of the
dataset it was trained on, each with its own `config.json` (image size, frames, features,
data directory), writes `<workdir>/eval_metrics_{final,best}.json` and `.md` (images: mAP,
CP, CR, CF1, OP, OR, OF1 at threshold 0.5 and for the top-3 labels; YouTube-8M: GAP, Hit@1,
PERR, mAP, on the rated segments when `config.data.eval_segments`) and prints one table
comparing the workdirs. Only where the data is, the split and the batch size can be given.

With `--calibrate=SPLIT` each label's threshold is chosen to maximise its F1 on SPLIT (not the
evaluated one) and stored in the workdir; from then on the metrics are also reported at those
thresholds, and `cma_tf.export` carries them into the SavedModel.

Example:
    python -m cma_tf.evaluate --workdirs=runs/demo/plain,runs/demo/cma
    python -m cma_tf.evaluate --workdirs=runs/demo/plain,runs/demo/cma --data_dir=/moved/demo/data --eval_split=test
"""

import os

from absl import app, flags
from ml_collections import config_flags

from cma_tf import cli

_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "Optional (older command lines): each workdir is evaluated with its own config.json, not this "
    "file's values. Only its --config.<field>=… overrides are used: data.data_dir, data.tfds_data_dir, "
    "data.vocabulary, data.label_graph, data.eval_split and train.eval_batch_size apply to every workdir; any other "
    "overridden field must equal each workdir's own value.",
)
_WORKDIRS = flags.DEFINE_list("workdirs", None, "Comma-separated training workdirs to evaluate.")
_DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "The dataset of every workdir, if it moved (default: each workdir's config.data.data_dir)."
)
_EVAL_SPLIT = flags.DEFINE_string(
    "eval_split", None, "The split to evaluate on (default: each workdir's config.data.eval_split)."
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, "Evaluation batch size (default: each workdir's config.train.eval_batch_size).", lower_bound=1
)
_NAMES = flags.DEFINE_list(
    "names", None, "Row names for the table, one per workdir (default: the workdir's base name)."
)
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"],
    "Which model of each workdir: 'final' (end of training) or 'best' (best val_mAP epoch; val_GAP for video).",
)
_FULL = flags.DEFINE_bool("full", False, "Print every metric, not only mAP / CF1 / OF1 (images; video always prints all four).")
_PER_CLASS = flags.DEFINE_bool(
    "per_class", False,
    "Also print each label's AP for every workdir (always stored in <workdir>/eval_metrics_final.json, "
    "or eval_metrics_best.json with --checkpoint=best).",
)
_OUTPUT = flags.DEFINE_string("output", None, "Also write the table as Markdown to this file.")
_REPORT = flags.DEFINE_string(
    "report", None,
    "Also write DIR/index.html: one self-contained page (pictures inline) with the metric table, per-label AP "
    "sorted by the workdirs' difference, precision-recall curves, the labels most often predicted where absent, "
    "and attention maps of a few validation images. Needs workdirs trained on the same labels.",
)
_CALIBRATE = flags.DEFINE_string(
    "calibrate", None,
    "A split (e.g. a held-out part of train) on which to choose each label's threshold to maximise its F1; "
    "written to <workdir>/thresholds_<checkpoint>.json, used by export (the SavedModel's `predicted`) and "
    "reported beside the 0.5 threshold (CF1_calibrated, OF1_calibrated). Refused when it is the evaluated split.",
)
flags.mark_flags_as_required(["workdirs"])

# Command-line flags → the config field each overrides.
_FLAG_FIELDS = (("data_dir", "data.data_dir"), ("eval_split", "data.eval_split"), ("batch_size", "train.eval_batch_size"))


def evaluate_workdirs(workdirs, names, checkpoint="final", overrides=None, same_labels=False, full=True,
                      calibrate_split=None, predictions=None):
    """Evaluates each workdir with its own config (plus `overrides`, see
    `workdir.evaluation_config`); returns `(rows, keys, runs)`: the metrics per name, the metric
    keys of the data's kind (all of them with `full`, else its summary; plus the calibrated
    CF1/OF1 when any run has thresholds) and `{name: (config, vocabulary)}`.

    Every workdir's config and labels are checked before any model runs; `same_labels` also
    requires all workdirs to have the same labels (a per-label table). With `calibrate_split`,
    each label's threshold is first chosen to maximise its F1 on that split
    (`metrics/thresholds.py`) and written to `<workdir>/thresholds_<checkpoint>.json`; a run with
    such a file is also scored at its thresholds (`CP_calibrated` … `OF1_calibrated`). A
    `predictions` dict receives `{name: (scores, targets)}` of the evaluated split."""
    import keras
    import tensorflow as tf

    from cma_tf import factory
    from cma_tf.atomic import write_text
    from cma_tf.data.record_files import describe_read_failure
    from cma_tf.errors import ConfigError, DataError
    from cma_tf.metrics.image import per_class_average_precision, precision_recall_f1
    from cma_tf.metrics.thresholds import decide
    from cma_tf.metrics.report import format_metrics_table
    from cma_tf.training import workdir as files
    from cma_tf.training.callbacks import predict_scores

    runs = {}
    for name, workdir in zip(names, workdirs):
        config = files.evaluation_config(workdir, overrides)
        vocabulary = factory.read_vocabulary(config)
        files.check_labels(workdir, vocabulary)
        if calibrate_split is not None and calibrate_split == config.data.eval_split:
            raise ConfigError(
                f"--calibrate={calibrate_split} is the split {workdir} is evaluated on: choose the thresholds on "
                "another split (e.g. a held-out part of train), or the reported metrics flatter them"
            )
        runs[name] = (config, vocabulary)
    kinds = {factory.data_kind(config) for config, _ in runs.values()}
    if len({kind.full_keys for kind in kinds}) > 1:
        formats = ", ".join(sorted(kind.name for kind in kinds))
        raise ConfigError(
            f"--workdirs mixes runs of data kinds whose metrics differ ({formats}): evaluate them separately"
        )
    if same_labels and len({tuple(vocabulary) for _, vocabulary in runs.values()}) > 1:
        raise ConfigError("--per_class needs workdirs trained on the same labels; theirs differ")
    kind = next(iter(kinds))
    keys = kind.full_keys if full else kind.summary_keys
    rows = {}
    for name, workdir in zip(names, workdirs):
        config, vocabulary = runs[name]
        model = keras.saving.load_model(files.trained_model_path(workdir, checkpoint))
        if calibrate_split is not None:
            calibration = factory.build_dataset(config, len(vocabulary), calibrate_split, training=False)
            examples, kept = files.write_thresholds(
                workdir, checkpoint, calibrate_split, vocabulary, *predict_scores(model, calibration)
            )
            print(f"{workdir}: thresholds chosen on split '{calibrate_split}' ({examples} examples)"
                  + (f"; {kept} labels without positives there keep 0.5" if kept else ""))
        dataset = factory.build_dataset(config, len(vocabulary), config.data.eval_split, training=False)
        try:
            scores, targets = predict_scores(model, dataset)
        except tf.errors.DataLossError as error:  # a truncated shard: name the file and record
            files_read = factory.list_data_files(config, config.data.eval_split)
            raise DataError(describe_read_failure(files_read, error)) from None
        if predictions is not None:
            predictions[name] = (scores, targets)
        metrics = kind.metrics(scores, targets)
        thresholds = files.read_thresholds(workdir, checkpoint, vocabulary)
        if thresholds is not None:
            calibrated = precision_recall_f1(decide(scores, thresholds), targets)
            metrics.update({f"{key}_calibrated": value for key, value in calibrated.items()})
        per_class = per_class_average_precision(scores, targets)
        metrics["AP_per_class"] = {label: float(ap) for label, ap in zip(vocabulary, per_class)}
        files.write_json(files.path(workdir, f"eval_metrics_{checkpoint}.json"), metrics)
        table = format_metrics_table({name: metrics}, kind.full_keys)
        write_text(files.path(workdir, f"eval_metrics_{checkpoint}.md"), table + "\n")
        rows[name] = metrics
    if any("CF1_calibrated" in metrics for metrics in rows.values()):
        keys = tuple(keys) + ("CF1_calibrated", "OF1_calibrated")
    return rows, keys, runs


def write_html_report(report_dir, workdirs, names, checkpoint, rows, keys, runs, predictions, examples=3):
    """`report_dir/index.html` (`visualization/report.py`) with, when a run's head has maps, the
    attention of the first such run on the first `examples` images of its evaluated split."""
    import base64

    import keras
    import numpy as np
    import tensorflow as tf

    from cma_tf import factory
    from cma_tf.metrics.thresholds import DEFAULT_THRESHOLD
    from cma_tf.training import workdir as files
    from cma_tf.visualization.attention import attention_maps, has_attention
    from cma_tf.visualization.figures import attention_grid
    from cma_tf.visualization.report import write_report

    tf.io.gfile.makedirs(report_dir)
    vocabulary = next(iter(runs.values()))[1]
    thresholds = {}
    for name, workdir in zip(names, workdirs):
        stored = files.read_thresholds(workdir, checkpoint, runs[name][1])
        thresholds[name] = stored if stored is not None else np.full(len(runs[name][1]), DEFAULT_THRESHOLD)
    attention, note = None, "No evaluated run has a head with attention maps (plain, mlgcn)."
    for name, workdir in zip(names, workdirs):
        config, run_vocabulary = runs[name]
        if not factory.data_kind(config).reads_images:
            note = "Attention grids are drawn for image runs (use `python -m cma_tf.visualize attention` for video)."
            break
        model = keras.saving.load_model(files.trained_model_path(workdir, checkpoint))
        if not has_attention(model):
            continue
        dataset = factory.build_dataset(config, len(run_vocabulary), config.data.eval_split, training=False)
        images, labels = next(iter(dataset.unbatch().batch(examples)))
        probabilities, maps = attention_maps(model, images)
        uris = []
        for i in range(len(images)):
            rows_i = [(f"scale {s + 1}" if len(maps) > 1 else name, probabilities[i], scale[i]) for s, scale in enumerate(maps)]
            top = [(int(k), run_vocabulary[k]) for k in np.argsort(-probabilities[i], kind="stable")[:3]]
            true = ", ".join(run_vocabulary[k] for k in np.flatnonzero(np.asarray(labels[i])))
            path = os.path.join(report_dir, f"attention_{i}.png")
            attention_grid(np.asarray(images[i]), rows_i, top, path, title=f"{name}, image {i}: true {true or '(none)'}")
            with tf.io.gfile.GFile(path, "rb") as f:
                uris.append("data:image/png;base64," + base64.b64encode(f.read()).decode("ascii"))
        attention = uris
        note = (f"{name}: the first {len(images)} images of split '{config.data.eval_split}', the top-3 labels' maps "
                "(every scale for multi-scale heads), each scaled to its own range.")
        break
    title = f"cma_tf evaluation: {', '.join(names)} on {describe_splits(runs)} ({checkpoint} models)"
    path = os.path.join(report_dir, "index.html")
    write_report(path, rows, keys, predictions, vocabulary, thresholds, title, attention, note)
    return path


def describe_splits(runs):
    """`split 'val' of data/x`, or one such phrase per workdir when they differ."""
    from cma_tf import factory

    splits = {name: f"split '{config.data.eval_split}' of {factory.data_kind(config).source(config)}" for name, (config, _) in runs.items()}
    if len(set(splits.values())) == 1:
        return next(iter(splits.values()))
    return "; ".join(f"{name}: {split}" for name, split in splits.items())


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cma_tf.metrics.report import format_metrics_table, format_per_class_table

    workdirs = _WORKDIRS.value
    names = _NAMES.value or [os.path.basename(os.path.normpath(w)) for w in workdirs]
    if len(names) != len(workdirs):
        raise app.UsageError(f"--names has {len(names)} entries but --workdirs has {len(workdirs)}")
    overrides = cli.command_line_overrides(_CONFIG, _FLAG_FIELDS)
    predictions = {} if _REPORT.value else None
    rows, keys, runs = cli.run_reporting_user_errors(
        evaluate_workdirs, workdirs, names, _CHECKPOINT.value, overrides, _PER_CLASS.value or bool(_REPORT.value),
        _FULL.value, _CALIBRATE.value, predictions,
    )
    table = format_metrics_table(rows, keys)
    if _PER_CLASS.value:
        vocabulary = next(iter(runs.values()))[1]
        per_class = {name: [metrics["AP_per_class"][label] for label in vocabulary] for name, metrics in rows.items()}
        table += "\n\nAP (%) per label:\n\n" + format_per_class_table(vocabulary, per_class)
    print(f"\nMetrics (%) on {describe_splits(runs)}:\n")
    print(table)
    if _OUTPUT.value:
        from cma_tf.atomic import write_text

        write_text(_OUTPUT.value, table + "\n")
    if _REPORT.value:
        path = write_html_report(_REPORT.value, workdirs, names, _CHECKPOINT.value, rows, keys, runs, predictions)
        print(f"report: {path}")


if __name__ == "__main__":
    cli.run(main)
