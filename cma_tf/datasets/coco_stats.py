"""A synthetic benchmark dataset with the label structure of real COCO: 80 labels named as COCO's,
label sets drawn with COCO train2014's label frequencies and co-occurrences, each label drawn as
a flat object of its own look, and 8 pairs of labels that look identical.

    python -m cma_tf.datasets.coco_stats --out_dir=runs/coco_stats/data [--seed=0] [--train=4000
        --val=1000 --image_size=96 --num_shards=4]

The demo dataset (`cma_tf/datasets/demo.py`) has 16 labels in 4 hand-made scenes. This one keeps the
demo's way of drawing, but its labels follow real statistics, so a head that uses label
co-occurrence (CMA's ASGE graph, a dynamic label graph) can show whether that helps on COCO's
graph: 80 labels, a long tail (person on 55 % of images, hair drier on 0.16 %), about 2.9 labels
per image, strong and weak pairs.

Labels (`cma_tf/datasets/coco_label_sets.py`)
-----------------------------------------
The 80 labels are COCO's, in the order of `tests/fixtures/coco2014_train_label_stats.json` (names
sorted; `labels.txt` holds them, some with a space, which the vocabulary reader accepts). Each
image's label set is drawn from a mixture of 40 latent scenes fitted to COCO's counts
(n = 82,081 images): frequencies agree with Pearson r 0.99996 and mean absolute error 0.0005,
the 6,320 co-occurrence probabilities P(i | j) with r 0.997 and MAE 0.005 (200,000 sampled sets;
the method, why it is not a label-by-label growth, and the measurements are in that module's
docstring). Each label of the set is drawn once.

Appearance
----------
Label k (its index in `labels.txt`) is drawn as shape `SHAPES[k % 4]`, colour `COLOURS[(k // 4)
% 10]`, pattern `PATTERNS[k // 40]`: 4 shapes (disk, square, triangle, tall bar; drawn by the
demo's `draw_shape`) × 10 colours (red, orange, yellow, green, cyan, blue, purple, pink, white,
brown) × 2 patterns (solid; striped: every other run of `STRIPE_WIDTH` = 2 pixel rows darkened to
`STRIPE_DARKNESS` = 0.35 of the colour), 80 combinations, one per label; person, for example, is
a yellow striped square. Each object's colour is jittered by up to ±15 per channel, as in the
demo.

AMBIGUOUS PAIRS: the 8 pairs of `coco_label_sets.choose_ambiguous_pairs` (a rule on the counts
alone: eligible labels on 2,000 images or more but at most a quarter of them, lowest cosine
similarity of their co-occurrence profiles first, each label in one pair at most) are drawn
identically: the later label of a pair takes the look of the earlier one, so 72 looks are used.
Only the other labels of an image tell them apart. With COCO's counts:

    toilet / traffic light, sink / truck, bus / vase, airplane / oven, fork / motorcycle,
    spoon / sports ball, bowl / skis, car / knife

`summary.json` lists them under `ambiguous_pairs`, so a benchmark can report these 16 labels' AP.

Layout and background
---------------------
Each object's bounding square has a side of 10-15 % (small, probability .35), 18-26 % (medium,
.40) or 30-40 % (large, .25) of the image side (`SIZE_BINS`); as in the demo, objects are placed
at random inside the image, overlapping a little at most (`demo.place`), largest painted first;
the background is mid gray, and gaussian noise (std 12) is added to every pixel, objects
included. There are no distractor objects: as in the demo, the noise is the only clutter.

How hard it is (measured; what was changed)
-------------------------------------------
One plain model (`python -m cma_tf.train --config=configs/demo.py:plain`, the small CNN at 96 px,
12 epochs, batch 32; 2-core machine, no GPU) on the default dataset: mAP 44.5, CF1 27.0, OF1
53.6 (2 min 24 s wall; the same command on the earlier versions below took 4 min 21 s and
4 min 37 s: the machine is shared). Chance (a constant score) gives an AP of about the label's
frequency, 3.7 % on average. person 98.6 AP;
labels with 50-100 / 100-200 / 200-400 training images: 36 / 46 / 67 AP on average; the 9
labels with fewer than 50: 19 (toaster has no validation image and no AP). The 16 ambiguous
labels average 59 AP (from vase 17 and skis 32 to car 83 and sports ball 81), above the 48 of
the other labels with as many training images (80-400): a shared look has the training images of both
labels, and with 12 epochs learning the 72 looks is what limits this model, so read a head's
gain on these labels against the plain model's AP on them, not against the other labels.

Two earlier versions were harder, and were changed only to make the objects easier to see, not
for any head: with the demo's sizes (6-40 % of the side) and 8 shapes × 5 colours × 2 patterns
(16 labels per colour) the plain model reached 29.2 mAP / 13.5 CF1 / 42.4 OF1; with objects of
10-40 % of the side, 33.4 / 15.6 / 44.6. Then fewer shapes and more colours (a colour stays
plain at 10 px, where shapes blur) gave the numbers above.

What it rewards, and what it does not
-------------------------------------
It rewards using label co-occurrence: the 16 labels of the ambiguous pairs can be told apart
only by the other labels of the image, and those follow COCO's real statistics. It rewards
recognising flat objects at three sizes (10 to 40 % of the image side) on a noisy background,
and learning a long-tailed label distribution from few examples (the rarest labels have a
handful of training images). It does not reward anything about real images: no real textures,
object appearance, shape variation, viewpoint, lighting, object parts or scene backgrounds; no
occlusion reasoning (objects barely overlap); no counting (a label is drawn once); no spatial
relations between objects (positions are independent of labels). Nothing in it was tuned to
favour any head.

Determinism
-----------
The scene mixture is fitted from a fixed seed (the same for every dataset seed). Image `i` of a
split is rendered from its own stream `numpy.random.default_rng([seed, 80, split_id, i])` (80
keeps it apart from the demo's streams), and records are serialized deterministically, so the
same seed and shard count give byte-identical files, and the images and labels do not depend on
the shard count. Images are PNG in the TFRecord format of `records.py` (docs/design.md §3.1);
the default dataset (4,000 + 1,000 images) takes 15 s to generate (20 s with Python's start-up)
and 105 MB on disk.
"""

import dataclasses
import functools
import json
import os
import time
from typing import Dict, List, Sequence, Tuple

import numpy as np
import tensorflow as tf
from PIL import Image, ImageDraw
from tqdm import tqdm

from cma_tf.atomic import write_text
from cma_tf.data import records
from cma_tf.data import vocab
from cma_tf.datasets import coco_label_sets
from cma_tf.datasets import demo

# Bump when the labels or the drawing change, so that existing directories are regenerated.
COCO_STATS_VERSION = 3
TRAIN_SPLIT = demo.TRAIN_SPLIT
VAL_SPLIT = demo.VAL_SPLIT
SPLIT_STREAM_IDS = demo.SPLIT_STREAM_IDS
# Keeps the random streams of this dataset apart from the demo's (80 labels).
DATASET_STREAM_ID = 80

DEFAULT_NUM_TRAIN = 4000
DEFAULT_NUM_VAL = 1000
DEFAULT_IMAGE_SIZE = 96
DEFAULT_NUM_SHARDS = 4

SHAPES = ("disk", "square", "triangle", "tall_bar")
COLOURS = {
    "red": (220, 40, 40),
    "orange": (250, 130, 0),
    "yellow": (240, 210, 30),
    "green": (40, 170, 60),
    "cyan": (0, 200, 200),
    "blue": (50, 90, 230),
    "purple": (140, 60, 200),
    "pink": (255, 120, 200),
    "white": (245, 245, 245),
    "brown": (150, 90, 40),
}
PATTERNS = ("solid", "striped")
STRIPE_WIDTH = 2
STRIPE_DARKNESS = 0.35

# name -> ((min, max) side as a fraction of the image side, probability). The demo's bins
# (`demo.SIZE_BINS`) start at 6 %; see the module docstring for why these start at 10 %.
SIZE_BINS = {
    "small": ((0.10, 0.15), 0.35),
    "medium": ((0.18, 0.26), 0.40),
    "large": ((0.30, 0.40), 0.25),
}


@dataclasses.dataclass(frozen=True)
class Look:
    """How a label is drawn: one of `SHAPES`, a colour name of `COLOURS`, one of `PATTERNS`."""

    shape: str
    colour: str
    pattern: str


def label_looks(labels: Sequence[str], pairs: Sequence[Sequence[str]]) -> Dict[str, Look]:
    """label -> look: label k gets combination k (module docstring); the later label of each of
    `pairs` takes the look of the earlier one."""
    if len(labels) > len(SHAPES) * len(COLOURS) * len(PATTERNS):
        raise ValueError(f"{len(labels)} labels, only {len(SHAPES) * len(COLOURS) * len(PATTERNS)} looks")
    colours = list(COLOURS)
    looks = {
        name: Look(SHAPES[k % len(SHAPES)], colours[(k // len(SHAPES)) % len(colours)],
                   PATTERNS[k // (len(SHAPES) * len(colours))])
        for k, name in enumerate(labels)
    }
    index = {name: k for k, name in enumerate(labels)}
    for pair in pairs:
        first, second = sorted(pair, key=index.__getitem__)
        looks[second] = looks[first]
    return looks


@dataclasses.dataclass(frozen=True)
class LabelModel:
    """Everything an image is drawn from: the label names, the fitted scene mixture, the
    ambiguous pairs (names) with their context cosines, and each label's look."""

    labels: Tuple[str, ...]
    mixture: coco_label_sets.SceneMixture
    ambiguous_pairs: Tuple[Tuple[str, str], ...]
    pair_cosines: Tuple[float, ...]
    looks: Dict[str, Look]


@functools.lru_cache(maxsize=1)
def coco_label_model() -> LabelModel:
    """The label model of the dataset, from COCO train2014's counts (fitted once per process)."""
    stats = coco_label_sets.load_label_statistics()
    pairs = coco_label_sets.choose_ambiguous_pairs(stats)
    names = tuple((stats.labels[a], stats.labels[b]) for a, b, _ in pairs)
    return LabelModel(
        labels=stats.labels,
        mixture=coco_label_sets.fit_scene_mixture(stats),
        ambiguous_pairs=names,
        pair_cosines=tuple(round(c, 4) for _, _, c in pairs),
        looks=label_looks(stats.labels, names),
    )


# ---------------------------------------------------------------------------------------------
# Drawing


def sample_size(rng: np.random.Generator) -> Tuple[str, float]:
    """A size bin of `SIZE_BINS` and a side fraction drawn uniformly inside it."""
    names = list(SIZE_BINS)
    probabilities = np.asarray([SIZE_BINS[name][1] for name in names], np.float64)
    name = names[rng.choice(len(names), p=probabilities / probabilities.sum())]
    low, high = SIZE_BINS[name][0]
    return name, float(rng.uniform(low, high))


def sample_objects(rng: np.random.Generator, label_names: Sequence[str], image_size: int) -> List[demo.DemoObject]:
    """One object per label: a size from `SIZE_BINS`, a place overlapping the others little (the
    demo's placement); largest first (the painting order)."""
    sized = [(name, *sample_size(rng)) for name in label_names]
    sized.sort(key=lambda item: -item[2])
    objects, placed = [], []
    for name, size_bin, fraction in sized:
        side = min(image_size, max(demo.MIN_OBJECT_PIXELS, int(round(fraction * image_size))))
        x0, y0 = demo.place(rng, side, image_size, placed)
        placed.append((x0, y0, side))
        objects.append(demo.DemoObject(name, size_bin, fraction, x0, y0, side))
    return objects


def draw_object(canvas: Image.Image, obj: demo.DemoObject, look: Look, rng: np.random.Generator) -> None:
    """Paints one object with its look on `canvas`, with a colour jitter drawn from `rng`."""
    colour = np.asarray(demo.jittered_color(rng, COLOURS[look.colour]), np.float64)
    mask = Image.new("L", canvas.size, 0)
    demo.draw_shape(ImageDraw.Draw(mask), look.shape, obj.x0, obj.y0, obj.side, 255)
    fill = np.empty([canvas.size[1], canvas.size[0], 3], np.uint8)
    fill[:] = colour.astype(np.uint8)
    if look.pattern == "striped":
        rows = (np.arange(canvas.size[1]) - obj.y0) // STRIPE_WIDTH % 2 == 1
        fill[rows] = np.round(colour * STRIPE_DARKNESS).astype(np.uint8)
    elif look.pattern != "solid":
        raise ValueError(f"Unknown pattern {look.pattern!r}")
    canvas.paste(Image.fromarray(fill, "RGB"), mask=mask)


def paint_objects(rng: np.random.Generator, objects, looks: Dict[str, Look], image_size: int) -> np.ndarray:
    """The objects on the demo's gray background, then the demo's per-pixel noise on everything."""
    canvas = Image.new("RGB", (image_size, image_size), (demo.BACKGROUND_GRAY,) * 3)
    for obj in objects:
        draw_object(canvas, obj, looks[obj.label], rng)
    noise = rng.normal(0.0, demo.NOISE_STD, size=(image_size, image_size, 3))
    return np.clip(np.round(np.asarray(canvas, np.float64) + noise), 0, 255).astype(np.uint8)


def render_example(rng: np.random.Generator, model: LabelModel, image_size: int) -> Tuple[np.ndarray, List[int]]:
    """One image: (uint8 [S, S, 3] RGB, its sorted label ids into `model.labels`)."""
    label_ids = np.flatnonzero(coco_label_sets.sample_label_sets(rng, model.mixture, 1)[0]).tolist()
    objects = sample_objects(rng, [model.labels[i] for i in label_ids], image_size)
    return paint_objects(rng, objects, model.looks, image_size), label_ids


# ---------------------------------------------------------------------------------------------
# The dataset


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image; independent of the shard count and of the other split."""
    return np.random.default_rng([seed, DATASET_STREAM_ID, SPLIT_STREAM_IDS[split], index])


def _render_split(model: LabelModel, split: str, count: int, image_size: int, seed: int, progress: bool):
    """Renders a split; returns (serialized examples, label-id lists)."""
    serialized, label_lists = [], []
    for index in tqdm(range(count), desc=f"coco_stats {split}", unit="img", disable=not progress):
        pixels, labels = render_example(example_rng(seed, split, index), model, image_size)
        example = records.encode_image_example(
            demo.encode_png(pixels), "png", image_size, image_size, f"coco_stats-{split}-{index:06d}", labels)
        # Plain serialization writes the feature map in an order that changes between processes.
        serialized.append(tf.train.Example.FromString(example).SerializeToString(deterministic=True))
        label_lists.append(labels)
    return serialized, label_lists


def _split_statistics(model: LabelModel, label_lists: Sequence[Sequence[int]]) -> dict:
    sets = np.zeros([len(label_lists), len(model.labels)], bool)
    for row, labels in enumerate(label_lists):
        sets[row, list(labels)] = True
    statistics = {
        "num_images": len(label_lists),
        "mean_labels_per_image": round(float(sets.sum(axis=1).mean()), 4) if len(label_lists) else 0.0,
        "class_counts": {name: int(c) for name, c in zip(model.labels, sets.sum(axis=0))},
    }
    if len(label_lists):
        statistics["agreement_with_coco"] = coco_label_sets.agreement(
            *coco_label_sets.set_statistics(sets), coco_label_sets.load_label_statistics())
    return statistics


def _parameters(num_train, num_val, image_size, seed, num_shards) -> dict:
    return {
        "dataset": "coco_stats",
        "version": COCO_STATS_VERSION,
        "num_train": int(num_train),
        "num_val": int(num_val),
        "image_size": int(image_size),
        "seed": int(seed),
        "num_shards": int(num_shards),
    }


def generate_coco_stats_dataset(
    out_dir: str,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    num_shards: int = DEFAULT_NUM_SHARDS,
    overwrite: bool = False,
    progress: bool = True,
) -> dict:
    """Writes labels.txt, train-*/val-* shards and summary.json to `out_dir`; returns the summary.

    Args:
      out_dir: str, the data directory (created if missing).
      num_train, num_val: int, images per split (default 4,000 and 1,000).
      image_size: int, side of the square images in pixels (default 96).
      seed: int, the same seed gives byte-identical records (default 0).
      num_shards: int, TFRecord shards per split; does not change the images (default 4).
      overwrite: bool, regenerate even when `out_dir` holds this dataset with these parameters
        (otherwise that dataset's summary is returned and nothing is written).
      progress: bool, show a progress bar per split.

    The summary is written last, so an interrupted run is never mistaken for a complete one.
    """
    demo.validate_sizes(num_train, num_val, image_size, seed, num_shards, split_flags=("--train", "--val"))
    parameters = _parameters(num_train, num_val, image_size, seed, num_shards)
    if not overwrite and demo.is_complete(out_dir, parameters):
        return demo.read_summary(out_dir)
    model = coco_label_model()
    os.makedirs(out_dir, exist_ok=True)
    demo.remove_old_outputs(out_dir)
    vocab.write_vocabulary(vocab.vocabulary_path(out_dir), model.labels)
    splits = {}
    for split, count in ((TRAIN_SPLIT, num_train), (VAL_SPLIT, num_val)):
        serialized, label_lists = _render_split(model, split, count, image_size, seed, progress)
        records.write_split(out_dir, split, serialized, num_shards)
        splits[split] = _split_statistics(model, label_lists)
    stats = coco_label_sets.load_label_statistics()
    summary = {
        "parameters": parameters,
        "image_size": int(image_size),
        "seed": int(seed),
        "labels": list(model.labels),
        "ambiguous_pairs": [list(pair) for pair in model.ambiguous_pairs],
        "ambiguous_pair_context_cosine": list(model.pair_cosines),
        "looks": {name: dataclasses.asdict(look) for name, look in model.looks.items()},
        "label_model": {
            "statistics": "MS-COCO train2014 label counts (cma_tf/datasets/coco2014_label_stats.json)",
            "coco_images": stats.num_images,
            "scenes": len(model.mixture.scene_probabilities),
            "agreement_closed_form": coco_label_sets.agreement(
                model.mixture.frequencies, model.mixture.conditional, stats),
        },
        "splits": splits,
    }
    write_text(demo.summary_path(out_dir), json.dumps(summary, indent=2) + "\n")
    return summary


# ---------------------------------------------------------------------------------------------
# Command line


def define_flags(flag_values=None):
    """Defines the CLI flags on `flag_values` (absl's global FLAGS by default) and returns it."""
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("out_dir", None, "Directory to write labels.txt (COCO's 80 label names), the "
                        "train-*/val-* TFRecord shards and summary.json (parameters, ambiguous pairs, "
                        "per-split label counts) to; created if missing.", flag_values=fv)
    flags.DEFINE_integer("train", DEFAULT_NUM_TRAIN, "Number of training images.", flag_values=fv)
    flags.DEFINE_integer("val", DEFAULT_NUM_VAL, "Number of validation images.", flag_values=fv)
    flags.DEFINE_integer("image_size", DEFAULT_IMAGE_SIZE, "Side of the square RGB images, in pixels "
                         f"(>= {demo.MIN_IMAGE_SIZE}); objects are 6-40 % of it.", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed of the images and their label sets; the same seed "
                         "gives byte-identical records.", flag_values=fv)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS, "TFRecord shards per split (does not change "
                         "the images).", flag_values=fv)
    flags.DEFINE_bool("overwrite", False, "Regenerate even if out_dir already holds this dataset made "
                      "with the same parameters (otherwise nothing is written).", flag_values=fv)
    flags.mark_flag_as_required("out_dir", flag_values=fv)
    return fv


def run_from_flags(flag_values, progress: bool = True) -> dict:
    """Generates the dataset the parsed flags describe and prints a one-line summary."""
    began = time.perf_counter()
    summary = generate_coco_stats_dataset(
        flag_values.out_dir, num_train=flag_values.train, num_val=flag_values.val,
        image_size=flag_values.image_size, seed=flag_values.seed, num_shards=flag_values.num_shards,
        overwrite=flag_values.overwrite, progress=progress,
    )
    splits = summary["splits"]
    pairs = ", ".join(" / ".join(pair) for pair in summary["ambiguous_pairs"])
    print(f"{flag_values.out_dir}: {splits[TRAIN_SPLIT]['num_images']} train and {splits[VAL_SPLIT]['num_images']} "
          f"val images of {summary['image_size']} px, {len(summary['labels'])} labels, "
          f"{splits[TRAIN_SPLIT]['mean_labels_per_image']} per training image; ambiguous pairs: {pairs}; "
          f"{time.perf_counter() - began:.1f} s")
    return summary


if __name__ == "__main__":
    from cma_tf import cli

    cli.run_flag_command(define_flags, run_from_flags)
