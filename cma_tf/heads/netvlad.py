"""Gated NetVLAD, the 2017 YouTube-8M winner's best single model (Miech et al., "Learnable
pooling with Context Gating for video classification", 2017; antoine77340/Youtube-8M-WILLOW
`frame_level_models.py` `NetVLADModelLF`, L592-736, run as its README's best single model,
L45-51: `--netvlad_cluster_size=256 --netvlad_hidden_size=1024 --moe_l2=1e-6
--netvlad_relu=False --gating=True --moe_prob_gating=True --iterations=300`).

Frames (each frame's joint vector L2-normalised, WILLOW `train.py` L241) → BN → per feature
stream a `NetVLAD` (K clusters for rgb, K/2 for audio), concatenated → hidden `v · W_h + b_h`
with `W_h` ~ N(0, 1/√K) (K, not the fan-in: L673-692) and `b_h` ~ N(0, 0.01), no BatchNorm and
no activation (`netvlad_relu=False`) → Context Gating (L698-726) → MoE (M = 2, slim L2 1e-6)
with probability gating (`video_level_models.py` L126-153).

WILLOW samples 300 frames with replacement inside the model, in training and evaluation; here
the reader resamples each video to `config.data.frames` (300) of its own frames, randomly
within equal bins in training and at the bins' centres in evaluation (`cma_tf/data/yt8m/frames.py`).
"""

import math

import keras

from cma_tf.heads.frame_pooling import (
    build_stream_poolings, classifier_config, pool_streams, positions, positions_shape, resolve, stream_names,
    stream_share, streams_of,
    unit_frames, video_classifier,
)
from cma_tf.heads.projection import deepest_shape
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers.context_gating import BN_EPSILON, ContextGating
from cma_tf.layers.netvlad import NetVLAD
from cma_tf.saving import register, sync_sublayer_trainability

CLUSTERS = 256  # netvlad_cluster_size of the best single model
HIDDEN_UNITS = 1024  # netvlad_hidden_size
CLASSIFIER = "moe"
CLASSIFIER_L2 = 1e-6  # --moe_l2
HIDDEN_BIAS_STDDEV = 0.01


@register
class NetVLADHead(keras.layers.Layer):
    """Frames `[B, T, D]` → NetVLAD per stream → hidden → Context Gating → MoE → logits `[B, V]`.

    Args:
        num_classes: int, `V`.
        feature_streams: `((name, size), …)` of the frames' features in order (rgb, audio), or
            None: one stream of the whole width (`frame_pooling.py`).
        clusters: int or None, `K` of the first stream (None: 256); audio streams get `K // 2`.
        hidden_units: int or None, `H` (None: 1024).
        context_gating: bool, Context Gating of the hidden vector. Default True.
        classifier: "moe" or "dense", or None ("moe").
        moe_mixtures: int, `M`. Default 2.
        classifier_l2: float or None, slim's λ (None: 1e-6).
        probability_gating: bool or None (None: True with "moe").
        batchnorm_momentum: float, of every BatchNorm. Default 0.999 (slim's).
        normalize_frames: bool, L2-normalise each frame first (WILLOW's input). Default True.

    Examples:
    >>> head = NetVLADHead(4, feature_streams=(("rgb", 8), ("audio", 4)), clusters=4, hidden_units=8)
    >>> head([keras.random.normal((2, 5, 12))]).shape
    (2, 4)
    """

    def __init__(self, num_classes, feature_streams=None, clusters=None, hidden_units=None, context_gating=True,
                 classifier=None, moe_mixtures=2, classifier_l2=None, probability_gating=None,
                 batchnorm_momentum=0.999, normalize_frames=True, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.feature_streams = tuple(tuple(stream) for stream in feature_streams) if feature_streams else None
        self.clusters = resolve(clusters, CLUSTERS)
        self.hidden_units = resolve(hidden_units, HIDDEN_UNITS)
        self.context_gating = context_gating
        self.classifier_kind = resolve(classifier, CLASSIFIER)
        self.moe_mixtures = moe_mixtures
        self.classifier_l2 = resolve(classifier_l2, CLASSIFIER_L2)
        self.probability_gating = resolve(probability_gating, self.classifier_kind == "moe")
        self.batchnorm_momentum = batchnorm_momentum
        self.normalize_frames = normalize_frames
        # === Layers ===
        self.input_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="input_norm", dtype=self.dtype_policy
        )
        self.hidden = keras.layers.Dense(
            self.hidden_units, name="hidden", dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(self.clusters)),
            bias_initializer=keras.initializers.RandomNormal(0.0, HIDDEN_BIAS_STDDEV),
        )
        self.gating = (
            ContextGating(batchnorm_momentum=batchnorm_momentum, name="context_gating", dtype=self.dtype_policy)
            if context_gating else None
        )
        self.classifier = video_classifier(
            self.classifier_kind, num_classes, moe_mixtures, self.classifier_l2, self.probability_gating,
            batchnorm_momentum, self.dtype_policy,
        )
        self.pooling = [
            NetVLAD(stream_share(name, self.clusters), batchnorm_momentum, name=f"netvlad_{name}", dtype=self.dtype_policy)
            for name in stream_names(self.feature_streams)
        ]
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = positions_shape(input_shape)
        self.streams = streams_of(self.feature_streams, shape[-1])
        self.input_norm.build(shape)
        self.hidden.build((shape[0], build_stream_poolings(self.pooling, self.streams, shape)))
        if self.gating is not None:
            self.gating.build((shape[0], self.hidden_units))
        self.classifier.build((shape[0], self.hidden_units))

    def call(self, features, training=None):
        frames = positions(features)
        if self.normalize_frames:
            frames = unit_frames(frames)
        frames = self.input_norm(frames, training=training)
        hidden = self.hidden(pool_streams(self.pooling, frames, self.streams, training))
        if self.gating is not None:
            hidden = self.gating(hidden, training=training)
        return self.classifier(hidden, training=training)

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "feature_streams": [list(stream) for stream in self.feature_streams] if self.feature_streams else None,
            "clusters": self.clusters, "hidden_units": self.hidden_units, "context_gating": self.context_gating,
            "normalize_frames": self.normalize_frames, **classifier_config(self),
        })
        return config


register_head(
    HeadSpec(
        "netvlad", NetVLADHead, feature_streams=True, video_model=True,
        options=("clusters", "hidden_units", "classifier", "moe_mixtures", "classifier_l2", "probability_gating",
                 "batchnorm_momentum"),
        description="NetVLAD + Context Gating + MoE with probability gating (Miech et al. 2017, YouTube-8M 2017 winner)",
    )
)
