"""The weighted binary cross-entropy of Eq. 12, from logits.

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
