"""Tests for the synthetic YouTube-8M generator (cma_tf.datasets.yt8m_synthetic).

Records are read back with a reader written here from the published format (not the package's
readers), and every statistic is re-derived with numpy from the generator's in-memory videos.
"""

import csv
import glob
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags

from cma_tf.datasets import yt8m_synthetic as synthetic
from cma_tf.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
NUM_CLASSES = 16
COUNTS = {"train": 150, "validate": 60, "test": 12}
SHARDS = {"train": 3, "validate": 2, "test": 1}
MIN_FRAMES, MAX_FRAMES = 10, 40
SEED = 5
VOCABULARY_HEADER = ["Index", "TrainVideoCount", "KnowledgeGraphId", "Name", "WikiUrl",
                     "Vertical1", "Vertical2", "Vertical3", "WikiDescription"]
SEGMENT_FIELDS = ["segment_start_times", "segment_end_times", "segment_labels", "segment_scores"]

# The published frame-level format, spelled out independently of cma_tf.data.yt8m.records.
FRAME_CONTEXT = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "labels": tf.io.VarLenFeature(tf.int64),
    "segment_start_times": tf.io.VarLenFeature(tf.int64),
    "segment_end_times": tf.io.VarLenFeature(tf.int64),
    "segment_labels": tf.io.VarLenFeature(tf.int64),
    "segment_scores": tf.io.VarLenFeature(tf.float32),
}
FRAME_SEQUENCE = {
    "rgb": tf.io.FixedLenSequenceFeature([], tf.string),
    "audio": tf.io.FixedLenSequenceFeature([], tf.string),
}
VIDEO_FEATURES = {
    "id": tf.io.FixedLenFeature([], tf.string),
    "labels": tf.io.VarLenFeature(tf.int64),
    "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
    "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
}


def _write(out_dir, seed=SEED, **overrides):
    kwargs = dict(num_classes=NUM_CLASSES, train_videos=COUNTS["train"], validate_videos=COUNTS["validate"],
                  test_videos=COUNTS["test"], num_shards=SHARDS, min_frames=MIN_FRAMES,
                  max_frames=MAX_FRAMES, seed=seed)
    kwargs.update(overrides)
    return synthetic.write_synthetic_yt8m(str(out_dir), **kwargs)


def _shards(data_dir, level, split):
    return sorted(glob.glob(os.path.join(str(data_dir), level, f"{split}*.tfrecord")))


def _records(data_dir, level, split):
    return [r.numpy() for r in tf.data.TFRecordDataset(_shards(data_dir, level, split))]


def _dequantize(codes):
    return codes.astype(np.float64) * 4.0 / 255.0 + 4.0 / 512.0 - 2.0


def _parse_frame(serialized):
    context, sequence = tf.io.parse_single_sequence_example(serialized, FRAME_CONTEXT, FRAME_SEQUENCE)
    parsed = {key: tf.sparse.to_dense(value).numpy().tolist()
              for key, value in context.items() if key != "id"}
    parsed["id"] = context["id"].numpy().decode()
    parsed["rgb"] = tf.io.decode_raw(sequence["rgb"], tf.uint8).numpy()
    parsed["audio"] = tf.io.decode_raw(sequence["audio"], tf.uint8).numpy()
    parsed["context_keys"] = set(tf.train.SequenceExample.FromString(serialized).context.feature)
    return parsed


def _parse_video(serialized):
    parsed = tf.io.parse_single_example(serialized, VIDEO_FEATURES)
    return {"id": parsed["id"].numpy().decode(),
            "labels": tf.sparse.to_dense(parsed["labels"]).numpy().tolist(),
            "mean_rgb": parsed["mean_rgb"].numpy(),
            "mean_audio": parsed["mean_audio"].numpy()}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("yt8m")
    summary = _write(out_dir)
    return out_dir, summary


@pytest.fixture(scope="module")
def world():
    return synthetic.make_world(NUM_CLASSES, SEED)


@pytest.fixture(scope="module")
def videos(world):
    return {split: synthetic.generate_videos(split, count, NUM_CLASSES, MIN_FRAMES, MAX_FRAMES, SEED,
                                             world=world)
            for split, count in COUNTS.items()}


def test_layout_uses_the_published_shard_names(dataset):
    out_dir, summary = dataset
    for level in ("frame", "video"):
        names = sorted(os.listdir(os.path.join(str(out_dir), level)))
        assert names == sorted(f"{split}{i:04d}.tfrecord" for split, n in SHARDS.items() for i in range(n))
    assert {split: s["shards"] for split, s in summary["splits"].items()} == SHARDS
    assert {split: s["videos"] for split, s in summary["splits"].items()} == COUNTS


def test_frame_records_read_back_identically(dataset, videos):
    out_dir, _ = dataset
    for split, expected in videos.items():
        parsed = [_parse_frame(r) for r in _records(out_dir, "frame", split)]
        assert [p["id"] for p in parsed] == [v.id for v in expected]
        for p, video in zip(parsed, expected):
            np.testing.assert_array_equal(p["rgb"], video.rgb)
            np.testing.assert_array_equal(p["audio"], video.audio)
            assert p["rgb"].dtype == np.uint8 and p["rgb"].shape == (video.num_frames, 1024)
            assert p["audio"].shape == (video.num_frames, 128)
            assert MIN_FRAMES <= video.num_frames <= MAX_FRAMES
            if split == "test":  # as published: no labels and no ratings
                assert p["labels"] == [] and p["context_keys"] == {"id", "labels"}
                continue
            assert p["labels"] == list(video.labels)
            if split == "train":
                assert p["context_keys"] == {"id", "labels"}
            else:
                assert p["context_keys"] == {"id", "labels", *SEGMENT_FIELDS}
                for field in SEGMENT_FIELDS:
                    assert p[field] == pytest.approx(video.segments[field])


def test_video_ids_are_unique_four_characters(videos):
    ids = [v.id for split in videos.values() for v in split]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 4 and i.isalnum() and i.isascii() for i in ids)
    many = [synthetic.video_id(0, split, i) for split in synthetic.SPLITS for i in range(5000)]
    assert len(set(many)) == len(many)


def test_video_level_means_are_the_mean_of_dequantized_frames(dataset, videos):
    out_dir, _ = dataset
    for split, expected in videos.items():
        parsed = [_parse_video(r) for r in _records(out_dir, "video", split)]
        assert [p["id"] for p in parsed] == [v.id for v in expected]
        for p, video in zip(parsed, expected):
            assert p["labels"] == ([] if split == "test" else list(video.labels))
            np.testing.assert_allclose(p["mean_rgb"], _dequantize(video.rgb).mean(axis=0), atol=1e-5)
            np.testing.assert_allclose(p["mean_audio"], _dequantize(video.audio).mean(axis=0), atol=1e-5)


def _files(root):
    paths = glob.glob(os.path.join(str(root), "**", "*"), recursive=True)
    return {os.path.relpath(p, str(root)): open(p, "rb").read() for p in paths if os.path.isfile(p)}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    small = dict(train_videos=6, validate_videos=4, test_videos=2, num_shards=2)
    runs = {name: tmp_path / name for name in ("a", "b", "c")}
    _write(runs["a"], seed=1, **small)
    _write(runs["b"], seed=1, **small)
    _write(runs["c"], seed=2, **small)
    a, b, c = _files(runs["a"]), _files(runs["b"]), _files(runs["c"])
    assert len(a) == 2 + 2 * 6 and a == b
    assert a.keys() == c.keys()
    assert all(a[name] != c[name] for name in a if name.endswith(".tfrecord"))


def test_records_are_serialized_deterministically(dataset):
    """Feature maps in key order, so another process (another hash seed) writes the same bytes."""
    out_dir, _ = dataset
    for level, message in (("frame", tf.train.SequenceExample), ("video", tf.train.Example)):
        for split in COUNTS:
            for record in _records(out_dir, level, split)[:5]:
                assert record == message.FromString(record).SerializeToString(deterministic=True)


def test_another_process_writes_the_same_bytes(tmp_path):
    args = dict(num_classes=8, train_videos=5, validate_videos=3, test_videos=2, min_frames=10, max_frames=15,
                seed=7)
    _write(tmp_path / "here", num_shards={"train": 2, "validate": 1, "test": 1}, **args)
    command = [sys.executable, "-m", "cma_tf.datasets.yt8m_synthetic", f"--out_dir={tmp_path / 'there'}",
               "--num_shards=2", "--eval_num_shards=1"] + [f"--{key}={value}" for key, value in args.items()]
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True, timeout=120)
    assert _files(tmp_path / "here") == _files(tmp_path / "there")


def test_sharding_and_rerun_do_not_change_the_videos(tmp_path, dataset):
    out_dir, _ = dataset
    _write(tmp_path, num_shards=1)
    _write(tmp_path, num_shards=1, train_videos=10)  # a re-run replaces the old shards
    assert len(_shards(tmp_path, "frame", "train")) == 1
    assert _records(tmp_path, "frame", "train") == _records(out_dir, "frame", "train")[:10]
    assert _records(tmp_path, "frame", "validate") == _records(out_dir, "frame", "validate")


def test_segment_ratings_are_consistent(dataset, videos, world):
    out_dir, summary = dataset
    with open(os.path.join(str(out_dir), "segment_label_ids.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Index"]
    segment_classes = [int(row[0]) for row in rows[1:]]
    assert segment_classes == list(world.segment_classes) == summary["segment_classes"]
    assert 0 < len(segment_classes) < NUM_CLASSES
    repeated_starts = 0
    scores = []
    for video in videos["validate"]:
        s = video.segments
        starts, ends = np.asarray(s["segment_start_times"]), np.asarray(s["segment_end_times"])
        assert len(starts) == len(ends) == len(s["segment_labels"]) == len(s["segment_scores"]) > 0
        assert np.all(starts % 5 == 0) and np.all(ends == starts + 5)
        assert np.all(starts >= 0) and np.all(ends <= video.num_frames)
        assert set(s["segment_labels"]) <= set(segment_classes)
        pairs = list(zip(s["segment_start_times"], s["segment_labels"]))
        assert len(set(pairs)) == len(pairs)
        repeated_starts += len(starts) - len(set(starts.tolist()))
        for start, label, score in zip(starts, s["segment_labels"], s["segment_scores"]):
            assert score in (0.0, 1.0)
            covered = video.support_mask(label)[start:start + 5].sum()
            expected = 1.0 if (label in video.labels and covered >= 3) else 0.0
            assert score == expected
            scores.append(score)
    assert repeated_starts > 0  # several labels rated on the same segment, as in the real data
    assert 0.2 < np.mean(scores) < 0.8
    assert summary["splits"]["validate"]["rated_segments"] == len(scores)


def test_label_cooccurrence_has_scene_blocks(videos, world):
    labels = [v.labels for split in ("train", "validate") for v in videos[split]]
    y = np.zeros([len(labels), NUM_CLASSES])
    for row, ids in enumerate(labels):
        y[row, list(ids)] = 1
    cooccurrence = y.T @ y
    same_scene = world.label_scene[:, None] == world.label_scene[None, :]
    off_diagonal = ~np.eye(NUM_CLASSES, dtype=bool)
    within = cooccurrence[same_scene & off_diagonal].mean()
    across = cooccurrence[~same_scene].mean()
    assert within > 10 * across
    assert across > 0  # intruders give weak cross-scene edges
    assert np.all(y.sum(axis=0) > 0)
    assert 1.0 <= y.sum(axis=1).mean() <= 3.0


def test_vocabulary_csv(dataset, videos, world):
    out_dir, summary = dataset
    with open(os.path.join(str(out_dir), "vocabulary.csv"), newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == VOCABULARY_HEADER
    assert len(rows) == NUM_CLASSES + 1
    assert all(len(row) == len(VOCABULARY_HEADER) for row in rows)
    train_counts = np.zeros([NUM_CLASSES], int)
    for video in videos["train"]:
        train_counts[list(video.labels)] += 1
    assert [int(row[0]) for row in rows[1:]] == list(range(NUM_CLASSES))
    assert [int(row[1]) for row in rows[1:]] == train_counts.tolist()
    assert [row[3] for row in rows[1:]] == list(world.names) == summary["names"]
    assert len({row[2] for row in rows[1:]}) == NUM_CLASSES
    assert all(row[2].startswith("/m/") for row in rows[1:])
    assert any('"' in row[8] for row in rows[1:])  # the descriptions need csv quoting


def test_ambiguous_pairs_look_alike(world):
    assert len(world.ambiguous_pairs) == 2
    cosine = world.rgb_prototypes @ world.rgb_prototypes.T
    for a, b in world.ambiguous_pairs:
        assert world.label_scene[a] != world.label_scene[b]
        assert cosine[a, b] > 0.99
        assert (world.audio_prototypes[a] @ world.audio_prototypes[b]) > 0.99
        cosine[a, b] = cosine[b, a] = 0
    np.fill_diagonal(cosine, 0)
    assert np.abs(cosine).max() < 0.2


def test_evidence_is_confined_to_the_support(videos, world):
    inside, outside, positive, negative = [], [], [], []
    for video in videos["train"] + videos["validate"]:
        rgb = _dequantize(video.rgb)
        for label in video.labels:
            mask = video.support_mask(label)
            assert 0.15 <= mask.mean() <= 0.55 or mask.sum() == 5
            projection = rgb @ world.rgb_prototypes[label]
            inside.append(projection[mask].mean())
            if (~mask).any():
                outside.append(projection[~mask].mean())
        if video.segments:
            s = video.segments
            rated = zip(s["segment_start_times"], s["segment_labels"], s["segment_scores"])
            for start, label, score in rated:
                value = rgb[start:start + 5].mean(axis=0) @ world.rgb_prototypes[label]
                (positive if score == 1.0 else negative).append(value)
    assert np.mean(inside) > np.mean(outside) + 1.0
    assert np.mean(positive) > np.mean(negative) + 1.0
    assert np.all(np.isfinite(inside))


def test_support_runs_are_long_enough(videos):
    for video in videos["train"]:
        for runs in video.support.values():
            assert 1 <= len(runs) <= 2
            assert all(end - start >= 5 and 0 <= start < end <= video.num_frames for start, end in runs)
            if len(runs) == 2:
                assert runs[0][1] < runs[1][0]


@pytest.mark.parametrize("num_classes", [4, 9, 40])
def test_worlds_of_other_sizes(num_classes):
    world = synthetic.make_world(num_classes, seed=0)
    assert len(set(world.names)) == num_classes
    assert sorted(k for ids in world.scene_labels for k in ids) == list(range(num_classes))
    assert world.rgb_prototypes.shape == (num_classes, 1024)
    video = synthetic.generate_video(world, "validate", 0, min_frames=5, max_frames=5)
    assert video.num_frames == 5 and set(video.labels) <= set(range(num_classes))


@pytest.mark.parametrize("overrides", [
    dict(num_classes=3), dict(min_frames=4), dict(min_frames=50, max_frames=40), dict(max_frames=301),
    dict(train_videos=-1), dict(num_shards=0), dict(seed=-1),
])
def test_bad_arguments_are_config_errors(tmp_path, overrides):
    with pytest.raises(ConfigError):
        _write(tmp_path, **overrides)


def test_cli_writes_the_dataset_and_prints_one_line(tmp_path, capsys):
    flag_values = synthetic.define_flags(flags.FlagValues())
    flag_values(["synthetic", f"--out_dir={tmp_path}", "--train_videos=4", "--validate_videos=2",
                 "--test_videos=1", "--num_classes=8", "--num_shards=2", "--eval_num_shards=1",
                 "--min_frames=10", "--max_frames=12", "--seed=3"])
    summary = synthetic.run_from_flags(flag_values, progress=False)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and str(tmp_path) in lines[0]
    assert summary["num_classes"] == 8 and summary["seed"] == 3
    assert len(_shards(tmp_path, "frame", "train")) == 2
    assert len(_shards(tmp_path, "video", "test")) == 1


# sha256 of every file of a small demo dataset, as generated before the yt8m preset existed
# (commit 60f761c): the demo preset's bytes do not move when the generator grows.
DEMO_BYTES = {
    "frame/train0000.tfrecord": "0d81647fca77947e7bb446b3e911b981ce2ecc3c971ae09db7e4fb4a63843919",
    "frame/validate0000.tfrecord": "274cab245d1a9c94371b740a543f4d064d9bb1e666ee8443cac1186c2c65c203",
    "frame/test0000.tfrecord": "46a1b27a28d36853c700c20e140fe6ae6854cbe4e5762e6fd71b868f58aa9399",
    "video/train0000.tfrecord": "522f07d8d6ffcd01074a6c279cac88a8170d07879a20c2c80e52ab3feb56dbbe",
    "video/validate0000.tfrecord": "5edd7d66059f561ab52896d1d3c98d9c0068a7bb299cbac0d8f94bf807d70160",
    "video/test0000.tfrecord": "7950ad207ea82be6e4115c53c627b87bb16a9c9bfea3d43d679ac824a4d93a46",
    "vocabulary.csv": "348c4e8b51d564737ebf2abe2747eba61ba7abf8e5c42539acc9ef5e5bab9044",
    "segment_label_ids.csv": "4f1cb093576d233d4dc95a1f534417193a19af378049c863afe90bd8144c949a",
}


def test_the_demo_preset_writes_the_bytes_it_always_wrote(tmp_path):
    import hashlib

    synthetic.write_synthetic_yt8m(str(tmp_path), num_classes=16, train_videos=6, validate_videos=4, test_videos=2,
                                   num_shards=1, seed=5)
    for name, digest in DEMO_BYTES.items():
        with open(tmp_path / name, "rb") as f:
            assert hashlib.sha256(f.read()).hexdigest() == digest, name
