"""Batch prediction: `python -m cma_tf.predict --model=… --input=… --output=….csv|.jsonl`.

Scores image files, folders of images or TFRecords (image records, or YouTube-8M records for
video models) with an exported SavedModel or straight from a training workdir, through the
same `serving_default` graph TF Serving runs (decoding and resizing included), and writes the
top-k labels and scores of every item. An item that does not decode is written with
`valid=0` and listed at the end with the reason; it does not stop the run.

Examples:
    python -m cma_tf.predict --model=models/cma/1 --input=photos/ --output=predictions.csv
    python -m cma_tf.predict --model=runs/demo/cma --input='runs/demo/data/val-*.tfrecord' \\
        --output=val.jsonl --top_k=3
"""

import sys

from absl import app, flags

from cma_tf import cli

_MODEL = flags.DEFINE_string(
    "model", None,
    "An exported SavedModel folder (holds saved_model.pb, e.g. models/cma/1) or a training workdir "
    "(holds config.json; its model is used directly, without exporting).",
)
_INPUT = flags.DEFINE_list(
    "input", None,
    "Comma-separated image files, folders (every .jpg/.jpeg/.png/.gif/.bmp/.webp/.tif/.tiff below them), TFRecord "
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
_VOCABULARY = flags.DEFINE_string(
    "vocabulary", None,
    "With a workdir trained before labels.txt was kept, whose dataset is gone: its label names, one a "
    "line, or a YouTube-8M vocabulary.csv. It must list the run's labels in their order (refused "
    "otherwise, naming the first id that differs): it never renames or reorders them. Default: the "
    "workdir's labels.txt, else its training dataset's vocabulary. (A SavedModel carries its own.)",
)
_PROGRESS = flags.DEFINE_bool("progress", True, "Show a progress bar on stderr.")
flags.mark_flags_as_required(["model", "input", "output"])

FLAGGED_SHOWN = 10


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    from cma_tf.serving.batch_predict import predict

    summary = cli.run_reporting_user_errors(
        predict, _MODEL.value, _INPUT.value, _OUTPUT.value, _BATCH_SIZE.value, _TOP_K.value,
        _CHECKPOINT.value, _PROGRESS.value, _VOCABULARY.value,
    )
    rate = summary["items"] / max(summary["seconds"], 1e-9)
    print(f"{summary['items']} items scored by {summary['source']} ({rate:.1f} items/s) → {_OUTPUT.value}")
    flagged = summary["flagged"]
    if flagged:
        shown = ", ".join(flagged[:FLAGGED_SHOWN]) + (", …" if len(flagged) > FLAGGED_SHOWN else "")
        print(f"warning: {len(flagged)} items did not decode (valid=0 in the output): {shown}", file=sys.stderr)


if __name__ == "__main__":
    cli.run(main)
