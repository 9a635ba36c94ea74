"""Scoring many items with a predictor (`predictor.py`) and writing the rows
(`predictions.py`): the work of `python -m cma_tf.predict`."""

import time

import tensorflow as tf
from tqdm import tqdm

from cma_tf.errors import ConfigError
from cma_tf.serving import sources
from cma_tf.serving.predictions import PredictionWriter, format_of
from cma_tf.serving.predictor import is_saved_model, load_predictor
from cma_tf.training import workdir as run_files


def predict(model, inputs, output, batch_size=32, top_k=None, checkpoint="final", progress=True, vocabulary_file=None):
    """Writes the predictions; returns a summary dict (items, seconds, and `flagged`: one
    "id (why)" for each item that did not decode)."""
    format_of(output)  # a bad --output name fails before the model loads
    if batch_size < 1:
        raise ConfigError(f"--batch_size must be at least 1, got {batch_size}")
    if top_k is not None and top_k < 1:
        raise ConfigError(f"--top_k must be at least 1, got {top_k}")
    files = sources.expand_inputs(inputs)
    saved_model = is_saved_model(model)
    if not saved_model and not tf.io.gfile.exists(run_files.path(model, run_files.CONFIG)):
        raise FileNotFoundError(
            f"--model {model} is neither a SavedModel (no saved_model.pb) nor a training workdir (no config.json)"
        )
    predictor = load_predictor(model, checkpoint, top_k or 5, vocabulary_file)
    if top_k is not None and top_k > predictor.top_k:
        why = "set at export" if saved_model else "its vocabulary size"
        raise ConfigError(f"--top_k={top_k} but {model} returns its top {predictor.top_k} labels ({why})")
    k = top_k or predictor.top_k
    flagged, count, start = [], 0, time.perf_counter()
    with PredictionWriter(output, k) as writer, tqdm(
        total=sources.known_count(files), unit=" items", desc="predict", disable=not progress
    ) as bar:
        for ids, items in sources.batches(files, predictor.input_name, batch_size):
            outputs = predictor(items)
            writer.write(ids, outputs)
            flagged.extend(
                f"{item_id} ({sources.why_not_decoded(item, predictor.input_name)})"
                for item_id, item, valid in zip(ids, items, outputs["valid"]) if not valid
            )
            count += len(ids)
            bar.update(len(ids))
    return {"items": count, "flagged": flagged, "seconds": time.perf_counter() - start, "source": predictor.source}
