"""Tests of cma_tf.metrics.image against independent references.

References are scikit-learn (AP, macro/micro precision and recall), plain
numpy / plain-Python re-derivations, and numbers worked out by hand.
"""

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score

from cma_tf.metrics import image

SEEDS = (0, 1, 2, 3)
TOLERANCE = 1e-12
POSITIVE_RATE = 0.3
TIE_LEVELS = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
PR_KEYS = ("CP", "CR", "CF1", "OP", "OR", "OF1")


# --------------------------------------------------------------------------
# Data helpers
# --------------------------------------------------------------------------


def random_problem(seed, tie_mode=None):
    """Random (scores, targets) with n in [50, 300], N in [7, 20].

    tie_mode: None (continuous scores), "round" (rounded to one decimal) or
    "levels" (drawn from a handful of values). Every class gets at least one
    positive and one negative so sklearn's AP is well defined.
    """
    rng = np.random.default_rng(seed)
    num_examples = int(rng.integers(50, 301))
    num_classes = int(rng.integers(7, 21))
    scores = rng.random((num_examples, num_classes))
    if tie_mode == "round":
        scores = np.round(scores, 1)
    elif tie_mode == "levels":
        scores = rng.choice(TIE_LEVELS, size=scores.shape)
    targets = (rng.random(scores.shape) < POSITIVE_RATE).astype(int)
    targets[0], targets[1] = 1, 0
    return scores, targets


def sklearn_ap_per_class(scores, targets):
    """Per-class AP from sklearn, one column at a time."""
    return np.array(
        [average_precision_score(targets[:, c], scores[:, c]) for c in range(targets.shape[1])]
    )


def sklearn_pr(predicted, targets):
    """Macro and micro precision/recall/F1 from sklearn (zero_division=0)."""
    kwargs = {"zero_division": 0}
    return {
        "CP": precision_score(targets, predicted, average="macro", **kwargs),
        "CR": recall_score(targets, predicted, average="macro", **kwargs),
        "OP": precision_score(targets, predicted, average="micro", **kwargs),
        "OR": recall_score(targets, predicted, average="micro", **kwargs),
        "OF1": f1_score(targets, predicted, average="micro", **kwargs),
    }


def numpy_harmonic_mean(a, b):
    """2ab/(a+b), 0 when both are 0."""
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def loop_top_k(scores, k, threshold):
    """Plain-Python top-k: stable order on (-score, class index), then threshold."""
    predicted = np.zeros(scores.shape, dtype=int)
    for row, row_scores in enumerate(scores.tolist()):
        ranked = sorted(range(len(row_scores)), key=lambda c: (-row_scores[c], c))
        for c in ranked[:k]:
            if threshold is None or row_scores[c] >= threshold:
                predicted[row, c] = 1
    return predicted


# --------------------------------------------------------------------------
# Average precision
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tie_mode", [None, "round", "levels"])
@pytest.mark.parametrize("seed", SEEDS)
def test_per_class_ap_and_map_match_sklearn(seed, tie_mode):
    scores, targets = random_problem(seed, tie_mode)
    expected = sklearn_ap_per_class(scores, targets)
    np.testing.assert_allclose(
        image.per_class_average_precision(scores, targets), expected, atol=TOLERANCE
    )
    assert image.mean_average_precision(scores, targets) == pytest.approx(
        expected.mean(), abs=TOLERANCE
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_single_class_ap_matches_sklearn(seed):
    scores, targets = random_problem(seed, "round")
    for c in range(targets.shape[1]):
        expected = average_precision_score(targets[:, c], scores[:, c])
        assert image.average_precision(scores[:, c], targets[:, c]) == pytest.approx(
            expected, abs=TOLERANCE
        )


def test_ap_hand_example_with_ties():
    # Thresholds 0.8, 0.5, 0.1: (R, P) = (1/3, 1/2), (2/3, 1/2), (1, 3/5).
    scores = [0.8, 0.8, 0.5, 0.5, 0.1]
    targets = [1, 0, 0, 1, 1]
    expected = (1 / 3) * (1 / 2) + (1 / 3) * (1 / 2) + (1 / 3) * (3 / 5)
    assert image.average_precision(scores, targets) == pytest.approx(expected, abs=TOLERANCE)


def test_class_without_positives_is_nan_and_excluded_from_map():
    scores, targets = random_problem(seed=5, tie_mode="round")
    empty_class = 2
    targets[:, empty_class] = 0
    per_class = image.per_class_average_precision(scores, targets)
    assert np.isnan(per_class[empty_class])
    assert np.isnan(image.average_precision(scores[:, empty_class], targets[:, empty_class]))

    other = [c for c in range(targets.shape[1]) if c != empty_class]
    expected = sklearn_ap_per_class(scores[:, other], targets[:, other])
    np.testing.assert_allclose(per_class[other], expected, atol=TOLERANCE)
    assert image.mean_average_precision(scores, targets) == pytest.approx(
        expected.mean(), abs=TOLERANCE
    )
    metrics = image.multilabel_metrics(scores, targets)
    assert metrics["num_classes_with_positives"] == len(other)


def test_class_with_all_positives_has_ap_one():
    scores, targets = random_problem(seed=6, tie_mode="levels")
    full_class = 0
    targets[:, full_class] = 1
    expected = sklearn_ap_per_class(scores, targets)
    assert expected[full_class] == pytest.approx(1.0)
    np.testing.assert_allclose(
        image.per_class_average_precision(scores, targets), expected, atol=TOLERANCE
    )


def test_map_is_nan_without_any_positive():
    scores = np.full((4, 3), 0.5)
    assert np.isnan(image.mean_average_precision(scores, np.zeros((4, 3))))


def test_blocked_ap_computation_matches_sklearn(monkeypatch):
    """Forces many small column blocks (and row blocks for top-k)."""
    tiny_block = 7
    monkeypatch.setattr(image, "_SORT_BLOCK_ELEMENTS", tiny_block)
    scores, targets = random_problem(seed=7, tie_mode="round")
    np.testing.assert_allclose(
        image.per_class_average_precision(scores, targets),
        sklearn_ap_per_class(scores, targets),
        atol=TOLERANCE,
    )
    top_k = 3
    np.testing.assert_array_equal(
        image.top_k_predictions(scores, k=top_k), loop_top_k(scores, top_k, 0.5)
    )


# --------------------------------------------------------------------------
# Precision / recall / F1
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_precision_recall_f1_match_sklearn(seed):
    scores, targets = random_problem(seed, "round")
    targets[:, 0] = 0  # a class with no positives: recall 0/0 -> 0
    scores[:, 1] = 0.0  # a class never predicted: precision 0/0 -> 0
    predicted = (scores >= 0.5).astype(int)
    result = image.precision_recall_f1(predicted, targets)
    expected = sklearn_pr(predicted, targets)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value, abs=TOLERANCE), key
    assert result["CF1"] == pytest.approx(
        numpy_harmonic_mean(expected["CP"], expected["CR"]), abs=TOLERANCE
    )


def test_hand_example_three_images_three_classes():
    scores = np.array([[0.9, 0.6, 0.2], [0.4, 0.8, 0.7], [0.7, 0.3, 0.55]])
    targets = np.array([[1, 0, 1], [0, 1, 1], [1, 0, 0]])
    # Predicted at 0.5: [[1,1,0],[0,1,1],[1,0,1]].
    # Per class (TP, predicted, positives): (2,2,2), (1,2,1), (1,2,2).
    # AP: class 0 = 1, class 1 = 1, class 2 = (1 + 2/3) / 2 = 5/6.
    expected = {
        "mAP": 17 / 18,
        "CP": 2 / 3,
        "CR": 5 / 6,
        "CF1": 20 / 27,  # not the mean of per-class F1 (13/18)
        "OP": 4 / 6,
        "OR": 4 / 5,
        "OF1": 8 / 11,
    }
    metrics = image.multilabel_metrics(scores, targets)
    for key, value in expected.items():
        assert metrics[key] == pytest.approx(value, abs=TOLERANCE), key
    # With 3 classes, top-3 keeps every class above the threshold.
    for key in PR_KEYS:
        assert metrics[f"{key}_top3"] == pytest.approx(expected[key], abs=TOLERANCE), key
    assert metrics["num_examples"] == 3
    assert metrics["num_classes_with_positives"] == 3


def test_f1_is_zero_when_precision_and_recall_are_zero():
    predicted = np.array([[1, 0], [0, 0]])
    targets = np.array([[0, 1], [0, 1]])
    result = image.precision_recall_f1(predicted, targets)
    assert result == {key: 0.0 for key in PR_KEYS}


# --------------------------------------------------------------------------
# Hard predictions
# --------------------------------------------------------------------------


def test_threshold_is_inclusive():
    scores = np.array([[0.5, 0.49, 0.51]])
    # Predicted at 0.5: classes 0 and 2 (0.5 >= 0.5); with an exclusive threshold OR would be 1/3.
    metrics = image.multilabel_metrics(scores, np.ones((1, 3)))
    assert metrics["OP"] == 1.0
    assert metrics["OR"] == pytest.approx(2 / 3, abs=TOLERANCE)


def test_top3_hand_example_with_ties_and_threshold():
    scores = np.array(
        [
            [0.9, 0.6, 0.6, 0.6],  # tie at 0.6: lower class indices 1, 2 win
            [0.2, 0.7, 0.4, 0.5],  # 0.5 kept (>=), 0.4 dropped by the threshold
            [0.1, 0.2, 0.3, 0.4],  # top 3 all below threshold
            [0.8, 0.9, 0.95, 0.7],  # 0.7 passes the threshold but is 4th
        ]
    )
    expected = np.array([[1, 1, 1, 0], [0, 1, 0, 1], [0, 0, 0, 0], [1, 1, 1, 0]], dtype=bool)
    np.testing.assert_array_equal(image.top_k_predictions(scores, k=3), expected)

    expected_no_threshold = expected.copy()
    expected_no_threshold[1] = [0, 1, 1, 1]
    expected_no_threshold[2] = [0, 1, 1, 1]
    np.testing.assert_array_equal(
        image.top_k_predictions(scores, k=3, threshold=None), expected_no_threshold
    )


def test_top_k_larger_than_num_classes_selects_all():
    scores = np.array([[0.1, 0.6], [0.9, 0.5]])
    np.testing.assert_array_equal(
        image.top_k_predictions(scores, k=5, threshold=None), np.ones((2, 2), dtype=bool)
    )


@pytest.mark.parametrize("threshold", [0.5, 0.25, None])
@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_matches_python_loop(seed, threshold):
    scores, _ = random_problem(seed, "round")
    for k in (1, 3, 5):
        np.testing.assert_array_equal(
            image.top_k_predictions(scores, k=k, threshold=threshold),
            loop_top_k(scores, k, threshold),
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_multilabel_metrics_match_references(seed):
    scores, targets = random_problem(seed, "levels")
    threshold, top_k = 0.5, 3
    metrics = image.multilabel_metrics(scores, targets, threshold=threshold, k=top_k)

    assert metrics["mAP"] == pytest.approx(
        sklearn_ap_per_class(scores, targets).mean(), abs=TOLERANCE
    )
    references = {
        "": sklearn_pr((scores >= threshold).astype(int), targets),
        f"_top{top_k}": sklearn_pr(loop_top_k(scores, top_k, threshold), targets),
    }
    for suffix, expected in references.items():
        for key, value in expected.items():
            assert metrics[key + suffix] == pytest.approx(value, abs=TOLERANCE), key + suffix
        assert metrics["CF1" + suffix] == pytest.approx(
            numpy_harmonic_mean(expected["CP"], expected["CR"]), abs=TOLERANCE
        )
    for key, value in metrics.items():
        if key.startswith("num_"):
            assert isinstance(value, int)
        else:
            assert isinstance(value, float) and 0.0 <= value <= 1.0, key
    assert metrics["num_examples"] == scores.shape[0]


def test_top_k_suffix_follows_k():
    scores, targets = random_problem(seed=8)
    metrics = image.multilabel_metrics(scores, targets, k=5)
    assert {f"{key}_top5" for key in PR_KEYS} <= set(metrics)
    assert not any(key.endswith("_top3") for key in metrics)


# --------------------------------------------------------------------------
# Key constants
# --------------------------------------------------------------------------


def test_key_constants_name_what_multilabel_metrics_returns():
    scores, targets = random_problem(seed=9, tie_mode="round")
    metrics = image.multilabel_metrics(scores, targets)
    for keys in (image.REPORT_KEYS, image.FULL_KEYS, image.SUMMARY_KEYS):
        assert set(keys) <= set(metrics), keys
    assert set(image.SUMMARY_KEYS) <= set(image.REPORT_KEYS) <= set(image.FULL_KEYS)
    assert tuple(metrics)[: len(image.FULL_KEYS)] == image.FULL_KEYS
    assert set(metrics) - set(image.FULL_KEYS) == {"num_examples", "num_classes_with_positives"}
    assert image.REPORT_KEYS == ("mAP",) + PR_KEYS


def test_float32_scores_match_sklearn():
    scores, targets = random_problem(seed=9, tie_mode="round")
    scores = scores.astype(np.float32)
    assert image.multilabel_metrics(scores, targets)["mAP"] == pytest.approx(
        sklearn_ap_per_class(scores, targets).mean(), abs=TOLERANCE
    )


# --------------------------------------------------------------------------
# Input validation
# --------------------------------------------------------------------------

GOOD_SCORES = np.array([[0.1, 0.9], [0.8, 0.2]])
GOOD_TARGETS = np.array([[0, 1], [1, 0]])


@pytest.mark.parametrize(
    "scores, targets, message",
    [
        (GOOD_SCORES, GOOD_TARGETS[:1], "same shape"),
        (GOOD_SCORES[0], GOOD_TARGETS[0], "`scores` must be 2-D"),
        (GOOD_SCORES, GOOD_TARGETS[None], "`targets` must be 2-D"),
        (np.array([[0.1, np.nan], [0.8, 0.2]]), GOOD_TARGETS, "`scores` must be finite"),
        (np.array([[0.1, np.inf], [0.8, 0.2]]), GOOD_TARGETS, "`scores` must be finite"),
        (GOOD_SCORES, np.array([[0, 1], [-1, 0]]), r"`targets` must contain only 0 and 1.*-1"),
        (GOOD_SCORES, np.array([[0, 0.5], [1, 0]]), "`targets` must contain only 0 and 1"),
        (np.array([["a", "b"], ["c", "d"]]), GOOD_TARGETS, "`scores` must be numeric"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "no examples"),
    ],
)
def test_multilabel_metrics_rejects_bad_inputs(scores, targets, message):
    with pytest.raises(ValueError, match=message):
        image.multilabel_metrics(scores, targets)


@pytest.mark.parametrize(
    "kwargs, message",
    [({"k": 0}, "`k` must be a positive integer"), ({"threshold": np.nan}, "`threshold`")],
)
def test_multilabel_metrics_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        image.multilabel_metrics(GOOD_SCORES, GOOD_TARGETS, **kwargs)


def test_other_functions_validate_inputs():
    with pytest.raises(ValueError, match="`scores` must be 1-D"):
        image.average_precision(GOOD_SCORES, GOOD_TARGETS)
    with pytest.raises(ValueError, match="same shape"):
        image.average_precision([0.1, 0.2], [1])
    with pytest.raises(ValueError, match="`predicted` must contain only 0 and 1"):
        image.precision_recall_f1(GOOD_SCORES, GOOD_TARGETS)
    with pytest.raises(ValueError, match="`scores` must be finite"):
        image.top_k_predictions(np.array([[np.nan, 0.2]]))
    with pytest.raises(ValueError, match="`k` must be a positive integer"):
        image.top_k_predictions(GOOD_SCORES, k=1.5)


def test_valid_inputs_raise_no_warnings():
    scores = np.zeros((3, 2))
    targets = np.zeros((3, 2))  # no positives anywhere: nan mAP, zero P/R
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        metrics = image.multilabel_metrics(scores, targets)
    assert np.isnan(metrics["mAP"])
    assert metrics["num_classes_with_positives"] == 0
