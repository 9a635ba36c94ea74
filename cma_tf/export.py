"""Exports a trained workdir as a TF Serving SavedModel: `python -m cma_tf.export`.

    python -m cma_tf.export --workdir=runs/demo/cma --export_dir=models/cma/1

writes a versioned SavedModel (TF Serving serves `models/cma` and picks the highest number)
with the signatures of `cma_tf/serving/module.py`:

    serving_default   encoded images (image models) or serialized YouTube-8M records
                      (video models), tf.string [B] → scores, top_k_{classes,labels,scores}, valid
    predict_pixels    image models: float32 [B, S, S, 3] RGB 0..255 → the same without valid
    predict_frames    video models: float32 [B, T, D] → the same without valid

The label vocabulary ships as `assets/labels.txt`; `assets.extra/cma_tf.json` records the
signatures, K and the training config. Check the result with
`saved_model_cli show --dir models/cma/1 --all`.
"""

import os

from absl import app, flags, logging

from cma_tf import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "The training workdir to export (holds config.json and final.keras).")
_EXPORT_DIR = flags.DEFINE_string(
    "export_dir", None,
    "Where to write the SavedModel: a numbered version folder inside the model's base folder, "
    "e.g. models/cma/1 (TF Serving loads the highest number). Local or gs://.",
)
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"],
    "Which model of the workdir: 'final' (end of training) or 'best' (best val_mAP epoch; val_GAP for video).",
)
_TOP_K = flags.DEFINE_integer(
    "top_k", 5, "Labels returned per item (top_k_labels/top_k_scores); at most the vocabulary size.", lower_bound=1,
)
_VOCABULARY = flags.DEFINE_string(
    "vocabulary", None,
    "For a run trained before labels.txt was kept, whose dataset is gone: its label names, one a line "
    "(line = class id), or a YouTube-8M vocabulary.csv. It must list the run's labels in their order "
    "(refused otherwise, naming the first id that differs): it never renames or reorders them. "
    "Default: the workdir's labels.txt, else the vocabulary of the training config's dataset.",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False,
    "Replace an existing --export_dir that is one SavedModel version (e.g. models/cma/2; its other "
    "versions and files stay). A base folder (models/cma) is never replaced. Default: refuse.",
)
flags.mark_flags_as_required(["workdir", "export_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logging.set_verbosity(logging.WARNING)  # TensorFlow's SavedModel writer logs every step at INFO
    version = os.path.basename(os.path.normpath(_EXPORT_DIR.value))
    if not version.isdigit():
        print(
            f"warning: {_EXPORT_DIR.value} does not end in a version number; TF Serving loads "
            "<base>/<number>/ (e.g. --export_dir=models/cma/1)"
        )
    from cma_tf.serving.saved_model import export_workdir

    info = cli.run_reporting_user_errors(
        export_workdir, _WORKDIR.value, _EXPORT_DIR.value, _CHECKPOINT.value, _TOP_K.value,
        _VOCABULARY.value, _OVERWRITE.value,
    )
    print(f"exported {info['model']} to {_EXPORT_DIR.value} ({info['num_classes']} labels, top {info['top_k']})")
    for name, signature in info["signatures"].items():
        inputs = ", ".join(f"{key}: {spec}" for key, spec in signature["inputs"].items())
        outputs = ", ".join(f"{key}: {spec}" for key, spec in signature["outputs"].items())
        print(f"  {name}({inputs})\n      → {outputs}")


if __name__ == "__main__":
    cli.run(main)
