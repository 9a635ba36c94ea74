"""Inference speed of the exported SavedModel against the same Keras model in-process, in one run.

    python bench/serving.py [--batches=1,8,32] [--repeats=5] [--warmup=3]
    python bench/serving.py --backbone=resnet101 --image_size=224 --batches=1,8 --repeats=2 --images_per_repeat=16

The default run takes about 1.5 minutes on 2 cores; the ResNet-101 line about 1 minute.

One classifier is built from `configs/demo.py` (default: the MS-CMA head on the small backbone
at 96 px, N = 16 labels "label_0".."label_15"; random weights, a random label encoder: the
speed does not depend on the weight values; ResNet-101 has `weights=None`, nothing is
downloaded), exported with `cma_tf.serving.saved_model.export_saved_model` to a temporary folder and
loaded back with `tf.saved_model.load`. On the same synthetic images, per batch size, it times:
  - keras: `tf.function(lambda x: tf.sigmoid(model(x, training=False)))` with the input
    signature float32 [None, S, S, 3], i.e. how a user serves the model in-process; each call
    also pays the `tf.function` cache lookup, which hashes the types of all captured variables
    (0.2-0.4 ms a call here for the demo MS-CMA's ~140), where the loaded signatures are concrete
    functions: most of the SavedModel's lead at batch 1;
  - savedmodel: the loaded `predict_pixels` signature on the same float pixels (its graph also
    checks the shape and takes top-k labels from the vocabulary table);
  - bytes: the loaded `serving_default` signature on the same images as JPEG bytes (quality 90,
    S × S), so it also decodes and resizes each image in the graph.
Each timed call ends when its scores are back in Python as a NumPy array. Every variant is
first called `--warmup` times per batch size (tracing, oneDNN primitive caches). Then, in each
of `--repeats` repeats, the three variants are called in rounds of one call each, the order
rotating from round to round (keras, savedmodel, bytes; savedmodel, bytes, keras; ...), so
slow phases of the machine and the cost of switching graphs hit all of them alike. Reported
per batch size: images/s (the median over repeats of images ÷ the variant's time in that
repeat) and p50 / p99 latency per call over all timed calls of all repeats.

Prints a table, writes JSON (`--json_out`), and ends with one JSON line with
`savedmodel_vs_keras` (savedmodel images/s ÷ keras images/s at the largest batch, 32 by
default), `bytes_vs_keras` likewise, and per-batch figures such as `keras_images_per_s_b1`,
`savedmodel_p50_ms_b1`, `bytes_p99_ms_b32`.
"""

import argparse
import io
import math
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

from report import print_table, write_report  # noqa: E402
from cma_tf import factory  # noqa: E402
from cma_tf.heads.registry import head_names  # noqa: E402
from cma_tf.serving.saved_model import export_saved_model  # noqa: E402
from cma_tf.data.requests import image_request  # noqa: E402
from configs import demo  # noqa: E402

VARIANTS = ("keras", "savedmodel", "bytes")
TITLES = {
    "keras": "Keras in-process (tf.function: σ(model(x, training=False)))",
    "savedmodel": "SavedModel predict_pixels (float pixels)",
    "bytes": "SavedModel serving_default (JPEG bytes, decode + resize in graph)",
}


def build_model(args):
    """The demo config's classifier for `--head`, with `--backbone` and `--image_size`."""
    config = demo.get_config(args.head)
    config.data.image_size = args.image_size
    config.model.backbone = args.backbone
    config.model.backbone_weights = None
    keras.utils.set_random_seed(args.seed)
    return factory.build_classifier(config, args.num_classes)


def synthetic_images(rng, count, size):
    """uint8 [count, size, size, 3]: smooth gradients and a few discs with mild noise (JPEG-like)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    out = np.empty((count, size, size, 3), np.uint8)
    for image in out:
        pixels = np.stack([127 + 100 * np.sin(x * rng.uniform(2, 8) + rng.uniform(0, 6)) * np.cos(y * rng.uniform(2, 8))
                           for _ in range(3)], -1)
        for _ in range(4):
            cx, cy, r = rng.uniform(0, 1, 3) * (1, 1, 0.4)
            pixels[(x - cx) ** 2 + (y - cy) ** 2 < r**2] = rng.uniform(0, 255, 3)
        image[...] = np.clip(pixels + rng.normal(0, 6, pixels.shape), 0, 255)
    return out


def jpeg(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def calls_per_repeat(args, batch):
    return max(args.min_calls, math.ceil(args.images_per_repeat / batch))


def timed(call):
    """Wall time (s) of one call, ending when its scores are a NumPy array."""
    start = time.perf_counter()
    call().numpy()
    return time.perf_counter() - start


def bench_batch(calls, batch, args):
    """`{variant: {"images_per_s", "p50_ms", "p99_ms", "calls"}}` at one batch size."""
    for name in VARIANTS:
        for _ in range(args.warmup):
            calls[name]()
    n = calls_per_repeat(args, batch)
    latencies = {name: [] for name in VARIANTS}
    rates = {name: [] for name in VARIANTS}
    for repeat in range(args.repeats):
        times = {name: [] for name in VARIANTS}
        for call_index in range(n):
            first = (repeat * n + call_index) % len(VARIANTS)  # each variant leads a third of the rounds
            for name in VARIANTS[first:] + VARIANTS[:first]:
                times[name].append(timed(calls[name]))
        for name in VARIANTS:
            latencies[name] += times[name]
            rates[name].append(n * batch / sum(times[name]))
        print(f"batch {batch} repeat {repeat + 1}/{args.repeats}: "
              + ", ".join(f"{name} {rates[name][-1]:.1f} img/s" for name in VARIANTS), file=sys.stderr)
    return {
        name: {
            "images_per_s": float(np.median(rates[name])),
            "p50_ms": float(np.percentile(latencies[name], 50) * 1e3),
            "p99_ms": float(np.percentile(latencies[name], 99) * 1e3),
            "calls": len(latencies[name]),
        }
        for name in VARIANTS
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--head", choices=head_names(), default="ms_cma", help="Head of configs/demo.py (default ms_cma).")
    parser.add_argument(
        "--backbone", choices=("small", "resnet101"), default="small",
        help="small (the demo's small CNN; default) or resnet101 (keras.applications, weights=None: nothing is "
        "downloaded). The head's sizes stay the demo's.",
    )
    parser.add_argument("--image_size", type=int, default=96, help="Input side S (default 96, the demo's).")
    parser.add_argument("--num_classes", type=int, default=16, help="N, labels named label_0.. (default 16).")
    parser.add_argument("--batches", default="1,8,32", help="Comma-separated batch sizes (default 1,8,32).")
    parser.add_argument(
        "--repeats", type=int, default=5, help="Repeats per batch size; images/s is their median (default 5)."
    )
    parser.add_argument("--warmup", type=int, default=3, help="Untimed calls per variant and batch size (default 3).")
    parser.add_argument(
        "--images_per_repeat", type=int, default=1024,
        help="Each variant is called ceil(this / batch) times per repeat, at least --min_calls (default 1024).",
    )
    parser.add_argument("--min_calls", type=int, default=4, help="Least calls per variant per repeat (default 4).")
    parser.add_argument("--seed", type=int, default=0, help="Seed for weights and images (default 0).")
    parser.add_argument("--json_out", default="bench/results/serving.json", help="Where to write the JSON.")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    if min(batches) < 1 or args.repeats < 1 or args.min_calls < 1:
        parser.error("batch sizes, --repeats and --min_calls must be ≥ 1")

    wall_start = time.perf_counter()
    size, vocabulary = args.image_size, [f"label_{i}" for i in range(args.num_classes)]
    print(f"building {args.head} on {args.backbone} at {size} …", file=sys.stderr)
    model = build_model(args)
    keras_scores = tf.function(
        lambda x: tf.sigmoid(model(x, training=False)),
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32)],
    )
    with tempfile.TemporaryDirectory() as scratch:
        export_dir = os.path.join(scratch, "model", "1")
        start = time.perf_counter()
        export_saved_model(model, vocabulary, image_request(size), export_dir, top_k=5)
        export_s = time.perf_counter() - start
        start = time.perf_counter()
        loaded = tf.saved_model.load(export_dir)
        load_s = time.perf_counter() - start
        predict_pixels, serving_default = loaded.signatures["predict_pixels"], loaded.signatures["serving_default"]

        images = synthetic_images(np.random.default_rng(args.seed), max(batches), size)
        figures, score_diff = {}, 0.0
        for batch in batches:
            pixels = tf.constant(images[:batch].astype(np.float32))
            encoded = tf.constant([jpeg(image) for image in images[:batch]])
            calls = {
                "keras": lambda: keras_scores(pixels),
                "savedmodel": lambda: predict_pixels(pixels=pixels)["scores"],
                "bytes": lambda: serving_default(images=encoded)["scores"],
            }
            difference = np.abs(calls["keras"]().numpy() - calls["savedmodel"]().numpy())
            score_diff = max(score_diff, float(difference.max()))
            figures[batch] = bench_batch(calls, batch, args)

    largest = max(batches)
    rate = {name: figures[largest][name]["images_per_s"] for name in VARIANTS}
    result = {
        "savedmodel_vs_keras": rate["savedmodel"] / rate["keras"],
        "bytes_vs_keras": rate["bytes"] / rate["keras"],
        "ratio_batch_size": largest,
    }
    for batch in batches:
        for name in VARIANTS:
            for key in ("images_per_s", "p50_ms", "p99_ms", "calls"):
                result[f"{name}_{key}_b{batch}"] = figures[batch][name][key]
    result.update(
        max_abs_score_diff=score_diff,
        head=args.head, backbone=args.backbone, image_size=size, num_classes=args.num_classes,
        batches=batches, repeats=args.repeats, warmup=args.warmup, images_per_repeat=args.images_per_repeat,
        min_calls=args.min_calls,
        export_s=export_s, load_s=load_s, cores=os.cpu_count(),
        gpus=len(tf.config.list_physical_devices("GPU")), tensorflow=tf.__version__, keras=keras.__version__,
        wall_s=time.perf_counter() - wall_start,
    )

    print(f"\nServing, {args.head} on {args.backbone} at {size}×{size}, {args.num_classes} labels, "
          f"{os.cpu_count()} CPU cores, TF {tf.__version__}; images/s = median of {args.repeats} repeats, "
          f"latency percentiles over all timed calls:\n")
    for name in VARIANTS:
        print(f"  {name}: {TITLES[name]}")
    print()
    rows = []
    for batch in batches:
        for name in VARIANTS:
            f = figures[batch][name]
            ratio = f["images_per_s"] / figures[batch]["keras"]["images_per_s"]
            rows.append([batch, name, f["calls"], f"{f['images_per_s']:.1f}", f"{ratio:.2f}",
                         f"{f['p50_ms']:.2f}", f"{f['p99_ms']:.2f}"])
    print_table(["batch", "variant", "calls (p50, p99 over)", "images/s", "× keras", "p50 ms", "p99 ms"], rows, "rlrrrrr")
    print(f"\nAt batch {largest}: SavedModel / Keras = {result['savedmodel_vs_keras']:.2f}, "
          f"bytes / Keras = {result['bytes_vs_keras']:.2f}. Max |score diff| Keras vs SavedModel "
          f"{score_diff:.1e}. Export {export_s:.1f} s, load {load_s:.1f} s, wall time {result['wall_s']:.0f} s.")
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
