"""`python -m cma_tf.visualize attention`: attention figures of one or more trained workdirs on
the user's own images (or image records, or YouTube-8M records for video models).

The labels shown are the first workdir's top-k for each item; every other workdir's maps are
drawn for the same labels, so a row of self-attention sits under a row of CMA for one label.
Items that do not decode are listed and skipped; a workdir whose head has no maps is refused
in one line before anything is read.
"""

import os
import re

import numpy as np
import tensorflow as tf

from cma_tf.data.requests import IMAGES
from cma_tf.errors import DataError
from cma_tf.serving import sources
from cma_tf.serving.workdir_model import load_workdir_model
from cma_tf.visualization.attention import attention_maps, require_attention
from cma_tf.visualization.figures import attention_grid, attention_over_time


def _file_name(index, item_id):
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.splitext(os.path.basename(item_id))[0])[:60]
    return f"{index:04d}_{stem or 'item'}.png"


def load_models(workdirs, checkpoint="final"):
    """The workdirs' models, checked: each has attention maps, all read the same kind of input
    and score the same labels."""
    loaded = [load_workdir_model(workdir, checkpoint) for workdir in workdirs]
    for workdir, entry in zip(workdirs, loaded):
        require_attention(entry.model, workdir, entry.config.model.head)
        if entry.request.bytes_input != loaded[0].request.bytes_input or entry.vocabulary != loaded[0].vocabulary:
            raise DataError(
                f"{workdir} reads {entry.request.bytes_input} with {len(entry.vocabulary)} labels; {workdirs[0]} reads "
                f"{loaded[0].request.bytes_input} with {len(loaded[0].vocabulary)}: only runs on the same data compare"
            )
    return loaded


def row_names(workdirs, models):
    """Each workdir's head (`cma`, `self_attention`, …), with its folder where two heads repeat."""
    heads = [entry.config.model.head for entry in models]
    return [
        head if heads.count(head) == 1 else f"{head} ({os.path.basename(os.path.normpath(workdir))})"
        for head, workdir in zip(heads, workdirs)
    ]


def _decode(entry, item):
    try:
        return entry.request.decode_one(tf.constant(item)).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.OutOfRangeError):
        return None


def write_attention_figures(workdirs, inputs, out_dir, top_k=3, checkpoint="final", max_items=None, names=None):
    """Writes one PNG per readable input item into `out_dir`; returns `(written paths, skipped ids)`.

    Args:
        workdirs: training workdirs; the first one's top-k labels are shown for all.
        inputs: image files, folders, TFRecord files or patterns (as `cma_tf.predict --input`).
        top_k: labels per item.
        max_items: stop after this many items (None: all).
        names: a row name per workdir (default: its head, and its folder where heads repeat).
    """
    models = load_models(workdirs)
    files = sources.expand_inputs(inputs)
    names = names or row_names(workdirs, models)
    vocabulary = models[0].vocabulary
    tf.io.gfile.makedirs(out_dir)
    written, skipped = [], []
    for item_id, item in sources.read_items(files, models[0].request.bytes_input):
        if max_items is not None and len(written) >= max_items:
            break
        decoded = [_decode(entry, item) for entry in models]
        if any(value is None for value in decoded):
            skipped.append(item_id)
            continue
        rows = []
        for name, entry, value in zip(names, models, decoded):
            probabilities, maps = attention_maps(entry.model, value[None])
            scales = [f"{name} · scale {s + 1}" if len(maps) > 1 else name for s in range(len(maps))]
            rows += [(scale_name, probabilities[0], scale_maps[0]) for scale_name, scale_maps in zip(scales, maps)]
        top = np.argsort(-rows[0][1], kind="stable")[:top_k]
        labels = [(int(index), vocabulary[index]) for index in top]
        path = os.path.join(out_dir, _file_name(len(written), item_id))
        if models[0].request.bytes_input == IMAGES:
            attention_grid(decoded[0], rows, labels, path, title=item_id)
        else:
            attention_over_time(decoded[0].shape[0], rows, labels, path, title=item_id)
        written.append(path)
    if not written and skipped:
        raise DataError(f"none of the {len(skipped)} items decoded (first: {skipped[0]})")
    return written, skipped
