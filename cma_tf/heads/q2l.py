"""The Query2Label head: a transformer decoder with one learnable query per label.

Liu, Zhang, Yang, Su, Zhu, "Query2Label: A Simple Transformer Way to Multi-Label Classification"
(arXiv 2107.10834); official code github.com/SlongLiu/query2labels, `lib/models/query2label.py`,
`lib/models/transformer.py`, commit 55eb050. The released ResNet-101 configuration is the default:

    X = Conv1×1(I) (identity when `feature_channels` is None: d = the backbone's channels, 2048)
    P = the sine encoding of the positions (`layers/transformer.py`)
    X ← encoder layer(X, P), once                                  (`encoder_layers` = 1)
    T = 0;  T ← decoder layer(T, X, Q, P), twice                   (`decoder_layers` = 2, no self-attention)
    logits_k = w_k · LN(T)_k + b_k                                 (`GroupWiseLinear`)

with `Q` `[N, d]` learnable queries (N(0, 1) at the start, as `nn.Embedding`), 4 attention heads,
a feed-forward width of 4·d (8192 for d = 2048) and dropout 0.1. The classifier's `w_k`, `b_k`
start uniform in ±1/√d, as released.

`pre_norm=True` is DETR's `normalize_before` (`layers/transformer.py`): LayerNorm before each
sub-layer, and a final LayerNorm over the encoder's output (the released builds that norm only
when pre-norm; the decoder's final norm is there in both). `init="official"` starts the
transformer as the released `_reset_parameters` leaves it (Xavier-uniform over every weight with
more than one axis, PyTorch's packed q/k/v fans, zero attention biases, feed-forward biases
U(±1/√fan_in)) and the input projection at `nn.Conv2d`'s default U(±1/√C_in) (`layers/torch_init.py`).

What differs from the released code: by default (`init="keras"`) Keras' initialisers inside the
transformer (Glorot-uniform kernels with Keras' fans for the attention, zero biases); the backbone is trained whole (the
released freezes ResNet's stem and first stage, and its BatchNorm); a video sequence `[B, T, C]`
gets a 1-D sine encoding over time (the released code is image-only); training is the package's
(`config.train.loss="asl"` with γ− = 2, γ+ = 0 and no clip gives the released loss, summed over
labels instead of its mean × 1000), without the released EMA of the weights or OneCycle schedule.
"""

import math

import keras
from keras import ops

from cma_tf.heads.projection import deepest, deepest_shape, feature_projection
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers import torch_init
from cma_tf.layers.cross_modality import PerClassClassifier
from cma_tf.layers.ops import flatten_positions
from cma_tf.layers.transformer import (
    LAYER_NORM_EPSILON,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    sine_positional_encoding,
)
from cma_tf.saving import register, sync_sublayer_trainability

HEADS = 4  # the released --nheads
DECODER_LAYERS = 2  # the released --dec_layers
FFN_RATIO = 4  # the released --dim_feedforward 8192 over --hidden_dim 2048


@register
class Query2LabelHead(keras.layers.Layer):
    """Query2Label over the deepest backbone map.

    Args:
        num_classes: int, `N`.
        feature_channels: int or None, `d`: a 1×1 projection of the map to `d`; None keeps the
            backbone's channels (the released ResNet-101 setting, d = 2048).
        transformer_heads: int or None, attention heads (None: 4).
        transformer_ffn_units: int or None, feed-forward width (None: 4·d).
        transformer_dropout: float. Default 0.1.
        encoder_layers: int ≥ 0. Default 1.
        decoder_layers: int ≥ 1 or None (None: 2).
        decoder_self_attention: bool, self-attention among the label tokens in each decoder
            layer (the paper's standard decoder); the released code removes it. Default False.
        pre_norm: bool, pre-norm transformer layers and a final encoder norm (DETR's
            `normalize_before`); False is the released post-norm. Default False.
        init: "keras" (default) or "official" (the released PyTorch initialisation).

    Call args:
        features: list of backbone maps, shallow to deep; only the last is used.
        return_attention: also return `[A]`, the last decoder layer's cross-attention `[B, N, M]`.

    Examples:
    >>> head = Query2LabelHead(3, feature_channels=8, transformer_heads=2)
    >>> tuple(head([keras.random.normal((2, 4, 4, 16))]).shape)
    (2, 3)
    """

    def __init__(
        self, num_classes, feature_channels=None, transformer_heads=None, transformer_ffn_units=None,
        transformer_dropout=0.1, encoder_layers=1, decoder_layers=None, decoder_self_attention=False,
        pre_norm=False, init="keras", **kwargs
    ):
        super().__init__(**kwargs)
        torch_init.check_init(init, self.name)
        if encoder_layers < 0 or (decoder_layers is not None and decoder_layers < 1):
            raise ValueError(
                f"{self.name}: encoder_layers ≥ 0 and decoder_layers ≥ 1 expected, got {encoder_layers}, {decoder_layers}"
            )
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.transformer_heads = transformer_heads
        self.transformer_ffn_units = transformer_ffn_units
        self.transformer_dropout = transformer_dropout
        self.encoder_layers = encoder_layers
        self.decoder_layers = decoder_layers
        self.decoder_self_attention = decoder_self_attention
        self.pre_norm = pre_norm
        self.init = init
        self.projection = feature_projection(feature_channels, "projection", self.dtype_policy)
        self.classifier = None  # sized by d, known in build
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = deepest_shape(input_shape)
        if self.init == "official" and self.feature_channels is not None:
            torch_init.set_linear_default(self.projection, shape[-1])  # the released nn.Conv2d 1×1
        self.projection.build(shape)
        units = self.projection.compute_output_shape(shape)[-1]
        heads = self.transformer_heads or HEADS
        ffn = self.transformer_ffn_units or FFN_RATIO * units
        self.units = units
        layer = dict(
            num_heads=heads, ffn_units=ffn, dropout=self.transformer_dropout, pre_norm=self.pre_norm, init=self.init,
            dtype=self.dtype_policy,
        )
        self.encoder = [
            TransformerEncoderLayer(units, name=f"encoder_{i}", **layer) for i in range(self.encoder_layers)
        ]
        self.decoder = [
            TransformerDecoderLayer(units, self_attention=self.decoder_self_attention, name=f"decoder_{i}", **layer)
            for i in range(self.decoder_layers or DECODER_LAYERS)
        ]
        self.encoder_norm = None
        if self.pre_norm and self.encoder:  # DETR's final encoder norm exists only pre-norm
            self.encoder_norm = keras.layers.LayerNormalization(
                epsilon=LAYER_NORM_EPSILON, name="encoder_norm", dtype=self.dtype_policy
            )
        self.decoder_norm = keras.layers.LayerNormalization(
            epsilon=LAYER_NORM_EPSILON, name="decoder_norm", dtype=self.dtype_policy
        )
        limit = 1.0 / math.sqrt(units)
        uniform = keras.initializers.RandomUniform(-limit, limit)
        self.classifier = PerClassClassifier(
            self.num_classes, bias_initializer=uniform, kernel_initializer=uniform, name="classifier",
            dtype=self.dtype_policy,
        )
        self.queries = self.add_weight(
            name="queries", shape=(self.num_classes, units), initializer=keras.initializers.RandomNormal(stddev=1.0)
        )
        positions = math.prod(shape[1:-1])
        tokens = (shape[0], positions, units)
        labels = (shape[0], self.num_classes, units)
        for encoder in self.encoder:
            encoder.build(tokens)
        if self.encoder_norm is not None:
            self.encoder_norm.build(tokens)
        for decoder in self.decoder:
            decoder.build(labels, tokens)
        self.decoder_norm.build(labels)
        self.classifier.build(labels)
        sync_sublayer_trainability(self)

    def call(self, features, training=None, return_attention=False):
        visual = self.projection(deepest(features))
        positions = ops.cast(sine_positional_encoding(visual.shape[1:-1], self.units), self.compute_dtype)
        memory = flatten_positions(visual)
        for encoder in self.encoder:
            memory = encoder(memory, positions, training=training)
        if self.encoder_norm is not None:
            memory = self.encoder_norm(memory)
        queries = ops.cast(self.queries, self.compute_dtype)
        targets = ops.zeros_like(ops.broadcast_to(queries[None], (ops.shape(memory)[0],) + tuple(queries.shape)))
        attention = None
        for decoder in self.decoder:
            targets, attention = decoder(targets, memory, queries, positions, training=training, return_attention=True)
        logits = self.classifier(self.decoder_norm(targets))
        return (logits, [attention]) if return_attention else logits

    def compute_output_shape(self, input_shape):
        return (deepest_shape(input_shape)[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "feature_channels": self.feature_channels,
                "transformer_heads": self.transformer_heads,
                "transformer_ffn_units": self.transformer_ffn_units,
                "transformer_dropout": self.transformer_dropout,
                "encoder_layers": self.encoder_layers,
                "decoder_layers": self.decoder_layers,
                "decoder_self_attention": self.decoder_self_attention,
                "pre_norm": self.pre_norm,
                "init": self.init,
            }
        )
        return config


register_head(
    HeadSpec(
        "q2l", Query2LabelHead,
        options=(
            "feature_channels", "transformer_heads", "transformer_ffn_units", "transformer_dropout",
            "encoder_layers", "decoder_layers", "decoder_self_attention", "pre_norm", "init",
        ),
        description="transformer encoder over the map, decoder with one learnable query per label "
        "(Liu et al., Query2Label, 2021; the released ResNet-101 settings)",
    )
)
