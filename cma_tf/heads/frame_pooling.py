"""What the YouTube-8M field's video heads (`dbof`, `netvlad`, `nextvlad`) share: the feature
streams of the frames, and their classifier (MoE or logistic) on one vector per video.

The frames reach these heads through the `frames` backbone (an identity over `[T, D]`,
`cma_tf/backbones/video.py`): they pool raw frame features. `D` is the features of
`config.data.feature_names` concatenated in that order (rgb 1024, audio 128); NetVLAD and
NeXtVLAD pool each feature on its own, the audio with half the clusters (and NeXtVLAD half the
groups), as the official code does (WILLOW `frame_level_models.py` L652-653; linrongc
`nextvlad.py` L112-130). The factory gives the heads the streams as `feature_streams`,
`(("rgb", 1024), ("audio", 128))`, when the backbone is `frames`; over another backbone the
head pools its output as one stream. They pool a bag of positions, so they also serve image
backbones (an `[H, W, C]` map is `H·W` positions; NetVLAD was made for images): every
registered head is built and exported on images by the shared tests and the head benchmark.
"""

import keras
import numpy as np

from cma_tf.heads.projection import deepest, deepest_shape
from cma_tf.layers.mixture_of_experts import MixtureOfExperts, slim_l2
from cma_tf.layers.ops import flatten_positions, tf_l2_normalize

CLASSIFIERS = ("dense", "moe")
HALVED_STREAMS = ("audio", "mean_audio")  # pooled with K/2 clusters (and G/2 groups)


def resolve(value, default):
    """A head option: `value`, or the head's official `default` when it is None."""
    return default if value is None else value


def streams_of(feature_streams, width):
    """`[(name, size), …]` of the frames' features; one stream `("frames", width)` when none is
    given. A `ValueError` when the sizes do not add up to the input's width."""
    if not feature_streams:
        return [("frames", int(width))]
    streams = [(str(name), int(size)) for name, size in feature_streams]
    if sum(size for _, size in streams) != width:
        raise ValueError(f"feature_streams {streams} do not add up to the input's {width} values a frame")
    return streams


def positions(features):
    """The deepest backbone map as a bag of positions `[B, M, C]`: the frames `[B, T, D]` as they
    are; an image map `[B, H, W, C]` (these heads also serve image backbones) flattened."""
    return flatten_positions(deepest(features))


def positions_shape(input_shape):
    """`positions` for shapes."""
    shape = deepest_shape(input_shape)
    middle = shape[1:-1]
    count = None if any(d is None for d in middle) else int(np.prod(middle)) if middle else 1
    return (shape[0], count, shape[-1])


def stream_names(feature_streams):
    """The streams' names (one pooling layer each): `("frames",)` when none are given."""
    return tuple(str(name) for name, _ in feature_streams) if feature_streams else ("frames",)


def split_streams(frames, streams):
    """`[B, T, D]` → one `[B, T, size]` slice per stream, in order."""
    slices, start = [], 0
    for _, size in streams:
        slices.append(frames[..., start:start + size])
        start += size
    return slices


def build_stream_poolings(poolings, streams, shape):
    """Builds one pooling layer per stream on `shape` (`[B, T, D]`, each stream its own `D`);
    returns the width of their outputs concatenated."""
    width = 0
    for pooling, (_, size) in zip(poolings, streams):
        pooling.build(shape[:-1] + (size,))
        width += pooling.compute_output_shape(shape[:-1] + (size,))[-1]
    return width


def pool_streams(poolings, frames, streams, training=None):
    """Each stream of `frames` pooled by its own layer, the results concatenated on the last axis."""
    pooled = [pooling(stream, training=training) for pooling, stream in zip(poolings, split_streams(frames, streams))]
    return keras.ops.concatenate(pooled, axis=-1) if len(pooled) > 1 else pooled[0]


def stream_share(name, count):
    """How many clusters (or groups) of `count` a stream gets: half for the audio."""
    return max(1, count // 2) if name in HALVED_STREAMS else count


def video_classifier(kind, num_classes, mixtures, l2, probability_gating, batchnorm_momentum, dtype=None):
    """The classifier on the video vector `h` `[B, d]` → logits `[B, V]`.

    `"moe"`: `MixtureOfExperts` (M = `mixtures`, slim L2 λ = `l2` on its weights, optional
    probability gating). `"dense"`: the official logistic classifier, `σ(h · W + b)` as logits
    `h · W + b`, slim L2 λ = `l2` on `W` and `b` (linrongc `video_level_models.py` L34-55)."""
    if kind not in CLASSIFIERS:
        raise ValueError(f"classifier: unknown {kind!r} ({', '.join(CLASSIFIERS)})")
    if kind == "moe":
        return MixtureOfExperts(
            num_classes, mixtures, l2=l2, probability_gating=probability_gating,
            batchnorm_momentum=batchnorm_momentum, name="classifier", dtype=dtype,
        )
    if probability_gating:
        raise ValueError("probability_gating gates the MoE's probabilities: set classifier='moe'")
    return keras.layers.Dense(
        num_classes, kernel_regularizer=slim_l2(l2), bias_regularizer=slim_l2(l2), name="classifier", dtype=dtype
    )


def unit_frames(frames):
    """Each frame's joint feature vector to unit L2 norm (an all-zero frame stays zero), as the
    starter code and WILLOW feed their models (google/youtube-8m `train.py` L274, `eval.py` L139)."""
    return tf_l2_normalize(frames, axis=-1)


def classifier_config(head):
    """The classifier options every video head serializes."""
    return {
        "classifier": head.classifier_kind, "moe_mixtures": head.moe_mixtures,
        "classifier_l2": head.classifier_l2, "probability_gating": head.probability_gating,
        "batchnorm_momentum": head.batchnorm_momentum,
    }

