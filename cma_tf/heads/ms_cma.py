"""The multi-scale CMA head (§3.2, Eq. 11; §4.1 for the three scales)."""

from cma_tf.architecture import CMT_LAYERS
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.heads.cma import CMABranch, LabelEmbeddingHead
from cma_tf.saving import register, sync_sublayer_trainability
from cma_tf.layers.fusion import MultiScaleScoreFusion
from cma_tf.layers.residual import BottleneckBlock


@register
class MultiScaleCMAHead(LabelEmbeddingHead):
    """MS-CMA: `y*_k = (1/L) Σ_l f_cma(I_l, E)` over `I_1` (backbone mid tap), `I_2` (deepest
    tap) and `I_3` (a stride-2 bottleneck block on `I_2`, `4·extra_block_filters` channels).

    For ResNet-101 at 448: 28×28×1024, 14×14×2048, 7×7×512. Each scale has its own CMT and
    classifier; all share `E`.

    Training (see `MultiLabelClassifier(scale_loss_weight=…)`): the paper does not say how the
    scales are supervised. With the loss on the fused probability alone, a branch that falls
    behind gets almost no gradient from positives (`∂ log mean_l p_l / ∂ logit_s ∝
    p_s(1 − p_s)`) while negatives keep pushing it down, and it can collapse: on the demo
    data the 6×6 branch ended at 0.49 mAP on its own and MS-CMA below CMA. We therefore also
    apply the loss to each scale's own prediction (deep supervision), so each `f_cma(I_l, E)`
    is a calibrated classifier whose probabilities Eq. 11 averages.

    Args:
        num_classes: int, `N`.
        label_encoder: an `ASGEEncoder` (Φ), shared by the scales.
        feature_channels: int or None, `C` of each scale's 1×1 projection (None keeps the
            scale's own channels, as the paper lists them).
        cmt_layers: int, CMT depth. Default 2.
        extra_block_filters: int, bottleneck width of the block building `I_3`. Default 128.
    """

    def __init__(
        self, num_classes, label_encoder, feature_channels=None, cmt_layers=CMT_LAYERS,
        extra_block_filters=128, **kwargs
    ):
        super().__init__(num_classes, label_encoder, **kwargs)
        self.feature_channels = feature_channels
        self.cmt_layers = cmt_layers
        self.extra_block_filters = extra_block_filters
        self.extra_block = BottleneckBlock(extra_block_filters, strides=2, name="scale3_block", dtype=self.dtype_policy)
        self.branches = [
            CMABranch(
                num_classes, label_encoder.units, feature_channels, cmt_layers,
                name=f"scale{index}", dtype=self.dtype_policy,
            )
            for index in (1, 2, 3)
        ]
        self.fusion = MultiScaleScoreFusion(name="fusion", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def _scale_shapes(self, input_shape):
        mid, deep = tuple(input_shape[-2]), tuple(input_shape[-1])
        return [mid, deep, self.extra_block.compute_output_shape(deep)]

    def build(self, input_shape):
        if not self.label_encoder.built:
            self.label_encoder.build()
        self.extra_block.build(tuple(input_shape[-1]))
        for branch, shape in zip(self.branches, self._scale_shapes(input_shape)):
            branch.build(shape)

    def scale_outputs(self, features, training=None):
        """Per-scale `(logits [B, N], attention [B, N, M_l])` for `I_1`, `I_2`, `I_3`."""
        embeddings = self.label_embeddings(training=training)
        scales = [features[-2], features[-1], self.extra_block(features[-1], training=training)]
        return [
            branch(scale, embeddings, training=training, return_attention=True)
            for branch, scale in zip(self.branches, scales)
        ]

    def call(self, features, training=None, return_attention=False):
        outputs = self.scale_outputs(features, training=training)
        logits = self.fusion([scale_logits for scale_logits, _ in outputs])
        return (logits, [attention for _, attention in outputs]) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (input_shape[-1][0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_channels": self.feature_channels,
                "cmt_layers": self.cmt_layers,
                "extra_block_filters": self.extra_block_filters,
            }
        )
        return config


register_head(
    HeadSpec(
        "ms_cma", MultiScaleCMAHead, label_embeddings=True, taps=2,
        options=("feature_channels", "cmt_layers", "extra_block_filters"),
        description="CMA on three scales, probabilities averaged (Eq. 11; You et al., AAAI 2020)",
    )
)
