"""Pictures of what a trained model learned: `python -m cma_tf.visualize <what> …`.

    attention    per input item, the attention maps of the top-k labels (the paper's Fig. 4: every
                 scale for MS-CMA; a row per workdir when several are given, e.g. self-attention
                 beside CMA), laid over the image; for a video model, each label's attention over
                 the frames (Fig. 5). One PNG per item in --out.
    embeddings   the label graph A' the embeddings were fitted to beside the learned cos(e_i, e_j),
                 labels ordered by a clustering of A' so co-occurring ones form blocks (Fig. 3); the
                 ASGE loss curve; the embeddings on two principal axes, named. Three PNGs in --out.

Examples:
    python -m cma_tf.visualize attention --workdir=runs/demo/ms_cma --input=photos/ --out=attention/
    python -m cma_tf.visualize attention --workdir=runs/demo/cma,runs/demo/self_attention \\
        --input='runs/demo/data/val-*.tfrecord' --max_items=8 --out=attention/
    python -m cma_tf.visualize embeddings --workdir=runs/demo/ms_cma --out=embeddings/
"""

import sys

from absl import app, flags

from cma_tf import cli

SUBCOMMANDS = ("attention", "embeddings")

_WORKDIR = flags.DEFINE_list(
    "workdir", None,
    "Training workdir(s). attention: comma-separated; the first one's top-k labels are shown, the others' maps "
    "for the same labels in the rows below (they must score the same labels on the same kind of input). "
    "embeddings: one.",
)
_INPUT = flags.DEFINE_list(
    "input", None,
    "attention: comma-separated image files, folders (every image below them), TFRecord files (image records, "
    "or YouTube-8M records for video models) or glob patterns; local or gs://.",
)
_OUT = flags.DEFINE_string("out", None, "Folder to write the PNG files into (created if missing).")
_TOP_K = flags.DEFINE_integer("top_k", 3, "attention: labels shown per item (the first workdir's highest scores).")
_MAX_ITEMS = flags.DEFINE_integer("max_items", None, "attention: stop after this many items (default: every item).")
_CHECKPOINT = flags.DEFINE_enum(
    "checkpoint", "final", ["final", "best"], "Each workdir's 'final' or 'best' (best validation) model."
)
flags.mark_flags_as_required(["workdir", "out"])


def main(argv):
    if len(argv) != 2 or argv[1] not in SUBCOMMANDS:
        raise app.UsageError(f"give one of: {', '.join(SUBCOMMANDS)} (e.g. python -m cma_tf.visualize attention …)")
    if argv[1] == "embeddings":
        embeddings()
    else:
        attention()


def attention():
    if not _INPUT.value:
        raise app.UsageError("attention needs --input (images, folders or TFRecords)")
    from cma_tf.visualization.attention_figures import write_attention_figures

    written, skipped = cli.run_reporting_user_errors(
        write_attention_figures, _WORKDIR.value, _INPUT.value, _OUT.value, _TOP_K.value, _CHECKPOINT.value,
        _MAX_ITEMS.value,
    )
    if skipped:
        shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10 else "")
        print(f"warning: {len(skipped)} items did not decode and were skipped: {shown}", file=sys.stderr)
    print(f"wrote {len(written)} attention figures to {_OUT.value}")


def embeddings():
    if len(_WORKDIR.value) != 1:
        raise app.UsageError("embeddings reads one --workdir")
    from cma_tf.visualization.embedding_figures import LOSS, write_embedding_figures

    paths, rmse, pearson = cli.run_reporting_user_errors(
        write_embedding_figures, _WORKDIR.value[0], _OUT.value, _CHECKPOINT.value
    )
    if LOSS not in paths:
        print("note: this run's ASGE report has no loss curve (fitted before it was kept): no asge_loss.png",
              file=sys.stderr)
    print(f"cos(e_i, e_j) against A' off the diagonal: RMSE {rmse:.4f}, Pearson r {pearson:.3f}")
    print(f"wrote {', '.join(sorted(paths.values()))}")


if __name__ == "__main__":
    cli.run(main)
