"""The tuning budget every head gets: one grid of learning rates and schedules, the same for all.

    learning_rate  1e-4, 3e-4, 1e-3, 3e-3, 1e-2
    schedule       "step": one epoch of linear warm-up, then ÷10 after three quarters of the epochs
                   (rounded, and before the last epoch: 2 epochs decay after the first)
                   "onecycle": PyTorch's OneCycleLR with 20 % warm-up (Query2Label's, ML-Decoder's)

Ten points per head. 1e-2 is there because with 1e-4 to 3e-3 alone, 7 of 10 heads on the demo's
frozen maps chose 3e-3, and one step further lifted plain's held-out mAP from 61.0 to 65.8
(docs/design.md §2.27). The moving average of the weights (`train.ema_decay`) is not a grid axis:
it is one setting for every head alike (off in the tuned regimes; the official recipes use theirs).
"""

LEARNING_RATES = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
SCHEDULES = ("step", "onecycle")
STEP_WARMUP_EPOCHS = 1.0
STEP_DECAY_AT = 0.75  # of the epochs
ONECYCLE_WARMUP = 0.2


def points():
    """Every point of the grid, as `{"learning_rate": …, "schedule": …}`, in search order."""
    return [{"learning_rate": lr, "schedule": schedule} for schedule in SCHEDULES for lr in LEARNING_RATES]


def apply_point(config, point):
    """A copy of `config` trained at `point` (its `train.epochs` kept)."""
    config = config.copy_and_resolve_references()
    train = config.train
    train.learning_rate = float(point["learning_rate"])
    train.schedule = point["schedule"]
    train.lr_decay_examples = None  # the grid's schedules count epochs (video configs decay by examples)
    if point["schedule"] == "step":
        train.warmup_epochs = STEP_WARMUP_EPOCHS
        # before the last epoch, so that a short run decays too (2 epochs: round(1.5) = 2 would not)
        train.lr_decay_epochs = max(1, min(train.epochs - 1, int(round(STEP_DECAY_AT * train.epochs))))
        train.lr_decay_factor = 10.0
    elif point["schedule"] == "onecycle":
        train.warmup_epochs = 0.0
        train.onecycle_warmup = ONECYCLE_WARMUP
    else:
        raise ValueError(f"unknown schedule {point['schedule']!r} ({', '.join(SCHEDULES)})")
    return config
