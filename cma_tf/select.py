r"""Which head for your data: `python -m cma_tf.select --data_dir=… --out=DIR`.

Tries each candidate head on your training split with the benchmark's protocol (docs/design.md
§2.28): the same grid of learning rates and schedules for every head, trained on the training
split minus a held-out 15 % (fixed by a seed) and chosen on that part; then the chosen point
with several seeds. Images are read through the pretrained backbone, frozen, once (the
`small_synthetic` preset, or your `--backbone_weights`); video heads train with their SNet/FC
on the decoded frames, and the YouTube-8M field's DBoF, NetVLAD and NeXtVLAD (candidates on
frame-level records) pool the frames themselves. The eval split is never read. Prints one table (mean ± std on the held-out
part, cost per example, step time relative to plain), calls ties ties (a gap within the sum of
the two stds) and recommends the cheapest head among the tied best; writes DIR/selected.py (train it with the command printed),
DIR/command.txt, DIR/summary.json and DIR/report.html. Killed, the same command resumes.

Examples:
    python -m cma_tf.select --data_dir=runs/demo/data --out=runs/select_demo --budget_minutes=30
    python -m cma_tf.select --data_dir=runs/yt8m_demo/data/frame --config=configs/yt8m_demo.py:plain_snet \
        --out=runs/select_video --heads=plain,self_attention,cma
    python -m cma_tf.select --data_dir=data/coco --backbone=resnet101 --backbone_weights=imagenet \
        --config=configs/coco.py:plain --out=runs/select_coco --budget_minutes=600
"""

import os
import sys

from absl import flags
from ml_collections import config_flags

from cma_tf import cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_CONFIGS = {  # data kind → config, when --config is not given (the repository's configs/)
    "image": "configs/demo.py:plain",
    "yt8m_frame": "configs/yt8m.py:plain_snet",
    "yt8m_video": "configs/yt8m.py:plain_fc_video",
}

_DATA_DIR = flags.DEFINE_string("data_dir", None, "The dataset: converted image records, YouTube-8M frame- or "
                                "video-level records, or the TFDS data directory with a TFDS config (e.g. "
                                "--config=configs/voc_tfds.py:plain).")
_CONFIG = config_flags.DEFINE_config_file(
    "config", None,
    "A config file (with ':<variant>'): the data format, backbone, image size, epochs and batch size of every run "
    "(its head is replaced by each candidate's). Default by the records in --data_dir: "
    + ", ".join(f"{kind}: {path}" for kind, path in DEFAULT_CONFIGS.items()) + ". Fields: --config.train.epochs=….")
_OUT = flags.DEFINE_string("out", None, "Where the cache, every run, selected.py, command.txt, summary.json and "
                           "report.html go. The same --out resumes a killed selection.")
_HEADS = flags.DEFINE_list("heads", [], "Candidate heads (default: plain, mlgcn, self_attention, cma, ml_decoder, q2l "
                           "for images; plain, self_attention, cma, ml_decoder for video, and on frame-level records "
                           "also the YouTube-8M field's dbof, netvlad, nextvlad, each over the raw frames; why: "
                           "cma_tf/selection/candidates.py).")
_BUDGET = flags.DEFINE_float("budget_minutes", 60.0, "Time the selection may take, estimated from each head's timed "
                             "train step; heads are taken cheapest first while they fit. Too small for two heads "
                             "with two seeds each is refused with the smallest budget that would do.")
_SEEDS = flags.DEFINE_integer("seeds", 3, "Seeds per head at its chosen point (at least 2).", lower_bound=2)
_EPOCHS = flags.DEFINE_integer("epochs", None, "Epochs of every run (default the config's).", lower_bound=1)
_BACKBONE = flags.DEFINE_enum("backbone", None, ["small", "resnet101", "convnext_small"],
                              "The image backbone (default the config's: small).")
_BACKBONE_WEIGHTS = flags.DEFINE_string(
    "backbone_weights", None, "The image backbone's weights: for small, the preset small_synthetic (default, also "
    "when the config names none: a frozen backbone of random weights reads nothing) or a .weights.h5 file; for "
    "resnet101 / convnext_small, imagenet or a weights file.")
_IMAGE_SIZE = flags.DEFINE_integer("image_size", None, "Image side (default the config's).", lower_bound=32)
flags.mark_flags_as_required(["data_dir", "out"])


def user_config():
    """The config of the selection: `--config` or the default of the data's kind, with the
    flags applied."""
    from cma_tf.config_base import load_config_file
    from cma_tf.kinds.found import youtube8m_data

    if flags.FLAGS["config"].present:
        config = cli.config_value(_CONFIG)
    else:
        found = youtube8m_data(_DATA_DIR.value)
        kind = "image" if found is None else ("yt8m_video" if "video-level" in found[0] else "yt8m_frame")
        path, _, variant = DEFAULT_CONFIGS[kind].partition(":")
        config = load_config_file(os.path.join(ROOT, path)).get_config(variant)
    if config.data.format == "tfds":  # a TFDS dataset is found by its name in its data directory
        config.data.tfds_data_dir, config.data.data_dir = _DATA_DIR.value, ""
    else:
        config.data.data_dir = _DATA_DIR.value
    if _EPOCHS.value:
        config.train.epochs = _EPOCHS.value
    if _BACKBONE.value:
        config.model.backbone = _BACKBONE.value
    if _BACKBONE_WEIGHTS.value:
        config.model.backbone_weights = _BACKBONE_WEIGHTS.value
    elif (config.data.format != "yt8m_frame" and config.data.format != "yt8m_video" and config.model.backbone == "small"
          and str(config.model.backbone_weights) in ("None", "", "random", "imagenet")):
        # A frozen backbone of random weights reads nothing: the small backbone's default here is the preset.
        config.model.backbone_weights = "small_synthetic"
    if _IMAGE_SIZE.value:
        config.data.image_size = _IMAGE_SIZE.value
    config.train.ema_decay = None  # one setting for every head (docs/design.md §2.27)
    return config


def cache_config(config):
    """The config the training split is cached with: whole examples (never rated segments)."""
    config = config.copy_and_resolve_references()
    config.data.eval_segments = False
    return config


def main(argv):
    if len(argv) > 1:
        from absl import app

        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf
    from tqdm import tqdm

    from cma_tf import factory
    from cma_tf.selection import chooser, grid, outputs

    tf.config.experimental.enable_op_determinism()  # a rerun, or a resumed run, gives the same table
    config = cli.run_reporting_user_errors(user_config)
    kind = factory.data_kind(config)
    out = _OUT.value
    os.makedirs(out, exist_ok=True)

    def bar(total, done):
        # seconds of training as the unit: the bar's "<remaining" is the time left
        return tqdm(total=max(1, round(total)), initial=min(round(done), round(total)), unit=" s of runs",
                    desc="select (estimated)", unit_scale=False, dynamic_ncols=True)

    source = config.data.data_dir or f"{config.data.tfds_name} in {config.data.tfds_data_dir}"
    result = cli.run_reporting_user_errors(
        chooser.choose, cache_config(config), _HEADS.value, out, _BUDGET.value, _SEEDS.value, progress_factory=bar,
        log=lambda line: print(line, file=sys.stderr))
    summary, metric, plan = result["summary"], result["metric"], result["plan"]
    print(f"\nHeads on {source} ({kind.name}), {config.train.epochs} epoch(s) a run, held-out "
          f"{len(result['holdout_labels'])} of the training examples; {plan['seeds']} seeds each:\n")
    print(outputs.markdown_table(outputs.headers(metric), outputs.table_rows(summary, metric)))
    edge = [r["head"] for r in summary["rows"] if r["selected"]["learning_rate"] in (min(grid.LEARNING_RATES),
                                                                                   max(grid.LEARNING_RATES))]
    if edge:
        print(f"\nChosen at an end of the learning-rate grid ({', '.join(edge)}): the best point may lie beyond it "
              f"({min(grid.LEARNING_RATES):g}-{max(grid.LEARNING_RATES):g}), and the head may be short of what it can reach.")
    if plan["left_out"]:
        print(f"\nNot tried within --budget_minutes={_BUDGET.value:g}: {', '.join(plan['left_out'])}.")
    if summary["recommended"] is None:
        print("\nNo head trained without diverging: nothing to recommend.", file=sys.stderr)
        sys.exit(1)
    chosen = next(r for r in summary["rows"] if r["head"] == summary["recommended"])
    selected = outputs.selected_config(config, chosen["head"], chosen["selected"], kind.reads_images)
    command = outputs.write_selected(out, selected, summary["reason"], source)
    report = outputs.write_report(out, result, kind.summary_keys, f"cma_tf.select on {source}")
    outputs.write_summary(out, result, command)
    print(f"\nRecommended: {summary['recommended']}. {summary['reason']}.")
    print(f"Train it on the whole training split:\n    {command}")
    print(f"Report: {report}")


if __name__ == "__main__":
    cli.run(main, interrupted_hint="run the same command again: it resumes where it stopped")
