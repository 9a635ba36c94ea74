"""Training step time of the CMA and MS-CMA heads against the plain backbone, in one run.

    python bench/train_step.py [--image_size=448] [--batch_size=2] [--steps=5] [--warmup=1]
    python bench/train_step.py --backbone=small --image_size=96 --steps=2   # quick smoke run

Three classifiers on the same backbone and the same input, built as training builds them
(`cma_tf.factory.build_classifier` from the base config, i.e. `MultiLabelClassifier(backbone,
head)`), compiled as `cma_tf/training/trainer.py` compiles them (`factory.build_optimizer`:
SGD, momentum 0.9, weight decay 1e-5; `factory.build_loss`: `WeightedBinaryCrossentropy`,
β = 0; Keras' default `jit_compile="auto"`, which Keras resolves to no XLA on a CPU-only
machine):
  - plain: the backbone's deepest map → global average pool → Dense(80) (`PlainHead`);
  - cma: `CMAHead` on the deepest map (14×14×2048 for ResNet-101 at 448);
  - ms_cma: `MultiScaleCMAHead` on 28×28×1024, 14×14×2048 and 7×7×512, with the per-scale
    losses of the model's `train_step` (`scale_loss_weight=1`, the default).
ResNet-101 is `keras.applications.ResNet101` with `weights=None` (random weights; nothing is
downloaded, and step time does not depend on the weight values). 80 classes; the label
encoder Φ (ASGE, width 256, depth 3) is frozen (`trainable=False`), as in the paper's
two-stage recipe (`config.model.finetune_label_embeddings=False`); its weights are random
(ASGE is not fitted here, which does not change the step's cost).

What is timed: one call of the model's compiled Keras train function, `model.train_function`
(what `model.fit` calls once per step: a `tf.function` around the model's own custom
`train_step` — forward, loss, gradients, SGD update, metric updates), on an iterator over a
repeated dataset holding one fixed batch of random images and multi-hot labels (no input
pipeline cost; the same batch for all three models). Each model is first run through
`model.fit(..., epochs=1, steps_per_epoch=1)`, which builds the optimizer and metrics and
traces the train function (slow), then `--warmup` more untimed steps. The timed steps are
interleaved in rounds (plain, cma, ms_cma, plain, cma, ...), so slow phases of the machine hit
all models alike; each step's wall time ends when its loss is read back to Python. Reported:
the median step time per model and

    cma_overhead = median_cma / median_plain − 1,  ms_cma_overhead likewise

(fractions: 0.05 = 5%). The goal: CMA ≤ 5% and MS-CMA ≤ 15% over the plain backbone's step
time at 448 with ResNet-101.

Batch size: the paper trains with batch 64 on GPUs. This machine has no GPU (CPU only, see
`cores` in the output), so the default here is 2; the overheads are ratios of CPU step
times, which follow the ratio of FLOPs more closely than GPU step times do (on a GPU the
small attention ops of the heads cost relatively more launch overhead, and the big
convolutions relatively less).

Prints parameter counts and a Markdown table, writes JSON (`--json_out`), and ends with one
JSON line with `cma_overhead`, `ms_cma_overhead`, the medians, batch size, image size,
cores and the TensorFlow version.
"""

import argparse
import os
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from report import print_table, write_report  # noqa: E402
from cma_tf import factory  # noqa: E402
from cma_tf.config_base import get_base_config  # noqa: E402

NUM_CLASSES = 80
EMBEDDING_DIM = 256
HEADS = ("plain", "cma", "ms_cma")
GOALS = {"cma": 0.05, "ms_cma": 0.15}
PAPER_BATCH_SIZE = 64


def make_config(args, head):
    """The base config (configs/ defaults: the paper's model and optimiser) for one head."""
    config = get_base_config()
    config.data.image_size = args.image_size
    config.model.head = head
    config.model.backbone = "resnet101" if args.backbone == "resnet101" else "small"
    config.model.backbone_weights = None
    config.model.feature_channels = args.feature_channels
    config.model.finetune_label_embeddings = False  # Φ frozen, as in the paper
    config.model.graph_loss_weight = 0.0
    config.asge.units = EMBEDDING_DIM
    config.train.batch_size = args.batch_size
    return config


def build_model(args, head):
    """A compiled `MultiLabelClassifier`, as `cma_tf/training/trainer.py` builds and compiles it."""
    keras.utils.set_random_seed(args.seed)
    config = make_config(args, head)
    model = factory.build_classifier(config, NUM_CLASSES)
    model.compile(optimizer=factory.build_optimizer(config, steps_per_epoch=1000), loss=factory.build_loss(config))
    return model


def synthetic_batch(batch_size, image_size, seed):
    """Random RGB images in [0, 255] and multi-hot labels (1 to 3 positives per image)."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (batch_size, image_size, image_size, 3)).astype(np.float32)
    labels = np.zeros((batch_size, NUM_CLASSES), np.float32)
    for row in labels:
        row[rng.choice(NUM_CLASSES, size=rng.integers(1, 4), replace=False)] = 1.0
    return images, labels


def parameter_counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    head = sum(int(np.prod(w.shape)) for w in model.head.weights)
    head_trainable = sum(int(np.prod(w.shape)) for w in model.head.trainable_weights)
    return {
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
        "head": head,
        "head_trainable": head_trainable,
    }


def timed_step(model, iterator):
    """Wall time of one compiled train step, ending when its loss is back in Python."""
    start = time.perf_counter()
    logs = model.train_function(iterator)
    float(logs["loss"])
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--backbone", choices=("resnet101", "small"), default="resnet101",
        help="resnet101 (keras.applications, weights=None; default) or small (the small CNN of "
        "cma_tf.backbones.small, for a quick smoke run).",
    )
    parser.add_argument("--image_size", type=int, default=448, help="Input side (default 448, the paper's).")
    parser.add_argument(
        "--batch_size", type=int, default=2,
        help=f"Batch size (default 2 on this CPU-only machine; the paper uses {PAPER_BATCH_SIZE} on GPUs).",
    )
    parser.add_argument("--steps", type=int, default=5, help="Timed steps per model, interleaved in rounds (default 5).")
    parser.add_argument(
        "--warmup", type=int, default=1,
        help="Untimed steps per model after the tracing fit step (default 1).",
    )
    parser.add_argument(
        "--feature_channels", type=int, default=None,
        help="C of the heads' 1×1 projection (default: none, keep the backbone's channels, as the base config).",
    )
    parser.add_argument("--seed", type=int, default=0, help="Seed for weights and the synthetic batch (default 0).")
    parser.add_argument("--json_out", default="bench/results/train_step.json", help="Where to write the JSON.")
    args = parser.parse_args()
    if args.steps < 1:
        parser.error("--steps must be ≥ 1")

    wall_start = time.perf_counter()
    cores = os.cpu_count()
    gpus = len(tf.config.list_physical_devices("GPU"))
    images, labels = synthetic_batch(args.batch_size, args.image_size, args.seed)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()

    # All models are built before any is traced: `keras.utils.set_random_seed` (in
    # build_model) sets TF's global seed, which makes already traced train functions retrace
    # on their next call (measured: a 1.5 s step instead of 0.02 s with the small backbone).
    models, iterators, params, trace_s, warmup_s = {}, {}, {}, {}, {}
    for head in HEADS:
        print(f"building {head} ({args.backbone} at {args.image_size}) …", file=sys.stderr)
        models[head] = build_model(args, head)
        params[head] = parameter_counts(models[head])
    for head in HEADS:
        print(f"tracing {head} (model.fit, 1 step) and {args.warmup} warm-up step(s) …", file=sys.stderr)
        start = time.perf_counter()
        models[head].fit(dataset, epochs=1, steps_per_epoch=1, verbose=0, shuffle=False)
        trace_s[head] = time.perf_counter() - start
        iterators[head] = iter(dataset)
        warmup_s[head] = [timed_step(models[head], iterators[head]) for _ in range(args.warmup)]

    times = {head: [] for head in HEADS}
    for round_index in range(args.steps):
        for head in HEADS:
            times[head].append(timed_step(models[head], iterators[head]))
        print(
            f"round {round_index + 1}/{args.steps}: "
            + ", ".join(f"{head} {times[head][-1]:.3f} s" for head in HEADS),
            file=sys.stderr,
        )

    medians = {head: statistics.median(times[head]) for head in HEADS}
    overheads = {head: medians[head] / medians["plain"] - 1 for head in ("cma", "ms_cma")}
    goal_applies = args.backbone == "resnet101" and args.image_size == 448
    met = {head: overheads[head] <= GOALS[head] for head in GOALS}
    result = {
        "cma_overhead": overheads["cma"],
        "ms_cma_overhead": overheads["ms_cma"],
        "median_step_s": medians,
        "min_step_s": {head: min(times[head]) for head in HEADS},
        "step_times_s": times,
        "images_per_s": {head: args.batch_size / medians[head] for head in HEADS},
        "goals": GOALS,
        "goal_met": met,
        "goal_applies": goal_applies,
        "parameters": params,
        "trace_s": trace_s,
        "warmup_step_s": warmup_s,
        "backbone": args.backbone,
        "image_size": args.image_size,
        "batch_size": args.batch_size,
        "paper_batch_size": PAPER_BATCH_SIZE,
        "steps": args.steps,
        "warmup": args.warmup,
        "num_classes": NUM_CLASSES,
        "embedding_dim": EMBEDDING_DIM,
        "feature_channels": args.feature_channels,
        "jit_compile": {head: bool(models[head].jit_compile) for head in HEADS},
        "timed_function": "model.train_function (Keras compiled train step around MultiLabelClassifier.train_step)",
        "cores": cores,
        "gpus": gpus,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "wall_s": time.perf_counter() - wall_start,
    }

    print(
        f"\nParameters ({args.backbone}, {NUM_CLASSES} classes, label embeddings {EMBEDDING_DIM}, Φ frozen):\n"
    )
    print_table(
        ["model", "total", "trainable", "non-trainable", "head", "head trainable", "× plain (total)"],
        [[head, f"{p['total']:,}", f"{p['trainable']:,}", f"{p['non_trainable']:,}", f"{p['head']:,}",
          f"{p['head_trainable']:,}", f"{p['total'] / params['plain']['total']:.3f}"]
         for head, p in ((head, params[head]) for head in HEADS)],
        "lrrrrrr",
    )

    print(
        f"\nTraining step, {args.backbone} at {args.image_size}×{args.image_size}, batch {args.batch_size} "
        f"(the paper: batch {PAPER_BATCH_SIZE} on GPUs; this machine: {cores} CPU cores, "
        f"{'no GPU' if not gpus else f'{gpus} GPU(s)'}), median of {args.steps} interleaved steps "
        f"after {args.warmup} warm-up step(s):\n"
    )
    rows = []
    for head in HEADS:
        if head == "plain":
            overhead, goal, ok = "—", "—", "—"
        else:
            overhead = f"{overheads[head]:+.1%}"
            goal = f"≤ {GOALS[head]:.0%}"
            ok = "yes" if met[head] else "no"
        rows.append([head, f"{medians[head]:.3f}", f"{min(times[head]):.3f}", f"{args.batch_size / medians[head]:.2f}",
                     overhead, goal, ok])
    print_table(
        ["model", "median step (s)", "min step (s)", "images/s", "overhead vs plain", "goal", "met"], rows, "lrrrrrl"
    )
    scope = "" if goal_applies else " (the goal is stated for ResNet-101 at 448; this run is not that setting)"
    print(
        f"\nCMA overhead {overheads['cma']:+.1%} (goal ≤ 5%): {'met' if met['cma'] else 'NOT met'}; "
        f"MS-CMA overhead {overheads['ms_cma']:+.1%} (goal ≤ 15%): {'met' if met['ms_cma'] else 'NOT met'}{scope}. "
        f"Wall time {result['wall_s']:.0f} s."
    )
    write_report(result, args.json_out)


if __name__ == "__main__":
    main()
