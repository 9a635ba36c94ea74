"""The corpus the small backbone is pretrained on (docs/design.md §2.26): single-label images of
96 classes that share no shape with the benchmark's datasets, rendered in memory from a seed.

The benchmark's datasets (`demo.py`, `coco_stats.py`) draw flat shapes: disk, square, triangle,
tall/wide/thin bar, diamond, ring, wide ellipse, half disk, trapezoid, each a class's fixed
colour (jittered ±15) on a gray noisy background. This corpus plays ImageNet's part for them:
features learned on other objects, to be transferred. So it is built from OTHER primitives, and
none of those (`BENCHMARK_SHAPES`; tests/data/test_pretrain_corpus.py checks the names and the
pixels):

Classes
-------
A class is a shape × a fill, `SHAPES` × `FILLS` = 16 × 6 = 96 classes, named "shape/fill"
(`CLASSES`, class k = shape k // 6, fill k % 6):

- shapes: five-pointed star, twelve-pointed burst, plus, six-spoked asterisk, crescent, arrow,
  heart, L, T, chevron, zig-zag line, wave, bow-tie, spiral, lightning bolt, hash (#);
- fills: solid, checker, polka dots, diagonal stripes, linear gradient, outline only. The
  patterned fills pair the object's colour with a darker (or, for a dark colour, lighter)
  shade of it, at a pitch drawn per object (checker cells 2-4 px, dots and stripes every
  4-6 px).

So a class is told by its outline and its texture, as ImageNet's classes are by parts and
texture; colour is a cue but never the answer.

An image
--------
Image i shows one object of class `i % 96` (so every class has the same number of images) and
is labelled with it alone (single-label, softmax, as ImageNet):

- the object's square has a side of 40-75 % of the image side, anywhere inside the image; the
  shape is rotated by up to ±20° (objects have an upright pose, as in photographs) and
  stretched by up to 1.25 in one direction;
- its colour varies continuously (HSV): half the time the hue is near the class's own (a
  golden-ratio spacing of the 96 classes, std 0.06 of the hue circle), otherwise any hue;
  saturation 0.35-1, value 0.35-1; redrawn (up to 8 times) while it is closer than 70 (RGB
  distance) to the background beneath it;
- 0-3 distractors (probability .3, .3, .25, .15) of other classes, 12-25 % of the side, behind
  the object, overlapping it and each other little (`place`, the demo's placement);
- a noisy background, one of four kinds: a flat colour, a linear gradient between two
  colours, coloured blobs (a 3-6 × 3-6 grid of colours, bicubically enlarged), or a flat
  colour with heavy grain (std 25); then gaussian noise of std 3-15 on every pixel.

Determinism
-----------
Image i of a split is rendered from its own stream `numpy.random.default_rng([seed, 31,
split_id, i])` (31 keeps it apart from the demo's and COCO-statistics' streams; split ids:
`SPLIT_STREAM_IDS`), so a seed gives the same pixels whatever else is rendered.
"""

import colorsys
from typing import Dict, List, Tuple

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm


# Bump when the classes or the drawing change (the preset's provenance records it).
CORPUS_VERSION = 1
DATASET_STREAM_ID = 31
TRAIN_SPLIT = "train"
HELDOUT_SPLIT = "heldout"
SPLIT_STREAM_IDS = {TRAIN_SPLIT: 0, HELDOUT_SPLIT: 1}
DEFAULT_IMAGE_SIZE = 96

# The shapes the benchmark's datasets draw (demo.DEMO_APPEARANCE, coco_stats.SHAPES): none is
# a shape of this corpus.
BENCHMARK_SHAPES = (
    "disk", "square", "triangle", "tall_bar", "wide_bar", "thin_bar", "diamond", "ring",
    "wide_ellipse", "half_disk", "trapezoid",
)

# --- Shapes: primitives in a unit square centred on (0, 0) ------------------------------------
# ("polygon", points, ink) fills with ink (255 draws, 0 erases); ("line", points, width) strokes
# a polyline of `width` × the object's side.


def _circle(cx, cy, radius, points=48):
    angles = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    return [(cx + radius * np.cos(a), cy + radius * np.sin(a)) for a in angles]


def _star(tips, outer, inner):
    angles = -np.pi / 2 + np.arange(2 * tips) * np.pi / tips
    radii = np.where(np.arange(2 * tips) % 2 == 0, outer, inner)
    return [(r * np.cos(a), r * np.sin(a)) for r, a in zip(radii, angles)]


def _heart(points=48):
    t = np.linspace(0.0, 2.0 * np.pi, points, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    x, y = x / 34.0, (y - (y.max() + y.min()) / 2) / (y.max() - y.min())
    return list(zip(x, y))


def _spiral(turns=2.5, points=80):
    t = np.linspace(0.0, 2.0 * np.pi * turns, points)
    r = 0.05 + 0.42 * t / t[-1]
    return list(zip(r * np.cos(t), r * np.sin(t)))


def _wave(points=40):
    x = np.linspace(-0.45, 0.45, points)
    return list(zip(x, 0.28 * np.sin(2.0 * np.pi * 1.5 * (x + 0.45) / 0.9)))


SHAPE_PRIMITIVES = {
    "star": [("polygon", _star(5, 0.5, 0.2), 255)],
    "burst": [("polygon", _star(12, 0.5, 0.3), 255)],
    "plus": [("polygon", [(-0.14, -0.5), (0.14, -0.5), (0.14, -0.14), (0.5, -0.14), (0.5, 0.14), (0.14, 0.14),
                          (0.14, 0.5), (-0.14, 0.5), (-0.14, 0.14), (-0.5, 0.14), (-0.5, -0.14), (-0.14, -0.14)], 255)],
    "asterisk": [("line", [(0.48 * np.cos(a), 0.48 * np.sin(a)), (-0.48 * np.cos(a), -0.48 * np.sin(a))], 0.12)
                 for a in (np.pi / 2, np.pi / 6, 5 * np.pi / 6)],
    "crescent": [("polygon", _circle(0.0, 0.0, 0.5), 255), ("polygon", _circle(0.2, -0.05, 0.42), 0)],
    "arrow": [("polygon", [(0.0, -0.5), (0.36, -0.05), (0.11, -0.05), (0.11, 0.5), (-0.11, 0.5), (-0.11, -0.05),
                           (-0.36, -0.05)], 255)],
    "heart": [("polygon", _heart(), 255)],
    "ell": [("polygon", [(-0.4, -0.5), (-0.1, -0.5), (-0.1, 0.2), (0.4, 0.2), (0.4, 0.5), (-0.4, 0.5)], 255)],
    "tee": [("polygon", [(-0.5, -0.5), (0.5, -0.5), (0.5, -0.2), (0.15, -0.2), (0.15, 0.5), (-0.15, 0.5),
                         (-0.15, -0.2), (-0.5, -0.2)], 255)],
    "chevron": [("line", [(-0.42, -0.32), (0.0, 0.32), (0.42, -0.32)], 0.2)],
    "zigzag": [("line", [(-0.45, 0.25), (-0.27, -0.25), (-0.09, 0.25), (0.09, -0.25), (0.27, 0.25), (0.45, -0.25)],
                0.12)],
    "wave": [("line", _wave(), 0.12)],
    "bowtie": [("polygon", [(-0.42, -0.5), (0.42, -0.5), (0.0, 0.0)], 255),
               ("polygon", [(-0.42, 0.5), (0.42, 0.5), (0.0, 0.0)], 255)],
    "spiral": [("line", _spiral(), 0.08)],
    "bolt": [("polygon", [(0.12, -0.5), (-0.32, 0.06), (-0.03, 0.06), (-0.15, 0.5), (0.32, -0.1), (0.03, -0.1)], 255)],
    "hash": [("line", [(x, -0.5), (x, 0.5)], 0.1) for x in (-0.17, 0.17)]
            + [("line", [(-0.5, y), (0.5, y)], 0.1) for y in (-0.17, 0.17)],
}
SHAPES = tuple(SHAPE_PRIMITIVES)
FILLS = ("solid", "checker", "dots", "diagonal_stripes", "gradient", "outline")
CLASSES = tuple(f"{shape}/{fill}" for shape in SHAPES for fill in FILLS)
NUM_CLASSES = len(CLASSES)

MAX_ROTATION_DEGREES = 20.0
MAX_STRETCH = 1.25
OBJECT_SIDE = (0.40, 0.75)  # of the image side
DISTRACTOR_SIDE = (0.12, 0.25)
DISTRACTOR_COUNT_PROBABILITIES = (0.3, 0.3, 0.25, 0.15)  # 0, 1, 2, 3 distractors
CLASS_HUE_PROBABILITY = 0.5
CLASS_HUE_STD = 0.06
SATURATION = (0.35, 1.0)
VALUE = (0.35, 1.0)
MIN_CONTRAST = 70.0  # RGB distance between an object's colour and the background beneath it
COLOUR_TRIES = 8
SHADE_FACTOR = (0.25, 0.5)  # the patterned fills' second colour: this × the colour (or toward white)
CHECKER_CELL = (2, 4)  # px, inclusive
PATTERN_PITCH = (4, 6)  # px, inclusive: dots and stripes
OUTLINE_PIXELS = 2
MIN_LINE_PIXELS = 2
MIN_OBJECT_PIXELS = 3
# Placement as the demo's (`demo.place`, a command module this one may not import, design §4):
# up to this many tries for a corner whose square covers at most this fraction of a smaller one.
PLACEMENT_TRIES = 20
MAX_OVERLAP_FRACTION = 0.2
BACKGROUNDS = ("flat", "gradient", "blobs", "grain")
BLOB_GRID = (3, 6)  # inclusive
GRAIN_STD = 25.0
NOISE_STD = (3.0, 15.0)


def class_shape_and_fill(class_id: int) -> Tuple[str, str]:
    """The (shape, fill) of class `class_id` (its name is "shape/fill")."""
    return SHAPES[class_id // len(FILLS)], FILLS[class_id % len(FILLS)]


def shape_mask(shape: str, image_size: int, center: Tuple[float, float], side: float,
               angle_degrees: float = 0.0, stretch: Tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """A bool `[S, S]` mask of `shape` filling a square of `side` px centred on `center`, rotated
    clockwise by `angle_degrees` and scaled by `stretch` (x, y) before the rotation."""
    mask = Image.new("L", (image_size, image_size), 0)
    draw = ImageDraw.Draw(mask)
    angle = np.deg2rad(angle_degrees)
    cos, sin = np.cos(angle), np.sin(angle)

    def to_pixels(points):
        unit = np.asarray(points, np.float64) * np.asarray(stretch)
        x = unit[:, 0] * cos - unit[:, 1] * sin
        y = unit[:, 0] * sin + unit[:, 1] * cos
        return [(center[0] + side * u, center[1] + side * v) for u, v in zip(x, y)]

    for kind, points, extra in SHAPE_PRIMITIVES[shape]:
        if kind == "polygon":
            draw.polygon(to_pixels(points), fill=extra)
        else:
            width = max(MIN_LINE_PIXELS, int(round(extra * side)))
            draw.line(to_pixels(points), fill=255, width=width, joint="curve")
    return np.asarray(mask) > 0


# --- Colours and fills -----------------------------------------------------------------------


def class_hue(class_id: int) -> float:
    """The hue a class prefers: the 96 classes spaced by the golden ratio around the circle."""
    return (class_id * 0.6180339887) % 1.0


def sample_colour(rng: np.random.Generator, class_id: int) -> np.ndarray:
    """An RGB colour (float, 0-255): near the class's hue half the time, any hue otherwise."""
    if rng.random() < CLASS_HUE_PROBABILITY:
        hue = (class_hue(class_id) + rng.normal(0.0, CLASS_HUE_STD)) % 1.0
    else:
        hue = rng.random()
    rgb = colorsys.hsv_to_rgb(hue, rng.uniform(*SATURATION), rng.uniform(*VALUE))
    return np.asarray(rgb) * 255.0


def shade_of(rng: np.random.Generator, colour: np.ndarray) -> np.ndarray:
    """The patterned fills' second colour: darker, or lighter for a dark colour."""
    factor = rng.uniform(*SHADE_FACTOR)
    if colour.max() > 128:
        return colour * factor
    return colour + (255.0 - colour) * (1.0 - factor)


def fill_pixels(rng: np.random.Generator, fill: str, colour: np.ndarray, mask: np.ndarray,
                center: Tuple[float, float], side: float) -> Tuple[np.ndarray, np.ndarray]:
    """(the `[S, S, 3]` float colours of `fill`, the mask they are painted through)."""
    size = mask.shape[0]
    pixels = np.broadcast_to(colour, (size, size, 3)).copy()
    if fill == "solid":
        return pixels, mask
    if fill == "outline":
        eroded = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(2 * OUTLINE_PIXELS + 1))
        return pixels, mask & ~(np.asarray(eroded) > 0)
    shade = shade_of(rng, colour)
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    x, y = x - center[0] + rng.integers(0, 8), y - center[1] + rng.integers(0, 8)
    if fill == "checker":
        cell = int(rng.integers(CHECKER_CELL[0], CHECKER_CELL[1] + 1))
        second = (np.floor(x / cell) + np.floor(y / cell)) % 2 == 1
    elif fill == "dots":
        pitch = int(rng.integers(PATTERN_PITCH[0], PATTERN_PITCH[1] + 1))
        dx, dy = x % pitch - pitch / 2, y % pitch - pitch / 2
        second = dx * dx + dy * dy < (0.3 * pitch) ** 2
    elif fill == "diagonal_stripes":
        pitch = int(rng.integers(PATTERN_PITCH[0], PATTERN_PITCH[1] + 1))
        second = (x + y * rng.choice([-1.0, 1.0])) % pitch < pitch / 2
    elif fill == "gradient":
        direction = rng.uniform(0.0, 2.0 * np.pi)
        t = np.clip(0.5 + (x * np.cos(direction) + y * np.sin(direction)) / side, 0.0, 1.0)[..., None]
        return pixels * (1.0 - t) + shade * t, mask
    else:
        raise ValueError(f"Unknown fill {fill!r}")
    pixels[second] = shade
    return pixels, mask


# --- Backgrounds -----------------------------------------------------------------------------


def _any_colour(rng: np.random.Generator) -> np.ndarray:
    return np.asarray(colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.1, 0.95))) * 255.0


def sample_background(rng: np.random.Generator, image_size: int) -> np.ndarray:
    """A float `[S, S, 3]` background of one of `BACKGROUNDS`, without the final noise."""
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    if kind in ("flat", "grain"):
        background = np.broadcast_to(_any_colour(rng), (image_size, image_size, 3)).copy()
        if kind == "grain":
            background += rng.normal(0.0, GRAIN_STD, size=background.shape)
        return background
    if kind == "gradient":
        first, second = _any_colour(rng), _any_colour(rng)
        direction = rng.uniform(0.0, 2.0 * np.pi)
        y, x = np.mgrid[0:image_size, 0:image_size] / max(1, image_size - 1) - 0.5
        t = np.clip(0.5 + x * np.cos(direction) + y * np.sin(direction), 0.0, 1.0)[..., None]
        return first * (1.0 - t) + second * t
    rows, cols = (int(v) for v in rng.integers(BLOB_GRID[0], BLOB_GRID[1] + 1, size=2))
    grid = np.stack([_any_colour(rng) for _ in range(rows * cols)]).reshape(rows, cols, 3)
    small = Image.fromarray(np.clip(grid, 0, 255).astype(np.uint8), "RGB")
    return np.asarray(small.resize((image_size, image_size), Image.BICUBIC), np.float64)


# --- An image --------------------------------------------------------------------------------


def _paint(rng, canvas, class_id, x0, y0, side):
    """Paints one object of `class_id` in the square (x0, y0, side) of `canvas` (in place)."""
    shape, fill = class_shape_and_fill(class_id)
    size = canvas.shape[0]
    center = (x0 + side / 2.0, y0 + side / 2.0)
    stretch = np.ones(2)
    stretch[rng.integers(2)] = 1.0 / rng.uniform(1.0, MAX_STRETCH)
    angle = rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES)
    mask = shape_mask(shape, size, center, side, angle, tuple(stretch))
    beneath = canvas[mask].mean(axis=0) if mask.any() else canvas.mean(axis=(0, 1))
    colour = sample_colour(rng, class_id)
    for _ in range(COLOUR_TRIES - 1):
        if np.linalg.norm(colour - beneath) >= MIN_CONTRAST:
            break
        colour = sample_colour(rng, class_id)
    pixels, painted = fill_pixels(rng, fill, colour, mask, center, side)
    canvas[painted] = pixels[painted]


def _side(rng, image_size, bounds):
    return max(MIN_OBJECT_PIXELS, int(round(rng.uniform(*bounds) * image_size)))


def _overlap_fraction(a, b) -> float:
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


def render_example(rng: np.random.Generator, class_id: int, image_size: int = DEFAULT_IMAGE_SIZE) -> np.ndarray:
    """One uint8 `[S, S, 3]` RGB image of an object of `class_id` (module docstring)."""
    canvas = sample_background(rng, image_size)
    side = _side(rng, image_size, OBJECT_SIDE)
    x0, y0 = (int(v) for v in rng.integers(0, image_size - side + 1, size=2))
    placed = [(x0, y0, side)]
    count = int(rng.choice(len(DISTRACTOR_COUNT_PROBABILITIES), p=DISTRACTOR_COUNT_PROBABILITIES))
    others = rng.choice(NUM_CLASSES - 1, size=count)
    for other in others:
        other = int(other) + (other >= class_id)  # any class but the image's
        distractor_side = _side(rng, image_size, DISTRACTOR_SIDE)
        dx, dy = place(rng, distractor_side, image_size, placed)
        placed.append((dx, dy, distractor_side))
        _paint(rng, canvas, other, dx, dy, distractor_side)
    _paint(rng, canvas, class_id, x0, y0, side)
    canvas += rng.normal(0.0, rng.uniform(*NOISE_STD), size=canvas.shape)
    return np.clip(np.round(canvas), 0, 255).astype(np.uint8)


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """The random stream of image `index` of `split`."""
    return np.random.default_rng([seed, DATASET_STREAM_ID, SPLIT_STREAM_IDS[split], index])


def example_class(index: int) -> int:
    """The class of image `index` of a split: every class the same number of times."""
    return index % NUM_CLASSES


def render_split(split: str, count: int, seed: int = 0, image_size: int = DEFAULT_IMAGE_SIZE,
                 progress: bool = False) -> Tuple[np.ndarray, np.ndarray]:
    """(uint8 images `[count, S, S, 3]`, int32 class ids `[count]`) of `split` under `seed`."""
    if split not in SPLIT_STREAM_IDS:
        raise ValueError(f"unknown split {split!r} ({', '.join(SPLIT_STREAM_IDS)})")
    images = np.empty([count, image_size, image_size, 3], np.uint8)
    labels = np.asarray([example_class(i) for i in range(count)], np.int32)
    for index in tqdm(range(count), desc=f"corpus {split}", unit="img", disable=not progress):
        images[index] = render_example(example_rng(seed, split, index), int(labels[index]), image_size)
    return images, labels


def describe(num_train: int, num_heldout: int, seed: int, image_size: int) -> Dict:
    """What a pretraining run's provenance records about its corpus."""
    return {
        "module": "cma_tf.datasets.pretrain_corpus",
        "version": CORPUS_VERSION,
        "classes": list(CLASSES),
        "num_classes": NUM_CLASSES,
        "shapes": list(SHAPES),
        "fills": list(FILLS),
        "num_train": int(num_train),
        "num_heldout": int(num_heldout),
        "seed": int(seed),
        "image_size": int(image_size),
    }


def contact_sheet(images: np.ndarray, columns: int = 12) -> np.ndarray:
    """The images tiled in rows of `columns` (for looking at the corpus)."""
    rows: List[np.ndarray] = []
    for start in range(0, len(images), columns):
        row = list(images[start:start + columns])
        row += [np.zeros_like(images[0])] * (columns - len(row))
        rows.append(np.concatenate(row, axis=1))
    return np.concatenate(rows, axis=0)
