"""The starter code's own scorer of segment submissions, `segment_eval_inference.py`, run
unchanged through `python -m cma_tf.yt8m_starter.run --script=segment_eval_inference`, agrees with
the project's segment mAP (`cma_tf.metrics.video.mean_average_precision` on the rated segments
of `readers.segment_records`, scores times the rating mask, as `python -m cma_tf.evaluate` does)
for a submission the project writes (`SegmentRanking`) from the same segment scores."""

import re

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data.yt8m import readers
from cma_tf.data.yt8m.submission import SegmentRanking
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.metrics.video import mean_average_precision
from tests.yt8m_starter.conftest import run_starter

NUM_CLASSES = 16


def segment_ids(files):
    """`<id>:<start>` of every 5-frame segment of the frame-level records, in record order."""
    ids = []
    for raw in tf.data.TFRecordDataset(files):
        context, sequences = tf.io.parse_single_sequence_example(
            raw, context_features={"id": tf.io.FixedLenFeature([], tf.string)},
            sequence_features={"rgb": tf.io.FixedLenSequenceFeature([], tf.string)})
        count = int(sequences["rgb"].shape[0])
        ids.extend(f"{context['id'].numpy().decode()}:{start}" for start in range(0, count, 5))
    return ids


@pytest.mark.slow  # ~20 s: a synthetic dataset, then the starter's script in a subprocess
def test_starter_scorer_agrees_with_the_project_segment_map(starter_dir, tmp_path):
    summary = write_synthetic_yt8m(str(tmp_path / "data"), num_classes=NUM_CLASSES, train_videos=0,
                                   validate_videos=40, test_videos=0, num_shards=1, min_frames=10, max_frames=30)
    files = tf.io.gfile.glob(str(tmp_path / "data" / "frame" / "validate*.tfrecord"))
    ids = segment_ids(files)
    # Scores that rank the positive ratings high, with noise: an mAP well inside (0, 1).
    rng = np.random.default_rng(0)
    scores = dict(zip(ids, rng.uniform(size=(len(ids), NUM_CLASSES))))
    segment_classes = summary["segment_classes"]
    last_positive = None  # a positive segment ranked last for its class
    rated_scores, rated_labels = [], []
    for batch in readers.segment_records(files, NUM_CLASSES, batch_size=64):
        for video, start, labels, weights in zip(*(batch[key].numpy() for key in (
                "video_ids", "segment_start_times", "labels", "label_weights"))):
            key = f"{video.decode()}:{start}"
            scores[key] = scores[key] + 0.6 * labels  # the submission below uses these too
            if last_positive is None and labels[segment_classes[0]] == 1:
                last_positive = key
                scores[key][segment_classes[0]] = 1e-4  # below all others, above the masked 0s
            rated_scores.append(scores[key] * weights)
            rated_labels.append(labels)
    rated_labels = np.array(rated_labels)
    expected = mean_average_precision(np.array(rated_scores), rated_labels)

    # Class 2 is rated nowhere (the third label of a scene is outside the segment vocabulary):
    # the starter's script would stop on it with a KeyError; a class without positives is left
    # out of the mean by both.
    assert last_positive is not None and 2 not in segment_classes and rated_labels[:, segment_classes].sum(axis=0).min() > 0
    ranking = SegmentRanking(NUM_CLASSES, sorted(segment_classes + [2]))
    ranking.update(ids, np.stack([scores[i] for i in ids]))
    submission = tmp_path / "submission.csv"
    ranking.write_csv(str(submission))
    # That positive ends its class's line: the script, which splits the line with its newline,
    # would miss it.
    lines = dict(line.split(",") for line in submission.read_text().splitlines()[1:])
    assert lines[str(segment_classes[0])].split(" ")[-1] == last_positive
    before = submission.read_bytes()

    proc = run_starter(starter_dir, "segment_eval_inference", f"--eval_data_pattern={tmp_path / 'data/frame/validate*'}",
                       f"--submission_file={submission}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = re.findall(r"Num classes: (\d+) \| mAP@0: ([0-9.]+)", proc.stderr)
    assert found, proc.stderr[-3000:]
    assert 0.2 < expected < 0.95
    assert float(found[-1][1]) == round(expected, 6)
    assert submission.read_bytes() == before  # the runner hands the script a copy
