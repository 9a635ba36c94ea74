"""Multi-scale score fusion, Eq. 11: `y*_k = (1/L) Σ_l f_cma(I_l, E)_k`."""

import keras
from keras import ops

from cma_tf.saving import register


@register
class MultiScaleScoreFusion(keras.layers.Layer):
    """Averages per-scale probabilities (Eq. 11) and returns the logit of that average.

    With per-scale logits `l_s`, `p = mean_s σ(l_s)`. The layer returns `logit(p)` computed
    stably as `logsumexp_s log σ(l_s) − logsumexp_s log σ(−l_s)` (the `−log L` terms cancel),
    so `σ(output)` is exactly Eq. 11 and the loss can still be taken from logits.

    Call args:
        logits: list of `L` tensors `[B, N]`.

    Returns:
        fused logits `[B, N]`.
    """

    def call(self, logits):
        stacked = ops.stack(list(logits), axis=0)
        log_p = ops.logsumexp(ops.log_sigmoid(stacked), axis=0)
        log_not_p = ops.logsumexp(ops.log_sigmoid(-stacked), axis=0)
        return log_p - log_not_p

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])
