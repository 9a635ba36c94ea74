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

    python -m cma_tf.data.yt8m.synthetic --out_dir=runs/yt8m_demo/data
"""

import csv
import dataclasses
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

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def partner(self, label: int) -> Optional[int]:
        """The look-alike of an ambiguous label, or None."""
        for a, b in self.ambiguous_pairs:
            if label in (a, b):
                return b if label == a else a
        return None


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


def make_world(num_classes: int = DEFAULT_NUM_CLASSES, seed: int = 0) -> SyntheticWorld:
    """The scenes, names, segment vocabulary, prototypes and contexts for `num_classes` labels."""
    if num_classes < 2 * 2:
        raise ConfigError(f"num_classes must be >= 4 (two scenes of two labels), got {num_classes}")
    num_scenes = max(2, num_classes // LABELS_PER_SCENE)
    scene_labels = tuple(tuple(int(k) for k in ids)
                         for ids in np.array_split(np.arange(num_classes), num_scenes))
    label_scene = np.concatenate([np.full(len(ids), s) for s, ids in enumerate(scene_labels)])
    scene_names, names = _names(num_scenes, [len(ids) for ids in scene_labels])
    pairs = tuple((scene_labels[2 * p][AMBIGUOUS_POSITION], scene_labels[2 * p + 1][AMBIGUOUS_POSITION])
                  for p in range(min(NUM_AMBIGUOUS_PAIRS, num_scenes // 2)))
    unrated = {ids[UNRATED_POSITION] for ids in scene_labels if len(ids) > UNRATED_POSITION}
    rgb_dims, audio_dims = records.FEATURE_SIZES[records.RGB], records.FEATURE_SIZES[records.AUDIO]
    rng = np.random.default_rng([seed, WORLD_STREAM_ID])
    rgb = _ambiguous_prototypes(rng, _unit_rows(rng, num_classes, rgb_dims), pairs)
    audio = _ambiguous_prototypes(rng, _unit_rows(rng, num_classes, audio_dims), pairs)
    return SyntheticWorld(
        names=tuple(names),
        scene_names=tuple(scene_names),
        scene_labels=scene_labels,
        label_scene=label_scene,
        ambiguous_pairs=pairs,
        segment_classes=tuple(k for k in range(num_classes) if k not in unrated),
        rgb_prototypes=rgb.astype(np.float32),
        audio_prototypes=audio.astype(np.float32),
        rgb_contexts=_unit_rows(rng, num_scenes, rgb_dims).astype(np.float32),
        audio_contexts=_unit_rows(rng, num_scenes, audio_dims).astype(np.float32),
    )


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


def _support_runs(rng: np.random.Generator, num_frames: int) -> Tuple[Tuple[int, int], ...]:
    """One or two disjoint runs of >= MIN_RUN_FRAMES frames, covering 20-50% of the video."""
    total = int(round(rng.uniform(*SUPPORT_FRACTION_RANGE) * num_frames))
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
        if label not in world.segment_classes:
            continue
        positive = covered[:, column] >= MIN_SUPPORT_IN_POSITIVE
        for pool, most, score in ((starts[positive], MAX_POSITIVE_SEGMENTS, 1.0),
                                  (starts[~positive], MAX_NEGATIVE_SEGMENTS, 0.0)):
            for start in rng.choice(pool, size=min(most, len(pool)), replace=False):
                rated.append((int(start), label, score))
    absent = [k for k in world.segment_classes if k not in labels]
    hard = [k for k in absent if any(world.label_scene[k] == world.label_scene[j] or world.partner(j) == k
                                     for j in labels)]
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
    scene, labels = _sample_labels(rng, world)
    num_frames = int(rng.integers(min_frames, max_frames + 1))
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
                    seed: int = 0, start: int = 0, world: Optional[SyntheticWorld] = None
                    ) -> List[SyntheticVideo]:
    """Videos `start..start+count-1` of `split`, exactly as `write_synthetic_yt8m` writes them."""
    _validate_frames(min_frames, max_frames)
    world = make_world(num_classes, seed) if world is None else world
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
    if partner is not None:
        other = world.scene_names[world.label_scene[partner]]
        text += f' Looks like "{world.names[partner]}" ({other}); only the context tells them apart.'
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
    num_classes: int = DEFAULT_NUM_CLASSES,
    train_videos: int = DEFAULT_VIDEOS[TRAIN_SPLIT],
    validate_videos: int = DEFAULT_VIDEOS[VALIDATE_SPLIT],
    test_videos: int = DEFAULT_VIDEOS[TEST_SPLIT],
    num_shards: Union[int, Mapping[str, int]] = DEFAULT_NUM_SHARDS,
    min_frames: int = DEFAULT_MIN_FRAMES,
    max_frames: int = DEFAULT_MAX_FRAMES,
    seed: int = 0,
    progress: bool = False,
) -> dict:
    """Writes a synthetic YouTube-8M dataset to `out_dir` (layout in the module docstring).

    Args:
        num_shards: shards per split, an int for every split or {split: count}
            (default 4 train, 2 validate, 2 test); a split never has more shards than videos.
        min_frames, max_frames: frames per video, uniform in [min_frames, max_frames] within [5, 300].
        progress: show a tqdm bar over the videos.

    Returns:
        A summary: the parameters, the names, scenes, ambiguous pairs and segment classes, and
        per split the counts of videos, shards, frames and rated segments.
    """
    counts = {TRAIN_SPLIT: train_videos, VALIDATE_SPLIT: validate_videos, TEST_SPLIT: test_videos}
    if min(counts.values()) < 0 or max(counts.values()) > _MAX_VIDEOS_PER_SPLIT:
        raise ConfigError(f"video counts must be in [0, {_MAX_VIDEOS_PER_SPLIT}], got {counts}")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    _validate_frames(min_frames, max_frames)
    shard_counts = _shard_counts(num_shards)
    world = make_world(num_classes, seed)
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
        "num_classes": world.num_classes,
        "seed": int(seed),
        "min_frames": int(min_frames),
        "max_frames": int(max_frames),
        "names": list(world.names),
        "scenes": {name: list(ids) for name, ids in zip(world.scene_names, world.scene_labels)},
        "ambiguous_pairs": [list(pair) for pair in world.ambiguous_pairs],
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
    flags.DEFINE_string("out_dir", None, "Directory to write vocabulary.csv, segment_label_ids.csv, "
                        "frame/<split>NNNN.tfrecord and video/<split>NNNN.tfrecord to (created if "
                        "missing; older shards of the same splits are replaced).", flag_values=fv)
    flags.DEFINE_integer("num_classes", DEFAULT_NUM_CLASSES, "Number of labels (>= 4); they form "
                         "scenes of about 4 co-occurring labels.", flag_values=fv)
    flags.DEFINE_integer("train_videos", DEFAULT_VIDEOS[TRAIN_SPLIT], "Number of training videos "
                         "(frame- and video-level records with labels).", flag_values=fv)
    flags.DEFINE_integer("validate_videos", DEFAULT_VIDEOS[VALIDATE_SPLIT], "Number of validation "
                         "videos (labels and 2019-style segment ratings).", flag_values=fv)
    flags.DEFINE_integer("test_videos", DEFAULT_VIDEOS[TEST_SPLIT], "Number of test videos "
                         "(no labels, no ratings, as published).", flag_values=fv)
    flags.DEFINE_integer("num_shards", DEFAULT_NUM_SHARDS[TRAIN_SPLIT], "TFRecord shards of the train "
                         "split (does not change the content).", flag_values=fv)
    flags.DEFINE_integer("eval_num_shards", DEFAULT_NUM_SHARDS[VALIDATE_SPLIT], "TFRecord shards of the "
                         "validate and of the test split (does not change the content).", flag_values=fv)
    flags.DEFINE_integer("min_frames", DEFAULT_MIN_FRAMES, "Fewest frames (seconds) of a video; >= 5.",
                         flag_values=fv)
    flags.DEFINE_integer("max_frames", DEFAULT_MAX_FRAMES, "Most frames (seconds) of a video; <= 300.",
                         flag_values=fv)
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
    )
    splits = summary["splits"]
    videos = ", ".join(f"{s['videos']} {name} videos ({s['frames']} frames, {s['shards']} shards)"
                       for name, s in splits.items())
    print(f"{summary['out_dir']}: {videos}; {summary['num_classes']} classes, "
          f"{len(summary['segment_classes'])} rated in {splits[VALIDATE_SPLIT]['rated_segments']} "
          f"segments; {time.perf_counter() - began:.1f} s")
    return summary


def main(argv):
    from absl import app, flags

    from cma_tf import cli

    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    cli.run_reporting_user_errors(run_from_flags, flags.FLAGS)


if __name__ == "__main__":
    from cma_tf import cli

    define_flags()
    cli.run(main)
