"""The YouTube-8M starter code's DBoF (Deep Bag of Frames) with its mixture-of-experts classifier
(Abu-El-Haija et al. 2016, §4.1; google/youtube-8m `frame_level_models.py` `DbofModel`,
L89-214, defaults L25-48; `video_level_models.py` `MoeModel`, defaults L25-27).

Frames (each frame's joint rgb+audio vector L2-normalised, `train.py` L274) → `DeepBagOfFrames`
(BN → `[D, K]` projection → BN → sigmoid → max over frames) → hidden `σ(BN(v · W_h))`,
`W_h` `[K, H]` ~ N(0, 1/√K) without bias → MoE (M = 2, slim L2 1e-8).

The defaults are the starter code's (its only DBoF configuration: the repository publishes no
DBoF command or score): K = 8192, H = 1024, M = 2, 30 frames (`iterations`, set by
`configs/yt8m.py:dbof` as `config.data.frames`). The starter code samples its 30 frames with
replacement inside the model, in training and evaluation alike; here the reader picks them
(`cma_tf/data/yt8m/frames.py`: one random frame of each of 30 equal bins in training, the bins'
centres in evaluation), so evaluation is deterministic and the model sees all it is given.
"""

import math

import keras
from keras import ops

from cma_tf.heads.frame_pooling import (
    classifier_config, positions, positions_shape, resolve, unit_frames, video_classifier,
)
from cma_tf.heads.projection import deepest_shape
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers.bag_of_frames import DeepBagOfFrames
from cma_tf.layers.context_gating import BN_EPSILON
from cma_tf.saving import register, sync_sublayer_trainability

CLUSTERS = 8192  # dbof_cluster_size
HIDDEN_UNITS = 1024  # dbof_hidden_size
CLASSIFIER = "moe"
CLASSIFIER_L2 = 1e-8  # MoeModel's l2_penalty


@register
class DBoFHead(keras.layers.Layer):
    """Frames `[B, T, D]` → DBoF → hidden → MoE → logits `[B, V]` (σ gives the MoE's `p`).

    Args:
        num_classes: int, `V`.
        clusters: int or None, `K` (None: 8192).
        hidden_units: int or None, `H` (None: 1024).
        classifier: "moe" or "dense", or None ("moe").
        moe_mixtures: int, `M`. Default 2.
        classifier_l2: float or None, slim's L2 λ on the classifier's weights (None: 1e-8).
        probability_gating: bool or None (None: False, the starter code has none).
        batchnorm_momentum: float, of every BatchNorm. Default 0.999 (slim's).
        normalize_frames: bool, L2-normalise each frame first (the starter code's input). Default True.

    Examples:
    >>> head = DBoFHead(4, clusters=16, hidden_units=8)
    >>> head([keras.random.normal((2, 5, 12))]).shape
    (2, 4)
    """

    def __init__(self, num_classes, clusters=None, hidden_units=None, classifier=None, moe_mixtures=2,
                 classifier_l2=None, probability_gating=None, batchnorm_momentum=0.999, normalize_frames=True,
                 **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.clusters = resolve(clusters, CLUSTERS)
        self.hidden_units = resolve(hidden_units, HIDDEN_UNITS)
        self.classifier_kind = resolve(classifier, CLASSIFIER)
        self.moe_mixtures = moe_mixtures
        self.classifier_l2 = resolve(classifier_l2, CLASSIFIER_L2)
        self.probability_gating = resolve(probability_gating, False)
        self.batchnorm_momentum = batchnorm_momentum
        self.normalize_frames = normalize_frames
        # === Layers ===
        self.pooling = DeepBagOfFrames(self.clusters, batchnorm_momentum, name="pooling", dtype=self.dtype_policy)
        self.hidden = keras.layers.Dense(
            self.hidden_units, use_bias=False, name="hidden", dtype=self.dtype_policy,
            kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(self.clusters)),
        )
        self.hidden_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="hidden_norm", dtype=self.dtype_policy
        )
        self.classifier = video_classifier(
            self.classifier_kind, num_classes, moe_mixtures, self.classifier_l2, self.probability_gating,
            batchnorm_momentum, self.dtype_policy,
        )
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = positions_shape(input_shape)
        self.pooling.build(shape)
        self.hidden.build((shape[0], self.clusters))
        self.hidden_norm.build((shape[0], self.hidden_units))
        self.classifier.build((shape[0], self.hidden_units))

    def call(self, features, training=None):
        frames = positions(features)
        if self.normalize_frames:
            frames = unit_frames(frames)
        pooled = self.pooling(frames, training=training)
        hidden = ops.sigmoid(self.hidden_norm(self.hidden(pooled), training=training))
        return self.classifier(hidden, training=training)

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes, "clusters": self.clusters, "hidden_units": self.hidden_units,
            "normalize_frames": self.normalize_frames, **classifier_config(self),
        })
        return config


register_head(
    HeadSpec(
        "dbof", DBoFHead, video_model=True,
        options=("clusters", "hidden_units", "classifier", "moe_mixtures", "classifier_l2", "probability_gating",
                 "batchnorm_momentum"),
        description="YouTube-8M starter code's Deep Bag of Frames + mixture of experts, over the frames backbone",
    )
)
