"""The HSVLT head: Hierarchical Scale-Aware Vision-Language Transformer, as a head over backbone taps.

Ouyang, Wang, Niu, Bai, Xie, Xu, Tong, Chen, Lin, "Hierarchical Scale-Aware Vision-Language
Transformer for Multi-Label Image Classification", ACM MM 2023 (arXiv 2407.16244); official
code github.com/NaturalKnight/HSVLT, `models/hsvlt.py` (class `HSVLT`, commit cd7c5ca).

Per scale i (one backbone tap, shallow to deep):

    V_i = Conv1×1(tap_i → C)                                      (projection)
    L   = Dense(C)(E) at the first scale, Dense(C)(L) after it    (label tokens, chained)
    (V_i, L, S) ← InteractionBlock(V_i, L), `blocks_per_scale` times   (IVLA, `layers/ivla.py`)
    S_i = the S of the scale's last block                          ([B, N, C])

then Cross-Scale Aggregation as released: `logits_k = w_k · concat_i(S_i)_k + b_k` (the
released `TextHead`; here `PerClassClassifier`).

What differs from the released code:
- In HSVLT the interaction blocks *are* the backbone: a ConvNeXt-S (depths 3, 3, 27, 3, widths
  96…768, 36 blocks) whose visual stream runs from stage to stage through its downsampling
  layers. Here they form a head over a backbone's taps: each scale starts from a 1×1
  projection of its tap (no downsampling: the taps already have their resolution), every
  scale has the same width `C`, and a scale's updated `V` is not passed to the next scale
  (only `L` is). Two scales over ResNet-101's C4/C5 or the small backbone's taps, four over
  ConvNeXt-S's stage outputs (`backbones/convnext.py`), instead of HSVLT's four stages.
- The label tokens start from `E` of ASGE or Word2Vec (`C_e` wide, Eq. 2 of You et al.)
  instead of BERT-base's 768-d last hidden states.
- The blocks: one attention head (the released config's `num_heads: 1`), no dropout or
  DropPath (the released rates are 0), Keras' initialisers by default; see `layers/ivla.py`.
  `init="official"` starts every Dense of the head (the projections, the blocks, the label
  tokens' `nn.Linear`) and the classifier (the released `TextHead`) at PyTorch's default
  U(±1/√fan_in), weights and biases, as the released model is built (`layers/torch_init.py`).
- The last block of the last scale has no language gate: its updated `L` is read by nothing
  (the released code computes it and discards it, so the outputs are the same).
- `return_attention` gives the cross-attention of each scale's last block; the released model
  returns only its last block's.
- Training is the package's (loss of Eq. 12 of You et al., docs/design.md §2.10), not the
  released AdamW at lr 1e-5.
"""

import math

import keras
from keras import ops

from cma_tf.heads.cma import LabelEmbeddingHead
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers.cross_modality import PerClassClassifier
from cma_tf.layers import torch_init
from cma_tf.layers.ivla import InteractionBlock
from cma_tf.saving import register, sync_sublayer_trainability

# `C` of every scale when `feature_channels` is None: our choice for ResNet-101's taps (1024 and
# 2048 channels); HSVLT's own stages are 96, 192, 384 and 768 wide.
DEFAULT_FEATURE_CHANNELS = 512


def tap_list(features):
    """The backbone's taps as a list (a one-tap functional backbone called eagerly returns a tensor)."""
    return list(features) if isinstance(features, (list, tuple)) else [features]


def tap_shapes(input_shape):
    """`tap_list` for shapes: a list of shapes, or one shape."""
    if input_shape and isinstance(input_shape[0], (list, tuple)):
        return [tuple(shape) for shape in input_shape]
    return [tuple(input_shape)]


@register
class HSVLTStage(keras.layers.Layer):
    """One scale of the HSVLT head: projection of the tap to `C`, the label tokens to `C`, then
    `num_blocks` interaction blocks.

    Args:
        units: int, `C`.
        num_blocks: int ≥ 1, interaction blocks. Default 2.
        init: "keras" (default) or "official" (PyTorch's default initialisation, as released).
        final: bool, True for the head's last scale: its last block's updated `L` is read by
            nothing, so that block leaves out the language gate (whose weights would get no
            gradient; the released code computes it and discards it). Default False.

    Call args:
        features: `[B, H, W, C_in]` (or `[B, T, C_in]`) the backbone tap.
        language: `[B, N, C_L]` the label tokens from `E` or from the previous scale.
        return_attention: if True also return the last block's attention `[B, N, M]`.

    Returns:
        `(L [B, N, C], S [B, N, C])`: the updated label tokens and the last block's `S`.
    """

    def __init__(self, units, num_blocks=2, final=False, init="keras", **kwargs):
        super().__init__(**kwargs)
        if num_blocks < 1:
            raise ValueError(f"{self.name}: num_blocks must be at least 1, got {num_blocks}")
        torch_init.check_init(init, self.name)
        self.units = units
        self.num_blocks = num_blocks
        self.final = final
        self.init = init
        self.projection = keras.layers.Dense(units, name="projection", dtype=self.dtype_policy)
        self.language_projection = keras.layers.Dense(units, name="language_projection", dtype=self.dtype_policy)
        self.blocks = [
            InteractionBlock(
                units, gate_language=not (final and index == num_blocks), init=init, name=f"block{index}",
                dtype=self.dtype_policy,
            )
            for index in range(1, num_blocks + 1)
        ]
        sync_sublayer_trainability(self)

    def build(self, features_shape, language_shape):
        features_shape, language_shape = tuple(features_shape), tuple(language_shape)
        if self.init == "official":  # the widths they read are known only now
            torch_init.set_linear_default(self.projection, features_shape[-1])
            torch_init.set_linear_default(self.language_projection, language_shape[-1])
        self.projection.build(features_shape)
        self.language_projection.build(language_shape)
        for block in self.blocks:
            block.build(features_shape[:-1] + (self.units,), language_shape[:-1] + (self.units,))

    def call(self, features, language, return_attention=False):
        visual = self.projection(features)
        language = self.language_projection(language)
        for block in self.blocks:
            visual, language, multimodal, attention = block(visual, language, return_attention=True)
        return (language, multimodal, attention) if return_attention else (language, multimodal)

    def compute_output_shape(self, features_shape, language_shape):
        shape = tuple(language_shape)[:-1] + (self.units,)
        return shape, shape

    def get_config(self):
        config = super().get_config()
        config.update({"units": self.units, "num_blocks": self.num_blocks, "final": self.final, "init": self.init})
        return config


@register
class HSVLTHead(LabelEmbeddingHead):
    """HSVLT over every backbone tap it is given (2 for ResNet-101 and the small backbone, 4 for
    ConvNeXt-S), with label tokens from the label encoder's `E`.

    Args:
        num_classes: int, `N`.
        label_encoder: an `ASGEEncoder` (Φ) or a `FixedLabelEmbedding` (Word2Vec) giving `E`
            `[N, C_e]`; freeze it (`trainable=False`) to keep `E` fixed.
        feature_channels: int or None, `C`, the width of every scale (visual projection, label
            tokens, blocks); None means 512 (`DEFAULT_FEATURE_CHANNELS`). Default 512.
        blocks_per_scale: int ≥ 1, interaction blocks per scale. Default 2.
        init: "keras" (default) or "official" (PyTorch's default initialisation, as released).

    Call args:
        features: the backbone's taps, shallow to deep (a list; one tensor is one scale).
        return_attention: if True, also return each scale's last-block attention `[B, N, M_i]`.

    Returns:
        logits `[B, N]` (and the list of attention maps when asked).

    Examples:
    >>> from cma_tf.graph.asge import ASGEEncoder
    >>> head = HSVLTHead(5, ASGEEncoder(5, units=8), feature_channels=16)
    >>> head([keras.random.normal((2, 8, 8, 16)), keras.random.normal((2, 4, 4, 32))]).shape
    (2, 5)
    """

    def __init__(
        self, num_classes, label_encoder, feature_channels=DEFAULT_FEATURE_CHANNELS, blocks_per_scale=2, init="keras",
        **kwargs
    ):
        super().__init__(num_classes, label_encoder, **kwargs)
        if blocks_per_scale < 1:
            raise ValueError(f"blocks_per_scale must be at least 1, got {blocks_per_scale}")
        torch_init.check_init(init, self.name)
        self.init = init
        self.feature_channels = feature_channels
        self.blocks_per_scale = blocks_per_scale
        self.units = DEFAULT_FEATURE_CHANNELS if feature_channels is None else feature_channels
        self.classifier = PerClassClassifier(num_classes, name="classifier", dtype=self.dtype_policy)
        self.stages = []  # one per tap, created in build: the head takes as many taps as it is given
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        if not self.label_encoder.built:
            self.label_encoder.build()
        shapes = tap_shapes(input_shape)
        self.stages = [
            HSVLTStage(
                self.units, self.blocks_per_scale, final=index == len(shapes), init=self.init, name=f"scale{index}",
                dtype=self.dtype_policy,
            )
            for index in range(1, len(shapes) + 1)
        ]
        language = (None, self.num_classes, self.label_encoder.units)
        for stage, shape in zip(self.stages, shapes):
            stage.build(shape, language)
            language = (None, self.num_classes, self.units)
        if self.init == "official":  # the released TextHead: kaiming_uniform(a=√5) → U(±1/√fan_in), bias alike
            fan_in = len(shapes) * self.units
            self.classifier.kernel_initializer = torch_init.linear_default(fan_in)
            self.classifier.bias_initializer = torch_init.linear_default(fan_in)
        self.classifier.build((None, self.num_classes, len(shapes) * self.units))
        sync_sublayer_trainability(self)  # the stages are new: a frozen head freezes them too

    def call(self, features, training=None, return_attention=False):
        taps = tap_list(features)
        if len(taps) != len(self.stages):
            raise ValueError(f"{self.name} was built for {len(self.stages)} backbone maps, called with {len(taps)}")
        embeddings = self.label_embeddings(training=training)
        language = ops.broadcast_to(
            ops.expand_dims(embeddings, 0), (ops.shape(taps[0])[0],) + tuple(ops.shape(embeddings))
        )
        multimodal, attention = [], []
        for stage, tap in zip(self.stages, taps):
            language, scale_multimodal, scale_attention = stage(tap, language, return_attention=True)
            multimodal.append(scale_multimodal)
            attention.append(scale_attention)
        # Cross-Scale Aggregation: every scale's S side by side, one linear unit per class.
        logits = self.classifier(ops.concatenate(multimodal, axis=-1))
        return (logits, attention) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (tap_shapes(input_shape)[-1][0], self.num_classes)

    def compute_output_spec(self, features, training=None, return_attention=False):
        taps = tap_list(features)
        logits = keras.KerasTensor((taps[0].shape[0], self.num_classes), dtype=self.compute_dtype)
        if not return_attention:
            return logits
        positions = [math.prod(tap.shape[1:-1]) if None not in tap.shape[1:-1] else None for tap in taps]
        return logits, [
            keras.KerasTensor((tap.shape[0], self.num_classes, m), dtype=self.compute_dtype)
            for tap, m in zip(taps, positions)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {"feature_channels": self.feature_channels, "blocks_per_scale": self.blocks_per_scale, "init": self.init}
        )
        return config


register_head(
    HeadSpec(
        "hsvlt", HSVLTHead, label_embeddings=True, taps=2, options=("feature_channels", "blocks_per_scale", "init"),
        description=(
            "HSVLT's interaction blocks over every backbone tap + cross-scale aggregation (Ouyang et al., ACM MM "
            "2023; as a head, with ASGE/Word2Vec label tokens instead of BERT)"
        ),
    )
)
