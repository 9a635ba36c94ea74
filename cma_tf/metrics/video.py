"""YouTube-8M video-level metrics (pure numpy).

The definitions follow the YouTube-8M starter code (google/youtube-8m,
``eval_util.py``, ``average_precision_calculator.py`` and
``mean_average_precision_calculator.py``); each function names the starter-code
function it reproduces.

Conventions:

* ``predictions`` is a finite float array ``[videos, classes]``; larger means
  "more likely present".
* ``labels`` is a ``{0, 1}`` array of the same shape (1 = label present).
* Every metric is a fraction in ``[0, 1]`` (``mAP`` may be ``nan``, see
  :func:`mean_average_precision`).
* :func:`video_metrics` and :class:`VideoMetricAccumulator` name the metrics as
  the paper's Table 4 does: :data:`REPORT_KEYS`.

Ties. The starter code leaves some tie orders unspecified; here they are fixed:

* *Selections* inside one video (the top-``k`` classes kept for GAP / mAP, the
  top-``r`` classes of PERR, the top-1 class of Hit@1) break ties towards the
  lower class index. This is exactly ``numpy.argmax`` for Hit@1; the starter
  code's ``numpy.argpartition`` (GAP / mAP / PERR) picks an unspecified member
  of a tie group at the boundary.
* The *pooled ranking* inside average precision: the starter code shuffles the
  pooled list with ``random.seed(0)`` and then sorts stably, i.e. it draws one
  random order of each group of tied scores. Here the AP is the exact
  *expected value* over uniformly random orders of the tied items (so it is
  deterministic and does not depend on the order videos were seen in). Without
  ties both are identical.
"""

import numpy as np

from cma_tf.metrics.validate import as_numeric_array, check_axes, positive_integer

__all__ = [
    "REPORT_KEYS",
    "global_average_precision",
    "hit_at_one",
    "precision_at_equal_recall_rate",
    "mean_average_precision",
    "video_metrics",
    "VideoMetricAccumulator",
]

# The keys of video_metrics' result, in the paper's order (Table 4).
REPORT_KEYS = ("GAP", "Hit@1", "PERR", "mAP")


# --------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------


def _validate(predictions, labels, num_classes=None):
    """Returns (predictions float64, labels bool) or raises ValueError."""
    predictions = as_numeric_array(predictions, "predictions")
    check_axes(predictions, "predictions", ("videos", "classes"))
    labels = as_numeric_array(labels, "labels")
    check_axes(labels, "labels", ("videos", "classes"))
    if predictions.shape != labels.shape:
        raise ValueError(
            f"`predictions` shape {predictions.shape} != `labels` shape {labels.shape}"
        )
    if predictions.shape[1] == 0:
        raise ValueError("need at least one class")
    if num_classes is not None and predictions.shape[1] != num_classes:
        raise ValueError(
            f"expected {num_classes} classes, got {predictions.shape[1]}"
        )
    predictions = predictions.astype(np.float64, copy=False)
    if not np.all(np.isfinite(predictions)):
        raise ValueError("`predictions` must be finite (no NaN / inf)")
    if labels.dtype != bool and not np.all((labels == 0) | (labels == 1)):
        raise ValueError("`labels` must contain only 0 and 1")
    return predictions, labels.astype(bool, copy=False)


def _require_videos(predictions):
    if predictions.shape[0] == 0:
        raise ValueError("need at least one video")


# --------------------------------------------------------------------------
# Core (unchecked) computations
# --------------------------------------------------------------------------


def _descending_order(predictions):
    """Per-row class order by descending score, ties towards the lower index."""
    return np.argsort(-predictions, axis=1, kind="stable")


def _top_k(predictions, labels, top_k):
    """Top-k (scores, labels, class ids) per video, each ``[videos, min(k, C)]``."""
    k = min(top_k, predictions.shape[1])
    order = _descending_order(predictions)[:, :k]
    scores = np.take_along_axis(predictions, order, axis=1)
    hits = np.take_along_axis(labels, order, axis=1)
    return scores, hits, order


def _expected_precision_sums(keys, scores, positives, num_keys):
    """For each key, the sum of precision@rank over its positives (AP numerator).

    Items sharing a key form one ranked list (descending score). Within a group
    of ``m`` tied items holding ``p`` positives, starting after ``s`` items and
    ``c`` positives of the same list, the item in tie slot ``j`` (1-based) is a
    positive with probability ``p / m`` and then has on average
    ``(j - 1)(p - 1)/(m - 1)`` other positives before it in the group, so the
    slot contributes ``p/m * (c + 1 + (j-1)(p-1)/(m-1)) / (s + j)``: the exact
    expectation over uniformly random orders of the tied items.
    """
    keys = np.asarray(keys, dtype=np.int64).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    positives = np.asarray(positives, dtype=np.float64).ravel()
    if keys.size == 0:
        return np.zeros(num_keys)
    order = np.lexsort((-scores, keys))
    keys, scores, positives = keys[order], scores[order], positives[order]
    n = keys.size
    index = np.arange(n)
    new_key = np.ones(n, dtype=bool)
    new_key[1:] = keys[1:] != keys[:-1]
    new_tie = new_key.copy()
    new_tie[1:] |= scores[1:] != scores[:-1]
    key_start = np.maximum.accumulate(np.where(new_key, index, 0))
    rank = (index - key_start + 1).astype(np.float64)
    tie_id = np.cumsum(new_tie) - 1
    tie_start = np.flatnonzero(new_tie)
    tie_size = np.bincount(tie_id).astype(np.float64)
    tie_pos = np.bincount(tie_id, weights=positives)
    before = np.cumsum(positives) - positives  # positives strictly before each item
    tie_prior = before[tie_start] - before[key_start[tie_start]]
    m, p, c = tie_size[tie_id], tie_pos[tie_id], tie_prior[tie_id]
    slot = (index - tie_start[tie_id]).astype(np.float64)  # j - 1
    extra = np.where(m > 1, slot * (p - 1.0) / np.maximum(m - 1.0, 1.0), 0.0)
    contribution = p / m * (c + 1.0 + extra) / rank
    return np.bincount(keys, weights=contribution, minlength=num_keys)


def _gap_from_top_k(scores, hits, total_positives):
    if total_positives <= 0:
        return 0.0
    sums = _expected_precision_sums(np.zeros(scores.size), scores, hits, 1)
    return float(sums[0] / total_positives)


def _map_from_top_k(scores, hits, classes, class_positives):
    sums = _expected_precision_sums(classes, scores, hits, class_positives.size)
    present = class_positives > 0
    if not np.any(present):
        return float("nan")
    return float(np.mean(sums[present] / class_positives[present]))


def _hit_at_one_rows(predictions, labels):
    top = np.argmax(predictions, axis=1)
    return labels[np.arange(labels.shape[0]), top].astype(np.float64)


def _perr_rows(predictions, labels):
    num_videos, num_classes = predictions.shape
    num_labels = labels.sum(axis=1)
    order = _descending_order(predictions)
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(num_classes)[None, :], axis=1)
    selected = rank < num_labels[:, None]
    hits = np.sum(selected & labels & (predictions > 0), axis=1)
    return np.where(num_labels > 0, hits / np.maximum(num_labels, 1), 0.0)


# --------------------------------------------------------------------------
# Public one-shot metrics
# --------------------------------------------------------------------------


def global_average_precision(predictions, labels, top_k=20) -> float:
    """Global average precision (GAP), as ``eval_util.calculate_gap``.

    For every video only its ``top_k`` highest-scoring classes are kept
    (``eval_util.top_k_by_class``; ties towards the lower class index). All
    kept (score, label) pairs of all videos are pooled into one list ranked by
    descending score, and::

        GAP = sum_i precision@i * label_i / P

    where ``P`` is the total number of positive labels over all videos and all
    classes -- *including* positives that fell outside a video's top-k (the
    starter code passes ``num_positives = sum(labels)`` to
    ``AveragePrecisionCalculator.accumulate``; its calculator has ``top_n=None``
    so ``P`` is not capped). Hence GAP < 1 whenever a positive misses the top-k.
    ``P == 0`` gives 0, as in ``AveragePrecisionCalculator.ap_at_n``. Tied
    pooled scores: expected AP over random orders (see module docstring).
    """
    top_k = positive_integer(top_k, "top_k")
    predictions, labels = _validate(predictions, labels)
    _require_videos(predictions)
    scores, hits, _ = _top_k(predictions, labels, top_k)
    return _gap_from_top_k(scores, hits, int(labels.sum()))


def hit_at_one(predictions, labels) -> float:
    """Hit@1, as ``eval_util.calculate_hit_at_one``.

    Fraction of videos whose highest-scoring class (``numpy.argmax``: ties go to
    the lower class index) is a positive label. Videos without positives count
    as misses.
    """
    predictions, labels = _validate(predictions, labels)
    _require_videos(predictions)
    return float(np.mean(_hit_at_one_rows(predictions, labels)))


def precision_at_equal_recall_rate(predictions, labels) -> float:
    """PERR, as ``eval_util.calculate_precision_at_equal_recall_rate``.

    For a video with ``r`` positive labels, take its ``r`` highest-scoring
    classes (ties towards the lower class index) and compute the fraction of
    them that are positive *and have a score > 0* (the starter code only counts
    a hit when ``predictions[label_index] > 0``, which matters for logits).
    PERR is the mean over all videos; a video with no positives contributes 0
    but still counts in the denominator.
    """
    predictions, labels = _validate(predictions, labels)
    _require_videos(predictions)
    return float(np.mean(_perr_rows(predictions, labels)))


def mean_average_precision(predictions, labels, top_k=20) -> float:
    """Mean per-class AP, as ``EvaluationMetrics`` (``eval_util``) computes ``aps``.

    The same per-video top-``top_k`` entries as GAP are split by class
    (``top_k_by_class``); class ``c`` is ranked by descending score and::

        AP_c = sum_i precision@i * label_i / P_c

    with ``P_c`` the number of videos having label ``c`` (again including those
    where ``c`` is not in the video's top-k; ``top_n=None``, so not capped).
    Classes without any positive label are *excluded* from the mean, as
    ``MeanAveragePrecisionCalculator(filter_empty_classes=True)`` does; the
    result is ``numpy.mean`` of the remaining APs (as the starter's
    ``utils.py``), and ``nan`` if no class has a positive.
    """
    top_k = positive_integer(top_k, "top_k")
    predictions, labels = _validate(predictions, labels)
    _require_videos(predictions)
    scores, hits, classes = _top_k(predictions, labels, top_k)
    return _map_from_top_k(scores, hits, classes, labels.sum(axis=0))


def video_metrics(predictions, labels, top_k=20) -> dict:
    """All four metrics (floats) under :data:`REPORT_KEYS`: ``"GAP"``
    (:func:`global_average_precision`), ``"Hit@1"`` (:func:`hit_at_one`), ``"PERR"``
    (:func:`precision_at_equal_recall_rate`) and ``"mAP"`` (:func:`mean_average_precision`)."""
    top_k = positive_integer(top_k, "top_k")
    predictions, labels = _validate(predictions, labels)
    _require_videos(predictions)
    accumulator = VideoMetricAccumulator(predictions.shape[1], top_k)
    accumulator.update(predictions, labels)
    return accumulator.result()


# --------------------------------------------------------------------------
# Streaming accumulator
# --------------------------------------------------------------------------


class VideoMetricAccumulator:
    """Streaming GAP / Hit@1 / PERR / mAP over batches of videos.

    Stores only the top-``top_k`` (score, label, class) triplets of each video
    (O(videos x k) memory), the per-class positive counts (O(classes)) and
    running sums of per-video Hit@1 and PERR -- like the starter code's
    ``EvaluationMetrics.accumulate``. ``result()`` equals
    :func:`video_metrics` on the concatenated batches.
    """

    def __init__(self, num_classes, top_k=20):
        self.num_classes = positive_integer(num_classes, "num_classes")
        self.top_k = positive_integer(top_k, "top_k")
        self.reset()

    def reset(self):
        self._scores = []
        self._hits = []
        self._classes = []
        self._class_positives = np.zeros(self.num_classes, dtype=np.int64)
        self._sum_hit_at_one = 0.0
        self._sum_perr = 0.0
        self._num_videos = 0

    @property
    def num_videos(self):
        return self._num_videos

    def update(self, predictions, labels):
        """Adds a batch ``[batch, num_classes]`` of predictions and labels."""
        predictions, labels = _validate(predictions, labels, self.num_classes)
        if predictions.shape[0] == 0:
            return
        scores, hits, classes = _top_k(predictions, labels, self.top_k)
        self._scores.append(scores.ravel())
        self._hits.append(hits.ravel())
        self._classes.append(classes.ravel())
        self._class_positives += labels.sum(axis=0)
        self._sum_hit_at_one += float(np.sum(_hit_at_one_rows(predictions, labels)))
        self._sum_perr += float(np.sum(_perr_rows(predictions, labels)))
        self._num_videos += predictions.shape[0]

    def result(self) -> dict:
        """:func:`video_metrics` of the videos so far (:data:`REPORT_KEYS`); ValueError if none."""
        if self._num_videos == 0:
            raise ValueError("no videos accumulated")
        scores = np.concatenate(self._scores)
        hits = np.concatenate(self._hits)
        classes = np.concatenate(self._classes)
        return {
            "GAP": _gap_from_top_k(scores, hits, int(self._class_positives.sum())),
            "Hit@1": self._sum_hit_at_one / self._num_videos,
            "PERR": self._sum_perr / self._num_videos,
            "mAP": _map_from_top_k(scores, hits, classes, self._class_positives),
        }

