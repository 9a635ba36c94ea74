"""Per-label thresholds: the F1-maximising cut against a brute force over every threshold with
scikit-learn's F1, never below the 0.5 threshold's F1 on the calibration split; ties; labels
without positives."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from cma_tf.metrics.thresholds import calibrate_thresholds, decide


def calibration_data(seed=0, examples=300, labels=12):
    rng = np.random.default_rng(seed)
    targets = rng.random((examples, labels)) < rng.uniform(0.02, 0.4, labels)
    # informative but miscalibrated scores: some labels shifted low, some high
    logits = 2.0 * targets + rng.normal(0, 1.2, targets.shape) + rng.uniform(-3, 1, labels)
    scores = np.round(1 / (1 + np.exp(-logits)), 3)  # rounding makes ties
    return scores, targets


@pytest.mark.slow
def test_each_threshold_reaches_the_best_f1_of_any_threshold():
    scores, targets = calibration_data()
    thresholds, f1 = calibrate_thresholds(scores, targets)
    predicted = decide(scores, thresholds)
    for k in range(scores.shape[1]):
        candidates = np.unique(scores[:, k])
        brute = max(f1_score(targets[:, k], scores[:, k] >= t, zero_division=0) for t in candidates)
        got = f1_score(targets[:, k], predicted[:, k], zero_division=0)
        np.testing.assert_allclose(got, brute, atol=1e-12)
        np.testing.assert_allclose(f1[k], brute, atol=1e-12)
        assert got >= f1_score(targets[:, k], scores[:, k] >= 0.5, zero_division=0)
        assert not np.any(np.isclose(scores[:, k], thresholds[k], atol=0))  # a margin on both sides


def test_ties_move_together_and_a_label_without_positives_keeps_the_default():
    scores = np.array([[0.9, 0.2], [0.6, 0.3], [0.6, 0.1], [0.1, 0.4]])
    targets = np.array([[1, 0], [1, 0], [0, 0], [0, 0]])
    thresholds, f1 = calibrate_thresholds(scores, targets)
    # label 0: top 1 → F1 2/3; top 3 (the tie at 0.6 taken whole) → F1 0.8; so the cut is below 0.6
    np.testing.assert_allclose(thresholds[0], (0.6 + 0.1) / 2)
    np.testing.assert_allclose(f1[0], 0.8)
    assert thresholds[1] == 0.5 and np.isnan(f1[1])
