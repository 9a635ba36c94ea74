"""The synthetic YouTube-8M generator's `yt8m` preset at the real scale (3,862 labels).

Each property the module docstring promises is re-derived here with numpy from the generated
videos (their hidden supports and their dequantized frames), not from the generator's summary.
"""

import csv
import os

import numpy as np
import pytest

from cma_tf.datasets import yt8m_synthetic as synthetic

NUM_CLASSES = 3862
SEED = 3
TRAIN = 1500
MIN_FRAMES, MAX_FRAMES = 30, 60


@pytest.fixture(scope="module")
def world():
    return synthetic.make_world(NUM_CLASSES, SEED, preset="yt8m")


@pytest.fixture(scope="module")
def videos(world):
    return synthetic.generate_videos("train", TRAIN, NUM_CLASSES, MIN_FRAMES, MAX_FRAMES, SEED, world=world)


def _cosine(a, b):
    return float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))


def _runs(mask):
    """[(start, end)] of the True runs of a boolean vector."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def test_world_has_the_scale_and_the_look_alike_pairs(world):
    assert world.num_classes == NUM_CLASSES and len(world.scene_labels) == NUM_CLASSES // 8
    assert sorted(np.round(1.0 / world.popularity).astype(int)) == list(range(1, NUM_CLASSES + 1))
    assert len(world.ambiguous_pairs) == len(world.scene_labels) // 2
    for a, b in world.ambiguous_pairs[:50]:  # context pairs: other scenes, the same look
        assert world.label_scene[a] != world.label_scene[b]
        assert _cosine(world.rgb_prototypes[a], world.rgb_prototypes[b]) > 0.99
        assert _cosine(world.audio_prototypes[a], world.audio_prototypes[b]) > 0.99
    for long_label, short_label in world.duration_pairs[:50]:  # duration pairs: one scene, the same look
        assert world.label_scene[long_label] == world.label_scene[short_label]
        assert _cosine(world.rgb_prototypes[long_label], world.rgb_prototypes[short_label]) > 0.99
    others = world.rgb_prototypes[[ids[0] for ids in world.scene_labels[:40]]]
    off_diagonal = (others @ others.T)[~np.eye(len(others), dtype=bool)]
    assert np.abs(off_diagonal).max() < 0.2  # unrelated labels are far apart
    assert len(world.segment_classes) == 3 * len(world.scene_labels)


def test_labels_per_video_and_power_law_popularity(world, videos):
    counts_per_video = np.array([len(v.labels) for v in videos])
    assert counts_per_video.min() == 1 and counts_per_video.max() == 5
    assert abs(counts_per_video.mean() - 3.0) < 0.15  # 3.0 expected; std of the mean 0.033
    counts = np.zeros(NUM_CLASSES)
    for video in videos:
        counts[list(video.labels)] += 1
    rank = np.argsort(np.argsort(-world.popularity)) + 1
    bins = [(1, 10), (10, 100), (100, 1000)]
    x = [np.log(np.sqrt(lo * hi)) for lo, hi in bins]
    y = [np.log(counts[(rank >= lo) & (rank < hi)].mean()) for lo, hi in bins]
    slope = np.polyfit(x, y, 1)[0]
    assert -1.2 < slope < -0.6, slope  # a power law: each decade of rank ~7× rarer
    top_share = counts[np.argmax(world.popularity)] / TRAIN
    assert top_share > 1.0 / np.sum(1.0 / np.arange(1, NUM_CLASSES + 1)) - 0.03  # ≥ the first draw's 1/H_N


def test_evidence_shows_in_a_few_short_runs_long_or_short(world, videos):
    for video in videos[:300]:
        n = video.num_frames
        for label in video.labels:
            mask = video.support_mask(label)
            runs = _runs(mask)
            lengths = [end - start for start, end in runs]
            kind = world.durations[label]
            if kind == synthetic.LONG:
                assert 0.4 * n - 1 <= mask.sum() <= 0.6 * n + 1 and len(runs) <= 2
            elif kind == synthetic.SHORT:
                assert len(runs) == 1 and 5 <= lengths[0] <= 7
            else:
                assert 1 <= len(runs) <= 3 and all(5 <= length <= 12 for length in lengths)


def test_a_duration_pair_differs_in_the_mean_not_the_peak():
    """What the duration pairs reward: over the dequantized frames, the projection on the pair's
    shared prototype peaks as high for the short label as for the long one; only its mean over
    the video (how long it shows) tells them apart. (A 64-label world of the preset, where one
    pair's labels are frequent enough to collect examples quickly; the mechanism is the same.)"""
    world = synthetic.make_world(64, SEED, preset="yt8m")
    long_label, short_label = max(world.duration_pairs, key=lambda pair: world.popularity[list(pair)].min())
    direction = world.rgb_prototypes[long_label]
    peaks, means = {long_label: [], short_label: []}, {long_label: [], short_label: []}
    for index in range(3000):
        video = synthetic.generate_video(world, "train", index, MIN_FRAMES, MAX_FRAMES, SEED)
        present = [k for k in (long_label, short_label) if k in video.labels]
        if len(present) != 1:
            continue
        projection = synthetic.records.dequantize(video.rgb) @ direction
        peaks[present[0]].append(np.sort(projection)[-3:].mean())
        means[present[0]].append(projection.mean())
        if min(len(v) for v in peaks.values()) >= 15:
            break
    assert min(len(v) for v in peaks.values()) >= 15, "the pair's labels hardly ever occur"
    # measured with 160-240 videos each: peaks 2.72 against 2.30 (the long label's more signal
    # frames lift its top 3 by the noise), means 0.96 against 0.24
    assert np.mean(peaks[long_label]) < 1.35 * np.mean(peaks[short_label])
    assert np.mean(means[long_label]) > 3 * np.mean(means[short_label])


def test_preset_writes_its_defaults_and_flags_override(tmp_path):
    summary = synthetic.write_synthetic_yt8m(str(tmp_path), preset="yt8m", train_videos=20, validate_videos=10,
                                             test_videos=2, num_shards=1, min_frames=20, max_frames=30, seed=SEED)
    assert summary["preset"] == "yt8m" and summary["num_classes"] == NUM_CLASSES
    assert summary["splits"]["train"]["videos"] == 20 and summary["min_frames"] == 20
    with open(os.path.join(tmp_path, "vocabulary.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == NUM_CLASSES
    with open(os.path.join(tmp_path, "segment_label_ids.csv")) as f:
        assert len(f.read().split()) - 1 == len(summary["segment_classes"])
    defaults = synthetic.PRESET_DEFAULTS["yt8m"]
    assert defaults["num_classes"] == NUM_CLASSES and defaults["train_videos"] >= 10_000


def test_unknown_preset_is_refused(tmp_path):
    with pytest.raises(synthetic.ConfigError, match="preset"):
        synthetic.write_synthetic_yt8m(str(tmp_path), preset="kinetics")
