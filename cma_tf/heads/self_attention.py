"""The self-attention baseline head (Table 3): Eq. 7 replaced by `σ(conv1×1(I))`."""

import keras

from cma_tf.heads.classifiers import per_class_classifier
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.heads.projection import deepest, deepest_shape, feature_projection
from cma_tf.saving import register, sync_sublayer_trainability
from cma_tf.layers.self_attention import SelfAttentionPooling


@register
class SelfAttentionHead(keras.layers.Layer):
    """Deepest map → optional 1×1 projection to `C` → class-wise self-attention (Eq. 8-9 with
    learned maps) → per-class classifier (Eq. 10).

    Args:
        num_classes: int, `N`.
        feature_channels: int or None, `C` of the 1×1 projection (None keeps the backbone's).
        classifier: None or "dense" (Eq. 10), or "moe" (a per-class mixture of experts).
        moe_mixtures: int, experts per class with "moe". Default 2.
    """

    def __init__(self, num_classes, feature_channels=None, classifier=None, moe_mixtures=2, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.classifier_kind = classifier
        self.moe_mixtures = moe_mixtures
        self.projection = feature_projection(feature_channels, "projection", self.dtype_policy)
        self.attention = SelfAttentionPooling(num_classes, name="attention", dtype=self.dtype_policy)
        self.classifier = per_class_classifier(classifier, num_classes, moe_mixtures, self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = deepest_shape(input_shape)
        self.projection.build(shape)
        shape = self.projection.compute_output_shape(shape)
        self.attention.build(shape)
        self.classifier.build(self.attention.compute_output_shape(shape))

    def call(self, features, training=None, return_attention=False):
        visual = self.projection(deepest(features))
        attention = self.attention(visual, return_pooled=False)
        logits = self.classifier(attention, features=visual)  # Eq. 9-10 without h
        return (logits, [attention]) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes, "feature_channels": self.feature_channels,
            "classifier": self.classifier_kind, "moe_mixtures": self.moe_mixtures,
        })
        return config


register_head(
    HeadSpec(
        "self_attention", SelfAttentionHead, options=("feature_channels", "classifier", "moe_mixtures"),
        description="class-wise sigmoid(conv1x1) attention (the paper's ablation, Table 3)",
    )
)
