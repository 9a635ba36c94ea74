"""Batch prediction: `python -m cma_tf.predict --model=… --input=… --output=….csv|.jsonl`.

Scores image files, folders of images or TFRecords (image records, or YouTube-8M records for
video models) with an exported SavedModel or straight from a training workdir, through the
same `serving_default` graph TF Serving runs (decoding and resizing included), and writes the
top-k labels and scores of every item. An item that does not decode is written with
`valid=0` and listed at the end; it does not stop the run.

Examples:
    python -m cma_tf.predict --model=models/cma/1 --input=photos/ --output=predictions.csv
    python -m cma_tf.predict --model=runs/demo/cma --input='runs/demo/data/val-*.tfrecord' \\
        --output=val.jsonl --top_k=3
"""

import sys
import time

from absl import app, flags

from cma_tf import cli

_MODEL = flags.DEFINE_string(
    "model", None,
    "An exported SavedModel folder (holds saved_model.pb, e.g. models/cma/1) or a training workdir "
    "(holds config.json; its model is used directly, without exporting).",
)
_INPUT = flags.DEFINE_list(
    "input", None,
    "Comma-separated image files, folders (every .jpg/.jpeg/.png/.gif/.bmp below them), TFRecord "
    "files (.tfrecord/.tfrecords/.tfrec) or glob patterns of them; local or gs://.",
)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Where to write the predictions: a .csv (id,valid,label_1,score_1,…) or .jsonl file.",
)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 32, "Items per call of the model.")
_TOP_K = flags.DEFINE_integer(
    "top_k", None,
    "Labels written per item. Default: the SavedModel's K (set at export), or 5 for a workdir. "
    "A SavedModel cannot give more than its K.",
)
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"], "With a workdir: its 'final' or 'best' (best validation) model.",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
flags.mark_flags_as_required(["model", "input", "output"])

FLAGGED_SHOWN = 10


def predict(model, inputs, output, batch_size=32, top_k=None, checkpoint="final", progress=True):
    """Writes the predictions; returns a summary dict (items, flagged ids, seconds)."""
    from tqdm import tqdm

    from cma_tf.errors import ConfigError
    from cma_tf.serving import sources
    from cma_tf.serving.predictions import PredictionWriter, format_of
    from cma_tf.serving.predictor import is_saved_model, load_predictor

    format_of(output)  # a bad --output name fails before the model loads
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {batch_size}")
    files = sources.expand_inputs(inputs)
    if not is_saved_model(model):
        import tensorflow as tf

        from cma_tf.training import workdir as run_files

        if not tf.io.gfile.exists(run_files.path(model, run_files.CONFIG)):
            raise FileNotFoundError(
                f"--model {model} is neither a SavedModel (no saved_model.pb) nor a training workdir (no config.json)"
            )
    predictor = load_predictor(model, checkpoint, top_k or 5)
    if top_k is not None and top_k > predictor.top_k:
        raise ConfigError(f"--top_k={top_k} but {model} returns its top {predictor.top_k} labels (set at export)")
    k = top_k or predictor.top_k
    flagged, count, start = [], 0, time.perf_counter()
    with PredictionWriter(output, k) as writer, tqdm(
        total=sources.known_count(files), unit=" items", desc="predict", disable=not progress
    ) as bar:
        for ids, items in sources.batches(files, predictor.input_name, batch_size):
            outputs = predictor(items)
            writer.write(ids, outputs)
            flagged.extend(item_id for item_id, valid in zip(ids, outputs["valid"]) if not valid)
            count += len(ids)
            bar.update(len(ids))
    return {"items": count, "flagged": flagged, "seconds": time.perf_counter() - start, "source": predictor.source}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    summary = cli.run_reporting_user_errors(
        predict, _MODEL.value, _INPUT.value, _OUTPUT.value, _BATCH_SIZE.value, _TOP_K.value,
        _CHECKPOINT.value, _PROGRESS.value,
    )
    rate = summary["items"] / max(summary["seconds"], 1e-9)
    print(f"{summary['items']} items scored by {summary['source']} ({rate:.1f} items/s) → {_OUTPUT.value}")
    flagged = summary["flagged"]
    if flagged:
        shown = ", ".join(flagged[:FLAGGED_SHOWN]) + (", …" if len(flagged) > FLAGGED_SHOWN else "")
        print(f"warning: {len(flagged)} items did not decode (valid=0 in the output): {shown}", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
