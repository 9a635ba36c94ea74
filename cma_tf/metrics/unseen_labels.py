"""Labels an evaluation scores that the model never saw a training example of.

Such a label's AP still counts in the mAP (it has positives in the evaluated split), at about
what its untrained scores happen to give; the evaluation summaries name these labels so the
number is read with them in mind (issue 35, 1.9).
"""

from typing import List, Sequence

import numpy as np

MAX_NAMES = 8  # names listed in one line


def labels_without_training_examples(train_label_counts, targets, vocabulary: Sequence[str]) -> List[str]:
    """Names of the labels that have a positive in `targets` but no training example.

    Args:
        train_label_counts: `[N]` examples holding each label in the training split (the label
            graph's diagonal, `LabelGraph.counts`).
        targets: `[n, N]` 0/1 targets of the evaluated split.
        vocabulary: the `N` label names.
    """
    counts = np.asarray(train_label_counts).reshape(-1)
    positives = np.asarray(targets).reshape(-1, len(vocabulary)).sum(axis=0)
    if counts.shape[0] != len(vocabulary):
        raise ValueError(f"{counts.shape[0]} training counts for {len(vocabulary)} labels")
    return [vocabulary[k] for k in np.flatnonzero((positives > 0) & (counts == 0))]


def unseen_labels_line(names: Sequence[str], train_split: str = "train") -> str:
    """One line naming `names` (empty when there are none)."""
    if not names:
        return ""
    shown = ", ".join(names[:MAX_NAMES]) + (f", … ({len(names) - MAX_NAMES} more)" if len(names) > MAX_NAMES else "")
    return (f"{len(names)} labels have positives here but no example in split '{train_split}', and their AP counts "
            f"in the mAP: {shown}")
