"""Segment inference and the Kaggle 2019 CSV, against brute-force re-derivations."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from cma_tf.data.yt8m.submission import SegmentRanking, split_into_segments

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


def test_segments_start_every_5_frames_and_the_last_one_is_shorter():
    matrix = np.arange(14 * 2).reshape(14, 2)
    starts, segments, lengths = split_into_segments(np.concatenate([matrix, np.zeros((6, 2))]), 12)
    assert starts.tolist() == [0, 5, 10]
    assert lengths.tolist() == [5, 5, 2]
    np.testing.assert_array_equal(segments[1], matrix[5:10])
    np.testing.assert_array_equal(segments[2][:2], matrix[10:12])  # real frames; the rest repeat frame 11
    np.testing.assert_array_equal(segments[2][2:], np.repeat(matrix[11:12], 3, axis=0))


def brute_force_rows(ids, scores, rated, top_k, max_per_class):
    rows = {c: [] for c in rated}
    for segment_id, row in zip(ids, scores):
        ranked = sorted(rated, key=lambda c: -row[c])[:top_k]
        for c in ranked:
            rows[c].append((row[c], segment_id))
    return {c: [s for _, s in sorted(items, key=lambda t: (-t[0], t[1]))[:max_per_class]] for c, items in rows.items()}


@pytest.mark.parametrize("top_k, max_per_class", [(3, 4), (20, 100), (1, 2)])
def test_ranking_equals_brute_force(top_k, max_per_class):
    rng = np.random.default_rng(top_k)
    rated = [0, 2, 3, 5, 7]
    ranking = SegmentRanking(9, rated, top_k=top_k, max_per_class=max_per_class)
    all_ids, all_scores = [], []
    for batch in range(4):
        ids = [f"v{batch}{i}:{5 * i}" for i in range(7)]
        scores = rng.random((7, 9))
        ranking.update(ids, scores)
        all_ids += ids
        all_scores.append(scores)
    expected = brute_force_rows(all_ids, np.concatenate(all_scores), rated, top_k, max_per_class)
    assert dict(ranking.rows()) == expected


def test_csv_format(tmp_path):
    ranking = SegmentRanking(4, [1, 3], top_k=2)
    ranking.update(["a:0", "a:5", "b:0"], np.array([[0, 0.9, 0, 0.1], [0, 0.2, 0, 0.8], [0, 0.5, 0, 0.4]]))
    path = str(tmp_path / "submission.csv")
    ranking.write_csv(path)
    with open(path) as f:
        assert f.read() == "Class,Segments\n1,a:0 b:0 a:5\n3,a:5 b:0 a:0\n"


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_segment_inference_cli_end_to_end(tmp_path):
    from cma_tf.config_base import get_paper_video_config
    from cma_tf.datasets.yt8m_synthetic import generate_videos, write_synthetic_yt8m
    from cma_tf.training.trainer import train_and_evaluate

    data = str(tmp_path / "data")
    write_synthetic_yt8m(data, num_classes=8, train_videos=32, validate_videos=8, test_videos=6,
                         num_shards=1, min_frames=10, max_frames=23, seed=5)
    config = get_paper_video_config("cma_fc")
    overrides = {
        "data.data_dir": os.path.join(data, "frame"), "data.frames": 8, "model.fc_units": (8, 8), "asge.units": 8,
        "asge.steps": 5, "train.epochs": 1, "train.batch_size": 8, "train.eval_batch_size": 8,
    }
    for key, value in overrides.items():
        section, field = key.split(".")
        config[section][field] = value
    workdir = str(tmp_path / "run")
    train_and_evaluate(config, workdir)
    output = str(tmp_path / "submission.csv")
    args = [f"--config={ROOT}/configs/yt8m.py:cma_fc", f"--workdir={workdir}", f"--output={output}",
            f"--input={data}/frame/test*.tfrecord", "--top_k=3", "--segment_max_pred=5"]
    args += [f"--config.{key}={','.join(map(str, v)) if isinstance(v, tuple) else v}" for key, v in overrides.items()]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    proc = subprocess.run([sys.executable, "-m", "cma_tf.segment_inference", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]

    videos = generate_videos("test", 6, num_classes=8, min_frames=10, max_frames=23, seed=5)
    segment_ids = {f"{v.id}:{start}" for v in videos for start in range(0, len(v.rgb), 5)}
    with open(os.path.join(data, "segment_label_ids.csv")) as f:
        rated = [int(line) for line in f.read().split()[1:]]
    with open(output) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["Class", "Segments"]
    assert [int(row[0]) for row in rows[1:]] == sorted(rated)
    listed = [s for row in rows[1:] for s in row[1].split()]
    assert set(listed) <= segment_ids and all(len(row[1].split()) <= 5 for row in rows[1:])
    assert f"scored {len(segment_ids)} segments" in proc.stdout
