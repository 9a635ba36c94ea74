"""A training workdir as a servable model: its trained Keras model, label names and request
format, checked against each other (used by `export` and by `predict` on a workdir)."""

import dataclasses
import os

import tensorflow as tf

from cma_tf.data.requests import RequestFormat
from cma_tf.data.vocab import check_same_vocabulary
from cma_tf.errors import DataError
from cma_tf.training import workdir as files


@dataclasses.dataclass
class WorkdirModel:
    model: object
    model_path: str
    vocabulary: list
    request: RequestFormat
    config: object


def workdir_vocabulary(workdir, config, vocabulary_file=None):
    """The label names of a run: `<workdir>/labels.txt` (written by training), else the
    vocabulary of the training config's dataset. `vocabulary_file` (`--vocabulary`) is for a run
    trained before `labels.txt` was kept whose dataset is gone: it is read, and refused (a
    `DataError` naming the first id that differs, both names) unless it lists the run's labels
    in their order; it never renames or reorders them."""
    from cma_tf import factory
    from cma_tf.kinds.registry import read_vocabulary_file

    own = files.path(workdir, files.VOCABULARY)
    if vocabulary_file:
        if not tf.io.gfile.exists(vocabulary_file):
            raise FileNotFoundError(f"--vocabulary: {vocabulary_file} does not exist")
        given = read_vocabulary_file(vocabulary_file)
        fix = "leave --vocabulary out (the run's own labels are used) or give a copy of them"
        if tf.io.gfile.exists(own):
            files.check_labels(workdir, given, f"--vocabulary {vocabulary_file}", fix)
        else:
            try:
                dataset = factory.read_vocabulary(config)
            except FileNotFoundError:
                return given  # nothing left to check it against but the model's class count
            check_same_vocabulary(given, dataset, f"--vocabulary {vocabulary_file}",
                                  f"the vocabulary of the run's dataset {config.data.data_dir}", fix)
        return given
    if tf.io.gfile.exists(own):
        return read_vocabulary_file(own, unique=False)
    try:
        return factory.read_vocabulary(config)
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{error}; {workdir} has no {files.VOCABULARY} (trained before it was kept): pass --vocabulary"
        ) from None


def load_workdir_model(workdir, checkpoint="final", vocabulary_file=None) -> WorkdirModel:
    """The workdir's `final.keras` (or `best.keras`) with its vocabulary; a `DataError` if the
    model's class count is not the vocabulary's."""
    import keras

    from cma_tf import factory

    config = files.read_config(workdir)
    vocabulary = workdir_vocabulary(workdir, config, vocabulary_file)
    model_path = files.trained_model_path(workdir, checkpoint)
    model = keras.saving.load_model(model_path)
    if model.output_shape[-1] != len(vocabulary):
        raise DataError(
            f"{model_path} scores {model.output_shape[-1]} classes but the vocabulary has {len(vocabulary)} names"
            + ("" if vocabulary_file else " (pass the run's own with --vocabulary)")
        )
    return WorkdirModel(model, model_path, vocabulary, factory.serving_request(config), config)


def describe_workdir(workdir):
    """Where a workdir is, for metadata: absolute if local, as given for gs:// and the like."""
    return workdir if "://" in workdir else os.path.abspath(workdir)
