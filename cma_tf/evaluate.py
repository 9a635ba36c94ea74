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
thresholds, and `cma_tf.export` carries them into the SavedModel. The thresholds decide on whole
examples, as the exported model scores them: a run evaluated on rated YouTube-8M segments is
calibrated on SPLIT's whole videos (the published train split has no rated segments), and its
segment metrics are not reported at them.

Every row and `eval_metrics_*.json` / `.md` says what it was scored on (images, videos, rated
segments): a GAP of segments and one of videos are different measures.

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
    "sorted by the size of the first two workdirs' difference, precision-recall curves, the labels most often "
    "predicted where absent (at each run's thresholds, which it names), and attention maps of a few validation "
    "images (image runs). Needs workdirs trained on the same labels (else: one report per workdir).",
)
_CALIBRATE = flags.DEFINE_string(
    "calibrate", None,
    "A split (e.g. a held-out part of train) on which to choose each label's threshold to maximise its F1; "
    "written to <workdir>/thresholds_<checkpoint>.json, used by export (the SavedModel's `predicted`) and "
    "reported beside the 0.5 threshold (CF1_calibrated, OF1_calibrated). Refused when it is the evaluated split. "
    "A run evaluated on rated YouTube-8M segments is calibrated on SPLIT's whole videos (what the exported model "
    "scores; e.g. --calibrate=train), and its segment metrics are not reported at those thresholds.",
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

    Every workdir's config, labels and records are checked before any model runs; `same_labels`
    (the flag that needs it, e.g. "--per_class" or "--report=DIR"; True: "--per_class") also
    requires all workdirs to have the same labels (a per-label table). With `calibrate_split`,
    each label's threshold is first chosen to maximise its F1 on that split's whole examples
    (`metrics/thresholds.py`) and written to `<workdir>/thresholds_<checkpoint>.json`; a run with
    such a file is also scored at its thresholds (`CP_calibrated` … `OF1_calibrated`), unless it
    is evaluated on rated segments. Each row's `evaluated_on` says what was scored (images,
    videos, rated segments). A `predictions` dict receives `{name: (scores, targets)}` of the
    evaluated split."""
    import keras
    import numpy as np
    import tensorflow as tf

    from cma_tf import factory
    from cma_tf.atomic import write_text
    from cma_tf.data.record_files import describe_read_failure
    from cma_tf.data.vocab import first_difference
    from cma_tf.errors import ConfigError, DataError
    from cma_tf.metrics.image import per_class_average_precision, precision_recall_f1
    from cma_tf.metrics.thresholds import decide
    from cma_tf.metrics.report import format_metrics_table
    from cma_tf.training import workdir as files
    from cma_tf.training.callbacks import predict_scores
    from cma_tf.training.unseen_labels import print_labels_without_training_examples
    from cma_tf.training.non_finite import non_finite_scores_error

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
        kind = factory.data_kind(config)
        for split in (config.data.eval_split, calibrate_split):
            if split is not None:
                kind.list_run_files(whole_examples(config) if split == calibrate_split else config, split, workdir,
                                    "point --data_dir at such records")
        runs[name] = (config, vocabulary)
    kinds = {factory.data_kind(config) for config, _ in runs.values()}
    if len({kind.full_keys for kind in kinds}) > 1:
        formats = ", ".join(sorted(kind.name for kind in kinds))
        raise ConfigError(
            f"--workdirs mixes runs of data kinds whose metrics differ ({formats}): evaluate them separately"
        )
    first_name, (_, first_labels) = next(iter(runs.items()))
    differing = [name for name, (_, vocabulary) in runs.items() if vocabulary != first_labels]
    if same_labels and differing:
        flag = same_labels if isinstance(same_labels, str) else "--per_class"
        raise ConfigError(
            f"{flag.split('=')[0]} compares each label's AP across the workdirs, but {differing[0]}'s labels are not "
            f"{first_name}'s ({first_difference(first_labels, runs[differing[0]][1])}): "
            + ("run one report per workdir: " if flag.startswith("--report") else "evaluate them one at a time: ")
            + " and ".join(_command_for_one(flag, name, workdir) for name, workdir in zip(names, workdirs))
        )
    keys = next(iter(kinds)).full_keys if full else next(iter(kinds)).summary_keys
    rows = {}
    for name, workdir in zip(names, workdirs):
        config, vocabulary = runs[name]
        kind = factory.data_kind(config)
        model = keras.saving.load_model(files.trained_model_path(workdir, checkpoint))
        segments = kind.evaluates_segments(config)
        if calibrate_split is not None:
            calibration = factory.build_dataset(whole_examples(config), len(vocabulary), calibrate_split, training=False)
            examples, kept = files.write_thresholds(
                workdir, checkpoint, calibrate_split, vocabulary, *predict_scores(model, calibration)
            )
            chosen_on = (f"the whole videos of split '{calibrate_split}' ({examples} videos; what the exported model "
                         "scores, not reported beside the segment metrics)") if segments else (
                         f"split '{calibrate_split}' ({examples} examples)")
            print(f"{workdir}: thresholds chosen on {chosen_on}"
                  + (f"; {kept} labels without positives there keep 0.5" if kept else ""))
        dataset = factory.build_dataset(config, len(vocabulary), config.data.eval_split, training=False)
        try:
            scores, targets = predict_scores(model, dataset)
        except tf.errors.DataLossError as error:  # a truncated shard: name the file and record
            files_read = factory.list_data_files(config, config.data.eval_split)
            raise DataError(describe_read_failure(files_read, error)) from None
        if not np.isfinite(scores).all():
            raise non_finite_scores_error(config, config.data.eval_split, workdir)
        print_labels_without_training_examples(config, vocabulary, targets, prefix=f"{workdir}: ")
        if predictions is not None:
            predictions[name] = (scores, targets)
        metrics = kind.metrics(scores, targets)
        thresholds = files.read_thresholds(workdir, checkpoint, vocabulary)
        if thresholds is not None and not segments:
            calibrated = precision_recall_f1(decide(scores, thresholds), targets)
            metrics.update({f"{key}_calibrated": value for key, value in calibrated.items()})
        per_class = per_class_average_precision(scores, targets)
        metrics["AP_per_class"] = {label: float(ap) for label, ap in zip(vocabulary, per_class)}
        metrics["evaluated_on"] = kind.evaluation_unit(config)
        files.write_json(files.path(workdir, f"eval_metrics_{checkpoint}.json"), metrics)
        table = format_metrics_table({name: metrics}, kind.full_keys)
        heading = (f"Metrics (%) of {name} ({checkpoint} model) on {describe_splits({name: runs[name]})}, "
                   f"scored on {metrics['evaluated_on']}:")
        write_text(files.path(workdir, f"eval_metrics_{checkpoint}.md"), f"{heading}\n\n{table}\n")
        rows[name] = metrics
    if any("CF1_calibrated" in metrics for metrics in rows.values()):
        keys = tuple(keys) + ("CF1_calibrated", "OF1_calibrated")
    return rows, keys, runs


def whole_examples(config):
    """`config` reading whole examples: a run evaluated on rated segments, as its exported model
    scores whole videos (the thresholds decide on those; the train split has no rated segments)."""
    if not config.data.eval_segments:
        return config
    whole = config.copy_and_resolve_references()
    whole.data.eval_segments = False
    return whole


def _command_for_one(flag, name, workdir):
    """The evaluate command for one workdir with `flag`, a report in a folder of its own."""
    if flag.startswith("--report="):
        flag = f"--report={os.path.join(flag.split('=', 1)[1], name)}"
    return f"python -m cma_tf.evaluate --workdirs={workdir} {flag}"


def write_html_report(report_dir, workdirs, names, checkpoint, rows, keys, runs, predictions, examples=3):
    """`report_dir/index.html` (`visualization/report.py`) with, when a run's head has maps, the
    attention of the first such run on the first `examples` images of its evaluated split (image
    runs; a video run's page names the command that draws its attention over the frames). Each
    run's false positives are counted at its own thresholds, which the page names."""
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
    thresholds, threshold_notes = {}, {}
    for name, workdir in zip(names, workdirs):
        config, run_vocabulary = runs[name]
        stored = files.read_thresholds(workdir, checkpoint, run_vocabulary)
        if stored is not None and not factory.data_kind(config).evaluates_segments(config):
            thresholds[name] = stored
            split = files.read_json(files.thresholds_path(workdir, checkpoint)).get("split")
            threshold_notes[name] = f"At its per-label thresholds chosen on split '{split}' (calibrated)."
        else:
            thresholds[name] = np.full(len(run_vocabulary), DEFAULT_THRESHOLD)
            threshold_notes[name] = f"At {DEFAULT_THRESHOLD} for every label " + (
                "(its calibrated thresholds are for whole videos, not rated segments)." if stored is not None
                else "(not calibrated).")
    units = {factory.data_kind(config).evaluation_unit(config) for config, _ in runs.values()}
    items = next(iter(units)) if len(units) == 1 else "examples"
    attention, note = None, "no evaluated run has a head with attention maps (plain, mlgcn)."
    for name, workdir in zip(names, workdirs):
        config, run_vocabulary = runs[name]
        if not factory.data_kind(config).reads_images:
            note = (f"{name} reads videos; its attention over the frames is drawn by python -m cma_tf.visualize "
                    f"attention --workdir={workdir} --input='{os.path.join(config.data.data_dir, config.data.eval_split)}"
                    "*.tfrecord' --max_items=3 --out=DIR.")
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
    scored_on = f", scored on {items}" if len(units) == 1 else ""
    title = f"cma_tf evaluation: {', '.join(names)} on {describe_splits(runs)}{scored_on} ({checkpoint} models)"
    path = os.path.join(report_dir, "index.html")
    write_report(path, rows, keys, predictions, vocabulary, thresholds, title, attention, note,
                 threshold_notes=threshold_notes, items=items)
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
    same_labels = f"--report={_REPORT.value}" if _REPORT.value else ("--per_class" if _PER_CLASS.value else "")
    rows, keys, runs = cli.run_reporting_user_errors(
        evaluate_workdirs, workdirs, names, _CHECKPOINT.value, overrides, same_labels,
        _FULL.value, _CALIBRATE.value, predictions,
    )
    units = {metrics["evaluated_on"] for metrics in rows.values()}
    if len(units) > 1:  # a GAP of rated segments beside one of whole videos: each row says which
        table = format_metrics_table({f"{name} ({m['evaluated_on']})": m for name, m in rows.items()}, keys)
        table += "\n\nRows scored on different items (" + ", ".join(sorted(units)) + ") are different measures."
    else:
        table = format_metrics_table(rows, keys)
    if _PER_CLASS.value:
        vocabulary = next(iter(runs.values()))[1]
        per_class = {name: [metrics["AP_per_class"][label] for label in vocabulary] for name, metrics in rows.items()}
        table += "\n\nAP (%) per label:\n\n" + format_per_class_table(vocabulary, per_class)
    scored_on = f", scored on {next(iter(units))}" if len(units) == 1 else ""
    print(f"\nMetrics (%) on {describe_splits(runs)}{scored_on}:\n")
    print(table)
    if _OUTPUT.value:
        from cma_tf.atomic import write_text

        write_text(_OUTPUT.value, table + "\n")
    if _REPORT.value:
        path = write_html_report(_REPORT.value, workdirs, names, _CHECKPOINT.value, rows, keys, runs, predictions)
        print(f"report: {path}")


if __name__ == "__main__":
    cli.run(main)
