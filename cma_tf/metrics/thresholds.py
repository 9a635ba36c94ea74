"""Per-label decision thresholds: each label's threshold chosen to maximise its F1 on a
calibration split, and the decisions they give.

For label k, sort the calibration scores in decreasing order; predicting the top j gives
`F1_j = 2·TP_j / (j + P)` (`P` the label's positives). The best j among the cuts between two
distinct scores gives the threshold halfway between the j-th score and the next lower one, so
that `score ≥ threshold` predicts exactly those j on the calibration split and leaves a margin
on both sides for new data. A label without positives in the calibration split has no F1 to
maximise and keeps `default` (0.5).
"""

import numpy as np

DEFAULT_THRESHOLD = 0.5


def calibrate_thresholds(scores, targets, default=DEFAULT_THRESHOLD):
    """`(thresholds [N], f1 [N])`: each label's F1-maximising threshold on `scores` `[M, N]`
    against binary `targets` `[M, N]`, and the F1 it reaches there (NaN without positives)."""
    scores = np.asarray(scores, np.float64)
    targets = np.asarray(targets).astype(bool)
    if scores.shape != targets.shape or scores.ndim != 2:
        raise ValueError(f"scores and targets must both be [examples, labels], got {scores.shape} and {targets.shape}")
    thresholds = np.full(scores.shape[1], default, np.float64)
    best_f1 = np.full(scores.shape[1], np.nan)
    for k in range(scores.shape[1]):
        positives = int(targets[:, k].sum())
        if positives == 0:
            continue
        order = np.argsort(-scores[:, k], kind="stable")
        ranked, hits = scores[order, k], targets[order, k]
        true_positives = np.cumsum(hits)
        predicted = np.arange(1, len(ranked) + 1)
        # a cut is only possible where the next score is lower (ties are predicted together)
        cuts = np.flatnonzero(np.append(ranked[1:] < ranked[:-1], True))
        f1 = 2.0 * true_positives[cuts] / (predicted[cuts] + positives)
        best = cuts[int(np.argmax(f1))]
        best_f1[k] = float(f1.max())
        lower = ranked[best + 1] if best + 1 < len(ranked) else ranked[best] - 1e-6
        thresholds[k] = (ranked[best] + lower) / 2.0
    return thresholds, best_f1


def decide(scores, thresholds):
    """bool `[M, N]`: `scores ≥ thresholds` label by label."""
    return np.asarray(scores) >= np.asarray(thresholds)[None, :]
