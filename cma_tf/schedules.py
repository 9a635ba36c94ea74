"""Learning-rate schedules the package adds to Keras' own.

`LinearWarmup` ramps the learning rate linearly from `lr/warmup_steps` to the schedule it wraps
over the first `warmup_steps` steps (`config.train.warmup_epochs`). The paper trains without a
warm-up; the transformer-style heads (HSVLT's interaction blocks, Query2Label's decoder) are
trained with one in their released recipes, and a benchmark that compares heads on one recipe
needs one that none of them diverges under (docs/design.md §2.18).

`OneCycle` is PyTorch's `OneCycleLR` as Query2Label and ML-Decoder call it
(`config.train.schedule="onecycle"`, docs/design.md §2.24).
"""

import math

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


@register
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """`torch.optim.lr_scheduler.OneCycleLR` with `anneal_strategy="cos"`, `three_phase=False`:
    cosine from `max_lr / div_factor` up to `max_lr` over the first `pct_start · total_steps`
    steps, then cosine down to `max_lr / div_factor / final_div_factor` at step `total_steps - 1`.

    As in PyTorch, the rise ends at step `pct_start · total_steps - 1` and the fall at
    `total_steps - 1`; a step past the end keeps the last value (PyTorch raises). Only the
    learning rate cycles: PyTorch's `cycle_momentum` (Adam's β1 between 0.85 and 0.95) is not
    reproduced.

    Args:
        max_lr: the peak learning rate (`config.train.learning_rate`).
        total_steps: int ≥ 1, epochs × steps per epoch.
        pct_start: the fraction of the steps spent rising, in (0, 1).
        div_factor, final_div_factor: as PyTorch's (25 and 1e4, its defaults).

    Examples:
    >>> schedule = OneCycle(1.0, 10, pct_start=0.2)
    >>> [round(float(schedule(step)), 4) for step in (0, 1, 9)]
    [0.04, 1.0, 0.0]
    """

    def __init__(self, max_lr, total_steps, pct_start=0.3, div_factor=25.0, final_div_factor=1e4):
        if total_steps < 1:
            raise ValueError(f"total_steps must be at least 1, got {total_steps}")
        if not 0.0 < pct_start < 1.0:
            raise ValueError(f"pct_start must be in (0, 1), got {pct_start}")
        self.max_lr = float(max_lr)
        self.total_steps = int(total_steps)
        self.pct_start = float(pct_start)
        self.div_factor = float(div_factor)
        self.final_div_factor = float(final_div_factor)

    def __call__(self, step):
        initial = self.max_lr / self.div_factor
        final = initial / self.final_div_factor
        rise_end = self.pct_start * self.total_steps - 1.0
        last = self.total_steps - 1.0
        step = ops.minimum(ops.cast(step, "float32"), last)
        # PyTorch divides by `rise_end` (0 when pct_start · total_steps = 1: its ZeroDivisionError).
        rising = _cosine(initial, self.max_lr, step / max(rise_end, 1.0))
        falling = _cosine(self.max_lr, final, (step - rise_end) / (last - rise_end))
        return ops.where(step <= rise_end, rising, falling)

    def get_config(self):
        return {
            "max_lr": self.max_lr, "total_steps": self.total_steps, "pct_start": self.pct_start,
            "div_factor": self.div_factor, "final_div_factor": self.final_div_factor,
        }


def _cosine(start, end, fraction):
    """PyTorch's `_annealing_cos`: from `start` at fraction 0 to `end` at 1."""
    return end + (start - end) / 2.0 * (ops.cos(math.pi * fraction) + 1.0)
