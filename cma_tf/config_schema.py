"""The valid range of every numeric config field, and the check that holds a config to it.

`cma_tf/config_base.py` declares each field once with its default; this module says, for each
numeric one (ints, floats, their None-able placeholders and tuples of ints), which values the
code that reads it can serve. It is a module of its own, not a column beside the defaults,
so `config_base.py` stays the readable list of defaults and recipes that the docs point at,
while the ranges and their wording sit together where a review sees them all at once;
`tests/test_config_schema.py` holds the two files against each other: a numeric field of
`get_base_config()` without a range here (or a range for a field that no longer exists) fails
a test, so the next field added is covered without a special case.

`check_config` runs first in `factory.validate_config`, which every command that takes a
`--config` calls before it reads data or writes a file; `check_values` holds the
`--config.<field>=…` overrides of `evaluate` and `segment_inference` (which use a workdir's
own config) to the same ranges. A value out of range is one `ConfigError` line naming the
field, the value and the range, e.g. `config.train.batch_size=0: must be an integer ≥ 1`.

The bounds are what the code needs, not what is sensible: each loop a user bounds (ASGE's
`asge.steps`, whose fit never ends at 0; `train.epochs`, `train.steps_per_epoch`,
`train.lr_decay_epochs`) and each size (batch, image side, widths, frames) is at least 1;
weights, rates and margins are finite and non-negative; probabilities and momenta lie in
[0, 1] or [0, 1); learning rates are positive. Relations between fields (a head's backbone,
the loss's β, the embeddings' fine-tuning) stay in `factory.validate_config`.
"""

import dataclasses
import math
from typing import Optional

from cma_tf.errors import ConfigError

# `layers/residual.BottleneckBlock.expansion`: the small backbone builds each stage of
# `width // 4` filters, so a stage narrower than 4 has none (a test checks the two agree).
BOTTLENECK_EXPANSION = 4
SMALL_BACKBONE_WIDTHS = 4  # its stem and three stages (`backbones/small.py`)
MAX_SEED = 2**32 - 1  # numpy's seeds (keras.utils.set_random_seed seeds numpy too)


@dataclasses.dataclass(frozen=True)
class Range:
    """The values one field accepts.

    Args:
        integer: whether the field holds ints (else any finite real).
        low, high: the bounds (None: unbounded on that side).
        low_open, high_open: whether the bound itself is excluded.
        nullable: whether None is a value (a placeholder field); `none_means` says what it does.
        length: for a tuple of ints, how many it must hold (None: one or more).
    """

    integer: bool
    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False
    nullable: bool = False
    none_means: str = ""
    tuple_of: bool = False
    length: Optional[int] = None

    def admits(self, value) -> bool:
        """Whether `value` (one number) is in range."""
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if not math.isfinite(value):
            return False
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return True

    def describe(self) -> str:
        """The range in words: "an integer ≥ 1", "a number in [0, 1)", "… or None (…)"."""
        noun = "an integer" if self.integer else "a finite number"
        if self.low is not None and self.high is not None:
            bounds = f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}{')' if self.high_open else ']'}"
        elif self.low is not None:
            bounds = f"{'>' if self.low_open else '≥'} {_number(self.low)}"
        elif self.high is not None:
            bounds = f"{'<' if self.high_open else '≤'} {_number(self.high)}"
        else:
            bounds = ""
        text = f"{noun} {bounds}".strip()
        if self.tuple_of:
            count = f"{self.length}" if self.length else "one or more"
            text = f"{count} integers, each {bounds}"
        if self.nullable:
            text += f", or None ({self.none_means})" if self.none_means else ", or None"
        return text


def _number(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def count(minimum=1, nullable=False, none_means="", maximum=None):
    """An integer ≥ `minimum` (a size, a count, a loop bound)."""
    return Range(integer=True, low=minimum, high=maximum, nullable=nullable, none_means=none_means)


def counts(minimum=1, length=None):
    """A tuple of integers, each ≥ `minimum`, of `length` items (None: one or more)."""
    return Range(integer=True, low=minimum, tuple_of=True, length=length)


def positive(nullable=False, none_means=""):
    """A finite number > 0 (a learning rate, a norm, a factor)."""
    return Range(integer=False, low=0.0, low_open=True, nullable=nullable, none_means=none_means)


def non_negative():
    """A finite number ≥ 0 (a weight, a decay, an exponent; 0 switches it off)."""
    return Range(integer=False, low=0.0)


def fraction(high_open=False):
    """A number in [0, 1] (a probability, a threshold), or [0, 1) (a momentum, a rate that must leave something)."""
    return Range(integer=False, low=0.0, high=1.0, high_open=high_open)


SCHEMA = {
    "seed": count(minimum=0, maximum=MAX_SEED),
    # data
    "data.image_size": count(),
    "data.shuffle_buffer": count(),  # 1: no shuffling; tf.data refuses 0 for images
    "data.max_frames": count(),
    "data.frames": count(),
    "data.feature_sizes.rgb": count(),  # values a frame (frame level) or a video (video level) holds
    "data.feature_sizes.audio": count(),
    "data.feature_sizes.mean_rgb": count(),
    "data.feature_sizes.mean_audio": count(),
    "data.check_records": count(minimum=0),  # records read per shard before any work; 0 skips the check
    # model
    "model.backbone_widths": counts(minimum=BOTTLENECK_EXPANSION, length=SMALL_BACKBONE_WIDTHS),
    "model.snet_filters": counts(),
    "model.fc_units": counts(),
    "model.feature_channels": count(nullable=True, none_means="keep the backbone's channels"),
    "model.cmt_layers": count(),
    "model.extra_block_filters": count(),
    "model.blocks_per_scale": count(),
    "model.gcn_hidden_units": count(),
    "model.gcn_threshold": fraction(),
    "model.gcn_reweight": non_negative(),
    "model.transformer_heads": count(nullable=True, none_means="the head's released value"),
    "model.transformer_ffn_units": count(nullable=True, none_means="the head's released value"),
    "model.transformer_dropout": fraction(high_open=True),
    "model.encoder_layers": count(minimum=0),
    "model.decoder_layers": count(nullable=True, none_means="the head's released value"),
    "model.decoder_groups": count(nullable=True, none_means="min(100, number of labels)"),
    "model.moe_mixtures": count(),
    "model.classifier_l2": Range(integer=False, low=0.0, nullable=True, none_means="the head's official value"),
    "model.clusters": count(nullable=True, none_means="the head's official value"),
    "model.hidden_units": count(nullable=True, none_means="the head's official value"),
    "model.nextvlad_expansion": count(),
    "model.nextvlad_groups": count(),
    "model.gating_reduction": count(),
    "model.nextvlad_dropout": fraction(high_open=True),
    "model.batchnorm_momentum": fraction(high_open=True),
    "model.graph_loss_weight": non_negative(),
    "model.scale_loss_weight": non_negative(),
    "model.backbone_frozen_stages": count(minimum=0, maximum=2),  # 1: the stem; 2: and the first stage
    # ASGE
    "asge.units": count(),
    "asge.depth": count(),
    "asge.steps": count(),
    "asge.learning_rate": positive(nullable=True, none_means="0.001 for adam, 0.01 for sgd"),
    "asge.momentum": fraction(high_open=True),
    "asge.alpha": fraction(),
    "asge.row_guard": non_negative(),
    # training
    "train.epochs": count(),
    "train.batch_size": count(),
    "train.eval_batch_size": count(),
    "train.learning_rate": positive(),
    "train.momentum": fraction(high_open=True),
    "train.weight_decay": non_negative(),
    "train.lr_decay_epochs": count(),
    "train.lr_decay_factor": positive(),
    "train.warmup_epochs": non_negative(),
    "train.lr_decay_examples": count(nullable=True, none_means="decay every train.lr_decay_epochs epochs"),
    "train.beta": non_negative(),
    "train.asl_gamma_pos": non_negative(),
    "train.asl_gamma_neg": non_negative(),
    "train.asl_clip": fraction(high_open=True),
    "train.steps_per_epoch": count(nullable=True, none_means="one pass over the training split"),
    "train.global_clipnorm": positive(nullable=True, none_means="no clipping"),
    "train.onecycle_warmup": Range(integer=False, low=0.0, high=1.0, low_open=True, high_open=True),
    "train.backbone_lr_multiplier": non_negative(),  # 0: the backbone frozen
    "train.ema_decay": Range(
        integer=False, low=0.0, high=1.0, low_open=True, high_open=True, nullable=True,
        none_means="no moving average of the weights",
    ),
}

_MISSING = object()


def field_value(config, field):
    """The value of a dotted `field` of a ConfigDict (or a nested dict), or `_MISSING`."""
    value = config
    for part in field.split("."):
        try:
            value = value[part]
        except (KeyError, AttributeError, TypeError):
            return _MISSING
    return value


def check_value(field, value) -> None:
    """A `ConfigError` naming `config.<field>` if `value` is out of its range (fields without a
    range in `SCHEMA` are not numeric settings and pass)."""
    spec = SCHEMA.get(field)
    if spec is None or value is _MISSING:
        return
    if value is None:
        if spec.nullable:
            return
        ok = False
    elif spec.tuple_of:
        items = tuple(value) if isinstance(value, (tuple, list)) else None
        ok = (
            items is not None and len(items) >= 1
            and (spec.length is None or len(items) == spec.length)
            and all(spec.admits(item) for item in items)
        )
        value = items if items is not None else value
    else:
        ok = spec.admits(value)
    if not ok:
        raise ConfigError(f"config.{field}={value!r}: must be {spec.describe()}")


def check_config(config) -> None:
    """Holds every numeric field of `config` to its range (`ConfigError` on the first that is not)."""
    for field in SCHEMA:
        check_value(field, field_value(config, field))


def check_values(values) -> None:
    """Holds `{dotted field: value}` (command-line overrides) to the ranges of their fields."""
    for field, value in values.items():
        check_value(field, value)
