"""One head of the `pretrained_frozen` regime of `bench/heads.py`, run as its own process.

    python bench/frozen_head.py --head=cma --dataset=demo --data_dir=runs/bench_heads/demo/data \
        --out_dir=bench/records/heads/pretrained_frozen/demo/cma --work_dir=runs/bench_heads/pretrained_frozen/demo

`configs/bench_heads.py:<head>,<dataset>` (its loss, batch and model sizes) on the frozen
backbone's cached maps (`--backbone`, `--backbone_weights`: the `small_synthetic` preset by
default), judged by `cma_tf.selection.protocol.judge_head`: the grid searched on the held-out
part of the training split, then the chosen point with seeds 0-2 (and 3-4 where their std
exceeds a point) on the whole training split, scored on the val split. Every run's result is
a JSON file under `--out_dir`, so the same command after a kill resumes. `--cache_only` computes
the cached maps of both splits and stops (`bench/heads.py` does that once before it starts
heads side by side). Prints one line per run; the last line is the head's summary as JSON.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def frozen_config(head, dataset, data_dir, epochs, backbone="small", backbone_weights="small_synthetic", image_size=None):
    """The config every run of a head in the frozen regime starts from (the grid sets its lr and
    schedule): the benchmark's entry, its backbone replaced by the pretrained one, EMA off."""
    from cma_tf.config_base import load_config_file

    config = load_config_file(os.path.join(ROOT, "configs", "bench_heads.py")).get_config(f"{head},{dataset}")
    config.data.data_dir = data_dir
    config.model.backbone = backbone
    config.model.backbone_weights = backbone_weights
    if image_size:
        config.data.image_size = int(image_size)
    config.train.epochs = int(epochs)
    config.train.ema_decay = None
    config.train.backbone_lr_multiplier = 0.0
    return config


def cached_splits(config, cache_dir):
    """`(backbone, train_set, val_set)`: the backbone's maps of both splits, computed once."""
    from cma_tf import factory
    from cma_tf.selection import feature_cache

    backbone = factory.build_backbone(config)
    return (backbone, feature_cache.load_or_compute(config, backbone, "train", cache_dir),
            feature_cache.load_or_compute(config, backbone, "val", cache_dir))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head", required=True, help="An entry of configs/bench_heads.py (e.g. cma, q2l, cma_asl).")
    parser.add_argument("--dataset", default="demo", help="The configs/bench_heads.py dataset: demo or coco_stats.")
    parser.add_argument("--data_dir", required=True, help="The dataset's records (python -m cma_tf.datasets.demo's).")
    parser.add_argument("--epochs", type=int, required=True, help="Epochs of every run (search and seeds).")
    parser.add_argument("--backbone", default="small", help="small (default), resnet101 or convnext_small.")
    parser.add_argument("--backbone_weights", default="small_synthetic",
                        help="A preset name of the small backbone, or a weights file (e.g. ImageNet ResNet-101 .h5).")
    parser.add_argument("--image_size", type=int, default=None, help="Input size (default the entry's, 96).")
    parser.add_argument("--work_dir", required=True, help="Cached maps (cache/) and label embeddings (embeddings/).")
    parser.add_argument("--out_dir", default=None, help="This head's results (search/, seeds/). Required unless --cache_only.")
    parser.add_argument("--seeds", default="0,1,2", help="Seeds of the chosen point (default 0,1,2).")
    parser.add_argument("--more_seeds", default="3,4", help="Run too when the std over --seeds exceeds a point ('' never).")
    parser.add_argument("--cache_only", action="store_true", help="Compute the cached maps of train and val, then stop.")
    args = parser.parse_args()
    if not args.cache_only and not args.out_dir:
        parser.error("--out_dir is required unless --cache_only")

    from cma_tf import factory
    from cma_tf.selection.protocol import judge_head

    config = frozen_config(args.head, args.dataset, args.data_dir, args.epochs, args.backbone, args.backbone_weights,
                           args.image_size)
    _, train_set, val_set = cached_splits(config, os.path.join(args.work_dir, "cache"))
    if args.cache_only:
        return

    def progress(stage, result):
        score = result.get("holdout_mAP", result.get("mAP"))
        what = result.get("point") if stage == "search" else f"seed {result['seed']}"
        text = f"diverged: {result['diverged']}" if result.get("diverged") else f"mAP {100 * score:.1f}"
        print(f"{args.head} {args.dataset} {stage} {what}: {text} ({result['seconds']:.0f} s)", flush=True)

    seeds = [int(s) for s in args.seeds.split(",") if s]
    more = [int(s) for s in args.more_seeds.split(",") if s]
    outcome = judge_head(config, train_set, factory.read_vocabulary(config), args.out_dir,
                         os.path.join(args.work_dir, "embeddings"), final=(train_set, "val", val_set),
                         seeds=seeds, more_seeds=more, progress=progress)
    print(json.dumps({"head": args.head, "selected": outcome["selected"], "holdout_mAP": outcome["holdout_mAP"],
                      "mAP": [r.get("mAP") for r in outcome["runs"]]}))


if __name__ == "__main__":
    main()
