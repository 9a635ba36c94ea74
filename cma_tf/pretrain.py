"""Pretrains the small backbone on the generated corpus and writes its weights and provenance.

    nice python -m cma_tf.pretrain --out=cma_tf/backbones/preset_files/small_synthetic.weights.h5

is the command that made the shipped preset "small_synthetic" (`backbones/presets.py`; its
provenance JSON records the exact command, figures and machine). docs/design.md §2.26 says what
the corpus is and why. Writes `<out>` (the backbone's weights, Keras `.weights.h5`) and
`<out without .weights.h5>.provenance.json` beside it, each atomically; after regenerating the
preset, put the new sha256 (printed, and in the JSON) into `backbones/presets.py`.
"""

import json
import shlex
import sys

from cma_tf.datasets import pretrain_corpus
from cma_tf.training.pretrain_backbone import Recipe, provenance_path, run_pretraining

DEFAULTS = Recipe()
DEFAULT_NUM_TRAIN = 28_800  # 300 per class: the shipped preset's
DEFAULT_NUM_HELDOUT = 4_800  # 50 per class


def define_flags(flag_values=None):
    """Defines the command's flags on `flag_values` (absl's global FLAGS by default)."""
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("out", None, "The weights file to write (must end in .weights.h5); the provenance "
                        "JSON is written beside it as <name>.provenance.json. Both are replaced atomically.",
                        flag_values=fv)
    flags.DEFINE_integer("num_train", DEFAULT_NUM_TRAIN, "Training images rendered (class i % 96 for image "
                         "i, so every class has the same number).", flag_values=fv)
    flags.DEFINE_integer("num_heldout", DEFAULT_NUM_HELDOUT, "Held-out images (their own random streams) "
                         "on which the top-1 accuracy in the provenance is measured.", flag_values=fv)
    flags.DEFINE_integer("corpus_seed", 0, "Seed of the corpus; the same seed renders the same images.",
                         flag_values=fv)
    flags.DEFINE_integer("image_size", pretrain_corpus.DEFAULT_IMAGE_SIZE, "Side of the images in pixels (a "
                         "multiple of 16); the benchmark's small backbone runs at 96.", flag_values=fv)
    flags.DEFINE_list("widths", ["32", "64", "128", "256"], "The small backbone's widths: stem and the "
                      "three stages (config.model.backbone_widths must match them to load the weights).",
                      flag_values=fv)
    flags.DEFINE_integer("epochs", DEFAULTS.epochs, "Passes over the training images.", flag_values=fv)
    flags.DEFINE_integer("batch_size", DEFAULTS.batch_size, "Training images per step (the held-out evaluation uses batches of 256).", flag_values=fv)
    flags.DEFINE_float("learning_rate", DEFAULTS.learning_rate, "AdamW's peak learning rate (after the "
                       "warm-up; then cosine decay to 0 at the last step).", flag_values=fv)
    flags.DEFINE_float("weight_decay", DEFAULTS.weight_decay, "AdamW's decoupled weight decay (not applied "
                       "to BatchNorm scales/offsets and biases).", flag_values=fv)
    flags.DEFINE_float("warmup_epochs", DEFAULTS.warmup_epochs, "Epochs of linear learning-rate warm-up "
                       "from 0.", flag_values=fv)
    flags.DEFINE_integer("seed", DEFAULTS.seed, "Keras' seed: weight initialisation and shuffling.",
                         flag_values=fv)
    flags.DEFINE_bool("progress", True, "Show progress bars (rendering, and Keras' per-epoch bar); "
                      "--noprogress prints one line per epoch instead.", flag_values=fv)
    flags.mark_flag_as_required("out", flag_values=fv)
    return fv


def run_from_flags(fv) -> dict:
    """Pretrains as the parsed flags say and prints the figures and the files written."""
    from cma_tf.errors import ConfigError

    try:
        widths = tuple(int(w) for w in fv.widths)
    except ValueError:
        raise ConfigError(f"--widths={','.join(fv.widths)}: four integers, e.g. 32,64,128,256") from None
    if len(widths) != 4:
        raise ConfigError(f"--widths={','.join(fv.widths)}: four integers (stem and three stages)")
    for name in ("num_train", "num_heldout", "epochs", "batch_size"):
        if fv[name].value < 1:
            raise ConfigError(f"--{name}={fv[name].value}: must be at least 1")
    recipe = Recipe(epochs=fv.epochs, batch_size=fv.batch_size, learning_rate=fv.learning_rate,
                    weight_decay=fv.weight_decay, warmup_epochs=fv.warmup_epochs, seed=fv.seed)
    command = " ".join(["python -m cma_tf.pretrain"] + [shlex.quote(a) for a in sys.argv[1:]])
    provenance = run_pretraining(fv.out, fv.num_train, fv.num_heldout, fv.corpus_seed, recipe,
                                 image_size=fv.image_size, widths=widths, command=command, progress=fv.progress)
    result, seconds = provenance["result"], provenance["wall_time_seconds"]
    print(f"{fv.out}: held-out top-1 {result['heldout_top1']:.4f} over {provenance['corpus']['num_classes']} "
          f"classes (chance {result['chance_top1']}); {seconds['total']:.0f} s; sha256 {provenance['sha256']}")
    print(f"provenance: {provenance_path(fv.out)}")
    print(json.dumps({"heldout_top1": result["heldout_top1"], "sha256": provenance["sha256"],
                      "seconds": seconds["total"]}))
    return provenance


if __name__ == "__main__":
    from cma_tf import cli

    cli.run_flag_command(define_flags, run_from_flags, interrupted_hint="nothing was written; run the same command again")
