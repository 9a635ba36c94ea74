"""Tests for the label sets with COCO's statistics (cma_tf.datasets.coco_label_sets): the package copy of
the statistics, the scene mixture's closed form and gradients, and the sampled sets against the
real counts of tests/fixtures (read with tests/helpers.label_stats, not the package's reader)."""

import itertools
import os

import numpy as np
import pytest

from cma_tf.datasets import coco_label_sets
from tests.helpers import FIXTURES_DIR, LABEL_STATS_FILES, label_stats

NUM_SETS = 5000
# The n the frequencies are taken over (train2014 images with an annotation; module docstring).
COCO_IMAGES = 82081
# Labels seen on at least this many of the sampled sets have a P(i | j) worth comparing.
MIN_SAMPLED_COUNT = 100


@pytest.fixture(scope="module")
def coco():
    return label_stats("coco")


@pytest.fixture(scope="module")
def mixture():
    return coco_label_sets.fit_scene_mixture(coco_label_sets.load_label_statistics())


def reference_frequencies_and_conditional(cooccurrence, class_counts, num_images):
    """p_i = count_i / n and P(i | j) = co_ij / count_j (zero diagonal), written out again."""
    class_counts = np.asarray(class_counts, np.float64)
    conditional = np.zeros(np.shape(cooccurrence))
    for j in range(len(class_counts)):
        if class_counts[j] > 0:
            conditional[:, j] = np.asarray(cooccurrence)[:, j] / class_counts[j]
        conditional[j, j] = 0.0
    return class_counts / num_images, conditional


def test_the_package_copy_is_the_fixture(coco):
    with open(os.path.join(FIXTURES_DIR, LABEL_STATS_FILES["coco"]), "rb") as f:
        fixture = f.read()
    with open(coco_label_sets.STATS_PATH, "rb") as f:
        assert f.read() == fixture
    stats = coco_label_sets.load_label_statistics()
    assert stats.labels == tuple(coco.labels) and len(stats.labels) == 80
    np.testing.assert_array_equal(stats.class_counts, coco.class_counts)
    np.testing.assert_array_equal(stats.cooccurrence, coco.cooccurrence)
    assert stats.num_images == COCO_IMAGES
    frequencies, conditional = reference_frequencies_and_conditional(coco.cooccurrence, coco.class_counts, COCO_IMAGES)
    np.testing.assert_allclose(stats.frequencies, frequencies)
    np.testing.assert_allclose(stats.conditional, conditional)
    # The docstring's figures.
    assert coco.class_counts.sum() / COCO_IMAGES == pytest.approx(2.94, abs=0.005)
    assert conditional[coco.labels.index("dining table"), coco.labels.index("fork")] == pytest.approx(0.767, abs=5e-4)


def _exact_set_distribution(mixture):
    """Every non-empty label set of a small mixture with its probability, by enumeration."""
    pi, theta = mixture.scene_probabilities, mixture.label_probabilities
    sets, probabilities = [], []
    for bits in itertools.product([0, 1], repeat=theta.shape[1]):
        y = np.asarray(bits, bool)
        if y.any():
            sets.append(y)
            probabilities.append(float(np.sum(pi * np.prod(np.where(y, theta, 1 - theta), axis=1))))
    probabilities = np.asarray(probabilities)
    return np.asarray(sets), probabilities / probabilities.sum()


def _small_mixture(seed=3, scenes=3, labels=5):
    rng = np.random.default_rng(seed)
    pi = rng.dirichlet(np.ones(scenes))
    return coco_label_sets.SceneMixture(pi, rng.uniform(0.05, 0.6, (scenes, labels)))


def test_closed_form_statistics_equal_enumeration():
    mixture = _small_mixture()
    sets, probabilities = _exact_set_distribution(mixture)
    frequencies = probabilities @ sets
    joint = np.einsum("b,bi,bj->ij", probabilities, sets, sets)
    conditional = joint / np.diag(joint)[None, :]
    np.fill_diagonal(conditional, 0.0)
    np.testing.assert_allclose(mixture.frequencies, frequencies, rtol=1e-12)
    np.testing.assert_allclose(mixture.conditional, conditional, rtol=1e-12)
    empty = float(np.sum(mixture.scene_probabilities * np.prod(1 - mixture.label_probabilities, axis=1)))
    assert mixture.empty_probability == pytest.approx(empty)


def test_sampling_follows_the_mixture_and_never_gives_an_empty_set():
    mixture = _small_mixture()
    sets, probabilities = _exact_set_distribution(mixture)
    drawn = coco_label_sets.sample_label_sets(np.random.default_rng(0), mixture, 40000)
    assert drawn.shape == (40000, 5) and drawn.dtype == bool and drawn.any(axis=1).all()
    codes = drawn @ (1 << np.arange(5))
    expected = dict(zip((sets @ (1 << np.arange(5))).tolist(), probabilities))
    observed = np.bincount(codes, minlength=32) / len(codes)
    for code in range(1, 32):
        assert observed[code] == pytest.approx(expected[code], abs=0.01), code


def test_gradients_equal_finite_differences():
    rng = np.random.default_rng(0)
    stats = coco_label_sets.LabelStatistics(
        tuple("abcdef"), np.array([50, 40, 30, 20, 10, 5]),
        np.array([[0, 20, 10, 5, 2, 1], [20, 0, 8, 4, 1, 0], [10, 8, 0, 6, 3, 1],
                  [5, 4, 6, 0, 2, 1], [2, 1, 3, 2, 0, 2], [1, 0, 1, 1, 2, 0]]), 100)
    args = (stats.frequencies, stats.conditional, 1.0 - np.eye(6))
    scene_logits, label_logits = rng.normal(size=3), rng.normal(size=(3, 6))
    _, d_scene, d_label = coco_label_sets._loss_and_gradients(scene_logits, label_logits, *args)
    step = 1e-6
    for index in np.ndindex(label_logits.shape):
        plus, minus = label_logits.copy(), label_logits.copy()
        plus[index] += step
        minus[index] -= step
        numeric = (coco_label_sets._loss_and_gradients(scene_logits, plus, *args)[0]
                   - coco_label_sets._loss_and_gradients(scene_logits, minus, *args)[0]) / (2 * step)
        assert d_label[index] == pytest.approx(numeric, rel=1e-5, abs=1e-7)
    for z in range(3):
        plus, minus = scene_logits.copy(), scene_logits.copy()
        plus[z] += step
        minus[z] -= step
        numeric = (coco_label_sets._loss_and_gradients(plus, label_logits, *args)[0]
                   - coco_label_sets._loss_and_gradients(minus, label_logits, *args)[0]) / (2 * step)
        assert d_scene[z] == pytest.approx(numeric, rel=1e-5, abs=1e-7)


def test_the_fit_reproduces_coco_in_closed_form(coco, mixture):
    frequencies, conditional = reference_frequencies_and_conditional(coco.cooccurrence, coco.class_counts, COCO_IMAGES)
    off = ~np.eye(80, dtype=bool)
    assert np.abs(mixture.frequencies - frequencies).mean() < 0.001
    assert np.corrcoef(mixture.conditional[off], conditional[off])[0, 1] > 0.995
    assert np.abs(mixture.conditional[off] - conditional[off]).mean() < 0.006


def test_sampled_sets_reproduce_coco_frequencies_and_cooccurrence(coco, mixture):
    """5,000 sets (measured over seeds 0-5 with 4,000: frequency r >= 0.999, MAE 0.002; P(i | j)
    for labels on >= 100 sets r 0.988, MAE 0.009); the tolerances leave room for the noise."""
    sets = coco_label_sets.sample_label_sets(np.random.default_rng(0), mixture, NUM_SETS)
    indicators = sets.astype(np.int64)
    counts = indicators.sum(axis=0)
    cooccurrence = indicators.T @ indicators
    np.fill_diagonal(cooccurrence, 0)
    sampled_frequencies, sampled_conditional = reference_frequencies_and_conditional(cooccurrence, counts, NUM_SETS)
    frequencies, conditional = reference_frequencies_and_conditional(coco.cooccurrence, coco.class_counts, COCO_IMAGES)

    assert np.corrcoef(sampled_frequencies, frequencies)[0, 1] > 0.998
    assert np.abs(sampled_frequencies - frequencies).mean() < 0.004
    assert sampled_frequencies[coco.labels.index("person")] == pytest.approx(45174 / COCO_IMAGES, abs=0.02)
    assert indicators.sum(axis=1).mean() == pytest.approx(coco.class_counts.sum() / COCO_IMAGES, abs=0.08)

    compared = ~np.eye(80, dtype=bool) & (counts >= MIN_SAMPLED_COUNT)[None, :]
    assert compared.any(axis=0).sum() >= 35
    assert np.corrcoef(sampled_conditional[compared], conditional[compared])[0, 1] > 0.97
    assert np.abs(sampled_conditional[compared] - conditional[compared]).mean() < 0.015
    fork, table = coco.labels.index("fork"), coco.labels.index("dining table")
    assert sampled_conditional[table, fork] == pytest.approx(0.767, abs=0.1)


def test_sampling_is_deterministic(mixture):
    first = coco_label_sets.sample_label_sets(np.random.default_rng(7), mixture, 50)
    second = coco_label_sets.sample_label_sets(np.random.default_rng(7), mixture, 50)
    np.testing.assert_array_equal(first, second)
    again = coco_label_sets.fit_scene_mixture(coco_label_sets.load_label_statistics(), steps=50)
    np.testing.assert_array_equal(
        again.label_probabilities,
        coco_label_sets.fit_scene_mixture(coco_label_sets.load_label_statistics(), steps=50).label_probabilities)


def _cosine(conditional, a, b):
    keep = [k for k in range(conditional.shape[0]) if k not in (a, b)]
    u, v = conditional[keep, a], conditional[keep, b]
    return u @ v / np.sqrt((u @ u) * (v @ v))


def test_ambiguous_pairs_follow_the_documented_rule(coco):
    """Re-derived here: eligible labels (>= 2,000 images, <= 25 %), then greedy lowest cosine."""
    _, conditional = reference_frequencies_and_conditional(coco.cooccurrence, coco.class_counts, COCO_IMAGES)
    eligible = [i for i, c in enumerate(coco.class_counts) if 2000 <= c <= 0.25 * COCO_IMAGES]
    assert coco.labels.index("person") not in eligible
    ranked = sorted((_cosine(conditional, a, b), a, b) for a in eligible for b in eligible if a < b)
    expected, used = [], set()
    for _, a, b in ranked:
        if not used & {a, b} and len(expected) < 8:
            expected.append([coco.labels[a], coco.labels[b]])
            used |= {a, b}
    stats = coco_label_sets.load_label_statistics()
    assert coco_label_sets.ambiguous_pair_names(stats) == expected
    assert expected == [["toilet", "traffic light"], ["sink", "truck"], ["bus", "vase"], ["airplane", "oven"],
                        ["fork", "motorcycle"], ["spoon", "sports ball"], ["bowl", "skis"], ["car", "knife"]]
    for a, b in expected:
        assert f"{a} / {b}" in coco_label_sets.__doc__
        # They rarely share an image: the context, not the pair itself, tells them apart.
        i, j = coco.labels.index(a), coco.labels.index(b)
        assert conditional[i, j] < 0.02 and conditional[j, i] < 0.02
