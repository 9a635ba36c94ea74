"""Peak memory and time of one training step, per head, with Eq. 9-10 fused (now) and unfused
(before: the per-class vectors `h` `[B, N, C]` formed, then reduced; docs/design.md §2.22).

Two settings, each model built and compiled as training builds it (`cma_tf.factory`, the
configs' optimizer and loss; random weights, `weights=None`; the label encoder Φ random and
frozen, which does not change the step's cost):
  - yt8m: the paper's YouTube-8M setting (`configs/yt8m.py`): SNet (4 × Conv1D 1,024 +
    max-pool) over 300 frames of RGB features (1,024), 3,862 labels, batch `--yt8m_batch`
    (256, the paper's); heads plain, self-attention, CMA;
  - coco: ResNet-101 at 448 × 448, 80 labels, batch `--coco_batch` (8); the same heads.

Every case runs in a fresh process (peak RSS, `VmHWM`, is the process's own; TensorFlow's
own ~0.7 GB is in every figure). In the process: the model is built, one step traces the
train function (`train_on_batch`), then `--steps` more are timed; the median is reported.
"Unfused" replaces `PerClassClassifier`'s fused call by the computation it replaced (form `h`,
then `w_k · h_k + b_k`), in that process only. Where a GPU is present, its peak
(`tf.config.experimental.get_memory_info`) is reported too.

    .venv/bin/python bench/memory.py                           # both settings (~30 min on 2 cores)
    .venv/bin/python bench/memory.py --settings=yt8m --yt8m_batch=64

The last line is JSON: `cma_snet_vs_plain_memory` (CMA-SNet's peak ÷ plain-SNet's, fused; the
goal is ≤ 1.5), `cma_step_vs_plain` (the same for the step time), and every case under `cases`.
"""

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.report import peak_rss_mb, print_table, run_worker, write_report  # noqa: E402

HEADS = ("plain", "self_attention", "cma")
SETTINGS = ("yt8m", "coco")
COCO_LABELS = 80


def make_config(setting, head, batch):
    if setting == "bench_video":  # bench/video_heads.py: an entry of configs/bench_video_heads.py
        from cma_tf.config_base import load_config_file

        config = load_config_file(os.path.join(ROOT, "configs", "bench_video_heads.py")).get_config(head)
    elif setting == "yt8m":
        from cma_tf.config_base import get_paper_video_config

        config = get_paper_video_config(f"{head}_snet")
    else:
        from cma_tf.config_base import get_base_config

        config = get_base_config()
        config.model.head = head
        config.model.backbone = "resnet101"
        config.model.backbone_weights = None
        config.data.image_size = 448
    config.model.finetune_label_embeddings = False
    config.model.graph_loss_weight = 0.0
    config.train.batch_size = batch
    return config


def unfuse():
    """`PerClassClassifier(a, features=I)` computed as before the fused path: `h`, then Eq. 10."""
    from keras import ops

    from cma_tf.layers.cross_modality import PerClassClassifier
    from cma_tf.layers.ops import flatten_positions

    fused = PerClassClassifier.call

    def call(self, pooled, features=None):
        if features is not None:
            pooled = ops.einsum("bnm,bmc->bnc", pooled, flatten_positions(features))
        return fused(self, pooled)

    PerClassClassifier.call = call


def worker(args):
    import keras
    import numpy as np
    import tensorflow as tf

    from cma_tf import factory

    try:  # if memory runs out, the kernel kills this process first, not what runs beside it
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("1000")
    except OSError:
        pass
    if args.path == "unfused":
        unfuse()
    num_labels = args.num_labels or (3862 if args.setting in ("yt8m", "bench_video") else COCO_LABELS)
    config = make_config(args.setting, args.head, args.batch)
    keras.utils.set_random_seed(0)
    model = factory.build_classifier(config, num_labels)
    model.compile(optimizer=factory.build_optimizer(config, steps_per_epoch=1000), loss=factory.build_loss(config))
    rng = np.random.default_rng(0)
    shape = (args.batch, *model.input_shape[1:])
    x = rng.uniform(0, 255 if args.setting == "coco" else 1, shape).astype(np.float32)
    y = (rng.random((args.batch, num_labels)) < 3.0 / num_labels).astype(np.float32)
    built_rss = peak_rss_mb()
    model.train_on_batch(x, y)
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = model.train_on_batch(x, y)
        seconds.append(time.perf_counter() - start)
    gpu_peak = None
    if tf.config.list_physical_devices("GPU"):
        gpu_peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    print(json.dumps(dict(
        setting=args.setting, head=args.head, path=args.path, batch=args.batch, num_labels=num_labels,
        input_shape=list(shape), parameters=int(sum(np.prod(w.shape) for w in model.weights)),
        peak_rss_mb=peak_rss_mb(), built_rss_mb=built_rss,
        gpu_peak_mb=gpu_peak, step_seconds=statistics.median(seconds), steps=args.steps,
        loss=float(np.asarray(loss).ravel()[0]),
    )))


def run_case(setting, head, path, batch, args):
    result, code = run_worker(__file__, [
        f"--setting={setting}", f"--head={head}", f"--path={path}", f"--batch={batch}", f"--steps={args.steps}",
    ])
    if result is None:
        why = "killed (out of memory?)" if code < 0 else f"exit {code}"
        return dict(setting=setting, head=head, path=path, batch=batch, failed=why)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--settings", default="yt8m,coco", help="Comma-separated: yt8m, coco.")
    parser.add_argument("--yt8m_batch", type=int, default=256, help="Batch of the YouTube-8M setting (the paper's 256).")
    parser.add_argument("--coco_batch", type=int, default=8, help="Batch of the COCO setting (ResNet-101 at 448).")
    parser.add_argument("--steps", type=int, default=3, help="Timed steps per case (after one that traces).")
    parser.add_argument("--json_out", default="bench/results/memory.json")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setting", help=argparse.SUPPRESS)
    parser.add_argument("--head", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--num_labels", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)

    cases, rows = {}, []
    for setting in args.settings.split(","):
        if setting not in SETTINGS:
            parser.error(f"--settings: unknown setting {setting!r} ({', '.join(SETTINGS)})")
        batch = args.yt8m_batch if setting == "yt8m" else args.coco_batch
        for head in HEADS:
            for path in ("fused",) if head == "plain" else ("unfused", "fused"):
                print(f"{setting}: {head} ({path}), batch {batch} …", file=sys.stderr, flush=True)
                case = cases[f"{setting}/{head}/{path}"] = run_case(setting, head, path, batch, args)
                plain = cases[f"{setting}/plain/fused"]
                if "failed" in case:
                    rows.append([setting, head, path, f"{batch}", case["failed"], "–", "–", "–", "–"])
                    continue
                ok = "failed" not in plain
                rows.append([
                    setting, head, path, f"{batch}", f"{case['peak_rss_mb']:,.0f}",
                    f"{case['peak_rss_mb'] / plain['peak_rss_mb']:.2f}" if ok else "–",
                    f"{case['step_seconds']:.2f}",
                    f"{case['step_seconds'] / plain['step_seconds']:.2f}" if ok else "–",
                    f"{case['gpu_peak_mb']:,.0f}" if case["gpu_peak_mb"] else "no GPU",
                ])
    print("One training step per case, a fresh process each (peak RSS includes TensorFlow's ~0.7 GB)")
    print_table(["setting", "head", "Eq. 9-10", "batch", "peak RSS MB", "× plain", "s/step", "× plain",
                 "GPU peak MB"], rows, "lllrrrrrr")

    def ratio(key, field):
        case, plain = cases.get(f"yt8m/{key}/fused"), cases.get("yt8m/plain/fused")
        if not case or not plain or "failed" in case or "failed" in plain:
            return None
        return case[field] / plain[field]

    write_report(dict(
        cma_snet_vs_plain_memory=ratio("cma", "peak_rss_mb"), cma_step_vs_plain=ratio("cma", "step_seconds"),
        self_attention_snet_vs_plain_memory=ratio("self_attention", "peak_rss_mb"),
        cores=os.cpu_count(), cases=cases,
    ), args.json_out)


if __name__ == "__main__":
    main()
