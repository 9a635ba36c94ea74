"""`labels_without_training_examples` against a loop written out over the labels."""

import numpy as np
import pytest

from cma_tf.metrics.unseen_labels import labels_without_training_examples, unseen_labels_line


def test_names_exactly_the_labels_with_eval_positives_and_no_training_count():
    rng = np.random.default_rng(0)
    vocabulary = [f"label{k}" for k in range(12)]
    counts = rng.integers(0, 3, 12) * (rng.random(12) < 0.6)
    targets = (rng.random((20, 12)) < 0.2).astype(np.int64)
    targets[:, 3] = 0  # no positive in eval and none in training: not named
    counts[3] = 0
    expected = [vocabulary[k] for k in range(12) if counts[k] == 0 and any(row[k] for row in targets.tolist())]
    assert expected  # the draw has some
    assert labels_without_training_examples(counts, targets, vocabulary) == expected


def test_a_count_per_label_is_required():
    with pytest.raises(ValueError, match="3 training counts for 2 labels"):
        labels_without_training_examples(np.ones(3), np.ones((1, 2)), ["a", "b"])


def test_the_line_names_them_and_says_their_ap_counts():
    assert unseen_labels_line([]) == ""
    line = unseen_labels_line(["bird", "okapi"], "train")
    assert line.startswith("2 labels") and "bird, okapi" in line and "split 'train'" in line and "mAP" in line
