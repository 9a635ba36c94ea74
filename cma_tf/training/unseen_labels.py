"""Printing, after an evaluation, the labels that have no training example (see
`metrics/unseen_labels.py`): the trainer's final metrics and `cma_tf.evaluate` each call
`print_labels_without_training_examples` once."""

import numpy as np

from cma_tf.errors import ConfigError, DataError
from cma_tf.metrics.unseen_labels import labels_without_training_examples, unseen_labels_line


def print_labels_without_training_examples(config, vocabulary, targets, graph=None, prefix="", log=print):
    """Prints one line naming the labels of `targets` (the evaluated split's `[n, N]` targets)
    without an example in `config.data.train_split`, if there are any; returns their names.

    `graph` is the training split's `LabelGraph` (default: loaded, or built and cached, from
    the config as the trainer does). When the training split cannot be read (an evaluation of
    data moved without it), the line says the check was not made, and why.
    """
    split = config.data.train_split
    if graph is None:
        from cma_tf.training.trainer import load_dataset_info

        try:
            graph = load_dataset_info(config)[1]
        except (ConfigError, DataError, FileNotFoundError) as error:
            log(f"{prefix}labels without a training example: not checked, split '{split}' cannot be read ({error})")
            return None
    names = labels_without_training_examples(np.asarray(graph.counts.diagonal()), targets, vocabulary)
    if names:
        log(prefix + unseen_labels_line(names, split))
    return names
