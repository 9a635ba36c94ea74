"""The training labels' prior as a fixed offset of the logits.

    logits_k = head_k(x) + log(p_k / (1 − p_k)),   p_k = (n_k + ½) / (n + 1)

with `n_k` the training examples that carry label `k` of `n` (the additive ½ keeps a label never
seen in training finite: `p_k = 1 / (2n + 2)`). A head whose output starts near 0 then starts
at the label prior, `σ(logits_k) ≈ p_k`, instead of at ½ for every label.

Why (docs/design.md §2.31): with thousands of rare labels (YouTube-8M: 3,862, most in a few
videos in a thousand) the loss at `σ = ½` is `N · log 2` per example, almost all of it from the
absent labels, and the first steps go to pushing every logit down together. Measured on the
`yt8m` preset (`bench/video_label_prior.py`): plain-SNet from zero biases, 4 epochs of Adam at
1e-3 one-cycle, read a validate GAP of 2.0 % after every epoch, what scoring every video with
the label frequencies gives; with this offset, the same run read 17.3 % after the first epoch
and 26.5 % after the fourth.
For a classifier whose last layer has a trainable bias the offset is exactly
initialising that bias at the prior's log-odds (the "prior" initialisation of RetinaNet, Lin et
al. 2017, §4.1); as a separate fixed offset it applies alike to every head, also those whose
output has no bias of its own (CMA's label-wise scores, a mixture of experts).

The offset is a non-trainable weight: it is saved with the model and served with it, and it has
no gradient, so the optimizer (and its moving average) and the replicas' all-reduce leave it as set.

A head whose logits are bounded keeps its bound, shifted: the mixture of experts' logits are
`log(p + ε) − log(q + ε)`, within ±11.5 (ε = 1e-5), so with the offset `o_k` its score for label
`k` stays below `σ(11.5 + o_k)`. At 12,000 training examples that caps a label never seen at
0.80 and a label seen once at 0.92; a label seen in 1 % of them reaches 0.999.
"""

import keras
import numpy as np
from keras import ops

from cma_tf.saving import register


def prior_log_odds(label_counts, num_examples):
    """`log(p_k / (1 − p_k))` with `p_k = (n_k + ½) / (n + 1)`, float32 `[N]`.

    Args:
        label_counts: `[N]` examples carrying each label.
        num_examples: `n`, the examples counted.
    """
    counts = np.asarray(label_counts, np.float64)
    if counts.ndim != 1:
        raise ValueError(f"label_counts must be [N], got the shape {counts.shape}")
    if num_examples < 0 or np.any(counts < 0) or np.any(counts > num_examples):
        raise ValueError(f"label counts must lie in [0, num_examples = {num_examples}], got {counts.min()}..{counts.max()}")
    prior = (counts + 0.5) / (num_examples + 1.0)
    return (np.log(prior) - np.log1p(-prior)).astype(np.float32)


@register
class LabelPriorOffset(keras.layers.Layer):
    """`logits [B, N]` → `logits + offset`, `offset` a non-trainable `[N]` weight (zeros until
    `set_prior`), kept in float32 whatever the dtype policy (it is added to float32 logits)."""

    def __init__(self, num_classes, **kwargs):
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)
        self.offset = self.add_weight(shape=(self.num_classes,), initializer="zeros", trainable=False, name="offset")

    def set_prior(self, label_counts, num_examples):
        """Sets the offset to `prior_log_odds(label_counts, num_examples)`."""
        values = prior_log_odds(label_counts, num_examples)
        if values.shape != (self.num_classes,):
            raise ValueError(f"{values.shape[0]} label counts for a model of {self.num_classes} labels")
        self.offset.assign(values)

    def call(self, logits):
        return ops.cast(logits, self.offset.dtype) + self.offset

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
