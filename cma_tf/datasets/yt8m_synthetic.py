"""Small synthetic YouTube-8M datasets in the exact published record formats, from a seed.

The generated directory can stand in for the real data everywhere (readers, label graph,
training, segment evaluation), and its content has the structure Cross-Modality Attention is
meant to exploit: labels that co-occur by scene, evidence confined to a few frames of a video,
and labels that can only be told apart by their context.

Scenes and labels
-----------------
The `num_classes` labels are split into `max(2, num_classes // 4)` scenes of consecutive ids
(16 classes: park, kitchen, street, beach with four labels each). A video draws one scene
uniformly, then 1-3 distinct labels of it (label `j` of a scene with weight `1 / (1 + j/2)`, so
counts are mildly long-tailed); with probability 0.1 one label of another scene "wanders in".
The label graph therefore has block structure with weak cross-scene edges.

Features
--------
Every label has a prototype direction (unit norm) in the 1024-d rgb space and one in the 128-d
audio space; every scene has a context direction in both. Frame `t` of a video is

    x_t = noise_t + nuisance + c · context(scene) + Σ_{labels k with t ∈ support(k)} a_k · proto(k)

with per-dimension gaussian noise, a per-video nuisance vector, and a per-video amplitude `a_k`.
The audio prototypes are weaker than the rgb ones. Values stay well inside [-2, 2] and are
quantized with `records.quantize`.

TEMPORAL STRUCTURE: the support of a label is one or (probability 1/2) two contiguous runs of
at least 5 frames, covering 20-50% of the video; every other frame is background (context,
nuisance and noise only). Videos have `min_frames..max_frames` frames (one frame per second).

AMBIGUOUS PAIRS: the second label of scene 0 and of scene 1 (Frisbee/Plate), and of scenes 2 and
3 (Stop sign/Kite), have prototypes with cosine similarity ≈ 0.999: only the scene (its context
and the co-occurring labels) tells them apart.

The yt8m preset (`--preset=yt8m`)
---------------------------------
YouTube-8M's scale, for telling the video models apart (`bench/video_heads.py`); the demo world
above is easy enough that every model scores 94-98 GAP. Differences from the demo world:

- 3,862 labels in scenes of 8. Each label has a popularity 1/rank (a Zipf law, exponent 1) over a
  random ranking. A video has 1-5 labels (probabilities .15/.2/.3/.2/.15, mean 3.0); the first is
  drawn by popularity, each further one from the first's scene (by popularity within it) with
  probability 0.85, else from anywhere. Measured on 1,500 videos: counts fall with the rank as a
  power law of slope about -0.8 (the scene-mates lift the tail), the most popular label in 15 %
  of the videos. At 12,000 training videos most tail labels have a handful of examples or none
  (the real data has hundreds each): GAP, weighted by frequency, is what this size measures
  reliably; a mean over the labels (mAP of videos or of rated segments) is mostly the tail's.
- Evidence in a few short runs: a label shows in 1-3 runs of 5-12 frames of a 60-180-frame video.
- Labels told apart only by context: label 1 of scenes 2p and 2p+1 look alike (prototype cosine
  ≈ 0.999; 241 pairs), as in the demo but in every pair of scenes.
- Labels told apart only by timing: labels 2 and 3 of each scene look alike too; label 2 shows
  long (40-60 % of the video in 1-2 runs), label 3 briefly (one run of 5-7 frames). Their
  per-frame evidence peaks alike; only how long it lasts differs.
- The segment vocabulary is labels 0, 1 and 3 of each scene (1,446 classes; the real one has 1,000).

What it rewards, by construction and not by tuning toward a model: using the co-occurring labels
and the scene's context (context pairs), pooling that keeps how many frames carry a label's
evidence, such as sums, means or VLAD's residual sums, over pooling that keeps only the peak or
normalises the weights (duration pairs), and finding a few short runs in long videos. rgb and
audio both carry every label (audio weaker), as in the demo.

Segment ratings (the 2019 format)
---------------------------------
The segment vocabulary (`segment_label_ids.csv`) is every class except the third label of each
scene, a subset as in the real data (1,000 of 3,862 classes). A segment is 5 frames starting at
a multiple of 5. For each validate video and each of its labels in the segment vocabulary, up
to two segments with at least 3 of their 5 frames in the label's support are rated 1.0 and one
segment outside it 0.0; then 1-2 absent labels of the segment vocabulary (preferably the same
scene's or an ambiguous partner) are rated 0.0 on already-rated segments, so start times repeat.
Test videos carry their hidden ratings in memory (`SyntheticVideo.segments`) but, as in the
published test set, their records have neither labels nor ratings.

Determinism
-----------
The prototypes and contexts come from `default_rng([seed, 3])` and video `i` of a split from its
own stream `default_rng([seed, split_id, i])`, so the same arguments give byte-identical files
(records are serialized with their feature maps in key order, also across processes), and a
video does not depend on the sizes of the other splits nor on the shard counts. Video ids
are 4 characters of [0-9A-Za-z] (like the published `Ab3x`), an injective function of
(split, index) shifted by the seed: unique across the dataset.

Output layout
-------------
    <out_dir>/vocabulary.csv            Index,TrainVideoCount,KnowledgeGraphId,Name,WikiUrl,
                                          Vertical1,Vertical2,Vertical3,WikiDescription
    <out_dir>/segment_label_ids.csv     Index, then one segment-rated class id a line
    <out_dir>/frame/train0000.tfrecord  SequenceExamples: id, labels, rgb, audio
    <out_dir>/frame/validate0000...     + segment_start_times/_end_times/_labels/_scores
    <out_dir>/frame/test0000...         id, empty labels, rgb, audio
    <out_dir>/video/{train,validate,test}0000.tfrecord  Examples: id, labels (empty for test),
                                          mean_rgb, mean_audio = mean of the dequantized frames

Shards hold consecutive videos and are written atomically; older shards of the same splits are
removed first.

Command line::

    python -m cma_tf.datasets.yt8m_synthetic --out_dir=runs/yt8m_demo/data
    python -m cma_tf.datasets.yt8m_synthetic --preset=yt8m --out_dir=runs/yt8m_scale/data
"""

import csv
import dataclasses
import functools
import glob
import os
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from cma_tf.atomic import atomic_write, temp_pattern
from cma_tf.data import records as shard_io
from cma_tf.data.yt8m import records
from cma_tf.errors import ConfigError

TRAIN_SPLIT, VALIDATE_SPLIT, TEST_SPLIT = "train", "validate", "test"
SPLITS = (TRAIN_SPLIT, VALIDATE_SPLIT, TEST_SPLIT)
# Stream ids that keep the random streams of the splits and of the prototypes apart.
SPLIT_STREAM_IDS = {TRAIN_SPLIT: 0, VALIDATE_SPLIT: 1, TEST_SPLIT: 2}
WORLD_STREAM_ID = 3

FRAME_DIR, VIDEO_DIR = "frame", "video"
VOCABULARY_FILENAME = "vocabulary.csv"
SEGMENT_LABEL_IDS_FILENAME = "segment_label_ids.csv"
VOCABULARY_HEADER = ["Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                     "Vertical1", "Vertical2", "Vertical3", "WikiDescription"]

DEFAULT_NUM_CLASSES = 16
DEFAULT_VIDEOS = {TRAIN_SPLIT: 1600, VALIDATE_SPLIT: 400, TEST_SPLIT: 100}
DEFAULT_NUM_SHARDS = {TRAIN_SPLIT: 4, VALIDATE_SPLIT: 2, TEST_SPLIT: 2}
DEFAULT_MIN_FRAMES, DEFAULT_MAX_FRAMES = 30, 90

LABELS_PER_SCENE = 4
MAX_LABELS_FROM_SCENE = 3
LABEL_WEIGHT_DECAY = 0.5  # label j of a scene has weight 1 / (1 + decay · j)
INTRUDER_PROBABILITY = 0.1
AMBIGUOUS_POSITION = 1  # the label of a scene that has a look-alike in the paired scene
UNRATED_POSITION = 2  # the label of a scene left out of the segment vocabulary
NUM_AMBIGUOUS_PAIRS = 2
AMBIGUOUS_PERTURBATION = 0.05  # cosine of a pair's prototypes ≈ 1 / sqrt(1 + 0.05²)

# Norms of the signal vectors; noise and nuisance are per-dimension standard deviations.
RGB_LABEL_NORM, AUDIO_LABEL_NORM = 2.0, 1.0
RGB_CONTEXT_NORM, AUDIO_CONTEXT_NORM = 1.0, 0.5
AMPLITUDE_RANGE = (0.7, 1.3)
NOISE_STD = 0.5
NUISANCE_STD = 0.15

SUPPORT_FRACTION_RANGE = (0.2, 0.5)
MIN_RUN_FRAMES = records.SEGMENT_SIZE
TWO_RUNS_PROBABILITY = 0.5

MIN_SUPPORT_IN_POSITIVE = 3  # of a segment's 5 frames
MAX_POSITIVE_SEGMENTS = 2
MAX_NEGATIVE_SEGMENTS = 1
MAX_ABSENT_RATED_LABELS = 2
HARD_NEGATIVE_PROBABILITY = 0.5

# scene name -> label names, used in this order; more classes fall back to generated names.
SCENE_THEMES = (
    ("park", ("Dog", "Frisbee", "Tree", "Bench")),
    ("kitchen", ("Oven", "Plate", "Fork", "Cup")),
    ("street", ("Car", "Stop sign", "Traffic light", "Bicycle")),
    ("beach", ("Boat", "Kite", "Umbrella", "Surfing")),
    ("concert", ("Guitar", "Drum kit", "Stage", "Crowd")),
    ("football", ("Ball", "Goalkeeper", "Stadium", "Referee")),
    ("garden", ("Flower", "Lawn mower", "Hedge", "Watering can")),
    ("mountain", ("Hiking", "Ski", "Snow", "Cable car")),
)

# ---------------------------------------------------------------------------------------------
# The yt8m preset: YouTube-8M's scale (module docstring, "The yt8m preset")

DEMO_PRESET, YT8M_PRESET = "demo", "yt8m"
PRESETS = (DEMO_PRESET, YT8M_PRESET)
# What each preset generates when not told otherwise (the CLI's flags and write_synthetic_yt8m's
# arguments override any of them).
PRESET_DEFAULTS = {
    DEMO_PRESET: dict(num_classes=DEFAULT_NUM_CLASSES, train_videos=DEFAULT_VIDEOS[TRAIN_SPLIT],
                      validate_videos=DEFAULT_VIDEOS[VALIDATE_SPLIT], test_videos=DEFAULT_VIDEOS[TEST_SPLIT],
                      min_frames=DEFAULT_MIN_FRAMES, max_frames=DEFAULT_MAX_FRAMES),
    YT8M_PRESET: dict(num_classes=3862, train_videos=12_000, validate_videos=3_000, test_videos=300,
                      min_frames=60, max_frames=180),
}
SCALE_LABELS_PER_SCENE = 8
ZIPF_EXPONENT = 1.0  # label popularity ∝ 1 / rank^s over a random ranking of the labels
LABEL_COUNT_PROBABILITIES = (0.15, 0.2, 0.3, 0.2, 0.15)  # 1-5 labels a video, mean 3.0
SAME_SCENE_PROBABILITY = 0.85  # each further label: from the first label's scene, else from anywhere
# Positions within a scene of 8: 1 has a look-alike in the paired scene (context pair); 2 and 3
# share a prototype and differ in how long they show (duration pair: 2 long, 3 short).
LONG_POSITION, SHORT_POSITION = 2, 3
GENERIC, LONG, SHORT = 0, 1, 2
GENERIC_RUNS = (1, 3)  # a generic label shows in 1-3 runs of 5-12 frames
GENERIC_RUN_FRAMES = (records.SEGMENT_SIZE, 12)
LONG_FRACTION_RANGE = (0.4, 0.6)  # a long label covers 40-60 % of the video in 1-2 runs
SHORT_RUN_FRAMES = (records.SEGMENT_SIZE, 7)  # a short label shows once, for 5-7 frames
# The segment vocabulary: positions 0, 1 and 3 of each scene (about 1,450 of 3,862 classes).
SCALE_RATED_POSITIONS = (0, AMBIGUOUS_POSITION, SHORT_POSITION)

_ID_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID_SPACE = len(_ID_ALPHABET) ** 4  # 14,776,336 = 2^4 · 31^4
_ID_MULTIPLIER = 9_999_991  # odd and not a multiple of 31: invertible modulo _ID_SPACE
_MAX_VIDEOS_PER_SPLIT = _ID_SPACE // len(SPLITS)


@dataclasses.dataclass(frozen=True)
class SyntheticWorld:
    """The fixed part of a dataset: names, scenes, segment vocabulary, prototypes, contexts."""

    names: Tuple[str, ...]
    scene_names: Tuple[str, ...]
    scene_labels: Tuple[Tuple[int, ...], ...]  # label ids of each scene
    label_scene: np.ndarray  # int [N]
    ambiguous_pairs: Tuple[Tuple[int, int], ...]
    segment_classes: Tuple[int, ...]
    rgb_prototypes: np.ndarray  # float32 [N, 1024], unit norm
    audio_prototypes: np.ndarray  # float32 [N, 128], unit norm
    rgb_contexts: np.ndarray  # float32 [scenes, 1024], unit norm
    audio_contexts: np.ndarray  # float32 [scenes, 128], unit norm
    preset: str = DEMO_PRESET
    # The yt8m preset only (None in the demo world):
    popularity: Optional[np.ndarray] = None  # float [N], the Zipf weight of each label
    duration_pairs: Tuple[Tuple[int, int], ...] = ()  # (long, short): the same prototype, told apart by duration
    durations: Optional[np.ndarray] = None  # int [N]: GENERIC, LONG or SHORT (how a label's runs are drawn)

    @property
    def num_classes(self) -> int:
        return len(self.names)

    @functools.cached_property
    def _partners(self) -> Dict[int, int]:
        pairs = self.ambiguous_pairs + self.duration_pairs
        return {**{a: b for a, b in pairs}, **{b: a for a, b in pairs}}

    def partner(self, label: int) -> Optional[int]:
        """The look-alike of an ambiguous (context or duration) label, or None."""
        return self._partners.get(label)

    @functools.cached_property
    def segment_class_set(self) -> frozenset:
        return frozenset(self.segment_classes)


@dataclasses.dataclass(frozen=True)
class SyntheticVideo:
    """One generated video, as written (frame-level uint8 codes) plus its hidden ground truth."""

    id: str
    split: str
    scene: int
    labels: Tuple[int, ...]  # sorted; written as empty for the test split
    rgb: np.ndarray  # uint8 [frames, 1024]
    audio: np.ndarray  # uint8 [frames, 128]
    support: Dict[int, Tuple[Tuple[int, int], ...]]  # label -> [start, end) frame runs
    segments: Optional[Dict[str, list]]  # the four segment_* lists; None for train

    @property
    def num_frames(self) -> int:
        return len(self.rgb)

    def support_mask(self, label: int) -> np.ndarray:
        mask = np.zeros([self.num_frames], bool)
        for start, end in self.support.get(label, ()):
            mask[start:end] = True
        return mask


# ---------------------------------------------------------------------------------------------
# The world: scenes, names and prototypes


def _unit_rows(rng: np.random.Generator, rows: int, dims: int) -> np.ndarray:
    vectors = rng.standard_normal((rows, dims))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _names(num_scenes: int, scene_sizes: Sequence[int]) -> Tuple[List[str], List[str]]:
    scene_names, names = [], []
    for s, size in enumerate(scene_sizes):
        theme, theme_labels = SCENE_THEMES[s] if s < len(SCENE_THEMES) else (f"scene {s}", ())
        scene_names.append(theme)
        names += [theme_labels[j] if j < len(theme_labels) else f"{theme} label {j}" for j in range(size)]
    return scene_names, names


def _ambiguous_prototypes(rng: np.random.Generator, prototypes: np.ndarray, pairs) -> np.ndarray:
    """Gives the second label of each pair the first's prototype, slightly perturbed."""
    prototypes = prototypes.copy()
    for a, b in pairs:
        moved = prototypes[a] + AMBIGUOUS_PERTURBATION * _unit_rows(rng, 1, prototypes.shape[1])[0]
        prototypes[b] = moved / np.linalg.norm(moved)
    return prototypes


def _scenes(num_classes: int, num_scenes: int):
    """`(scene_labels, label_scene)`: consecutive label ids split into `num_scenes` scenes."""
    scene_labels = tuple(tuple(int(k) for k in ids) for ids in np.array_split(np.arange(num_classes), num_scenes))
    label_scene = np.concatenate([np.full(len(ids), s) for s, ids in enumerate(scene_labels)])
    return scene_labels, label_scene


def _world(seed, scene_labels, label_scene, look_alikes, ambiguous_pairs, segment_classes, **fields):
    """The world of these scenes: names, then (from the world's random stream, in this order) the
    rgb and audio prototypes, with each pair of `look_alikes` made alike, and the scene contexts."""
    num_classes, num_scenes = len(label_scene), len(scene_labels)
    scene_names, names = _names(num_scenes, [len(ids) for ids in scene_labels])
    rgb_dims, audio_dims = records.FEATURE_SIZES[records.RGB], records.FEATURE_SIZES[records.AUDIO]
    rng = np.random.default_rng([seed, WORLD_STREAM_ID])
    rgb = _ambiguous_prototypes(rng, _unit_rows(rng, num_classes, rgb_dims), look_alikes)
    audio = _ambiguous_prototypes(rng, _unit_rows(rng, num_classes, audio_dims), look_alikes)
    return SyntheticWorld(
        names=tuple(names),
        scene_names=tuple(scene_names),
        scene_labels=scene_labels,
        label_scene=label_scene,
        ambiguous_pairs=ambiguous_pairs,
        segment_classes=tuple(segment_classes),
        rgb_prototypes=rgb.astype(np.float32),
        audio_prototypes=audio.astype(np.float32),
        rgb_contexts=_unit_rows(rng, num_scenes, rgb_dims).astype(np.float32),
        audio_contexts=_unit_rows(rng, num_scenes, audio_dims).astype(np.float32),
        **fields,
    )


def make_world(num_classes: int = DEFAULT_NUM_CLASSES, seed: int = 0, preset: str = DEMO_PRESET) -> SyntheticWorld:
    """The scenes, names, segment vocabulary, prototypes and contexts for `num_classes` labels."""
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    if preset == YT8M_PRESET:
        return _make_scale_world(num_classes, seed)
    if num_classes < 2 * 2:
        raise ConfigError(f"num_classes must be >= 4 (two scenes of two labels), got {num_classes}")
    num_scenes = max(2, num_classes // LABELS_PER_SCENE)
    scene_labels, label_scene = _scenes(num_classes, num_scenes)
    pairs = tuple((scene_labels[2 * p][AMBIGUOUS_POSITION], scene_labels[2 * p + 1][AMBIGUOUS_POSITION])
                  for p in range(min(NUM_AMBIGUOUS_PAIRS, num_scenes // 2)))
    unrated = {ids[UNRATED_POSITION] for ids in scene_labels if len(ids) > UNRATED_POSITION}
    return _world(seed, scene_labels, label_scene, pairs, pairs, [k for k in range(num_classes) if k not in unrated])


def _make_scale_world(num_classes: int, seed: int) -> SyntheticWorld:
    """The yt8m preset's world: scenes of 8, Zipf popularity, context and duration pairs."""
    if num_classes < 2 * SCALE_LABELS_PER_SCENE:
        raise ConfigError(f"the {YT8M_PRESET} preset needs num_classes >= {2 * SCALE_LABELS_PER_SCENE} (two scenes "
                          f"of {SCALE_LABELS_PER_SCENE}), got {num_classes}")
    scene_labels, label_scene = _scenes(num_classes, num_classes // SCALE_LABELS_PER_SCENE)
    context_pairs = tuple((scene_labels[2 * p][AMBIGUOUS_POSITION], scene_labels[2 * p + 1][AMBIGUOUS_POSITION])
                          for p in range(len(scene_labels) // 2))
    duration_pairs = tuple((ids[LONG_POSITION], ids[SHORT_POSITION]) for ids in scene_labels)
    durations = np.full(num_classes, GENERIC)
    for long_label, short_label in duration_pairs:
        durations[long_label], durations[short_label] = LONG, SHORT
    rated = sorted(ids[j] for ids in scene_labels for j in SCALE_RATED_POSITIONS)
    # the popularity ranking has its own stream: the prototypes are drawn as in the demo world
    popularity = 1.0 / (1.0 + np.random.default_rng([seed, WORLD_STREAM_ID, 1]).permutation(num_classes))
    return _world(seed, scene_labels, label_scene, context_pairs + duration_pairs, context_pairs, rated,
                  preset=YT8M_PRESET, popularity=popularity ** ZIPF_EXPONENT, duration_pairs=duration_pairs,
                  durations=durations)


# ---------------------------------------------------------------------------------------------
# One video


def video_id(seed: int, split: str, index: int) -> str:
    """A 4-character id, injective in (split, index) for a given seed."""
    number = SPLIT_STREAM_IDS[split] * _MAX_VIDEOS_PER_SPLIT + index
    number = (number * _ID_MULTIPLIER + seed * 2_654_435_761) % _ID_SPACE
    chars = []
    for _ in range(4):
        number, digit = divmod(number, len(_ID_ALPHABET))
        chars.append(_ID_ALPHABET[digit])
    return "".join(reversed(chars))


def _sample_labels(rng: np.random.Generator, world: SyntheticWorld) -> Tuple[int, List[int]]:
    scene = int(rng.integers(len(world.scene_labels)))
    own = np.asarray(world.scene_labels[scene])
    weights = 1.0 / (1.0 + LABEL_WEIGHT_DECAY * np.arange(len(own)))
    count = int(rng.integers(1, min(MAX_LABELS_FROM_SCENE, len(own)) + 1))
    labels = [int(k) for k in rng.choice(own, size=count, replace=False, p=weights / weights.sum())]
    if rng.random() < INTRUDER_PROBABILITY:
        others = np.flatnonzero(world.label_scene != scene)
        labels.append(int(rng.choice(others)))
    return scene, sorted(labels)


def _sample_scale_labels(rng: np.random.Generator, world: SyntheticWorld) -> Tuple[int, List[int]]:
    """The yt8m preset: 1-5 labels; the first by popularity, each further one from its scene
    (by popularity within the scene) with probability SAME_SCENE_PROBABILITY, else from anywhere."""
    count = int(rng.choice(len(LABEL_COUNT_PROBABILITIES), p=LABEL_COUNT_PROBABILITIES)) + 1
    weights = world.popularity / world.popularity.sum()
    first = int(rng.choice(world.num_classes, p=weights))
    scene = int(world.label_scene[first])
    labels = {first}
    while len(labels) < count:
        own = [k for k in world.scene_labels[scene] if k not in labels]
        if own and rng.random() < SAME_SCENE_PROBABILITY:
            w = world.popularity[own]
            labels.add(int(rng.choice(own, p=w / w.sum())))
        else:
            labels.add(int(rng.choice(world.num_classes, p=weights)))
    return scene, sorted(labels)


def _disjoint_runs(rng: np.random.Generator, num_frames: int, lengths) -> Tuple[Tuple[int, int], ...]:
    """Runs of the given lengths, in order, at least one frame apart, placed uniformly."""
    lengths = [int(n) for n in lengths]
    free = num_frames - sum(lengths) - (len(lengths) - 1)
    offsets = np.sort(rng.integers(0, free + 1, size=len(lengths)))
    runs, start = [], 0
    for offset, length in zip(offsets, lengths):
        runs.append((start + int(offset), start + int(offset) + length))
        start += length + 1
    return tuple(runs)


def _scale_support_runs(rng: np.random.Generator, num_frames: int, duration: int) -> Tuple[Tuple[int, int], ...]:
    """The yt8m preset's runs of one label: a few short ones (generic), 40-60 % of the video in
    1-2 runs (long), or a single run of 5-7 frames (short)."""
    if duration == LONG:
        return _support_runs(rng, num_frames, LONG_FRACTION_RANGE)
    if duration == SHORT:
        length = min(num_frames, int(rng.integers(SHORT_RUN_FRAMES[0], SHORT_RUN_FRAMES[1] + 1)))
        return _disjoint_runs(rng, num_frames, [length])
    count = int(rng.integers(GENERIC_RUNS[0], GENERIC_RUNS[1] + 1))
    lengths = rng.integers(GENERIC_RUN_FRAMES[0], GENERIC_RUN_FRAMES[1] + 1, size=count)
    while len(lengths) > 1 and lengths.sum() + len(lengths) - 1 > num_frames:
        lengths = lengths[:-1]
    return _disjoint_runs(rng, num_frames, np.minimum(lengths, num_frames))


def _support_runs(rng: np.random.Generator, num_frames: int,
                  fraction_range=SUPPORT_FRACTION_RANGE) -> Tuple[Tuple[int, int], ...]:
    """One or two disjoint runs of >= MIN_RUN_FRAMES frames, covering `fraction_range` (default
    20-50 %) of the video."""
    total = int(round(rng.uniform(*fraction_range) * num_frames))
    total = min(num_frames, max(MIN_RUN_FRAMES, total))
    if total >= 2 * MIN_RUN_FRAMES and total < num_frames and rng.random() < TWO_RUNS_PROBABILITY:
        first = int(rng.integers(MIN_RUN_FRAMES, total - MIN_RUN_FRAMES + 1))
        free = num_frames - total - 1  # frames outside the runs, less the one separating them
        a, b = sorted(int(v) for v in rng.integers(0, free + 1, size=2))
        second_start = a + first + 1 + (b - a)
        return (a, a + first), (second_start, second_start + total - first)
    start = int(rng.integers(0, num_frames - total + 1))
    return ((start, start + total),)


def _features(rng, labels, masks, scene, prototypes, contexts, label_norm, context_norm, amplitudes):
    num_frames, dims = masks.shape[0], prototypes.shape[1]
    x = rng.standard_normal((num_frames, dims), dtype=np.float32) * np.float32(NOISE_STD)
    x += rng.standard_normal(dims, dtype=np.float32) * np.float32(NUISANCE_STD)
    x += np.float32(context_norm) * contexts[scene]
    x += (masks * (label_norm * amplitudes).astype(np.float32)) @ prototypes[labels]
    return records.quantize(x)


def _rate_segments(rng: np.random.Generator, world: SyntheticWorld, labels, masks) -> Dict[str, list]:
    """The rated (segment, label) pairs of a video (see the module docstring), sorted."""
    num_frames = masks.shape[0]
    num_segments = num_frames // records.SEGMENT_SIZE
    starts = np.arange(num_segments) * records.SEGMENT_SIZE
    covered = masks[: num_segments * records.SEGMENT_SIZE].reshape(
        num_segments, records.SEGMENT_SIZE, len(labels)).sum(axis=1)
    rated = []  # (start, label, score)
    for column, label in enumerate(labels):
        if label not in world.segment_class_set:
            continue
        positive = covered[:, column] >= MIN_SUPPORT_IN_POSITIVE
        for pool, most, score in ((starts[positive], MAX_POSITIVE_SEGMENTS, 1.0),
                                  (starts[~positive], MAX_NEGATIVE_SEGMENTS, 0.0)):
            for start in rng.choice(pool, size=min(most, len(pool)), replace=False):
                rated.append((int(start), label, score))
    absent = [k for k in world.segment_classes if k not in labels]
    scenes = {int(world.label_scene[j]) for j in labels}
    partners = {world.partner(j) for j in labels}
    hard = [k for k in absent if int(world.label_scene[k]) in scenes or k in partners]
    rated_starts = sorted({start for start, _, _ in rated}) or [int(s) for s in starts]
    for _ in range(int(rng.integers(1, MAX_ABSENT_RATED_LABELS + 1))):
        pool = hard if hard and rng.random() < HARD_NEGATIVE_PROBABILITY else absent
        if not pool or not rated_starts:
            break
        label = int(rng.choice(pool))
        rated.append((int(rng.choice(rated_starts)), label, 0.0))
        absent.remove(label)
        if label in hard:
            hard.remove(label)
    rated.sort()
    return {
        records.SEGMENT_START_TIMES: [start for start, _, _ in rated],
        records.SEGMENT_END_TIMES: [start + records.SEGMENT_SIZE for start, _, _ in rated],
        records.SEGMENT_LABELS: [label for _, label, _ in rated],
        records.SEGMENT_SCORES: [score for _, _, score in rated],
    }


def generate_video(world: SyntheticWorld, split: str, index: int, min_frames: int = DEFAULT_MIN_FRAMES,
                   max_frames: int = DEFAULT_MAX_FRAMES, seed: int = 0) -> SyntheticVideo:
    """Video `index` of `split`, from its own random stream."""
    rng = np.random.default_rng([seed, SPLIT_STREAM_IDS[split], index])
    scale = world.preset == YT8M_PRESET
    scene, labels = (_sample_scale_labels if scale else _sample_labels)(rng, world)
    num_frames = int(rng.integers(min_frames, max_frames + 1))
    if scale:
        support = {label: _scale_support_runs(rng, num_frames, world.durations[label]) for label in labels}
    else:
        support = {label: _support_runs(rng, num_frames) for label in labels}
    masks = np.zeros([num_frames, len(labels)], np.float32)
    for column, label in enumerate(labels):
        for start, end in support[label]:
            masks[start:end, column] = 1.0
    amplitudes = rng.uniform(*AMPLITUDE_RANGE, size=len(labels))
    rgb = _features(rng, labels, masks, scene, world.rgb_prototypes, world.rgb_contexts,
                    RGB_LABEL_NORM, RGB_CONTEXT_NORM, amplitudes)
    audio = _features(rng, labels, masks, scene, world.audio_prototypes, world.audio_contexts,
                      AUDIO_LABEL_NORM, AUDIO_CONTEXT_NORM, amplitudes)
    segments = None if split == TRAIN_SPLIT else _rate_segments(rng, world, labels, masks)
    return SyntheticVideo(video_id(seed, split, index), split, scene, tuple(labels), rgb, audio,
                          support, segments)


def generate_videos(split: str, count: int, num_classes: int = DEFAULT_NUM_CLASSES,
                    min_frames: int = DEFAULT_MIN_FRAMES, max_frames: int = DEFAULT_MAX_FRAMES,
                    seed: int = 0, start: int = 0, world: Optional[SyntheticWorld] = None,
                    preset: str = DEMO_PRESET) -> List[SyntheticVideo]:
    """Videos `start..start+count-1` of `split`, exactly as `write_synthetic_yt8m` writes them."""
    _validate_frames(min_frames, max_frames)
    world = make_world(num_classes, seed, preset) if world is None else world
    return [generate_video(world, split, i, min_frames, max_frames, seed)
            for i in range(start, start + count)]


# ---------------------------------------------------------------------------------------------
# Records and files


def _deterministic(serialized: bytes, message_class) -> bytes:
    """The same message with its map entries (the feature names) in a fixed order.

    Plain `SerializeToString` writes a map in hash order, which changes from process to process.
    """
    return message_class.FromString(serialized).SerializeToString(deterministic=True)


def frame_record(video: SyntheticVideo) -> bytes:
    """The frame-level SequenceExample of a video, in its split's published form."""
    if video.split == TEST_SPLIT:
        serialized = records.encode_frame_example(video.id, [], video.rgb, video.audio)
    else:
        segments = video.segments if video.split == VALIDATE_SPLIT else None
        serialized = records.encode_frame_example(video.id, video.labels, video.rgb, video.audio, segments)
    return _deterministic(serialized, tf.train.SequenceExample)


def video_record(video: SyntheticVideo) -> bytes:
    """The video-level Example: the means of the dequantized frames."""
    labels = [] if video.split == TEST_SPLIT else video.labels
    mean_rgb = records.dequantize(video.rgb).mean(axis=0)
    mean_audio = records.dequantize(video.audio).mean(axis=0)
    serialized = records.encode_video_level_example(video.id, labels, mean_rgb, mean_audio)
    return _deterministic(serialized, tf.train.Example)


def _write_csv(path: str, header: Sequence[str], rows) -> None:
    with atomic_write(path, "w") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


def _description(world: SyntheticWorld, label: int) -> str:
    scene = world.scene_names[world.label_scene[label]]
    text = f'Synthetic label of the "{scene}" scene.'
    partner = world.partner(label)
    if partner is not None and world.label_scene[partner] != world.label_scene[label]:
        other = world.scene_names[world.label_scene[partner]]
        text += f' Looks like "{world.names[partner]}" ({other}); only the context tells them apart.'
    elif partner is not None:
        how = "long" if world.durations[label] == LONG else "briefly"
        text += f' Looks like "{world.names[partner]}"; shows {how}: only how long it shows tells them apart.'
    return text


def write_vocabulary(path: str, world: SyntheticWorld, train_counts: Sequence[int]) -> None:
    """`vocabulary.csv` in the published column layout."""
    _write_csv(path, VOCABULARY_HEADER, [
        [k, int(train_counts[k]), f"/m/0syn{k:02d}", world.names[k], "",
         world.scene_names[world.label_scene[k]].capitalize(), "", "", _description(world, k)]
        for k in range(world.num_classes)
    ])


def write_segment_label_ids(path: str, world: SyntheticWorld) -> None:
    _write_csv(path, ["Index"], [[k] for k in world.segment_classes])


def _remove_old_shards(out_dir: str) -> None:
    """Removes every shard (and leftover temp file) the readers would take for one of our splits."""
    for directory in (FRAME_DIR, VIDEO_DIR):
        for split in SPLITS:
            pattern = records.split_pattern(os.path.join(out_dir, directory), split)
            for path in sorted(glob.glob(pattern) + glob.glob(temp_pattern(pattern))):
                os.remove(path)


def _shard_counts(num_shards: Union[int, Mapping[str, int]]) -> Dict[str, int]:
    if isinstance(num_shards, Mapping):
        counts = {split: int(num_shards.get(split, DEFAULT_NUM_SHARDS[split])) for split in SPLITS}
    else:
        counts = {split: int(num_shards) for split in SPLITS}
    if min(counts.values()) < 1:
        raise ConfigError(f"shard counts must be >= 1, got {counts}")
    return counts


def _validate_frames(min_frames: int, max_frames: int) -> None:
    if not records.SEGMENT_SIZE <= min_frames <= max_frames <= records.MAX_FRAMES:
        raise ConfigError(f"need {records.SEGMENT_SIZE} <= min_frames <= max_frames <= {records.MAX_FRAMES}, "
                          f"got min_frames={min_frames}, max_frames={max_frames}")


def _write_split(out_dir, world, split, count, num_shards, min_frames, max_frames, seed, bar) -> dict:
    """Writes a split's frame- and video-level shards; returns its statistics."""
    num_shards = min(num_shards, count)
    class_counts = np.zeros([world.num_classes], np.int64)
    frames = labels = rated = positives = 0
    for shard, indices in enumerate(np.array_split(np.arange(count), num_shards) if count else []):
        videos = []
        for index in indices:
            videos.append(generate_video(world, split, int(index), min_frames, max_frames, seed))
            bar.update(1)
        name = records.shard_name(split, shard)
        shard_io.write_shard(os.path.join(out_dir, FRAME_DIR, name), (frame_record(v) for v in videos))
        shard_io.write_shard(os.path.join(out_dir, VIDEO_DIR, name), (video_record(v) for v in videos))
        for video in videos:
            class_counts[list(video.labels)] += 1
            frames += video.num_frames
            labels += len(video.labels)
            if video.split == VALIDATE_SPLIT:
                rated += len(video.segments[records.SEGMENT_SCORES])
                positives += int(sum(video.segments[records.SEGMENT_SCORES]))
    return {
        "videos": int(count),
        "shards": int(num_shards),
        "frames": int(frames),
        "mean_labels_per_video": round(labels / count, 4) if count else 0.0,
        "rated_segments": int(rated),
        "positive_segments": int(positives),
        "class_counts": [int(c) for c in class_counts],
    }


def write_synthetic_yt8m(
    out_dir: str,
    num_classes: Optional[int] = None,
    train_videos: Optional[int] = None,
    validate_videos: Optional[int] = None,
    test_videos: Optional[int] = None,
    num_shards: Union[int, Mapping[str, int]] = DEFAULT_NUM_SHARDS,
    min_frames: Optional[int] = None,
    max_frames: Optional[int] = None,
    seed: int = 0,
    progress: bool = False,
    preset: str = DEMO_PRESET,
) -> dict:
    """Writes a synthetic YouTube-8M dataset to `out_dir` (layout in the module docstring).

    Args:
        num_classes, train_videos, validate_videos, test_videos, min_frames, max_frames: None
            takes the preset's (`PRESET_DEFAULTS`: demo 16 classes, 1,600/400/100 videos of
            30-90 frames; yt8m 3,862 classes, 12,000/3,000/300 videos of 60-180 frames).
        num_shards: shards per split, an int for every split or {split: count}
            (default 4 train, 2 validate, 2 test); a split never has more shards than videos.
        min_frames, max_frames: frames per video, uniform in [min_frames, max_frames] within [5, 300].
        progress: show a tqdm bar over the videos.
        preset: "demo" (scenes of 4, 1-4 labels a video) or "yt8m" (YouTube-8M's scale; module docstring).

    Returns:
        A summary: the parameters, the names, scenes, ambiguous pairs and segment classes, and
        per split the counts of videos, shards, frames and rated segments.
    """
    if preset not in PRESETS:
        raise ConfigError(f"preset must be one of {', '.join(PRESETS)}, got {preset!r}")
    given = dict(num_classes=num_classes, train_videos=train_videos, validate_videos=validate_videos,
                 test_videos=test_videos, min_frames=min_frames, max_frames=max_frames)
    values = {key: PRESET_DEFAULTS[preset][key] if value is None else value for key, value in given.items()}
    num_classes, min_frames, max_frames = values["num_classes"], values["min_frames"], values["max_frames"]
    counts = {TRAIN_SPLIT: values["train_videos"], VALIDATE_SPLIT: values["validate_videos"],
              TEST_SPLIT: values["test_videos"]}
    if min(counts.values()) < 0 or max(counts.values()) > _MAX_VIDEOS_PER_SPLIT:
        raise ConfigError(f"video counts must be in [0, {_MAX_VIDEOS_PER_SPLIT}], got {counts}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    _validate_frames(min_frames, max_frames)
    shard_counts = _shard_counts(num_shards)
    world = make_world(num_classes, seed, preset)
    for directory in (FRAME_DIR, VIDEO_DIR):
        os.makedirs(os.path.join(out_dir, directory), exist_ok=True)
    _remove_old_shards(out_dir)
    splits = {}
    with tqdm(total=sum(counts.values()), desc="synthetic yt8m", unit="video", disable=not progress) as bar:
        for split in SPLITS:
            splits[split] = _write_split(out_dir, world, split, counts[split], shard_counts[split],
                                         min_frames, max_frames, seed, bar)
    write_vocabulary(os.path.join(out_dir, VOCABULARY_FILENAME), world, splits[TRAIN_SPLIT]["class_counts"])
    write_segment_label_ids(os.path.join(out_dir, SEGMENT_LABEL_IDS_FILENAME), world)
    return {
        "out_dir": out_dir,
        "preset": preset,
        "num_classes": world.num_classes,
        "seed": int(seed),
        "min_frames": int(min_frames),
        "max_frames": int(max_frames),
        "names": list(world.names),
        "scenes": {name: list(ids) for name, ids in zip(world.scene_names, world.scene_labels)},
        "ambiguous_pairs": [list(pair) for pair in world.ambiguous_pairs],
        "duration_pairs": [list(pair) for pair in world.duration_pairs],
        "segment_classes": list(world.segment_classes),
        "splits": splits,
    }


# ---------------------------------------------------------------------------------------------
# Command line


def define_flags(flag_values=None):
    """Defines the CLI flags on `flag_values` (absl's global FLAGS by default) and returns it.

    Called only by the CLI (or tests), so importing this module never defines global flags.
    """
    from absl import flags

    fv = flags.FLAGS if flag_values is None else flag_values
    flags.DEFINE_enum("preset", DEMO_PRESET, list(PRESETS), "demo: 16 labels in scenes of 4, 1,600 training "
                      "videos of 30-90 frames (make demo-video). yt8m: YouTube-8M's scale, 3,862 labels with Zipf "
                      "popularity, 1-5 labels a video, evidence in a few short runs, look-alike labels told apart by "
                      "context or by how long they show; 12,000/3,000/300 videos of 60-180 frames (about 2 GB). "
                      "The flags below override a preset's numbers where given.", flag_values=fv)
    flags.DEFINE_string("out_dir", None, "Directory to write vocabulary.csv, segment_label_ids.csv, "
                        "frame/<split>NNNN.tfrecord and video/<split>NNNN.tfrecord to (created if "
                        "missing; older shards of the same splits are replaced).", flag_values=fv)
    flags.DEFINE_integer("num_classes", None, "Number of labels (default the preset's, 16 or 3,862); they form "
                         "scenes of about 4 (demo) or 8 (yt8m) co-occurring labels.", flag_values=fv)
    flags.DEFINE_integer("train_videos", None, "Number of training videos (frame- and video-level records with "
                         "labels; default the preset's, 1,600 or 12,000).", flag_values=fv)
    flags.DEFINE_integer("validate_videos", None, "Number of validation videos (labels and 2019-style segment "
                         "ratings; default the preset's, 400 or 3,000).", flag_values=fv)
    flags.DEFINE_integer("test_videos", None, "Number of test videos (no labels, no ratings, as published; "
                         "default the preset's, 100 or 300).", flag_values=fv)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS[TRAIN_SPLIT], "TFRecord shards of the train "
                         "split (does not change the content).", flag_values=fv)
    flags.DEFINE_integer("eval_num_shards", DEFAULT_NUM_SHARDS[VALIDATE_SPLIT], "TFRecord shards of the "
                         "validate and of the test split (does not change the content).", flag_values=fv)
    flags.DEFINE_integer("min_frames", None, "Fewest frames (seconds) of a video; >= 5 (default the preset's, "
                         "30 or 60).", flag_values=fv)
    flags.DEFINE_integer("max_frames", None, "Most frames (seconds) of a video; <= 300 (default the preset's, "
                         "90 or 180).", flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed; the same flags give byte-identical files.", flag_values=fv)
    flags.mark_flag_as_required("out_dir", flag_values=fv)
    return fv


def run_from_flags(flag_values, progress: bool = True) -> dict:
    """Generates the dataset the parsed flags describe and prints a one-line summary."""
    began = time.perf_counter()
    summary = write_synthetic_yt8m(
        flag_values.out_dir,
        num_classes=flag_values.num_classes,
        train_videos=flag_values.train_videos,
        validate_videos=flag_values.validate_videos,
        test_videos=flag_values.test_videos,
        num_shards={TRAIN_SPLIT: flag_values.num_shards, VALIDATE_SPLIT: flag_values.eval_num_shards,
                    TEST_SPLIT: flag_values.eval_num_shards},
        min_frames=flag_values.min_frames,
        max_frames=flag_values.max_frames,
        seed=flag_values.seed,
        progress=progress,
        preset=flag_values.preset,
    )
    splits = summary["splits"]
    videos = ", ".join(f"{s['videos']} {name} videos ({s['frames']} frames, {s['shards']} shards)"
                       for name, s in splits.items())
    print(f"{summary['out_dir']}: {videos}; {summary['num_classes']} classes, "
          f"{len(summary['segment_classes'])} rated in {splits[VALIDATE_SPLIT]['rated_segments']} "
          f"segments; {time.perf_counter() - began:.1f} s")
    return summary


if __name__ == "__main__":
    from cma_tf import cli

    cli.run_flag_command(define_flags, run_from_flags)
