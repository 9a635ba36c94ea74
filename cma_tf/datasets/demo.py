"""The embedded demo dataset: synthetic multi-label scenes, generated deterministically from a seed.

The demo dataset is small enough to generate in seconds on one CPU core, yet it has the structure
that Cross-Modality Attention is meant to exploit: labels that co-occur by scene, objects at
several scales, and classes that can only be told apart by their context.

Scenes and labels
-----------------
Every image shows one of four scenes, chosen uniformly. The scene picks 2-4 objects (drawn with
replacement, so an object may appear twice) from its own object list with the probabilities
below; with probability 0.1 one extra object "wanders in" from another scene (one that is not on
this scene's list), so co-occurrence is strong but not deterministic. `person` appears in all four scenes and `bicycle` in two, which gives the label
graph cross-scene edges.

| scene   | objects (probability)                                                          |
|---------|--------------------------------------------------------------------------------|
| park    | person .25, dog .25, frisbee .20, tree .15, bench .10, bicycle .05             |
| kitchen | plate .30, fork .25, cup .25, oven .15, person .05                             |
| street  | car .30, traffic light .20, stop sign .20, person .15, bicycle .15             |
| beach   | kite .30, umbrella .25, boat .25, person .20                                   |

The 16 labels (vocabulary order): person, bicycle, dog, frisbee, tree, bench, plate, fork, cup,
oven, car, traffic light, stop sign, kite, umbrella, boat. The labels of an image are the set of
objects drawn (a label appears once even if its object is drawn twice); an image has about 2.4
labels on average.

Appearance
----------
Images are RGB squares (96 px by default). The background is the same for every scene: mid gray
with per-pixel gaussian noise, so it says nothing about the scene. Each object is a flat shape
with a class-specific shape and colour (each channel jittered by up to +-15), and the same noise
is added on top of the objects.

| shape        | colour: labels                                                   |
|--------------|------------------------------------------------------------------|
| disk         | white: frisbee, plate                                            |
| diamond      | red: kite, stop sign                                             |
| tall bar     | peach: person; yellow: traffic light                             |
| wide bar     | purple: bench; red: car                                          |
| square       | cyan: cup; orange: oven                                          |
| ring         | black: bicycle                                                   |
| wide ellipse | brown: dog                                                       |
| triangle     | green: tree                                                      |
| thin bar     | blue: fork                                                       |
| half disk    | pink: umbrella                                                   |
| trapezoid    | light blue: boat                                                 |

Two pairs of labels are AMBIGUOUS ALONE: they are drawn from the identical appearance
distribution, and only the co-occurring objects tell them apart:

* `frisbee` (park) and `plate` (kitchen) are both a white disk;
* `kite` (beach) and `stop sign` (street) are both a red diamond.

Sizes
-----
Each object's bounding square has a side of 6-10% (small, probability .35), 15-25% (medium, .40)
or 30-40% (large, .25) of the image side, so several feature scales matter. Objects stay inside
the image and are placed so that they overlap a little at most; large objects are painted first
so that small ones are never hidden.

Determinism
-----------
Image `i` of split `s` is rendered from its own stream `numpy.random.default_rng([seed, s, i])`,
so the same seed gives identical pixels and labels whatever the number of shards. Images are
stored losslessly as PNG in the TFRecord format of `records.py`.

Command line::

    python -m cma_tf.datasets.demo --out_dir=data/demo
"""

import dataclasses
import glob
import io
import json
import os
from typing import Dict, List, Sequence, Tuple

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from cma_tf.atomic import write_text
from cma_tf.data import records
from cma_tf.data import vocab
from cma_tf.errors import ConfigError

# Bump when the rendering changes, so that cached demo directories are regenerated.
DEMO_VERSION = 1
SUMMARY_FILENAME = "summary.json"
TRAIN_SPLIT = "train"
VAL_SPLIT = "val"
# Stream ids that keep the random streams of the splits apart.
SPLIT_STREAM_IDS = {TRAIN_SPLIT: 0, VAL_SPLIT: 1}

DEFAULT_IMAGE_SIZE = 96
# Below this the small objects shrink to a few pixels and the shapes become indistinct.
MIN_IMAGE_SIZE = 16
DEFAULT_NUM_TRAIN = 3000
DEFAULT_NUM_VAL = 1000
DEFAULT_NUM_SHARDS = 4

MIN_OBJECTS_PER_SCENE = 2
MAX_OBJECTS_PER_SCENE = 4
INTRUDER_PROBABILITY = 0.1

BACKGROUND_GRAY = 128
NOISE_STD = 12.0
COLOR_JITTER = 15

# name -> ((min, max) side as a fraction of the image side, probability)
SIZE_BINS = {
    "small": ((0.06, 0.10), 0.35),
    "medium": ((0.15, 0.25), 0.40),
    "large": ((0.30, 0.40), 0.25),
}
MIN_OBJECT_PIXELS = 3
PLACEMENT_TRIES = 20
# An object may cover at most this fraction of the smaller of two bounding squares.
MAX_OVERLAP_FRACTION = 0.2
# Ring line width as a fraction of the object side.
RING_WIDTH_FRACTION = 0.18

DEMO_LABELS = [
    "person",
    "bicycle",
    "dog",
    "frisbee",
    "tree",
    "bench",
    "plate",
    "fork",
    "cup",
    "oven",
    "car",
    "traffic light",
    "stop sign",
    "kite",
    "umbrella",
    "boat",
]

# scene -> {object label: probability of each object draw}; probabilities of a scene sum to 1.
# An image picks a scene uniformly, then 2-4 draws from its table (see the module docstring).
DEMO_SCENES = {
    "park": {
        "person": 0.25, "dog": 0.25, "frisbee": 0.20, "tree": 0.15, "bench": 0.10, "bicycle": 0.05,
    },
    "kitchen": {"plate": 0.30, "fork": 0.25, "cup": 0.25, "oven": 0.15, "person": 0.05},
    "street": {
        "car": 0.30, "traffic light": 0.20, "stop sign": 0.20, "person": 0.15, "bicycle": 0.15,
    },
    "beach": {"kite": 0.30, "umbrella": 0.25, "boat": 0.25, "person": 0.20},
}


@dataclasses.dataclass(frozen=True)
class Appearance:
    """How an object is drawn: a shape name (see `draw_shape`) and a base RGB colour."""

    shape: str
    color: Tuple[int, int, int]


WHITE_DISK = Appearance("disk", (245, 245, 245))
RED_DIAMOND = Appearance("diamond", (225, 35, 45))

# label -> appearance. The shared entries make the ambiguous pairs.
DEMO_APPEARANCE = {
    "person": Appearance("tall_bar", (235, 180, 140)),
    "bicycle": Appearance("ring", (20, 20, 20)),
    "dog": Appearance("wide_ellipse", (150, 90, 40)),
    "frisbee": WHITE_DISK,
    "tree": Appearance("triangle", (30, 140, 40)),
    "bench": Appearance("wide_bar", (120, 50, 160)),
    "plate": WHITE_DISK,
    "fork": Appearance("thin_bar", (40, 60, 200)),
    "cup": Appearance("square", (0, 200, 200)),
    "oven": Appearance("square", (250, 130, 0)),
    "car": Appearance("wide_bar", (220, 30, 30)),
    "traffic light": Appearance("tall_bar", (250, 230, 0)),
    "stop sign": RED_DIAMOND,
    "kite": RED_DIAMOND,
    "umbrella": Appearance("half_disk", (255, 120, 200)),
    "boat": Appearance("trapezoid", (160, 200, 255)),
}

# The label pairs that look identical and are told apart only by context.
AMBIGUOUS_PAIRS = [("frisbee", "plate"), ("kite", "stop sign")]

# Shapes given as polygons/boxes in unit coordinates of the object's bounding square.
_POLYGONS = {
    "triangle": [(0.5, 0.0), (1.0, 1.0), (0.0, 1.0)],
    "diamond": [(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)],
    "trapezoid": [(0.0, 0.35), (1.0, 0.35), (0.75, 0.85), (0.25, 0.85)],
}
_RECTANGLES = {
    "tall_bar": (0.3, 0.0, 0.7, 1.0),
    "wide_bar": (0.0, 0.3, 1.0, 0.7),
    "thin_bar": (0.4, 0.0, 0.6, 1.0),
    "square": (0.1, 0.1, 0.9, 0.9),
}
_ELLIPSES = {"disk": (0.0, 0.0, 1.0, 1.0), "wide_ellipse": (0.0, 0.2, 1.0, 0.8)}

_LABEL_IDS = {name: index for index, name in enumerate(DEMO_LABELS)}
_SCENE_NAMES = list(DEMO_SCENES)


@dataclasses.dataclass(frozen=True)
class DemoObject:
    """One object of a layout: its label, its size and its bounding square in pixels."""

    label: str
    size_bin: str
    size_fraction: float
    x0: int
    y0: int
    side: int


@dataclasses.dataclass(frozen=True)
class DemoLayout:
    """What an image shows: its scene and its objects, in painting order (largest first)."""

    scene: str
    objects: Tuple[DemoObject, ...]


# ---------------------------------------------------------------------------------------------
# Layout sampling


def _choose_from_table(rng: np.random.Generator, table: Dict[str, float]) -> str:
    names = list(table)
    probabilities = np.asarray([table[name] for name in names], np.float64)
    return names[rng.choice(len(names), p=probabilities / probabilities.sum())]


def _sample_intruder(rng: np.random.Generator, scene: str) -> str:
    """An object from another scene that is not on this scene's own list."""
    others = [name for name in _SCENE_NAMES if name != scene]
    other = others[rng.integers(len(others))]
    foreign = {
        label: p for label, p in DEMO_SCENES[other].items() if label not in DEMO_SCENES[scene]
    }
    return _choose_from_table(rng, foreign)


def sample_object_labels(rng: np.random.Generator, scene: str) -> List[str]:
    """The object labels of one image of `scene` (repeats possible), intruder included."""
    count = int(rng.integers(MIN_OBJECTS_PER_SCENE, MAX_OBJECTS_PER_SCENE + 1))
    labels = [_choose_from_table(rng, DEMO_SCENES[scene]) for _ in range(count)]
    if rng.random() < INTRUDER_PROBABILITY:
        labels.append(_sample_intruder(rng, scene))
    return labels


def sample_size(rng: np.random.Generator) -> Tuple[str, float]:
    """A size bin and a side fraction drawn uniformly inside it."""
    names = list(SIZE_BINS)
    probabilities = np.asarray([SIZE_BINS[name][1] for name in names], np.float64)
    name = names[rng.choice(len(names), p=probabilities / probabilities.sum())]
    low, high = SIZE_BINS[name][0]
    return name, float(rng.uniform(low, high))


def _overlap_fraction(a: Tuple[int, int, int], b: Tuple[int, int, int]) -> float:
    """Intersection area of two squares (x0, y0, side) over the area of the smaller one."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[2], b[1] + b[2]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    return width * height / float(min(a[2], b[2]) ** 2)


def place(rng: np.random.Generator, side: int, image_size: int, placed) -> Tuple[int, int]:
    """Top-left corner for a square of `side`, inside the image, overlapping `placed` little."""
    best, best_overlap = None, np.inf
    for _ in range(PLACEMENT_TRIES):
        x0, y0 = (int(v) for v in rng.integers(0, image_size - side + 1, size=2))
        overlap = max([_overlap_fraction((x0, y0, side), box) for box in placed], default=0.0)
        if overlap <= MAX_OVERLAP_FRACTION:
            return x0, y0
        if overlap < best_overlap:
            best, best_overlap = (x0, y0), overlap
    return best


def sample_demo_layout(rng: np.random.Generator, image_size: int) -> DemoLayout:
    """Samples a scene, its objects, their sizes and their positions."""
    scene = _SCENE_NAMES[rng.integers(len(_SCENE_NAMES))]
    labels = sample_object_labels(rng, scene)
    sized = [(label, *sample_size(rng)) for label in labels]
    # Large objects first, so that small ones are placed (and painted) on top.
    sized.sort(key=lambda item: -item[2])
    objects, placed = [], []
    for label, size_bin, fraction in sized:
        side = min(image_size, max(MIN_OBJECT_PIXELS, int(round(fraction * image_size))))
        x0, y0 = place(rng, side, image_size, placed)
        placed.append((x0, y0, side))
        objects.append(DemoObject(label, size_bin, fraction, x0, y0, side))
    return DemoLayout(scene, tuple(objects))


# ---------------------------------------------------------------------------------------------
# Painting


def _unit_to_pixels(points, x0: int, y0: int, side: int):
    extent = side - 1
    return [(x0 + u * extent, y0 + v * extent) for u, v in points]


def _unit_box(unit_box, x0: int, y0: int, side: int):
    (left, top), (right, bottom) = _unit_to_pixels([unit_box[:2], unit_box[2:]], x0, y0, side)
    return [left, top, right, bottom]


def draw_shape(draw: ImageDraw.ImageDraw, shape: str, x0: int, y0: int, side: int, color):
    """Draws one of the named shapes filling the square (x0, y0, side)."""
    full = _unit_box((0.0, 0.0, 1.0, 1.0), x0, y0, side)
    if shape in _POLYGONS:
        draw.polygon(_unit_to_pixels(_POLYGONS[shape], x0, y0, side), fill=color)
    elif shape in _RECTANGLES:
        draw.rectangle(_unit_box(_RECTANGLES[shape], x0, y0, side), fill=color)
    elif shape in _ELLIPSES:
        draw.ellipse(_unit_box(_ELLIPSES[shape], x0, y0, side), fill=color)
    elif shape == "ring":
        draw.ellipse(full, outline=color, width=max(1, int(round(RING_WIDTH_FRACTION * side))))
    elif shape == "half_disk":
        draw.pieslice(full, start=180, end=360, fill=color)
    else:
        raise ValueError(f"Unknown demo shape {shape!r}")


def jittered_color(rng: np.random.Generator, color) -> Tuple[int, int, int]:
    """`color` with every channel moved by up to ±COLOR_JITTER, kept in 0..255."""
    jitter = rng.integers(-COLOR_JITTER, COLOR_JITTER + 1, size=3)
    return tuple(int(c) for c in np.clip(np.asarray(color) + jitter, 0, 255))


def draw_demo_object(draw: ImageDraw.ImageDraw, obj: DemoObject, rng: np.random.Generator):
    """Paints one object with its class appearance and a colour jitter drawn from `rng`."""
    appearance = DEMO_APPEARANCE[obj.label]
    color = jittered_color(rng, appearance.color)
    draw_shape(draw, appearance.shape, obj.x0, obj.y0, obj.side, color)


def paint_layout(rng: np.random.Generator, layout: DemoLayout, image_size: int) -> np.ndarray:
    """Paints the objects on a gray canvas, then adds the per-pixel noise to everything."""
    canvas = Image.new("RGB", (image_size, image_size), (BACKGROUND_GRAY,) * 3)
    draw = ImageDraw.Draw(canvas)
    for obj in layout.objects:
        draw_demo_object(draw, obj, rng)
    noise = rng.normal(0.0, NOISE_STD, size=(image_size, image_size, 3))
    pixels = np.asarray(canvas, np.float64) + noise
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def layout_label_ids(layout: DemoLayout) -> List[int]:
    """The sorted, distinct label ids of a layout."""
    return sorted({_LABEL_IDS[obj.label] for obj in layout.objects})


def render_demo_example(
    rng: np.random.Generator, image_size: int = DEFAULT_IMAGE_SIZE
) -> Tuple[np.ndarray, List[int]]:
    """Renders one image: (uint8 [H, W, 3] RGB, sorted distinct label ids into DEMO_LABELS)."""
    layout = sample_demo_layout(rng, image_size)
    return paint_layout(rng, layout, image_size), layout_label_ids(layout)


# ---------------------------------------------------------------------------------------------
# Dataset generation


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of one image; independent of how the split is sharded."""
    return np.random.default_rng([seed, SPLIT_STREAM_IDS[split], index])


def encode_png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _render_split(split: str, count: int, image_size: int, seed: int, progress: bool):
    """Renders a split; returns (serialized examples, label-id lists, scene names)."""
    serialized, label_lists, scenes = [], [], []
    for index in tqdm(range(count), desc=f"demo {split}", unit="img", disable=not progress):
        rng = example_rng(seed, split, index)
        layout = sample_demo_layout(rng, image_size)
        pixels = paint_layout(rng, layout, image_size)
        labels = layout_label_ids(layout)
        serialized.append(
            records.encode_image_example(
                encode_png(pixels), "png", image_size, image_size, f"demo-{split}-{index:06d}", labels
            )
        )
        label_lists.append(labels)
        scenes.append(layout.scene)
    return serialized, label_lists, scenes


def _split_statistics(label_lists: Sequence[Sequence[int]], scenes: Sequence[str]) -> dict:
    class_counts = np.zeros([len(DEMO_LABELS)], np.int64)
    for labels in label_lists:
        class_counts[list(labels)] += 1
    num_images = len(label_lists)
    mean_labels = float(np.mean([len(labels) for labels in label_lists])) if num_images else 0.0
    return {
        "num_images": num_images,
        "mean_labels_per_image": round(mean_labels, 4),
        "class_counts": {name: int(c) for name, c in zip(DEMO_LABELS, class_counts)},
        "scene_counts": {name: scenes.count(name) for name in _SCENE_NAMES},
    }


def _parameters(num_train, num_val, image_size, seed, num_shards) -> dict:
    return {
        "version": DEMO_VERSION,
        "num_train": int(num_train),
        "num_val": int(num_val),
        "image_size": int(image_size),
        "seed": int(seed),
        "num_shards": int(num_shards),
    }


def summary_path(out_dir: str) -> str:
    return os.path.join(out_dir, SUMMARY_FILENAME)


def read_summary(out_dir: str):
    """The summary of an existing demo directory, or None."""
    path = summary_path(out_dir)
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def is_complete(out_dir: str, parameters: dict) -> bool:
    """Whether `out_dir` already holds a demo dataset generated with these parameters."""
    summary = read_summary(out_dir)
    if summary is None or summary.get("parameters") != parameters:
        return False
    if not os.path.exists(vocab.vocabulary_path(out_dir)):
        return False
    for split in SPLIT_STREAM_IDS:
        expected = [records.shard_path(out_dir, split, i, parameters["num_shards"])
                    for i in range(parameters["num_shards"])]
        if not all(os.path.exists(path) for path in expected):
            return False
    return True


def remove_old_outputs(out_dir: str) -> None:
    """Removes the summary and every shard, so no stale shard of another count matches a split."""
    if os.path.exists(summary_path(out_dir)):
        os.remove(summary_path(out_dir))
    for split in SPLIT_STREAM_IDS:
        for path in sorted(glob.glob(records.split_pattern(out_dir, split))):
            os.remove(path)


def validate_sizes(num_train, num_val, image_size, seed, num_shards,
                   split_flags: Tuple[str, str] = ("--num_train", "--num_val")) -> None:
    """Raises `ConfigError` naming the flag whose value cannot make a dataset (the image
    generators share it; `split_flags` are the generator's names of the two split sizes).

    Each split needs an image: a dataset without training or validation images would be written
    and then fail in training, far from the flag that caused it."""
    if num_train < 1 or num_val < 1:
        raise ConfigError(f"{split_flags[0]} and {split_flags[1]} must be >= 1, got {num_train} and {num_val}")
    if image_size < MIN_IMAGE_SIZE:
        raise ConfigError(f"--image_size must be >= {MIN_IMAGE_SIZE}, got {image_size}")
    if seed < 0:
        raise ConfigError(f"--seed must be >= 0, got {seed}")
    if num_shards < 1:
        raise ConfigError(f"--num_shards must be >= 1, got {num_shards}")


def generate_demo_dataset(
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

    Does nothing (and returns the stored summary) when `out_dir` already holds a dataset made with
    the same parameters, unless `overwrite`. The summary is written last, so an interrupted run is
    never mistaken for a complete one.
    """
    validate_sizes(num_train, num_val, image_size, seed, num_shards)
    parameters = _parameters(num_train, num_val, image_size, seed, num_shards)
    if not overwrite and is_complete(out_dir, parameters):
        return read_summary(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    remove_old_outputs(out_dir)
    vocab.write_vocabulary(vocab.vocabulary_path(out_dir), DEMO_LABELS)
    splits = {}
    for split, count in ((TRAIN_SPLIT, num_train), (VAL_SPLIT, num_val)):
        serialized, label_lists, scenes = _render_split(split, count, image_size, seed, progress)
        records.write_split(out_dir, split, serialized, num_shards)
        splits[split] = _split_statistics(label_lists, scenes)
    summary = {
        "parameters": parameters,
        "image_size": int(image_size),
        "seed": int(seed),
        "labels": list(DEMO_LABELS),
        "splits": splits,
    }
    write_text(summary_path(out_dir), json.dumps(summary, indent=2) + "\n")
    return summary


def write_demo_files(
    out_dir: str,
    num_train: int = DEFAULT_NUM_TRAIN,
    num_val: int = DEFAULT_NUM_VAL,
    image_size: int = DEFAULT_IMAGE_SIZE,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """The demo images as a user's own data looks before conversion: `images/<split>/*.png` and
    `<split>.csv` with rows `path,label1|label2` (paths relative to the CSV), for trying
    `cma_tf.data.convert.csv_list`. The same images as `generate_demo_dataset` with the same
    seed. Returns `{split: csv path}`; each CSV is written last, under a temporary name."""
    validate_sizes(num_train, num_val, image_size, seed, 1)
    written = {}
    for split, count in ((TRAIN_SPLIT, num_train), (VAL_SPLIT, num_val)):
        image_dir = os.path.join(out_dir, "images", split)
        os.makedirs(image_dir, exist_ok=True)
        rows = []
        for index in tqdm(range(count), desc=f"demo {split}", unit="img", disable=not progress):
            rng = example_rng(seed, split, index)
            layout = sample_demo_layout(rng, image_size)
            name = f"{split}_{index:06d}.png"
            Image.fromarray(paint_layout(rng, layout, image_size), "RGB").save(os.path.join(image_dir, name))
            labels = "|".join(DEMO_LABELS[i] for i in layout_label_ids(layout))
            rows.append(f"images/{split}/{name},{labels}\n")
        csv_path = os.path.join(out_dir, f"{split}.csv")
        write_text(csv_path, "path,labels\n" + "".join(rows))
        written[split] = csv_path
    return written


# ---------------------------------------------------------------------------------------------
# Command line


def define_flags(flag_values=None):
    """Defines the CLI flags on `flag_values` (absl's global FLAGS by default) and returns it.

    Called only by the CLI (or tests), so importing this module never defines global flags.
    """
    from absl import flags

    flag_values = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_string("out_dir", None, "Directory to write labels.txt, the train-*/val-* "
                        "TFRecord shards and summary.json to (created if missing).",
                        flag_values=flag_values)
    flags.DEFINE_integer("num_train", DEFAULT_NUM_TRAIN, "Number of training images.",
                         flag_values=flag_values)
    flags.DEFINE_integer("num_val", DEFAULT_NUM_VAL, "Number of validation images.",
                         flag_values=flag_values)
    flags.DEFINE_integer("image_size", DEFAULT_IMAGE_SIZE,
                         "Side of the square RGB images, in pixels.", flag_values=flag_values)
    flags.DEFINE_integer("seed", 0, "Random seed; the same seed gives identical images and labels.",
                         flag_values=flag_values)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS,
                         "Number of TFRecord shards per split (does not change the content).",
                         flag_values=flag_values)
    flags.DEFINE_bool("overwrite", False, "Regenerate even if out_dir already holds a dataset "
                      "made with the same parameters (otherwise generation is skipped).",
                      flag_values=flag_values)
    flags.DEFINE_bool("as_files", False, "Write PNG files under out_dir/images/ and out_dir/train.csv, "
                      "out_dir/val.csv (rows path,label1|label2) instead of TFRecords: a folder shaped like "
                      "your own data, to try cma_tf.data.convert.csv_list on.", flag_values=flag_values)
    flags.mark_flag_as_required("out_dir", flag_values=flag_values)
    return flag_values


def run_from_flags(flag_values) -> dict:
    """Generates the dataset the parsed flags describe and prints its summary."""
    if flag_values.as_files:
        written = write_demo_files(
            flag_values.out_dir, num_train=flag_values.num_train, num_val=flag_values.num_val,
            image_size=flag_values.image_size, seed=flag_values.seed,
        )
        print("wrote " + ", ".join(f"{path} ({split})" for split, path in written.items()))
        return written
    summary = generate_demo_dataset(
        flag_values.out_dir,
        num_train=flag_values.num_train,
        num_val=flag_values.num_val,
        image_size=flag_values.image_size,
        seed=flag_values.seed,
        num_shards=flag_values.num_shards,
        overwrite=flag_values.overwrite,
    )
    print(json.dumps(summary, indent=2))
    return summary


if __name__ == "__main__":
    from cma_tf import cli

    cli.run_flag_command(define_flags, run_from_flags)
