"""The YouTube-8M starter code's mixture-of-experts classifier (MoE), returning logits.

For each class `c` and mixture `m < M`, a gate `g_cm` and an expert `e_cm`, both linear in the
video vector `h`; a dummy gate `g_cM` belongs to an expert that always answers 0:

    π_c = softmax_m(g_c0 … g_cM),   p_c = Σ_{m<M} π_cm · σ(e_cm)

(google/youtube-8m `video_level_models.py` `MoeModel`, L57-113: gates `[d, V(M+1)]` without
bias, experts `[d, VM]` with bias, both Xavier-uniform as slim's fully connected layers, L2 on
the weights only; the columns are class-major, `c·(M+1) + m`.) The WILLOW code (Miech et al.
2017, antoine77340/Youtube-8M-WILLOW `video_level_models.py` L126-153) adds probability
gating: `p ← p ⊙ σ(BN(p · W_p))`, Context Gating in label space.

The heads of this package return logits (the losses take `from_logits`, serving applies σ).
MoE gives a probability, and `logit(p)` computed as `log p − log(1 − p)` loses every digit when
`p` is near 1 in float32; so the layer also carries `q = 1 − p` without a subtraction,
`q_c = π_cM + Σ_{m<M} π_cm · σ(−e_cm)` (and, gated, `q ← q + p · σ(−z)`), and returns

    logit_c = log(p_c + ε) − log(q_c + ε),   σ(logit_c) = (p_c + ε) / (1 + 2ε),   ε = 1e-5.

Binary cross-entropy on these logits is the starter code's loss on `p` with its ε = 1e-5
(`losses.py` L39-55: `−y log(p + ε) − (1 − y) log(1 − p + ε)`) plus the constant `log(1 + 2ε)`,
so training sees the official gradient; `σ(logit)` differs from `p` by at most ε. With
`config.model.label_prior` the model adds a fixed offset to these logits
(`layers/label_prior.py`), and the gradient is no longer the official one.
"""

import math

import keras
from keras import ops

from cma_tf.layers.context_gating import ContextGating
from cma_tf.layers.ops import flatten_positions
from cma_tf.saving import register

PROBABILITY_EPSILON = 1e-5  # the starter code's ε of its cross-entropy (losses.py L39-55)


def mixture_probabilities(gates, experts):
    """`gates` `[..., V, M+1]` (the last is the dummy expert's), `experts` `[..., V, M]` →
    `(p, q)` `[..., V]`: the mixture's probability and `1 − p`, each summed from positive terms."""
    mixtures = ops.shape(experts)[-1]
    weights = ops.softmax(gates, axis=-1)
    expert_weights = weights[..., :mixtures]
    p = ops.sum(expert_weights * ops.sigmoid(experts), axis=-1)
    q = weights[..., mixtures] + ops.sum(expert_weights * ops.sigmoid(-experts), axis=-1)
    return p, q


def probabilities_to_logits(p, q, epsilon=PROBABILITY_EPSILON):
    """`log(p + ε) − log(q + ε)`, with `q = 1 − p` given (see the module docstring); in float32,
    as ε is below float16's resolution near 1."""
    p, q = ops.cast(p, "float32"), ops.cast(q, "float32")
    return ops.log(p + epsilon) - ops.log(q + epsilon)


def slim_l2(l2):
    """slim's `l2_regularizer(λ)` is `λ · Σw² / 2`; Keras' `L2(λ)` is `λ · Σw²`."""
    return keras.regularizers.L2(l2 / 2.0) if l2 else None


@register
class MixtureOfExperts(keras.layers.Layer):
    """MoE on one vector per video: `h` `[B, d]` → logits `[B, V]` (`σ(logits)` = the MoE's `p`).

    Args:
        num_classes: int, `V`.
        mixtures: int, `M` (experts per class besides the dummy one). Default 2 (the starter
            code's `moe_num_mixtures`).
        l2: float, slim's L2 penalty λ on the gate and expert weights (1e-8 in the starter code,
            1e-6 in WILLOW's commands; added as Keras `L2(λ/2)`). Default 0.
        probability_gating: bool, WILLOW's `p ← p ⊙ σ(BN(p·W_p))`, `W_p` `[V, V]` ~ N(0, 1/√V),
            without L2. Default False.
        batchnorm_momentum: float, of the probability gate's BatchNorm (slim's decay 0.999).

    Examples:
    >>> MixtureOfExperts(4)(keras.ops.ones((2, 8))).shape
    (2, 4)
    """

    def __init__(self, num_classes, mixtures=2, l2=0.0, probability_gating=False, batchnorm_momentum=0.999, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.mixtures = mixtures
        self.l2 = l2
        self.probability_gating = probability_gating
        self.batchnorm_momentum = batchnorm_momentum
        self.gates = keras.layers.Dense(
            num_classes * (mixtures + 1), use_bias=False, kernel_regularizer=slim_l2(l2), name="gates",
            dtype=self.dtype_policy,
        )
        self.experts = keras.layers.Dense(
            num_classes * mixtures, kernel_regularizer=slim_l2(l2), name="experts", dtype=self.dtype_policy,
        )
        self.gate = None
        if probability_gating:
            self.gate = ContextGating(
                kernel_initializer=keras.initializers.RandomNormal(0.0, 1.0 / math.sqrt(num_classes)),
                batchnorm_momentum=batchnorm_momentum, name="probability_gating", dtype=self.dtype_policy,
            )

    def build(self, input_shape):
        self.gates.build(input_shape)
        self.experts.build(input_shape)
        if self.gate is not None:
            self.gate.build((input_shape[0], self.num_classes))

    def call(self, inputs, training=None):
        batch = ops.shape(inputs)[0]
        gates = ops.reshape(self.gates(inputs), (batch, self.num_classes, self.mixtures + 1))
        experts = ops.reshape(self.experts(inputs), (batch, self.num_classes, self.mixtures))
        p, q = mixture_probabilities(gates, experts)
        if self.gate is not None:
            p, q = self.gate.gate_probabilities(p, q, training=training)
        return probabilities_to_logits(p, q)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({
            "num_classes": self.num_classes, "mixtures": self.mixtures, "l2": self.l2,
            "probability_gating": self.probability_gating, "batchnorm_momentum": self.batchnorm_momentum,
        })
        return config


@register
class PerClassMixtureOfExperts(keras.layers.Layer):
    """MoE on one vector per class: `h_k` `[B, V, C]` → logits `[B, V]`, the classifier option
    (`config.model.classifier="moe"`) of the CMA and self-attention heads in place of the
    per-class linear classifier of Eq. 10.

    Class `k` reads its own `h_k` with its own `[C, M+1]` gates and `[C, M]` experts (+ bias):
    the starter code's class-major MoE, where class `k` owns columns `k(M+1)…k(M+1)+M` of the
    gates; given the same `h` for every class the two are the same function. As
    `PerClassClassifier`, called with the attention `a` `[B, V, P]` and `features=I`
    `[B, ..., C]` it applies Eq. 9 fused: gates and experts are linear in `h_k = Σ_i a_k^i I^i`,
    so `I` is projected onto the `2M+1` weight vectors of each class (`[B, V, 2M+1, P]`) and
    weighted by the attention, without forming `h` (docs/design.md §2.22).

    Args:
        num_classes: int, `V`.
        mixtures: int, `M`. Default 2.
        l2: float, slim's λ on the gate and expert weights (added as `L2(λ/2)`). Default 0.

    Call args:
        pooled: `h` `[B, V, C]`; or, with `features`, the attention `a` `[B, V, P]`.
        features: None, or `I` `[B, ..., C]` (P positions).
    """

    def __init__(self, num_classes, mixtures=2, l2=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = num_classes
        self.mixtures = mixtures
        self.l2 = l2

    def build(self, input_shape):
        channels = input_shape[-1]
        outputs = 2 * self.mixtures + 1
        limit = math.sqrt(6.0 / (channels + outputs))  # Xavier-uniform over each class's [C, 2M+1]
        self.kernel = self.add_weight(
            name="kernel", shape=(self.num_classes, channels, outputs),
            initializer=keras.initializers.RandomUniform(-limit, limit), regularizer=slim_l2(self.l2),
        )
        self.bias = self.add_weight(name="bias", shape=(self.num_classes, self.mixtures), initializer="zeros")

    def call(self, pooled, features=None):
        if features is None:
            combined = ops.einsum("bkc,kcj->bkj", pooled, self.kernel)
        else:
            projected = ops.einsum("bpc,kcj->bkjp", flatten_positions(features), self.kernel)
            combined = ops.einsum("bkp,bkjp->bkj", pooled, projected)
        gates = combined[..., : self.mixtures + 1]
        experts = combined[..., self.mixtures + 1:] + self.bias
        return probabilities_to_logits(*mixture_probabilities(gates, experts))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update({"num_classes": self.num_classes, "mixtures": self.mixtures, "l2": self.l2})
        return config
