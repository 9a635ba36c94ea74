"""The heads a config can name (`config.model.head`), one registration per head file.

A head is a Keras layer called on the backbone's maps (a list, shallow to deep) that returns
logits `[B, N]`. Its file registers a `HeadSpec`: the layer class, whether it reads label
embeddings (its second constructor argument is then the label encoder Φ, Eq. 2), whether it
reads the training set's label counts (keyword `label_counts`), how many backbone maps it reads,
and which `config.model` fields it takes as keyword arguments of the same name. `cma_tf.factory.build_head` builds every head from its spec, so a new head is one
file under `cma_tf/heads/`:

    register_head(HeadSpec("my_head", MyHead, label_embeddings=False, options=("feature_channels",)))
"""

import dataclasses
from typing import Tuple

from cma_tf.registry import Registry

HEADS = Registry("cma_tf.heads", "config.model.head", "head")


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """How to build one head.

    Attributes:
        name: the value of `config.model.head`.
        layer: the Keras layer class: `layer(num_classes, [label_encoder,] name=…, **options)`.
        label_embeddings: True if the head reads `E` from a label encoder (ASGE, Word2Vec or a file).
        label_graph: True if the head is built from the training set's label co-occurrence counts
            (`[N, N]`, diagonal = per-label counts), passed as the keyword `label_counts`.
        feature_streams: True if the head pools each YouTube-8M feature of the frames on its own
            (NetVLAD, NeXtVLAD): over the `frames` backbone it gets `feature_streams`, the
            `((name, size), …)` of `config.data.feature_names` in order (None over another backbone).
        video_model: True for the YouTube-8M field's video models (DBoF, NetVLAD, NeXtVLAD), which
            pool frame features: they run on image maps too, but the image comparisons
            (`configs/bench_heads.py`, `cma_tf.select`'s image candidates) leave them out.
        taps: how many backbone maps it reads (the deepest last): 1, or 2 for MS-CMA's `I_1`, `I_2`.
        options: `config.model` fields passed to `layer` as keyword arguments of the same name.
        description: one line for `--help` (the paper, and what is not the paper's).
    """

    name: str
    layer: type
    label_embeddings: bool = False
    label_graph: bool = False
    feature_streams: bool = False
    video_model: bool = False
    taps: int = 1
    options: Tuple[str, ...] = ()
    description: str = ""


def register_head(spec):
    """Registers `spec` under `spec.name`; returns it."""
    return HEADS.register(spec.name, spec)


def get_head(name) -> HeadSpec:
    """The spec of `name`; a `ConfigError` naming the registered heads otherwise."""
    return HEADS.get(name)


def head_names():
    """Every registered head, sorted."""
    return HEADS.names()


def describe_heads():
    """One line per registered head, for `--help` texts."""
    return "; ".join(f"{name}: {get_head(name).description}" if get_head(name).description else name
                     for name in head_names())
