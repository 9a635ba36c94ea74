"""Label sets with the label statistics of real MS-COCO train2014, and the labels that are made to
look alike: the pure numpy half of the `coco_stats` dataset (`cma_tf/datasets/coco_stats.py` draws).

The statistics
--------------
`coco2014_label_stats.json` (beside this file, installed with the package) is a byte-for-byte
copy of `tests/fixtures/coco2014_train_label_stats.json`: for COCO's 80 labels (sorted by name),
`class_counts[i]` = train2014 images holding label i and `cooccurrence[i][j]` = images holding
both (provenance: `tests/fixtures/README.md`; numbers published with ML-GCN). The number of
images is not in the file. We use n = 82,081 (`COCO_TRAIN2014_IMAGES`): the train2014 images
that carry at least one object annotation (`instances_train2014.json` lists 82,783 images;
ML-GCN's `coco.py`, which made these counts, skips the images without an annotation, and 82,081
is the training-set size that multi-label COCO papers report). So the label frequencies are
`p_i = class_counts_i / n` (person 0.55, chair 0.11, ..., hair drier 0.0016) and an image holds
`sum(class_counts) / n` = 2.94 labels on average; `A_ij = P(i | j) = cooccurrence_ij /
class_counts_j`, as in Eq. 1 (docs/design.md §1).

The label-set model: latent scenes
----------------------------------
An image's label set is drawn from a mixture of `NUM_SCENES` = 40 latent "scenes": scene z is
chosen with probability `pi_z`, then each label i is present independently with probability
`theta_zi`; a draw with no label is redrawn (COCO's counts are over images that have labels).
With `e = sum_z pi_z prod_i (1 - theta_zi)` (the chance of an empty draw), the model's
statistics are closed-form:

    p_i    = sum_z pi_z theta_zi / (1 - e)
    P(i|j) = sum_z pi_z theta_zi theta_zj / sum_z pi_z theta_zj        (i != j)

`fit_scene_mixture` fits `pi` (softmax of logits) and `theta` (sigmoid of logits) to the real
numbers by minimising `sum_{i != j} (P(i|j) - A_ij)^2 + sum_i (log p_i - log p_i^COCO)^2` with
Adam (lr 0.05, 1,000 full-batch steps from a fixed seed, analytic gradients; 1.3 s). The fit
is deterministic, and the same for every dataset seed. The set size is not drawn separately: its
mean and variance follow from the frequencies and the pairs.

Why not grow each set label by label? We tried it first: draw the set size from a negative
binomial with COCO's mean and variance of the number of labels (both follow from the counts),
start from a label drawn by frequency, add labels with probability proportional to an adjusted
frequency times the mean or the product of `P(j | i)` over the labels i already chosen, and fit
the adjusted frequencies so the marginals match. Frequencies then match (Pearson r 0.9999) but
co-occurrence does not: Pearson r 0.86 (mean rule) / 0.89 (product rule) over all 6,320
`P(i|j)`, mean absolute error 0.022 / 0.016, and strong pairs come out far too weak
(P(dining table | fork) 0.29 / 0.41 against COCO's 0.77). The reason is structural: with a size
drawn independently of the labels, every label has the same expected number of partners, while
in COCO a fork comes with 5.2 other labels on average and a train with 1.3.

Measured agreement (`agreement_report()`: the fit as above, then 200,000 sets drawn with
`sample_label_sets(np.random.default_rng(0), mixture, 200_000)`; 2-core machine, fit 1.3 s):

| statistic | closed form: Pearson r / MAE | 200,000 sampled sets: Pearson r / MAE |
|---|---|---|
| frequencies `p_i` (80 labels) | 0.99998 / 0.0003 | 0.99996 / 0.0005 |
| `P(i|j)`, all 6,320 pairs i != j | 0.9977 / 0.0046 | 0.9972 / 0.0050 |
| `P(i|j)`, the 565 pairs with COCO's `A_ij` >= 0.1 | 0.9983 / 0.0076 | 0.9976 / 0.0092 |

For example P(dining table | fork) is 0.77 in COCO and 0.77 in the model, P(keyboard | mouse)
0.68 / 0.68, P(sports ball | tennis racket) 0.53 / 0.54, P(frisbee | dog) 0.11 / 0.12, P(person |
hair drier) 0.45 / 0.44. The largest errors among the strong pairs are P(cup | donut) 0.27 /
0.20 and P(traffic light | train) 0.12 / 0.06; a weak pair can be off by as much (P(zebra |
giraffe) 0.07 / 0.01). The sampled sets hold 2.93 labels on average (COCO: 2.94), with variance 3.7
(COCO: 3.35). A draw is empty with probability 0.43, so a set costs about 1.8 draws.

The ambiguous pairs
-------------------
`choose_ambiguous_pairs` picks `NUM_AMBIGUOUS_PAIRS` = 8 pairs of labels that the images will
draw identically, so that only the other labels of an image tell them apart. The rule, from the
counts alone: a label is eligible if it is on at least `MIN_AMBIGUOUS_COUNT` = 2,000 images
(2.4 % of them, about 24 positives in a 1,000-image validation split, so its AP means
something) and on at most a quarter of them (this leaves out only person, on 55 %, which is the
context of nearly everything). A label's context profile is the vector `P(k | label)` over the
other labels k; how alike two labels' contexts are is the cosine similarity of their profiles over the
78 labels that are neither of them. Pairs are taken greedily, lowest cosine first (ties by label
index), each label in at most one pair. On COCO's counts this gives (cosine):

    toilet / traffic light (0.155)   sink / truck (0.227)     bus / vase (0.262)
    airplane / oven (0.298)          fork / motorcycle (0.351) spoon / sports ball (0.359)
    bowl / skis (0.396)              car / knife (0.410)

e.g. a toilet comes with a sink (0.51), a traffic light with a car (0.62). The rule looks at
the counts only, never at a model's results.

To print these numbers again::

    python -c "import json; from cma_tf.datasets import coco_label_sets as m; print(json.dumps(m.agreement_report()))"
"""

import dataclasses
import json
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np

STATS_FILENAME = "coco2014_label_stats.json"
STATS_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), STATS_FILENAME)
# train2014 images with at least one object annotation (see the module docstring).
COCO_TRAIN2014_IMAGES = 82081

NUM_SCENES = 40
FIT_STEPS = 1000
FIT_LEARNING_RATE = 0.05
FIT_SEED = 0
# The initial label logits of every scene are logit(p_i) plus gaussian noise of this spread, so
# the scenes start apart.
FIT_INITIAL_SPREAD = 1.0
# Weight of the frequency term of the fitting loss (the pair term has weight 1).
FREQUENCY_LOSS_WEIGHT = 1.0
ADAM_BETA_1 = 0.9
ADAM_BETA_2 = 0.999
ADAM_EPSILON = 1e-8

NUM_AMBIGUOUS_PAIRS = 8
MIN_AMBIGUOUS_COUNT = 2000
MAX_AMBIGUOUS_FREQUENCY = 0.25
# `agreement` also compares the "strong" pairs: those with the reference P(i | j) at least this.
STRONG_PAIR_THRESHOLD = 0.1


@dataclasses.dataclass(frozen=True)
class LabelStatistics:
    """Label counts of a multi-label dataset: `class_counts` int64 [N] (images holding each
    label), `cooccurrence` int64 [N, N] (images holding both; zero diagonal), `num_images`."""

    labels: Tuple[str, ...]
    class_counts: np.ndarray
    cooccurrence: np.ndarray
    num_images: int

    @property
    def frequencies(self) -> np.ndarray:
        """`p_i`: the fraction of images holding label i."""
        return self.class_counts / float(self.num_images)

    @property
    def conditional(self) -> np.ndarray:
        """`A_ij = P(i | j)` off the diagonal (Eq. 1), 0 on it and where label j never occurs."""
        return conditional_from_counts(self.cooccurrence, self.class_counts)


def conditional_from_counts(cooccurrence: np.ndarray, class_counts: np.ndarray) -> np.ndarray:
    """`P(i | j) = cooccurrence_ij / class_counts_j`, with a zero diagonal (0 where j is absent)."""
    counts = np.asarray(class_counts, np.float64)
    conditional = np.divide(np.asarray(cooccurrence, np.float64), counts[None, :],
                            out=np.zeros(np.shape(cooccurrence)), where=counts[None, :] > 0)
    np.fill_diagonal(conditional, 0.0)
    return conditional


def load_label_statistics(path: str = STATS_PATH, num_images: int = COCO_TRAIN2014_IMAGES) -> LabelStatistics:
    """Reads a label-statistics JSON file (`labels`, `class_counts`, `cooccurrence`; the format of
    `tests/fixtures/README.md`); by default COCO train2014's, shipped with the package."""
    with open(path) as f:
        data = json.load(f)
    labels = tuple(data["labels"])
    class_counts = np.asarray(data["class_counts"], np.int64)
    cooccurrence = np.asarray(data["cooccurrence"], np.int64)
    n = len(labels)
    if class_counts.shape != (n,) or cooccurrence.shape != (n, n):
        raise ValueError(f"{path}: expected {n} class counts and a {n}x{n} co-occurrence matrix")
    return LabelStatistics(labels, class_counts, cooccurrence, int(num_images))


# ---------------------------------------------------------------------------------------------
# The latent-scene model


@dataclasses.dataclass(frozen=True)
class SceneMixture:
    """A mixture of independent-label scenes: `scene_probabilities` [Z] (`pi`), and
    `label_probabilities` [Z, N] (`theta`), the chance of each label in each scene."""

    scene_probabilities: np.ndarray
    label_probabilities: np.ndarray

    @property
    def empty_probability(self) -> float:
        """`e`: the chance that a draw holds no label (such draws are redrawn)."""
        return float(np.einsum("z,z->", self.scene_probabilities, np.prod(1.0 - self.label_probabilities, axis=1)))

    @property
    def frequencies(self) -> np.ndarray:
        """`p_i` of the label sets the model gives (empty draws excluded)."""
        presence = np.einsum("z,zi->i", self.scene_probabilities, self.label_probabilities)
        return presence / (1.0 - self.empty_probability)

    @property
    def conditional(self) -> np.ndarray:
        """`P(i | j)` of the label sets the model gives (zero diagonal)."""
        pi, theta = self.scene_probabilities, self.label_probabilities
        joint = np.einsum("z,zi,zj->ij", pi, theta, theta)
        conditional = joint / np.einsum("z,zj->j", pi, theta)[None, :]
        np.fill_diagonal(conditional, 0.0)
        return conditional


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _softmax(x):
    e = np.exp(x - np.max(x))
    return e / np.sum(e)


def _loss_and_gradients(scene_logits, label_logits, target_frequencies, target_conditional, off_diagonal):
    """The fitting loss of the module docstring and its gradients (derived by hand; checked
    against finite differences in tests/data/test_coco_label_sets.py). `einsum` without BLAS,
    so the sums are the same on every run."""
    pi, theta = _softmax(scene_logits), _sigmoid(label_logits)
    presence = np.einsum("z,zi->i", pi, theta)  # m_i, before excluding empty draws
    joint = np.einsum("z,zi,zj->ij", pi, theta, theta) * off_diagonal  # M_ij
    scene_empty = np.prod(1.0 - theta, axis=1)  # E_z
    empty = np.einsum("z,z->", pi, scene_empty)  # e

    diff = (joint / presence[None, :] - target_conditional) * off_diagonal
    log_error = np.log(presence) - np.log1p(-empty) - np.log(target_frequencies)
    loss = np.sum(diff**2) + FREQUENCY_LOSS_WEIGHT * np.sum(log_error**2)

    d_joint = 2.0 * diff / presence[None, :]
    d_presence = -np.sum(2.0 * diff * joint / presence[None, :] ** 2, axis=0)
    d_presence = d_presence + 2.0 * FREQUENCY_LOSS_WEIGHT * log_error / presence
    d_empty = 2.0 * FREQUENCY_LOSS_WEIGHT * np.sum(log_error) / (1.0 - empty)

    d_theta = pi[:, None] * np.einsum("ij,zj->zi", d_joint + d_joint.T, theta)
    d_theta = d_theta + pi[:, None] * d_presence[None, :]
    d_theta = d_theta - d_empty * pi[:, None] * scene_empty[:, None] / (1.0 - theta)
    d_pi = np.einsum("ij,zi,zj->z", d_joint, theta, theta) + np.einsum("zi,i->z", theta, d_presence)
    d_pi = d_pi + d_empty * scene_empty
    d_label_logits = d_theta * theta * (1.0 - theta)
    d_scene_logits = pi * (d_pi - np.einsum("z,z->", pi, d_pi))
    return loss, d_scene_logits, d_label_logits


def fit_scene_mixture(
    stats: LabelStatistics,
    num_scenes: int = NUM_SCENES,
    steps: int = FIT_STEPS,
    learning_rate: float = FIT_LEARNING_RATE,
    seed: int = FIT_SEED,
) -> SceneMixture:
    """Fits a `SceneMixture` to the frequencies and `P(i | j)` of `stats` (module docstring).

    Args:
      stats: the label counts to reproduce; every label must occur at least once.
      num_scenes: int, Z (default 40).
      steps: int, full-batch Adam steps (default 1,000).
      learning_rate: float, Adam's step size (default 0.05).
      seed: int, seeds the initial logits; the fit is otherwise deterministic.
    """
    if np.any(stats.class_counts <= 0):
        raise ValueError("every label must occur at least once to fit its frequency")
    target_frequencies = stats.frequencies
    target_conditional = stats.conditional
    num_labels = len(stats.labels)
    off_diagonal = 1.0 - np.eye(num_labels)
    rng = np.random.default_rng(seed)
    base = np.log(target_frequencies / (1.0 - target_frequencies))
    params = [np.zeros([num_scenes]), base[None, :] + rng.normal(0.0, FIT_INITIAL_SPREAD, (num_scenes, num_labels))]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    for step in range(1, steps + 1):
        _, *gradients = _loss_and_gradients(*params, target_frequencies, target_conditional, off_diagonal)
        for k, gradient in enumerate(gradients):
            first[k] = ADAM_BETA_1 * first[k] + (1.0 - ADAM_BETA_1) * gradient
            second[k] = ADAM_BETA_2 * second[k] + (1.0 - ADAM_BETA_2) * gradient**2
            corrected_first = first[k] / (1.0 - ADAM_BETA_1**step)
            corrected_second = second[k] / (1.0 - ADAM_BETA_2**step)
            params[k] = params[k] - learning_rate * corrected_first / (np.sqrt(corrected_second) + ADAM_EPSILON)
    return SceneMixture(_softmax(params[0]), _sigmoid(params[1]))


def sample_label_sets(rng: np.random.Generator, mixture: SceneMixture, count: int) -> np.ndarray:
    """Draws `count` non-empty label sets; returns bool [count, N] (row b: the labels of set b).

    For each set: a scene z with probability `pi_z`, then every label i with probability
    `theta_zi`, independently; a set with no label is drawn again from the same `rng`.
    """
    pi, theta = mixture.scene_probabilities, mixture.label_probabilities
    sets = np.zeros([count, theta.shape[1]], bool)
    pending = np.arange(count)
    while pending.size:
        scenes = rng.choice(len(pi), size=pending.size, p=pi)
        drawn = rng.random((pending.size, theta.shape[1])) < theta[scenes]
        filled = drawn.any(axis=1)
        sets[pending[filled]] = drawn[filled]
        pending = pending[~filled]
    return sets


def set_statistics(sets: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(frequencies [N], `P(i | j)` [N, N] with a zero diagonal) of bool label sets [B, N]."""
    indicators = np.asarray(sets, np.int64)
    class_counts = indicators.sum(axis=0)
    cooccurrence = indicators.T @ indicators
    np.fill_diagonal(cooccurrence, 0)
    return class_counts / float(len(indicators)), conditional_from_counts(cooccurrence, class_counts)


def agreement(frequencies, conditional, reference: LabelStatistics) -> dict:
    """Pearson r and mean absolute error of frequencies and of `P(i | j)` (all pairs i != j, and
    the pairs with the reference's `P(i | j)` >= `STRONG_PAIR_THRESHOLD`) against `reference`."""
    off_diagonal = ~np.eye(len(reference.labels), dtype=bool)
    target = reference.conditional[off_diagonal]
    mine = np.asarray(conditional)[off_diagonal]
    strong = target >= STRONG_PAIR_THRESHOLD

    def compare(a, b):
        return {"pearson_r": round(float(np.corrcoef(a, b)[0, 1]), 5), "mae": round(float(np.mean(np.abs(a - b))), 5)}

    return {
        "frequencies": compare(np.asarray(frequencies), reference.frequencies),
        "conditional": compare(mine, target),
        "conditional_strong_pairs": compare(mine[strong], target[strong]),
    }


# ---------------------------------------------------------------------------------------------
# The ambiguous pairs


def context_cosine(stats: LabelStatistics, a: int, b: int) -> float:
    """Cosine similarity of the profiles `P(k | a)` and `P(k | b)` over the labels k not in {a, b}."""
    keep = np.ones(len(stats.labels), bool)
    keep[[a, b]] = False
    conditional = stats.conditional
    u, v = conditional[keep, a], conditional[keep, b]
    norm = np.linalg.norm(u) * np.linalg.norm(v)
    return float(u @ v / norm) if norm > 0 else 0.0


def choose_ambiguous_pairs(
    stats: LabelStatistics,
    num_pairs: int = NUM_AMBIGUOUS_PAIRS,
    min_count: int = MIN_AMBIGUOUS_COUNT,
    max_frequency: float = MAX_AMBIGUOUS_FREQUENCY,
) -> List[Tuple[int, int, float]]:
    """The pairs of labels to draw alike: `(a, b, cosine)` with a < b, by the rule of the module
    docstring (eligible labels, lowest context cosine first, each label in one pair at most)."""
    frequencies = stats.frequencies
    eligible = [i for i in range(len(stats.labels))
                if stats.class_counts[i] >= min_count and frequencies[i] <= max_frequency]
    candidates = sorted(
        (context_cosine(stats, a, b), a, b) for k, a in enumerate(eligible) for b in eligible[k + 1:]
    )
    chosen, used = [], set()
    for cosine, a, b in candidates:
        if a in used or b in used:
            continue
        chosen.append((a, b, cosine))
        used.update((a, b))
        if len(chosen) == num_pairs:
            break
    if len(chosen) < num_pairs:
        raise ValueError(f"only {len(chosen)} pairs of eligible labels, {num_pairs} asked for")
    return chosen


def ambiguous_pair_names(stats: LabelStatistics, pairs: Optional[Sequence] = None) -> List[List[str]]:
    """The pairs as `[[name_a, name_b], ...]` (the pairs of `choose_ambiguous_pairs` by default)."""
    pairs = choose_ambiguous_pairs(stats) if pairs is None else pairs
    return [[stats.labels[a], stats.labels[b]] for a, b, *_ in pairs]


def agreement_report(num_sets: int = 200_000, seed: int = 0) -> dict:
    """The fit's agreement with COCO's statistics, in closed form and on `num_sets` sampled sets,
    the size of the sets and the ambiguous pairs: the numbers of the module docstring."""
    import time

    stats = load_label_statistics()
    began = time.perf_counter()
    mixture = fit_scene_mixture(stats)
    fitted = time.perf_counter() - began
    sets = sample_label_sets(np.random.default_rng(seed), mixture, num_sets)
    sizes = sets.sum(axis=1)
    return {
        "fit_seconds": round(fitted, 2),
        "empty_probability": round(mixture.empty_probability, 4),
        "closed_form": agreement(mixture.frequencies, mixture.conditional, stats),
        f"sampled_{num_sets}": agreement(*set_statistics(sets), stats),
        "labels_per_image": {"mean": round(float(sizes.mean()), 3), "variance": round(float(sizes.var()), 3)},
        "ambiguous_pairs": [[stats.labels[a], stats.labels[b], round(c, 3)]
                            for a, b, c in choose_ambiguous_pairs(stats)],
    }
