"""NeXtVLAD (Lin et al., "NeXtVLAD: An efficient neural network to aggregate frame-level
features for large-scale video classification", ECCV 2018 workshops; linrongc/youtube-8m
`nextvlad.py` `NeXtVLADModel`, L86-184).

Frames → per feature stream a `NeXtVLAD` (rgb K clusters and G groups, audio K/2 and G/2;
L112-130), concatenated → Dropout → hidden `BN(v · W_h)`, `W_h` He-normal without bias
(L137-148) → SE context gating (L152-175) → the logistic classifier (`video_level_models.py`
`LogisticModel`, L34-55: slim L2 1e-5 on `W` and `b`) → logits.

The defaults are the paper's best single model of its local validation (Table 1, 0.8723 GAP;
`scripts/train_nextvlad_local.sh`): λ = 2, G = 8, K = 128, H = 2048, SE r = 8, dropout 0.5.
The ReLU after the hidden BatchNorm, removed from the official code on 2018-09-02, is not
applied. The official code un-whitens the rgb features with the PCA eigenvalues of the
published extractor instead of L2-normalising the frames; this head takes the frames as the
reader gives them (the un-whitening, which needs that eigenvalue file, is not done). It uses
every frame it is given: the reader resamples each video to `config.data.frames` of its own
frames (`cma_tf/data/yt8m/frames.py`), so no frame is padding and no mask is needed.
"""

import keras

from cma_tf.heads.frame_pooling import (
    build_stream_poolings, classifier_config, pool_streams, positions, positions_shape, resolve, stream_names,
    stream_share, streams_of,
    video_classifier,
)
from cma_tf.heads.projection import deepest_shape
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers.context_gating import BN_EPSILON, SqueezeExcitationGating
from cma_tf.layers.nextvlad import NeXtVLAD
from cma_tf.saving import register, sync_sublayer_trainability

CLUSTERS = 128
HIDDEN_UNITS = 2048
CLASSIFIER = "dense"
CLASSIFIER_L2 = 1e-5  # --l2_penalty


@register
class NeXtVLADHead(keras.layers.Layer):
    """Frames `[B, T, D]` → NeXtVLAD per stream → Dropout → hidden → SE gating → logits `[B, V]`.

    Args:
        num_classes: int, `V`.
        feature_streams: `((name, size), …)` of the frames' features in order, or None (one stream).
        clusters: int or None, `K` of the first stream (None: 128); audio streams get `K // 2`.
        hidden_units: int or None, `H` (None: 2048).
        nextvlad_expansion: int, `λ`. Default 2.
        nextvlad_groups: int, `G` of the first stream (audio streams get `G // 2`). Default 8.
        gating_reduction: int, SE `r`. Default 8.
        nextvlad_dropout: float, before the hidden layer. Default 0.5.
        classifier: "dense" or "moe", or None ("dense", the official logistic classifier).
        moe_mixtures: int, `M` with "moe". Default 2.
        classifier_l2: float or None, slim's λ (None: 1e-5).
        probability_gating: bool or None (None: False).
        batchnorm_momentum: float, of every BatchNorm. Default 0.999 (slim's).

    Examples:
    >>> head = NeXtVLADHead(4, feature_streams=(("rgb", 8), ("audio", 4)), clusters=4, hidden_units=16,
    ...                     nextvlad_groups=4, gating_reduction=4)
    >>> head([keras.random.normal((2, 5, 12))]).shape
    (2, 4)
    """

    def __init__(self, num_classes, feature_streams=None, clusters=None, hidden_units=None, nextvlad_expansion=2,
                 nextvlad_groups=8, gating_reduction=8, nextvlad_dropout=0.5, classifier=None, moe_mixtures=2,
                 classifier_l2=None, probability_gating=None, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.feature_streams = tuple(tuple(stream) for stream in feature_streams) if feature_streams else None
        self.clusters = resolve(clusters, CLUSTERS)
        self.hidden_units = resolve(hidden_units, HIDDEN_UNITS)
        self.nextvlad_expansion = nextvlad_expansion
        self.nextvlad_groups = nextvlad_groups
        self.gating_reduction = gating_reduction
        self.nextvlad_dropout = nextvlad_dropout
        self.classifier_kind = resolve(classifier, CLASSIFIER)
        self.moe_mixtures = moe_mixtures
        self.classifier_l2 = resolve(classifier_l2, CLASSIFIER_L2)
        self.probability_gating = resolve(probability_gating, False)
        self.batchnorm_momentum = batchnorm_momentum
        # === Layers ===
        self.pooling = [
            NeXtVLAD(
                stream_share(name, self.clusters), nextvlad_expansion, stream_share(name, nextvlad_groups),
                batchnorm_momentum, name=f"nextvlad_{name}", dtype=self.dtype_policy,
            )
            for name in stream_names(self.feature_streams)
        ]
        self.dropout = keras.layers.Dropout(nextvlad_dropout, name="dropout", dtype=self.dtype_policy)
        self.hidden = keras.layers.Dense(
            self.hidden_units, use_bias=False, kernel_initializer="he_normal", name="hidden", dtype=self.dtype_policy
        )
        self.hidden_norm = keras.layers.BatchNormalization(
            momentum=batchnorm_momentum, epsilon=BN_EPSILON, name="hidden_norm", dtype=self.dtype_policy
        )
        self.gating = SqueezeExcitationGating(
            gating_reduction, batchnorm_momentum, name="se_gating", dtype=self.dtype_policy
        )
        self.classifier = video_classifier(
            self.classifier_kind, num_classes, moe_mixtures, self.classifier_l2, self.probability_gating,
            batchnorm_momentum, self.dtype_policy,
        )
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = positions_shape(input_shape)
        self.streams = streams_of(self.feature_streams, shape[-1])
        self.hidden.build((shape[0], build_stream_poolings(self.pooling, self.streams, shape)))
        self.hidden_norm.build((shape[0], self.hidden_units))
        self.gating.build((shape[0], self.hidden_units))
        self.classifier.build((shape[0], self.hidden_units))

    def call(self, features, training=None):
        pooled = pool_streams(self.pooling, positions(features), self.streams, training)
        hidden = self.hidden_norm(self.hidden(self.dropout(pooled, training=training)), training=training)
        hidden = self.gating(hidden, training=training)
        return self.classifier(hidden, training=training)

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes,
            "feature_streams": [list(stream) for stream in self.feature_streams] if self.feature_streams else None,
            "clusters": self.clusters, "hidden_units": self.hidden_units,
            "nextvlad_expansion": self.nextvlad_expansion, "nextvlad_groups": self.nextvlad_groups,
            "gating_reduction": self.gating_reduction, "nextvlad_dropout": self.nextvlad_dropout,
            **classifier_config(self),
        })
        return config


register_head(
    HeadSpec(
        "nextvlad", NeXtVLADHead, feature_streams=True, video_model=True,
        options=("clusters", "hidden_units", "nextvlad_expansion", "nextvlad_groups", "gating_reduction",
                 "nextvlad_dropout", "classifier", "moe_mixtures", "classifier_l2", "probability_gating",
                 "batchnorm_momentum"),
        description="NeXtVLAD + SE context gating + logistic classifier (Lin et al., ECCV 2018 workshops)",
    )
)
