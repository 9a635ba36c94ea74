"""The `serving_default` signature of an exported SavedModel or of a training workdir, as one
callable: `predictor(items) -> {output: numpy array}`."""

import tempfile

import tensorflow as tf

from cma_tf.serving.module import DEFAULT_SIGNATURE

SAVED_MODEL_FILE = "saved_model.pb"


def is_saved_model(path: str) -> bool:
    return tf.io.gfile.exists(f"{path.rstrip('/')}/{SAVED_MODEL_FILE}")


class Predictor:
    """Calls a `serving_default` function on batches of request items (bytes).

    Attributes:
        input_name: the signature's input ("images", "sequence_examples" or "examples").
        top_k: K of its outputs.
        source: what was loaded (the SavedModel folder or the workdir's model file).
    """

    def __init__(self, function, source, keep_alive=None):
        self._function = function
        self.source = source
        self._keep_alive = keep_alive  # the workdir module's vocabulary file lives as long as this
        (spec,) = tf.nest.flatten(function.structured_input_signature)
        self.input_name = spec.name
        self.top_k = int(function.structured_outputs["top_k_classes"].shape[-1])

    def __call__(self, items):
        outputs = self._function(**{self.input_name: tf.constant(list(items), tf.string)})
        return {key: value.numpy() for key, value in outputs.items()}


def load_predictor(path: str, checkpoint: str = "final", top_k: int = 5, vocabulary_file=None) -> Predictor:
    """A SavedModel folder (its own K), or a training workdir (built here with `top_k`, its
    vocabulary as `export` finds it, or `vocabulary_file`)."""
    if is_saved_model(path):
        return Predictor(tf.saved_model.load(path).signatures[DEFAULT_SIGNATURE], path)
    from cma_tf.serving.saved_model import build_serving_module
    from cma_tf.serving.workdir_model import load_workdir_model

    from cma_tf.training import workdir as files

    run = load_workdir_model(path, checkpoint, vocabulary_file)
    thresholds = files.read_thresholds(path, checkpoint, run.vocabulary)  # the calibrated ones, as export
    scratch = tempfile.TemporaryDirectory()
    module = build_serving_module(run.model, run.vocabulary, run.request, top_k, scratch.name, thresholds)
    return Predictor(module.signatures()[DEFAULT_SIGNATURE], run.model_path, keep_alive=(scratch, module))
