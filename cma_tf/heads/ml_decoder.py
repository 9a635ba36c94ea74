"""The ML-Decoder head: group decoding with frozen queries, for images and video.

Ridnik, Sharir, Ben-Cohen, Ben-Baruch, Noy, "ML-Decoder: Scalable and Versatile Classification
Head", WACV 2023 (arXiv 2111.12933); official code github.com/Alibaba-MIIL/ML_Decoder,
`src_files/ml_decoder/ml_decoder.py` (`MLDecoder`), commit 8a9e984. As released:

    M = ReLU(Dense_d(I))                 every position of the deepest map (or of a video's frames)
    T = Q                                K query tokens [K, d], random N(0, 1) and frozen
    T ← GroupDecoderLayer(T, M), once    (`layers/group_decoding.py`: no self-attention, no
                                          positional encoding, 8 heads, dropout 0.1)
    logits = GroupFC(T)                  K groups of g = ⌈N / K⌉ labels each

`K = min(100, N)` by default, so with 80 labels every label has its own query (g = 1) and with
YouTube-8M's 3,862, 100 queries answer for 39 labels each: the head's attention costs grow with
`K`, not `N`, which is what lets it scale to thousands of labels (`decoder_groups` sets `K`).

What differs from the released code: `d` is `feature_channels` when that is set (the package's
head width; the released 768 otherwise) and the feed-forward width scales with it (2048 at d =
768, `transformer_ffn_units` sets it); Keras' initialisers by default (`init="official"` draws
the embedding and the decoder layer as the released code leaves them, PyTorch's defaults and
`nn.MultiheadAttention`'s packed Xavier q/k/v: `layers/group_decoding.py`); video
sequences `[B, T, C]` are read as positions (the released head sees image tokens only); training
is the package's (`config.train.loss="asl"` with its defaults γ− = 4, γ+ = 0, clip 0.05 is the
released loss, summed over labels and averaged over the batch instead of summed over both),
without the released EMA or OneCycle schedule.
"""

import keras
from keras import ops

from cma_tf.heads.projection import deepest, deepest_shape
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers import torch_init
from cma_tf.layers.group_decoding import GroupDecoderLayer, GroupFullyConnected
from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register, sync_sublayer_trainability

UNITS = 768  # the released decoder_embedding
HEADS = 8
FFN_PER_UNIT = 2048 / 768  # the released dim_feedforward over decoder_embedding
MAX_GROUPS = 100  # the released num_of_groups=-1 → min(100, N)


def default_groups(num_classes):
    """`K` of the released default: one query per label up to 100 labels, 100 beyond."""
    return min(MAX_GROUPS, num_classes)


@register
class MLDecoderHead(keras.layers.Layer):
    """ML-Decoder over the deepest backbone map (image) or the frame features (video).

    Args:
        num_classes: int, `N`.
        feature_channels: int or None, `d` (None: 768, the released).
        transformer_heads: int or None (None: 8).
        transformer_ffn_units: int or None (None: round(d · 2048 / 768)).
        transformer_dropout: float. Default 0.1.
        decoder_layers: int ≥ 1 or None (None: 1).
        decoder_groups: int or None, `K` (None: min(100, N)); at most `N`.
        init: "keras" (default) or "official" (the released PyTorch initialisation).

    Call args:
        features: list of backbone maps, shallow to deep; only the last is used.
        return_attention: also return `[A]`, the cross-attention `[B, K, M]` of the last layer.

    Examples:
    >>> head = MLDecoderHead(5, feature_channels=8, transformer_heads=2, decoder_groups=2)
    >>> tuple(head([keras.random.normal((2, 4, 4, 16))]).shape)
    (2, 5)
    """

    def __init__(
        self, num_classes, feature_channels=None, transformer_heads=None, transformer_ffn_units=None,
        transformer_dropout=0.1, decoder_layers=None, decoder_groups=None, init="keras", **kwargs
    ):
        super().__init__(**kwargs)
        torch_init.check_init(init, self.name)
        groups = decoder_groups or default_groups(num_classes)
        if not 1 <= groups <= num_classes or (decoder_layers is not None and decoder_layers < 1):
            raise ValueError(
                f"{self.name}: 1 ≤ decoder_groups ≤ {num_classes} labels and decoder_layers ≥ 1 expected, "
                f"got {decoder_groups} and {decoder_layers}"
            )
        self.num_classes = num_classes
        self.feature_channels = feature_channels
        self.transformer_heads = transformer_heads
        self.transformer_ffn_units = transformer_ffn_units
        self.transformer_dropout = transformer_dropout
        self.decoder_layers = decoder_layers
        self.decoder_groups = decoder_groups
        self.groups = groups
        self.init = init
        self.units = feature_channels or UNITS
        ffn = transformer_ffn_units or round(self.units * FFN_PER_UNIT)
        self.embedding = keras.layers.Dense(self.units, activation="relu", name="embedding", dtype=self.dtype_policy)
        self.decoder = [
            GroupDecoderLayer(
                self.units, transformer_heads or HEADS, ffn, transformer_dropout, init=init, name=f"decoder_{i}",
                dtype=self.dtype_policy,
            )
            for i in range(decoder_layers or 1)
        ]
        self.classifier = GroupFullyConnected(num_classes, name="classifier", dtype=self.dtype_policy)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        shape = deepest_shape(input_shape)
        if self.init == "official":
            torch_init.set_linear_default(self.embedding, shape[-1])  # the released nn.Linear `embed_standart`
        self.embedding.build(shape)
        self.queries = self.add_weight(
            name="queries", shape=(self.groups, self.units), trainable=False,
            initializer=keras.initializers.RandomNormal(stddev=1.0),
        )
        tokens = (shape[0], None, self.units)
        queries = (shape[0], self.groups, self.units)
        for layer in self.decoder:
            layer.build(queries, tokens)
        self.classifier.build(queries)

    def call(self, features, training=None, return_attention=False):
        memory = self.embedding(flatten_positions(deepest(features)))
        queries = ops.cast(self.queries, self.compute_dtype)
        tokens = ops.broadcast_to(queries[None], (ops.shape(memory)[0],) + tuple(queries.shape))
        attention = None
        for layer in self.decoder:
            tokens, attention = layer(tokens, memory, training=training, return_attention=True)
        logits = self.classifier(tokens)
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
                "decoder_layers": self.decoder_layers,
                "decoder_groups": self.decoder_groups,
                "init": self.init,
            }
        )
        return config


register_head(
    HeadSpec(
        "ml_decoder", MLDecoderHead,
        options=(
            "feature_channels", "transformer_heads", "transformer_ffn_units", "transformer_dropout",
            "decoder_layers", "decoder_groups", "init",
        ),
        description="group decoding with K ≤ 100 frozen queries, scales to thousands of labels "
        "(Ridnik et al., ML-Decoder, WACV 2023)",
    )
)
