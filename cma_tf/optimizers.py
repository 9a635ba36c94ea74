"""Keras optimizers with the options of the heads' official recipes (docs/design.md §2.24).

`RecipeSGD`, `RecipeAdam` and `RecipeAdamW` are Keras' SGD, Adam and AdamW with four options
PyTorch recipes use and Keras lacks, all per variable inside `update_step`, so they hold for
every optimizer alike and under `tf.distribute`:

- a learning-rate multiplier for a named set of variables (the backbone's: PyTorch's parameter
  groups, e.g. ML-GCN's backbone at a tenth of the head's rate). The step itself runs at the
  scaled rate, which for Adam is not the same as scaling the gradients (Adam's step does not
  depend on the gradient's scale). The variables are named by their `path`, which a `.keras`
  file gives back unchanged, so the multiplier survives saving and resuming;
- decoupled weight decay (Keras', AdamW's: `w -= lr·wd·w` before the step) at the variable's own
  rate, `lr·multiplier·wd`, as PyTorch applies a group's `weight_decay` with the group's `lr`;
- L2 weight decay (`weight_decay_mode="l2"`): `wd·w` added to the gradient after clipping, before
  the step, as PyTorch's SGD and Adam `weight_decay` do;
- `decay_1d=False`: no weight decay for 1-D variables (biases, normalisation scales and offsets),
  ML-Decoder's `add_weight_decay`.

The exponential moving average of the weights is Keras' own (`use_ema`, `ema_momentum`): its
averages are optimizer variables, so a checkpoint keeps them. Keras writes the averages over
the weights at the end of every `fit` call (`finalize_variable_values`), and the trainer calls
`fit` once per epoch; these optimizers do not, so training goes on from the raw weights, and
`swap_averaged_weights` puts the averages in for validation and saving (`AveragedWeights` in
`training/callbacks.py`).
"""

import keras
from keras import ops

from cma_tf.saving import register

WEIGHT_DECAY_MODES = ("decoupled", "l2")


class RecipeOptions:
    """The options shared by the three optimizers (a mixin before the Keras class).

    Args:
        scaled_variables: paths (`variable.path`) of the variables that train at
            `lr_multiplier` × the learning rate (the backbone's trainable variables).
        lr_multiplier: float > 0, their learning-rate factor.
        weight_decay_mode: "decoupled" (Keras', AdamW's) or "l2" (added to the gradient).
        decay_1d: False exempts every 1-D variable from weight decay.
        **kwargs: the Keras optimizer's own (`learning_rate`, `weight_decay`, `use_ema`, …).
    """

    def __init__(self, *args, scaled_variables=(), lr_multiplier=1.0, weight_decay_mode="decoupled",
                 decay_1d=True, **kwargs):
        super().__init__(*args, **kwargs)
        if weight_decay_mode not in WEIGHT_DECAY_MODES:
            raise ValueError(f"weight_decay_mode must be one of {WEIGHT_DECAY_MODES}, got {weight_decay_mode!r}")
        self.scaled_variables = sorted(scaled_variables)
        self.lr_multiplier = float(lr_multiplier)
        self.weight_decay_mode = weight_decay_mode
        self.decay_1d = bool(decay_1d)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        paths = [variable.path for variable in variables]
        missing = sorted(set(self.scaled_variables) - set(paths))
        if missing:
            raise ValueError(
                f"{len(missing)} variables to train at lr × {self.lr_multiplier} are not among the trainable "
                f"variables the optimizer is built on (e.g. {missing[0]!r}): built for another model"
            )
        scaled = set(self.scaled_variables)
        # Python numbers by variable index, read when `update_step` is traced.
        self._lr_multipliers = [self.lr_multiplier if path in scaled else 1.0 for path in paths]
        self._decays = [self.decay_1d or len(variable.shape) > 1 for variable in variables]

    def _apply_weight_decay(self, variables):
        """Nothing here: `update_step` decays each variable at its own rate."""

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        multiplier = self._lr_multipliers[index]
        if multiplier != 1.0:
            learning_rate = ops.multiply(ops.cast(learning_rate, variable.dtype), multiplier)
        if self.weight_decay and self._decays[index] and self._use_weight_decay(variable):
            decay = ops.cast(self.weight_decay, variable.dtype)
            if self.weight_decay_mode == "l2":
                gradient = ops.add(gradient, ops.multiply(decay, variable))
            else:
                lr = ops.cast(learning_rate, variable.dtype)
                self.assign_sub(variable, ops.multiply(variable, ops.multiply(decay, lr)))
        return super().update_step(gradient, variable, learning_rate)

    def finalize_variable_values(self, var_list):
        """Keeps the raw weights at the end of a `fit` call (Keras would write the averages over
        them, and the next epoch's `fit` would train on from the averages)."""

    def swap_averaged_weights(self):
        """Exchanges the trained variables' values with their moving averages (`use_ema`); a
        second call swaps them back. Call it outside the training step (a callback)."""
        if not self.use_ema or not self.built:
            return
        for variable, average in zip(self._trainable_variables, self._model_variables_moving_average):
            raw = ops.convert_to_numpy(variable)
            variable.assign(average)
            average.assign(raw)

    def get_config(self):
        return dict(
            super().get_config(), scaled_variables=list(self.scaled_variables), lr_multiplier=self.lr_multiplier,
            weight_decay_mode=self.weight_decay_mode, decay_1d=self.decay_1d,
        )


@register
class RecipeSGD(RecipeOptions, keras.optimizers.SGD):
    """`keras.optimizers.SGD` with the options of `RecipeOptions`."""


@register
class RecipeAdam(RecipeOptions, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with the options of `RecipeOptions`."""


@register
class RecipeAdamW(RecipeOptions, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with the options of `RecipeOptions`."""


def averaging_optimizer(model):
    """The model's optimizer if it keeps a moving average of the weights it can swap in (a
    `RecipeOptions` with `use_ema`, also inside a mixed-precision `LossScaleOptimizer`), else None."""
    optimizer = getattr(model, "optimizer", None)
    optimizer = getattr(optimizer, "inner_optimizer", optimizer)
    if isinstance(optimizer, RecipeOptions) and optimizer.use_ema:
        return optimizer
    return None
