"""The losses a classifier trains with, from logits: the weighted binary cross-entropy of
Eq. 12 (the paper's, `config.train.loss="bce"`) and the asymmetric loss (`"asl"`).

**Eq. 12.**
The printed Eq. 12 has a typo, `(1 − y)(1 − log y*)`; the loss meant (and used here) is

    L = −Σ_k w_k [y_k log y*_k + (1 − y_k) log(1 − y*_k)],
    w_k = y_k e^{β(1 − p_k)} + (1 − y_k) e^{β p_k},

with `p_k` the frequency of label k in the training set. β = 0 gives the plain BCE summed
over classes. `y* = σ(logit)`; `−log σ(l) = softplus(−l)` and `−log(1 − σ(l)) = softplus(l)`
keep it finite for any logit.
"""

import keras
from keras import ops

from cma_tf.saving import register


@register
class WeightedBinaryCrossentropy(keras.losses.Loss):
    """Eq. 12, summed over classes, averaged over the batch (`sum_over_batch_size` reduction).

    Args:
        label_frequencies: sequence of `N` floats, `p_k` (only used when `beta != 0`).
        beta: float, β of Eq. 12 (0 for COCO and YouTube-8M, 0.4 for NUS-WIDE). Default 0.
    """

    def __init__(self, label_frequencies=None, beta=0.0, name="weighted_bce", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_frequencies = None if label_frequencies is None else [float(p) for p in label_frequencies]
        self.beta = float(beta)
        if self.beta and self.label_frequencies is None:
            raise ValueError("beta != 0 needs label_frequencies (p_k of Eq. 12)")

    def call(self, y_true, y_pred):
        logits = ops.convert_to_tensor(y_pred)
        labels = ops.cast(y_true, logits.dtype)
        per_class = labels * ops.softplus(-logits) + (1.0 - labels) * ops.softplus(logits)
        if self.beta:
            p = ops.convert_to_tensor(self.label_frequencies, dtype=logits.dtype)
            weights = labels * ops.exp(self.beta * (1.0 - p)) + (1.0 - labels) * ops.exp(self.beta * p)
            per_class = weights * per_class
        return ops.sum(per_class, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update({"label_frequencies": self.label_frequencies, "beta": self.beta})
        return config


@register
class AsymmetricLoss(keras.losses.Loss):
    """The asymmetric loss (ASL; Ridnik et al., ICCV 2021), as Query2Label and ML-Decoder train:

        p = σ(z),  p_m = min(1, 1 − p + m)          (m: the probability margin, `clip`)
        L = −Σ_k [ y_k (1 − p_k)^{γ+} log p_k + (1 − y_k) (1 − p_m,k)^{γ−} log p_m,k ]

    summed over classes and averaged over the batch, as Eq. 12 is here. The official
    repositories reduce it otherwise: ML-Decoder's `losses.py` sums over the batch too, and
    Query2Label's `AsymmetricLossOptimized` returns the mean over batch and classes × 1000; a
    learning rate copied from either needs rescaling by the batch size or by 1000 / N.

    `log p` is `−softplus(−z)` (finite for any logit; the repositories clamp p at ε = 1e-8
    instead, which differs only where p < 1e-8). With `detach_focusing` (the repositories'
    `disable_torch_grad_focal_loss`) the focusing weights carry no gradient.

    Args:
        gamma_pos: float ≥ 0, γ+. Default 0 (both repositories).
        gamma_neg: float ≥ 0, γ−. Default 4 (ML-Decoder; Query2Label's COCO recipe uses 2).
        clip: float in [0, 1), the margin m. Default 0.05 (ML-Decoder; Query2Label uses 0).
        detach_focusing: bool. Default True.
    """

    def __init__(self, gamma_pos=0.0, gamma_neg=4.0, clip=0.05, detach_focusing=True, name="asymmetric_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if gamma_pos < 0 or gamma_neg < 0 or not 0 <= clip < 1:
            raise ValueError(f"ASL needs γ+ ≥ 0, γ− ≥ 0 and 0 ≤ clip < 1, got {gamma_pos}, {gamma_neg}, {clip}")
        self.gamma_pos = float(gamma_pos)
        self.gamma_neg = float(gamma_neg)
        self.clip = float(clip)
        self.detach_focusing = bool(detach_focusing)

    def call(self, y_true, y_pred):
        logits = ops.convert_to_tensor(y_pred)
        labels = ops.cast(y_true, logits.dtype)
        p = ops.sigmoid(logits)
        log_p = -ops.softplus(-logits)
        if self.clip:
            shifted = ops.maximum(p - self.clip, 0.0)  # 1 − p_m
            log_p_m = ops.log(1.0 - shifted)  # ≥ log(m): finite
        else:
            shifted = p
            log_p_m = -ops.softplus(logits)  # log(1 − p)
        weight_pos = ops.power(1.0 - p, self.gamma_pos) if self.gamma_pos else 1.0
        weight_neg = ops.power(shifted, self.gamma_neg) if self.gamma_neg else 1.0
        if self.detach_focusing:
            weight_pos = ops.stop_gradient(weight_pos)
            weight_neg = ops.stop_gradient(weight_neg)
        per_class = -(labels * weight_pos * log_p + (1.0 - labels) * weight_neg * log_p_m)
        return ops.sum(per_class, axis=-1)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"gamma_pos": self.gamma_pos, "gamma_neg": self.gamma_neg, "clip": self.clip,
             "detach_focusing": self.detach_focusing}
        )
        return config
