"""The MMDSR head (`config.model.head="mmdsr"`), RECONSTRUCTED from an abstract.

Kuang & Li, "Multi-Label Image Classification with Multi-Layered Multi-Perspective Dynamic
Semantic Representation", Machine Learning 113 (2024) 3443-3461, doi:10.1007/s10994-023-06440-8
(precursor: MGSGN, Kuang, Zhu & Li, ECML-PKDD 2023, doi:10.1007/978-3-031-43418-1_4).

RECONSTRUCTED: only the abstracts of the two papers are public; no full text and no code were
found. The abstract names three modules and says one sentence about each. Everything below,
every equation, width, default and the way the scores are combined, is our reconstruction of
those three names from public reference implementations, not the paper's method:

1. Multi-scale feature reconstruction by cross-layer attention (MFR): 1×1 conv-BN-ReLU of the
   backbone's two deepest maps to a common width `C`, multi-head attention deep → shallow,
   then shallow (pooled 2×2) → deep, each behind a learnable gate initialised to 0 (DANet /
   non-local convention). `cma_tf/layers/cross_layer_attention.py` `CrossLayerAttention`.
2. Channel dual-branch cross-attention (CDCA), on each scale: DANet's channel attention
   (Fu et al., CVPR 2019) as the local branch, squeeze-and-excitation (Hu et al., CVPR 2018)
   as the global one, fused by a learned per-image gate α. `cma_tf/layers/channel_attention.py`
   `ChannelDualBranchAttention`.
3. Dynamic semantic representation (DSR): per-scale category-specific vectors from class maps
   (ADD-GCN's SAM, Ye et al., ECCV 2020, `Yejin0111/ADD-GCN` `models/add_gcn.py`;
   `cma_tf/layers/category_vectors.py`), summed over the two scales, plus a semantic prior
   `Dense(C)(E)` from the label encoder (ASGE or Word2Vec, as `CMAHead` reads `E`); a per-image
   graph from IDGL's multi-perspective weighted cosine (Chen et al., NeurIPS 2020,
   `hugochan/IDGL` `src/core/layers/graphlearn.py`), normalised `D^{-1/2}(S + I)D^{-1/2}`;
   two LeakyReLU(0.2) graph convolutions with a residual (ML-GCN / ADD-GCN;
   `cma_tf/layers/dynamic_graph.py`); a per-class linear classifier (`PerClassClassifier`).
   The logits average ADD-GCN's two scores: `(s_m + s_r) / 2`, `s_m` the top-1 spatial max of
   the class-map logits (averaged over the scales), `s_r` the graph branch's.

Left out: mixing a static label graph into `Â` (the head has no label-graph input), and any
per-score or per-scale supervision (one loss on the averaged logits, as ADD-GCN trains).
Nothing here reproduces, or is tuned to, the numbers the paper reports.
"""

import keras
from keras import ops

from cma_tf.heads.cma import LabelEmbeddingHead
from cma_tf.heads.registry import HeadSpec, register_head
from cma_tf.layers.category_vectors import CategorySpecificVectors
from cma_tf.layers.channel_attention import ChannelDualBranchAttention
from cma_tf.layers.cross_layer_attention import CrossLayerAttention
from cma_tf.layers.cross_modality import PerClassClassifier
from cma_tf.layers.dynamic_graph import GraphConvolution, WeightedCosineGraph
from cma_tf.saving import register, sync_sublayer_trainability

# `C` when `feature_channels` is None: the width of the reconstruction at ResNet-101 scale
# (ADD-GCN's `conv_transform` and its GCN are 1024 wide; ResNet-101's `I_1` has 1024 channels).
PAPER_SCALE_CHANNELS = 1024
GCN_LAYERS = 2  # ML-GCN and ADD-GCN use two graph convolutions


@register
class MMDSRHead(LabelEmbeddingHead):
    """MMDSR (RECONSTRUCTED, see the module docstring): MFR → CDCA per scale → DSR, on the
    backbone's two deepest maps `I_1` (shallow) and `I_2` (deep).

        F_1', F_2'  = MFR(I_1, I_2)                           width C
        Y_s         = CDCA(F_s')                              s = 1, 2
        V_s, L_s    = SAM_s(Y_s)                              [B, N, C], class-map logits [B, M_s, N]
        V           = V_1 + V_2 + Dense_C(E)
        Â           = D^{-1/2}(S(V) + I)D^{-1/2},  S_ij = (1/m) Σ_p cos(w_p ⊙ v_i, w_p ⊙ v_j), kept where > ε
        Z           = V + LReLU(Â LReLU(Â V W_1) W_2)
        s_r         = per-class linear(Z);   s_m = mean_s max_positions L_s
        logits      = (s_m + s_r) / 2

    Every piece is taken from a public implementation named in the module docstring; none is
    from the MMDSR paper, whose text was not available, and nothing suggests this head gives
    its reported numbers. Paper-scale choice for ResNet-101 at 448: `feature_channels=1024`,
    `attention_heads=8`; the defaults fit the CPU demo (128 channels, 4 heads).

    Args:
        num_classes: int, `N`.
        label_encoder: an `ASGEEncoder` (Φ) or `FixedLabelEmbedding` (Word2Vec); freeze it
            (`trainable=False`) to keep `E` fixed.
        feature_channels: int or None, the common width `C` of the reconstruction, the class
            vectors and the GCN. None means `PAPER_SCALE_CHANNELS` (1024): the two maps have
            different widths, so "keep the backbone's channels" (as `CMAHead` reads None)
            names no single width.
        attention_heads: int, heads of each cross-layer attention. Default 4 (paper scale: 8).
        perspectives: int, `m` of the weighted cosine. Default 4 (IDGL's).
        graph_epsilon: float ≥ 0, `ε` of the ε-neighbourhood (`S_ij > ε` kept). Default 0 (IDGL's).
        se_reduction: int, SE reduction ratio of CDCA. Default 16.

    Call args:
        features: the backbone's maps, shallow to deep (the last two are read).
        return_attention: also return the class maps `σ(L_s)` as `[B, N, M_s]`, one per scale.

    Returns:
        logits `[B, N]` (and the list of class maps when asked).

    Examples:
    >>> from cma_tf.graph.asge import ASGEEncoder
    >>> head = MMDSRHead(5, ASGEEncoder(5, units=8), feature_channels=16)
    >>> head([keras.random.normal((2, 8, 8, 16)), keras.random.normal((2, 4, 4, 32))]).shape
    (2, 5)
    """

    def __init__(
        self, num_classes, label_encoder, feature_channels=None, attention_heads=4, perspectives=4,
        graph_epsilon=0.0, se_reduction=16, **kwargs
    ):
        super().__init__(num_classes, label_encoder, **kwargs)
        self.feature_channels = feature_channels
        self.attention_heads = attention_heads
        self.perspectives = perspectives
        self.graph_epsilon = graph_epsilon
        self.se_reduction = se_reduction
        self.channels = PAPER_SCALE_CHANNELS if feature_channels is None else feature_channels
        dtype = self.dtype_policy
        self.reconstruction = CrossLayerAttention(self.channels, attention_heads, name="mfr", dtype=dtype)
        self.channel_attention = [
            ChannelDualBranchAttention(se_reduction, name=f"cdca{scale}", dtype=dtype) for scale in (1, 2)
        ]
        self.category_vectors = [
            CategorySpecificVectors(num_classes, self.channels, name=f"sam{scale}", dtype=dtype) for scale in (1, 2)
        ]
        self.semantic_prior = keras.layers.Dense(self.channels, name="semantic_prior", dtype=dtype)
        self.graph = WeightedCosineGraph(perspectives, graph_epsilon, name="graph", dtype=dtype)
        self.gcn = [
            GraphConvolution(self.channels, name=f"gcn{index}", dtype=dtype) for index in range(1, GCN_LAYERS + 1)
        ]
        self.classifier = PerClassClassifier(num_classes, name="classifier", dtype=dtype)
        sync_sublayer_trainability(self)

    def build(self, input_shape):
        if not self.label_encoder.built:
            self.label_encoder.build()
        taps = [tuple(shape) for shape in input_shape[-2:]]
        self.reconstruction.build(taps)
        for attention, vectors, shape in zip(
            self.channel_attention, self.category_vectors, self.reconstruction.compute_output_shape(taps)
        ):
            attention.build(shape)
            vectors.build(shape)
        self.semantic_prior.build((self.num_classes, self.label_encoder.units))
        nodes = (taps[-1][0], self.num_classes, self.channels)
        self.graph.build(nodes)
        for layer in self.gcn:
            layer.build(nodes, (nodes[0], self.num_classes, self.num_classes))
        self.classifier.build(nodes)

    def score_parts(self, features, training=None):
        """`(s_m [B, N], s_r [B, N], class-map logits [L_1, L_2] each [B, M_s, N])`."""
        embeddings = self.label_embeddings(training=training)
        maps = self.reconstruction(features, training=training)
        vectors, class_logits = [], []
        for attention, category_vectors, scale in zip(self.channel_attention, self.category_vectors, maps):
            scale_vectors, scale_logits = category_vectors(attention(scale))
            vectors.append(scale_vectors)
            class_logits.append(scale_logits)
        nodes = vectors[0] + vectors[1] + self.semantic_prior(embeddings)[None]
        adjacency = self.graph(nodes)
        hidden = nodes
        for layer in self.gcn:
            hidden = layer(hidden, adjacency)
        graph_scores = self.classifier(nodes + hidden)
        map_scores = ops.mean(ops.stack([ops.max(logits, axis=1) for logits in class_logits], axis=0), axis=0)
        return map_scores, graph_scores, class_logits

    def call(self, features, training=None, return_attention=False):
        map_scores, graph_scores, class_logits = self.score_parts(features, training=training)
        logits = (map_scores + graph_scores) / 2.0
        if not return_attention:
            return logits
        return logits, [ops.transpose(ops.sigmoid(scale_logits), (0, 2, 1)) for scale_logits in class_logits]

    def compute_output_shape(self, input_shape):
        return (input_shape[-1][0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "feature_channels": self.feature_channels,
                "attention_heads": self.attention_heads,
                "perspectives": self.perspectives,
                "graph_epsilon": self.graph_epsilon,
                "se_reduction": self.se_reduction,
            }
        )
        return config


register_head(
    HeadSpec(
        "mmdsr", MMDSRHead, label_embeddings=True, taps=2, options=("feature_channels",),
        description=(
            "MMDSR (Kuang & Li, 2024), RECONSTRUCTED from its abstract (no public text or code): cross-layer "
            "attention, channel dual-branch attention, a per-image weighted-cosine label graph + GCN"
        ),
    )
)
