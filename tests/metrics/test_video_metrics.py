"""Tests of cma_tf.metrics.video (YouTube-8M GAP, Hit@1, PERR, mAP).

References: numbers worked out by hand, plain-Python loop re-derivations and,
when the environment variable YT8M_STARTER_DIR names a copy of the
google/youtube-8m starter code, the starter code itself (run in a subprocess
under ``tf.compat.v1`` so this test session stays eager).
"""

import itertools
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cma_tf.metrics import video

TOL = 1e-12
KEYS = video.REPORT_KEYS


# --------------------------------------------------------------------------
# Plain-Python references
# --------------------------------------------------------------------------


def ranked_classes(row):
    """Class indices by descending score, ties towards the lower index."""
    return sorted(range(len(row)), key=lambda c: (-row[c], c))


def plain_ap(items, num_positives):
    """AP of (score, label) items already in rank order."""
    if num_positives == 0:
        return 0.0
    hits, total = 0, 0.0
    for rank, (_, label) in enumerate(items, start=1):
        if label:
            hits += 1
            total += hits / rank
    return total / num_positives


def sorted_ap(items, num_positives):
    """AP of (score, label) items ranked by descending score (no ties expected)."""
    return plain_ap(sorted(items, key=lambda item: -item[0]), num_positives)


def expected_ap(items, num_positives):
    """AP averaged over every order of equal-score items (brute force)."""
    items = sorted(items, key=lambda item: -item[0])
    groups = [list(g) for _, g in itertools.groupby(items, key=lambda item: item[0])]
    values = [
        plain_ap([item for group in orders for item in group], num_positives)
        for orders in itertools.product(*[itertools.permutations(g) for g in groups])
    ]
    return sum(values) / len(values)


def reference_metrics(preds, labels, top_k, ap=expected_ap):
    num_videos, num_classes = preds.shape
    pooled, per_class = [], [[] for _ in range(num_classes)]
    hit_sum = perr_sum = 0.0
    for v in range(num_videos):
        order = ranked_classes(preds[v])
        for c in order[:top_k]:
            pooled.append((preds[v][c], labels[v][c]))
            per_class[c].append((preds[v][c], labels[v][c]))
        hit_sum += labels[v][order[0]]
        r = int(sum(labels[v]))
        if r > 0:
            perr_sum += sum(1 for c in order[:r] if labels[v][c] and preds[v][c] > 0) / r
    total_pos = int(labels.sum())
    aps = []
    for c in range(num_classes):
        pos_c = int(sum(labels[v][c] for v in range(num_videos)))
        if pos_c > 0:
            aps.append(ap(per_class[c], pos_c))
    return {
        "GAP": ap(pooled, total_pos),
        "Hit@1": hit_sum / num_videos,
        "PERR": perr_sum / num_videos,
        "mAP": sum(aps) / len(aps) if aps else float("nan"),
    }


def random_problem(seed, num_videos=40, num_classes=12, ties=False, signed=False):
    rng = np.random.default_rng(seed)
    if ties:
        preds = rng.choice([0.2, 0.5, 0.8], size=(num_videos, num_classes))
    elif signed:
        preds = rng.normal(size=(num_videos, num_classes))
    else:
        preds = rng.random((num_videos, num_classes))
    labels = (rng.random((num_videos, num_classes)) < 0.2).astype(np.int64)
    labels[0] = 0  # always one video without positives
    return preds, labels


def assert_metrics_close(actual, expected, tol):
    assert set(actual) == set(KEYS)
    for key in KEYS:
        if np.isnan(expected[key]):
            assert np.isnan(actual[key]), key
        else:
            assert actual[key] == pytest.approx(expected[key], abs=tol), key


# --------------------------------------------------------------------------
# Hand-computed examples
# --------------------------------------------------------------------------


def test_hit_at_one_by_hand():
    preds = [[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.4, 0.4, 0.1]]
    labels = [[1, 0, 0], [0, 0, 1], [0, 1, 0]]
    # hit, miss, tie 0.4/0.4 -> argmax picks class 0 (negative) -> miss
    assert video.hit_at_one(preds, labels) == pytest.approx(1 / 3, abs=TOL)


def test_perr_by_hand_counts_only_positive_scores():
    preds = [[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, -0.1, -0.3], [0.5, 0.2, 0.1, 0.0]]
    labels = [[1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]]
    # v0: r=2, top-2 = {0, 2} -> 1/2
    # v1: r=2, top-2 = {1, 2}; class 2 is positive but scores -0.1 <= 0 -> 1/2
    # v2: no positives -> 0, still counted in the mean
    assert video.precision_at_equal_recall_rate(preds, labels) == pytest.approx(1 / 3, abs=TOL)


def test_gap_and_map_by_hand_with_empty_class():
    preds = [[0.9, 0.6, 0.1, 0.05], [0.3, 0.8, 0.2, 0.75]]
    labels = [[1, 0, 1, 0], [0, 1, 0, 0]]
    # top-2: v0 -> (0.9,c0,+), (0.6,c1,-); v1 -> (0.8,c1,+), (0.75,c3,-)
    # pooled: + + - -, P = 3 (v0/c2 is outside the top-2): (1/1 + 2/2) / 3
    assert video.global_average_precision(preds, labels, top_k=2) == pytest.approx(2 / 3, abs=TOL)
    # c0: AP 1; c1: [0.8+, 0.6-] -> 1; c2: nothing kept, P=1 -> 0; c3: no positives -> skipped
    assert video.mean_average_precision(preds, labels, top_k=2) == pytest.approx(2 / 3, abs=TOL)


def test_gap_and_map_by_hand_precision_below_one():
    preds = [[0.9, 0.1], [0.2, 0.8], [0.7, 0.3]]
    labels = [[1, 0], [1, 0], [1, 1]]
    # top-1 pooled: 0.9+, 0.8-, 0.7+ ; P = 4 -> (1 + 2/3) / 4
    assert video.global_average_precision(preds, labels, top_k=1) == pytest.approx(5 / 12, abs=TOL)
    # c0: [0.9+, 0.7+], P=3 -> 2/3 ; c1: [0.8-], P=1 -> 0
    assert video.mean_average_precision(preds, labels, top_k=1) == pytest.approx(1 / 3, abs=TOL)
    result = video.video_metrics(preds, labels, top_k=1)
    assert result["Hit@1"] == pytest.approx(2 / 3, abs=TOL)
    assert result["PERR"] == pytest.approx((1 + 0 + 1) / 3, abs=TOL)


def test_ties_by_hand():
    # Pooled tie (0.5+, 0.5-), P=1: orders give AP 1 and 1/2 -> expected 3/4.
    assert video.global_average_precision([[0.5, 0.1], [0.5, 0.2]], [[1, 0], [0, 0]], top_k=1) == (
        pytest.approx(0.75, abs=TOL)
    )
    # Selection tie at the top-k boundary goes to the lower class index (a negative).
    assert video.global_average_precision([[0.5, 0.5, 0.5]], [[0, 0, 1]], top_k=1) == 0.0
    # Three tied items, one positive: (1/1 + 1/2 + 1/3) / 3.
    assert video.global_average_precision([[0.5, 0.5, 0.5]], [[0, 0, 1]], top_k=3) == (
        pytest.approx(11 / 18, abs=TOL)
    )


def test_no_positive_labels_anywhere():
    preds = np.array([[0.3, 0.7], [0.6, 0.4]])
    labels = np.zeros((2, 2))
    result = video.video_metrics(preds, labels)
    assert result["GAP"] == 0.0 and result["Hit@1"] == 0.0 and result["PERR"] == 0.0
    assert np.isnan(result["mAP"])


# --------------------------------------------------------------------------
# Random data against plain loops
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("top_k", [1, 5, 20])
def test_random_matches_plain_loops(seed, signed, top_k):
    preds, labels = random_problem(seed, signed=signed)
    expected = reference_metrics(preds, labels, top_k, ap=sorted_ap)
    assert_metrics_close(video.video_metrics(preds, labels, top_k=top_k), expected, TOL)
    assert video.global_average_precision(preds, labels, top_k) == pytest.approx(expected["GAP"], abs=TOL)
    assert video.hit_at_one(preds, labels) == pytest.approx(expected["Hit@1"], abs=TOL)
    assert video.precision_at_equal_recall_rate(preds, labels) == pytest.approx(expected["PERR"], abs=TOL)
    assert video.mean_average_precision(preds, labels, top_k) == pytest.approx(expected["mAP"], abs=TOL)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_ties_match_brute_force_expectation(seed):
    preds, labels = random_problem(seed, num_videos=3, num_classes=4, ties=True)
    labels[1, 0] = 1  # make sure there is something to rank
    expected = reference_metrics(preds, labels, top_k=3, ap=expected_ap)
    assert_metrics_close(video.video_metrics(preds, labels, top_k=3), expected, 1e-12)


# --------------------------------------------------------------------------
# Streaming accumulator
# --------------------------------------------------------------------------


@pytest.mark.parametrize("ties", [False, True])
def test_accumulator_equals_one_shot(ties):
    preds, labels = random_problem(7, num_videos=137, num_classes=25, ties=ties)
    acc = video.VideoMetricAccumulator(25, top_k=6)
    bounds = [0, 1, 31, 31, 80, 137]  # includes an empty batch
    for start, stop in zip(bounds[:-1], bounds[1:]):
        acc.update(preds[start:stop], labels[start:stop])
    assert acc.num_videos == 137
    assert_metrics_close(acc.result(), video.video_metrics(preds, labels, top_k=6), 1e-12)
    acc.reset()
    with pytest.raises(ValueError, match="no videos"):
        acc.result()


def test_report_keys_are_what_the_metrics_return():
    preds, labels = random_problem(4)
    assert tuple(video.video_metrics(preds, labels)) == video.REPORT_KEYS
    acc = video.VideoMetricAccumulator(preds.shape[1])
    acc.update(preds, labels)
    assert tuple(acc.result()) == video.REPORT_KEYS


def test_accumulator_memory_is_top_k():
    acc = video.VideoMetricAccumulator(50, top_k=4)
    preds, labels = random_problem(3, num_videos=10, num_classes=50)
    acc.update(preds, labels)
    assert sum(a.size for a in acc._scores) == 10 * 4


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "preds, labels, match",
    [
        ([0.1, 0.2], [0, 1], "2-D"),
        ([[0.1, 0.2]], [[0, 1, 0]], "shape"),
        ([[0.1, np.nan]], [[0, 1]], "finite"),
        ([[0.1, 0.2]], [[0, 2]], "only 0 and 1"),
        (np.zeros((0, 3)), np.zeros((0, 3)), "at least one video"),
        ([["a", "b"]], [[0, 1]], "numeric"),
    ],
)
def test_validation_errors(preds, labels, match):
    for fn in (video.global_average_precision, video.hit_at_one,
               video.precision_at_equal_recall_rate, video.mean_average_precision,
               video.video_metrics):
        with pytest.raises(ValueError, match=match):
            fn(preds, labels)


def test_bad_top_k_and_num_classes():
    with pytest.raises(ValueError, match="top_k"):
        video.global_average_precision([[0.1, 0.2]], [[0, 1]], top_k=0)
    with pytest.raises(ValueError, match="num_classes"):
        video.VideoMetricAccumulator(0)
    acc = video.VideoMetricAccumulator(3)
    with pytest.raises(ValueError, match="expected 3 classes"):
        acc.update([[0.1, 0.2]], [[0, 1]])


# --------------------------------------------------------------------------
# Agreement with the YouTube-8M starter code (optional)
# --------------------------------------------------------------------------

STARTER_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import tensorflow as tf
    tf.compat.v1.disable_eager_execution()
    sys.modules["tensorflow"] = tf.compat.v1
    sys.path.insert(0, sys.argv[1])
    import eval_util

    out = {}
    for name in sys.argv[2:]:
        preds = np.load(name + "_preds.npy")
        labels = np.load(name + "_labels.npy")
        metrics = eval_util.EvaluationMetrics(preds.shape[1], 20, None)
        for start in range(0, preds.shape[0], 16):
            stop = start + 16
            metrics.accumulate(preds[start:stop], labels[start:stop],
                               np.zeros(len(preds[start:stop])))
        epoch = metrics.get()
        out[name] = {
            "GAP": float(epoch["gap"]),
            "Hit@1": float(epoch["avg_hit_at_one"]),
            "PERR": float(epoch["avg_perr"]),
            "mAP": float(np.mean(epoch["aps"])),
            "calculate_gap": float(eval_util.calculate_gap(preds, labels, 20)),
            "calculate_hit_at_one": float(eval_util.calculate_hit_at_one(preds, labels)),
            "calculate_perr": float(
                eval_util.calculate_precision_at_equal_recall_rate(preds, labels)),
        }
    print("RESULT" + json.dumps(out))
    """
)


def test_agrees_with_youtube8m_starter_code(tmp_path):
    starter_dir = os.environ.get("YT8M_STARTER_DIR")
    if not starter_dir:
        pytest.skip("YT8M_STARTER_DIR is not set (no YouTube-8M starter code copy)")
    if not os.path.isfile(os.path.join(starter_dir, "eval_util.py")):
        pytest.skip(f"YT8M_STARTER_DIR={starter_dir!r} has no eval_util.py")

    problems = {}
    for seed, signed in [(10, False), (11, True), (12, False)]:
        preds, labels = random_problem(seed, num_videos=50, num_classes=30, signed=signed)
        labels[:, -1] = 0  # one class without positives (filtered out of mAP)
        name = str(tmp_path / f"p{seed}")
        np.save(name + "_preds.npy", preds)
        np.save(name + "_labels.npy", labels.astype(np.float64))
        problems[name] = (preds, labels)
    script = tmp_path / "starter_metrics.py"
    script.write_text(STARTER_SCRIPT)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run(
        [sys.executable, str(script), starter_dir, *problems],
        capture_output=True, text=True, timeout=300, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][-1]
    starter = json.loads(line[len("RESULT"):])
    for name, (preds, labels) in problems.items():
        ours = video.video_metrics(preds, labels, top_k=20)
        theirs = starter[name]
        for key in KEYS:
            assert ours[key] == pytest.approx(theirs[key], abs=1e-6), (name, key)
        assert ours["GAP"] == pytest.approx(theirs["calculate_gap"], abs=1e-6)
        assert ours["Hit@1"] == pytest.approx(theirs["calculate_hit_at_one"], abs=1e-6)
        assert ours["PERR"] == pytest.approx(theirs["calculate_perr"], abs=1e-6)
        assert 0.0 < ours["GAP"] < 1.0 and 0.0 < ours["mAP"] < 1.0
