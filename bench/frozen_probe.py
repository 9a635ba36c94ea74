"""One seed of each head on the frozen backbone's cached maps, without a search: a first look.

    python bench/frozen_probe.py --data_dir=runs/bench_heads/demo/data --heads=plain,cma,ml_decoder --epochs=12

Each head is `configs/bench_heads.py:<head>,<dataset>` (its recipe: AdamW 1e-3, one warm-up
epoch, step decay) with `--backbone_weights` (default the `small_synthetic` preset), trained on
the training split's cached maps (`cma_tf/selection/`) and scored on the val split after every
epoch. Not the benchmark: no search, one seed (docs/design.md §2.27). The last line of stdout
is one JSON object keyed by head: `mAP`, `seconds`, `history`.
"""

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", required=True, help="An image dataset (e.g. python -m cma_tf.data.demo's).")
    parser.add_argument("--dataset", default="demo", help="The configs/bench_heads.py dataset: demo or coco_stats.")
    parser.add_argument("--heads", default="plain,cma,ml_decoder,q2l", help="Comma-separated configs/bench_heads.py entries.")
    parser.add_argument("--epochs", type=int, default=12, help="Epochs of every head (default 12).")
    parser.add_argument("--backbone_weights", default="small_synthetic", help="Preset name or weights file of the small backbone.")
    parser.add_argument("--work_dir", default=os.path.join(ROOT, "runs", "frozen_probe"), help="Cached maps and label embeddings.")
    args = parser.parse_args()

    from cma_tf import factory
    from cma_tf.config_base import load_config_file
    from cma_tf.selection import feature_cache, feature_head

    recipes = load_config_file(os.path.join(ROOT, "configs", "bench_heads.py"))
    out = {}
    for head in args.heads.split(","):
        config = recipes.get_config(f"{head},{args.dataset}")
        config.data.data_dir = args.data_dir
        config.model.backbone_weights = args.backbone_weights
        config.train.epochs = args.epochs
        backbone = factory.build_backbone(config)
        cache = os.path.join(args.work_dir, args.dataset, "cache")
        train = feature_cache.load_or_compute(config, backbone, "train", cache)
        val = feature_cache.load_or_compute(config, backbone, "val", cache)
        result = feature_head.train_head_on_features(config, *train, {"val": val}, factory.read_vocabulary(config),
                                                     os.path.join(args.work_dir, args.dataset, "embeddings"))
        mAP = None if "diverged" in result else result["metrics"]["val"]["mAP"]
        out[head] = {"mAP": mAP, "diverged": result.get("diverged"), "seconds": result["seconds"],
                     "history": [row.get("val_mAP") for row in result["history"]]}
        print(f"{head:>14}: val mAP {100 * mAP:.1f}" if mAP is not None else f"{head}: {result['diverged']}",
              f"({result['seconds']:.0f} s)", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
