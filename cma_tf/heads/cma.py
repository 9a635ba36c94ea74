"""The CMA head (§3.2): one scale of CMT (Eq. 6) → CMA (Eq. 7-9) → per-class classifier (Eq. 10)."""

import keras

from cma_tf.architecture import CMT_LAYERS
from cma_tf.heads.classifiers import per_class_classifier
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.heads.projection import deepest, deepest_shape, feature_projection
from cma_tf.layers.cross_modality import CrossModalityAttention, CrossModalityTransformer
from cma_tf.saving import register, sync_sublayer_trainability


@register
class CMABranch(keras.layers.Layer):
    """`f_cma(I, E)` for one feature map: logits `[B, N]` from `I` `[B, ..., C_in]` and `E` `[N, C_e]`.

    Args:
        num_classes: int, `N`.
        embedding_dim: int, `C_e` (width of `E` and of the CMT output).
        feature_channels: int or None, `C` of the 1×1 projection of `I` (None keeps `C_in`).
        cmt_layers: int, conv-BN-ReLU stages in the CMT. Default 2.
        classifier: None or "dense" (Eq. 10), or "moe" (a per-class mixture of experts).
        moe_mixtures: int, experts per class with "moe". Default 2.
    """

    def __init__(self, num_classes, embedding_dim, feature_channels=None, cmt_layers=CMT_LAYERS, classifier=None,
                 moe_mixtures=2, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.embedding_dim = embedding_dim
        self.feature_channels = feature_channels
        self.cmt_layers = cmt_layers
        self.classifier_kind = classifier
        self.moe_mixtures = moe_mixtures
        self.projection = feature_projection(feature_channels, "projection", self.dtype_policy)
        self.cmt = CrossModalityTransformer(embedding_dim, cmt_layers, name="cmt", dtype=self.dtype_policy)
        self.attention = CrossModalityAttention(name="cma", dtype=self.dtype_policy)
        self.classifier = per_class_classifier(classifier, num_classes, moe_mixtures, self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, features_shape, embeddings_shape=None):
        self.projection.build(tuple(features_shape))
        visual = self.projection.compute_output_shape(tuple(features_shape))
        self.cmt.build(visual)
        self.classifier.build((visual[0], self.num_classes, visual[-1]))

    def call(self, features, embeddings, training=None, return_attention=False):
        visual = self.projection(features)
        semantic = self.cmt(visual, training=training)
        attention = self.attention(visual, semantic, embeddings, return_pooled=False)
        logits = self.classifier(attention, features=visual)  # Eq. 9-10 without h
        return (logits, attention) if return_attention else logits

    def compute_output_shape(self, features_shape, embeddings_shape=None):
        return (features_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "embedding_dim": self.embedding_dim,
                "feature_channels": self.feature_channels,
                "cmt_layers": self.cmt_layers,
                "classifier": self.classifier_kind,
                "moe_mixtures": self.moe_mixtures,
            }
        )
        return config


class LabelEmbeddingHead(keras.layers.Layer):
    """Base for heads that own the label encoder Φ (ASGE, Eq. 2) and read `E` from it."""

    def __init__(self, num_classes, label_encoder, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.label_encoder = label_encoder

    def label_embeddings(self, training=None):
        """`E` `[N, C_e]`; BatchNorm in Φ runs in inference mode while Φ is frozen."""
        return self.label_encoder.all_embeddings(training=training)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"num_classes": self.num_classes, "label_encoder": keras.layers.serialize(self.label_encoder)}
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["label_encoder"] = keras.layers.deserialize(config["label_encoder"])
        return cls(**config)


@register
class CMAHead(LabelEmbeddingHead):
    """CMA on the deepest backbone map (`I_2`, 14×14×2048 for ResNet-101 at 448).

    Args:
        num_classes: int, `N`.
        label_encoder: an `ASGEEncoder` (Φ); freeze it (`trainable=False`) to keep `E` fixed.
        feature_channels: int or None, `C` of the 1×1 projection of `I`.
        cmt_layers: int, CMT depth. Default 2.
        classifier: None or "dense" (Eq. 10), or "moe" (a per-class mixture of experts).
        moe_mixtures: int, experts per class with "moe". Default 2.

    Examples:
    >>> from cma_tf.graph.asge import ASGEEncoder
    >>> head = CMAHead(5, ASGEEncoder(5, units=8))
    >>> head([keras.random.normal((2, 8, 8, 16)), keras.random.normal((2, 4, 4, 32))]).shape
    (2, 5)
    """

    def __init__(self, num_classes, label_encoder, feature_channels=None, cmt_layers=CMT_LAYERS, classifier=None,
                 moe_mixtures=2, **kwargs):
        super().__init__(num_classes, label_encoder, **kwargs)
        self.feature_channels = feature_channels
        self.cmt_layers = cmt_layers
        self.classifier_kind = classifier
        self.moe_mixtures = moe_mixtures
        self.branch = CMABranch(
            num_classes, label_encoder.units, feature_channels, cmt_layers, classifier, moe_mixtures,
            name="branch", dtype=self.dtype_policy,
        )
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        if not self.label_encoder.built:
            self.label_encoder.build()
        self.branch.build(deepest_shape(input_shape))

    def call(self, features, training=None, return_attention=False):
        embeddings = self.label_embeddings(training=training)
        logits, attention = self.branch(deepest(features), embeddings, training=training, return_attention=True)
        return (logits, [attention]) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "feature_channels": self.feature_channels, "cmt_layers": self.cmt_layers,
            "classifier": self.classifier_kind, "moe_mixtures": self.moe_mixtures,
        })
        return config


register_head(
    HeadSpec(
        "cma", CMAHead, label_embeddings=True, options=("feature_channels", "cmt_layers", "classifier", "moe_mixtures"),
        description="cross-modality attention with ASGE label embeddings on the deepest map (You et al., AAAI 2020)",
    )
)
