"""Learning-rate schedules the package adds to Keras' own.

`LinearWarmup` ramps the learning rate linearly from `lr/warmup_steps` to the schedule it wraps
over the first `warmup_steps` steps (`config.train.warmup_epochs`). The paper trains without a
warm-up; the transformer-style heads (HSVLT's interaction blocks, Query2Label's decoder) are
trained with one in their released recipes, and a benchmark that compares heads on one recipe
needs one that none of them diverges under (docs/design.md §2.18).
"""

import keras
from keras import ops

from cma_tf.saving import register


@register
class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """`lr(step) = after(step) · min(1, (step + 1) / warmup_steps)`.

    Args:
        after: a float or a `LearningRateSchedule`: the learning rate once warmed up (a wrapped
            schedule sees the global step, so its decay boundaries do not move).
        warmup_steps: int ≥ 1, steps of the linear ramp.

    Examples:
    >>> schedule = LinearWarmup(0.1, 4)
    >>> [round(float(schedule(step)), 3) for step in range(6)]
    [0.025, 0.05, 0.075, 0.1, 0.1, 0.1]
    """

    def __init__(self, after, warmup_steps):
        if warmup_steps < 1:
            raise ValueError(f"warmup_steps must be at least 1, got {warmup_steps}")
        self.after = after
        self.warmup_steps = int(warmup_steps)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        value = self.after(step) if callable(self.after) else self.after
        return value * ops.minimum(1.0, (step + 1.0) / self.warmup_steps)

    def get_config(self):
        after = self.after
        if isinstance(after, keras.optimizers.schedules.LearningRateSchedule):
            after = keras.optimizers.schedules.serialize(after)
        return {"after": after, "warmup_steps": self.warmup_steps}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["after"], dict):
            config["after"] = keras.optimizers.schedules.deserialize(config["after"])
        return cls(**config)
