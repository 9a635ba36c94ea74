"""Multi-label image classification metrics (pure numpy).

These are the metrics reported by You et al., "Cross-Modality Attention with
Semantic Graph Embedding for Multi-Label Classification" (AAAI 2020), computed
the way ML-GCN's evaluation code computes them.

Conventions used throughout:

* ``scores`` is a float array ``[n, N]`` (n examples, N classes); larger means
  "more likely present". Any monotone score works (probabilities or logits),
  but the default ``threshold=0.5`` assumes probabilities.
* ``targets`` is a ``{0, 1}`` array of the same shape (1 = label present).
  Other encodings (e.g. ML-GCN's ``-1`` for negatives) are rejected.
* Every metric is a fraction in ``[0, 1]``, not a percentage.
"""

import numpy as np

from cma_tf.metrics.thresholds import DEFAULT_THRESHOLD
from cma_tf.metrics.validate import as_numeric_array, check_axes, positive_integer

# Number of score entries sorted at once when computing per-class AP or top-k;
# bounds the temporary memory (a few arrays of this many int64 / float64).
_SORT_BLOCK_ELEMENTS = 1 << 22

_PR_KEYS = ("CP", "CR", "CF1", "OP", "OR", "OF1")
# The keys of multilabel_metrics' result (with its default k=3) that reports show:
# REPORT_KEYS are what validation logs (mAP and the threshold metrics), FULL_KEYS add the
# top-3 ones, SUMMARY_KEYS are the three of the short tables.
REPORT_KEYS = ("mAP",) + _PR_KEYS
FULL_KEYS = REPORT_KEYS + tuple(f"{key}_top3" for key in _PR_KEYS)
SUMMARY_KEYS = ("mAP", "CF1", "OF1")

_AXES = ("num_examples", "num_classes")


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _as_float_array(values, name):
    """Returns ``values`` as a float array, or raises ValueError naming ``name``."""
    array = as_numeric_array(values, name)
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def _check_finite(scores, name):
    """Raises ValueError if ``scores`` holds NaN or infinity."""
    if not np.all(np.isfinite(scores)):
        bad = int(np.size(scores) - np.count_nonzero(np.isfinite(scores)))
        raise ValueError(f"`{name}` must be finite, but {bad} entries are NaN or infinite")


def _as_binary_array(values, name):
    """Returns ``values`` as a bool array; raises ValueError unless all are 0 or 1."""
    array = np.asarray(values)
    if array.dtype == bool:
        return array
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"`{name}` must be numeric 0/1 values, got dtype {array.dtype}")
    is_binary = (array == 0) | (array == 1)
    if not np.all(is_binary):
        offending = np.unique(array[~is_binary])[:5]
        raise ValueError(f"`{name}` must contain only 0 and 1, found {offending.tolist()}")
    return array == 1


def _check_same_2d_shape(first, first_name, second, second_name):
    """Raises ValueError unless both arrays are 2-D, non-empty and of equal shape."""
    check_axes(first, first_name, _AXES)
    check_axes(second, second_name, _AXES)
    if first.shape != second.shape:
        raise ValueError(
            f"`{first_name}` and `{second_name}` must have the same shape, "
            f"got {first.shape} and {second.shape}"
        )
    if first.shape[0] == 0:
        raise ValueError(f"`{first_name}` has no examples (shape {first.shape})")
    if first.shape[1] == 0:
        raise ValueError(f"`{first_name}` has no classes (shape {first.shape})")


def _validate_scores_targets(scores, targets):
    """Validates a (scores, targets) pair; returns (float scores, bool targets)."""
    scores = _as_float_array(scores, "scores")
    targets = _as_binary_array(targets, "targets")
    _check_same_2d_shape(scores, "scores", targets, "targets")
    _check_finite(scores, "scores")
    return scores, targets


def _check_threshold(threshold, allow_none=False):
    """Raises ValueError unless ``threshold`` is a finite number (or None if allowed)."""
    if threshold is None and allow_none:
        return
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float, np.number)):
        raise ValueError(f"`threshold` must be a finite number, got {threshold!r}")
    if not np.isfinite(threshold):
        raise ValueError(f"`threshold` must be finite, got {threshold!r}")


# --------------------------------------------------------------------------
# Average precision
# --------------------------------------------------------------------------


def _column_average_precision(scores, targets):
    """AP of every column of ``scores`` [n, m] against bool ``targets`` [n, m].

    Each positive example contributes ``1 / P`` recall at the threshold equal to
    its own score, where the precision is measured after *all* examples tied with
    it are included. So ``AP = (1 / P) * sum_{positives i} precision(group_end(i))``,
    which is the step-wise sum ``sum_n (R_n - R_{n-1}) P_n`` over distinct thresholds.
    """
    num_examples = scores.shape[0]
    order = np.argsort(-scores, axis=0, kind="stable")
    sorted_scores = np.take_along_axis(scores, order, axis=0)
    sorted_targets = np.take_along_axis(targets, order, axis=0)

    true_positives = np.cumsum(sorted_targets, axis=0, dtype=np.int64)
    rows = np.arange(num_examples)[:, None]
    # Row j ends a tie group if it is the last row or the next score differs.
    ends_group = np.ones_like(sorted_scores, dtype=bool)
    ends_group[:-1] = sorted_scores[:-1] != sorted_scores[1:]
    # For each row, the index of the last row of its tie group (a reverse running min).
    group_end = np.where(ends_group, rows, num_examples)
    group_end = np.minimum.accumulate(group_end[::-1], axis=0)[::-1]

    precision_at_end = np.take_along_axis(true_positives, group_end, axis=0) / (group_end + 1)
    num_positives = true_positives[-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.sum(precision_at_end * sorted_targets, axis=0) / num_positives
    return np.where(num_positives > 0, ap, np.nan)


def _per_class_ap_unchecked(scores, targets):
    """Per-class AP for already validated [n, N] float scores and bool targets."""
    num_examples, num_classes = scores.shape
    block = max(1, _SORT_BLOCK_ELEMENTS // max(num_examples, 1))
    result = np.empty(num_classes, dtype=np.float64)
    for start in range(0, num_classes, block):
        stop = min(start + block, num_classes)
        result[start:stop] = _column_average_precision(
            scores[:, start:stop], targets[:, start:stop]
        )
    return result


def average_precision(scores, targets) -> float:
    """Average precision (AP) of one class.

    Same definition as ``sklearn.metrics.average_precision_score``: sort examples
    by descending score; every distinct score value is one threshold (tied scores
    enter together, never one at a time); with ``P_t`` and ``R_t`` the precision
    and recall of "score >= t" at the t-th highest distinct score,

        AP = sum_t (R_t - R_{t-1}) * P_t,   R_0 = 0.

    This is the non-interpolated AP (not the VOC 11-point or "max precision to
    the right" variants).

    Args:
      scores: 1-D array [n] of finite scores.
      targets: 1-D array [n] of 0/1 (or bool) labels.

    Returns:
      AP as a python float in [0, 1], or ``nan`` if ``targets`` has no positive.
    """
    scores = _as_float_array(scores, "scores")
    targets = _as_binary_array(targets, "targets")
    check_axes(scores, "scores", ("num_examples",))
    check_axes(targets, "targets", ("num_examples",))
    if scores.shape != targets.shape:
        raise ValueError(
            f"`scores` and `targets` must have the same shape, got {scores.shape} and {targets.shape}"
        )
    if scores.size == 0:
        raise ValueError("`scores` has no examples")
    _check_finite(scores, "scores")
    return float(_column_average_precision(scores[:, None], targets[:, None])[0])


def per_class_average_precision(scores, targets) -> np.ndarray:
    """AP of every class (column), see :func:`average_precision`.

    Args:
      scores: [n, N] finite scores.
      targets: [n, N] 0/1 labels.

    Returns:
      float64 array [N]; ``nan`` for classes without any positive example.
    """
    scores, targets = _validate_scores_targets(scores, targets)
    return _per_class_ap_unchecked(scores, targets)


def _nan_safe_mean(values):
    """Mean of the non-NaN entries, or nan if there are none (without a warning)."""
    valid = values[~np.isnan(values)]
    return float(valid.mean()) if valid.size else float("nan")


def mean_average_precision(scores, targets) -> float:
    """Mean of the per-class AP over classes with at least one positive example.

    Classes without positives have undefined AP and are *excluded* from the mean
    (they are not counted as 0). Returns ``nan`` if no class has a positive.
    """
    return _nan_safe_mean(per_class_average_precision(scores, targets))


# --------------------------------------------------------------------------
# Precision / recall / F1 on hard predictions
# --------------------------------------------------------------------------


def _safe_divide(numerator, denominator):
    """Elementwise ``numerator / denominator`` with 0/0 (and x/0) defined as 0."""
    numerator = np.asarray(numerator, dtype=np.float64)
    denominator = np.asarray(denominator, dtype=np.float64)
    safe = np.where(denominator > 0, denominator, 1.0)
    return np.where(denominator > 0, numerator / safe, 0.0)


def _harmonic_mean(a, b):
    """``2ab / (a + b)``, defined as 0 when ``a + b == 0``."""
    return float(_safe_divide(2.0 * a * b, a + b))


def _precision_recall_f1_unchecked(predicted, targets):
    """CP/CR/CF1/OP/OR/OF1 for already validated bool arrays [n, N]."""
    true_positives = np.count_nonzero(predicted & targets, axis=0)
    num_predicted = np.count_nonzero(predicted, axis=0)
    num_positives = np.count_nonzero(targets, axis=0)

    class_precision = float(np.mean(_safe_divide(true_positives, num_predicted)))
    class_recall = float(np.mean(_safe_divide(true_positives, num_positives)))
    total_true_positives = true_positives.sum()
    overall_precision = float(_safe_divide(total_true_positives, num_predicted.sum()))
    overall_recall = float(_safe_divide(total_true_positives, num_positives.sum()))
    return {
        "CP": class_precision,
        "CR": class_recall,
        "CF1": _harmonic_mean(class_precision, class_recall),
        "OP": overall_precision,
        "OR": overall_recall,
        "OF1": _harmonic_mean(overall_precision, overall_recall),
    }


def precision_recall_f1(predicted, targets) -> dict:
    """Per-class (macro) and overall (micro) precision, recall and F1.

    With ``TP_c``, ``Np_c`` (predicted) and ``Ng_c`` (ground-truth positives) the
    counts of class c over all examples, and N the number of classes:

    * ``CP = (1/N) sum_c TP_c / Np_c`` and ``CR = (1/N) sum_c TP_c / Ng_c``,
      averaged over ALL classes, with 0/0 counted as 0 (= sklearn
      ``precision_score`` / ``recall_score`` with ``average='macro',
      zero_division=0``).
    * ``CF1 = 2 CP CR / (CP + CR)``: harmonic mean of the averaged CP and CR
      (ML-GCN / paper convention), NOT the mean of per-class F1 scores.
    * ``OP = sum_c TP_c / sum_c Np_c`` and ``OR = sum_c TP_c / sum_c Ng_c``
      (micro averages, 0/0 -> 0); ``OF1 = 2 OP OR / (OP + OR)``.

    Both F1 values are 0 when precision and recall are both 0.

    Args:
      predicted: [n, N] bool or 0/1 predictions.
      targets: [n, N] 0/1 labels.

    Returns:
      dict with python floats under "CP", "CR", "CF1", "OP", "OR", "OF1".
    """
    predicted = _as_binary_array(predicted, "predicted")
    targets = _as_binary_array(targets, "targets")
    _check_same_2d_shape(predicted, "predicted", targets, "targets")
    return _precision_recall_f1_unchecked(predicted, targets)


# --------------------------------------------------------------------------
# Turning scores into hard predictions
# --------------------------------------------------------------------------


def _top_k_unchecked(scores, k, threshold):
    """Top-k predictions for validated 2-D ``scores``; ``k`` already clipped to N."""
    num_examples, num_classes = scores.shape
    predicted = np.zeros(scores.shape, dtype=bool)
    block = max(1, _SORT_BLOCK_ELEMENTS // num_classes)
    for start in range(0, num_examples, block):
        rows = scores[start:start + block]
        # Stable sort on -score: among equal scores the lower class index wins.
        top = np.argsort(-rows, axis=1, kind="stable")[:, :k]
        keep = np.ones(top.shape, dtype=bool)
        if threshold is not None:
            keep = np.take_along_axis(rows, top, axis=1) >= threshold
        np.put_along_axis(predicted[start:start + block], top, keep, axis=1)
    return predicted


def top_k_predictions(scores, k=3, threshold=DEFAULT_THRESHOLD) -> np.ndarray:
    """Bool predictions keeping, per example, at most the k highest scores.

    For each row, the k highest-scoring classes are selected (ties broken in
    favour of the lower class index, i.e. a stable sort on ``-score``); of those,
    only the ones with ``score >= threshold`` are predicted. So a row can have
    fewer than k predicted labels. This is ML-GCN's ``overall_topk`` convention
    (which thresholds logits at 0, i.e. probabilities at 0.5). Pass
    ``threshold=None`` to predict all k selected classes unconditionally.
    If k exceeds the number of classes, every class is selected.

    Args:
      scores: [n, N] finite scores.
      k: positive number of classes to keep per example.
      threshold: minimum score of a kept class, or None.

    Returns:
      bool array [n, N].
    """
    positive_integer(k, "k")
    _check_threshold(threshold, allow_none=True)
    scores = _as_float_array(scores, "scores")
    check_axes(scores, "scores", _AXES)
    _check_finite(scores, "scores")
    if scores.shape[1] == 0:
        return np.zeros(scores.shape, dtype=bool)
    return _top_k_unchecked(scores, min(int(k), scores.shape[1]), threshold)


# --------------------------------------------------------------------------
# All metrics at once
# --------------------------------------------------------------------------


def multilabel_metrics(scores, targets, threshold=DEFAULT_THRESHOLD, k=3) -> dict:
    """All metrics of the paper's tables, as python floats in [0, 1].

    Keys:

    * ``"mAP"``: :func:`mean_average_precision` (``nan`` only if no class has
      a positive example).
    * ``"CP", "CR", "CF1", "OP", "OR", "OF1"``: :func:`precision_recall_f1` of
      ``scores >= threshold``.
    * ``"CP_top{k}"`` ... ``"OF1_top{k}"``: the same on
      :func:`top_k_predictions` ``(scores, k, threshold)``.
    * ``"num_examples"`` (n) and ``"num_classes_with_positives"`` (ints).

    With the default ``k=3`` the float metrics are :data:`FULL_KEYS`, in that order.

    Raises:
      ValueError: if the arrays are not 2-D with the same non-empty shape,
        ``scores`` has NaN/inf, ``targets`` has values other than 0/1, or
        ``threshold``/``k`` are invalid.
    """
    _check_threshold(threshold)
    positive_integer(k, "k")
    scores, targets = _validate_scores_targets(scores, targets)
    per_class_ap = _per_class_ap_unchecked(scores, targets)
    metrics = {"mAP": _nan_safe_mean(per_class_ap)}
    metrics.update(_precision_recall_f1_unchecked(scores >= threshold, targets))
    top_k = _top_k_unchecked(scores, min(int(k), scores.shape[1]), threshold)
    top_k_metrics = _precision_recall_f1_unchecked(top_k, targets)
    metrics.update({f"{key}_top{k}": top_k_metrics[key] for key in _PR_KEYS})
    metrics["num_examples"] = int(scores.shape[0])
    metrics["num_classes_with_positives"] = int(np.count_nonzero(~np.isnan(per_class_ap)))
    return metrics
