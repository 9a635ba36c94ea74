"""`config.train.schedule="onecycle"` (issue 31, docs/design.md §2.24) against PyTorch's
OneCycleLR written out in numpy, and the checks of its config fields."""

import math
import os

import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import load_config_file
from cma_tf.errors import ConfigError
from cma_tf.schedules import OneCycle
from tests.test_configs import CONFIG_DIR


def torch_one_cycle(step, max_lr, total_steps, pct_start, div_factor=25.0, final_div_factor=1e4):
    """`torch.optim.lr_scheduler.OneCycleLR.get_lr` (anneal_strategy="cos", three_phase=False)
    at `last_epoch = step`, transcribed."""
    initial_lr = max_lr / div_factor
    min_lr = initial_lr / final_div_factor
    phases = [
        {"end_step": float(pct_start * total_steps) - 1, "start_lr": initial_lr, "end_lr": max_lr},
        {"end_step": total_steps - 1, "start_lr": max_lr, "end_lr": min_lr},
    ]

    def anneal(start, end, pct):
        return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)

    start_step = 0
    for i, phase in enumerate(phases):
        end_step = phase["end_step"]
        if step <= end_step or i == len(phases) - 1:
            pct = (step - start_step) / (end_step - start_step)
            return anneal(phase["start_lr"], phase["end_lr"], pct)
        start_step = phase["end_step"]


def onecycle_config(**train):
    config = load_config_file(os.path.join(CONFIG_DIR, "demo.py")).get_config("plain")
    config.train.warmup_epochs = 0.0
    config.train.schedule = "onecycle"
    config.train.epochs, config.train.learning_rate = 10, 3e-3
    for field, value in train.items():
        config.train[field] = value
    return config


@pytest.mark.parametrize("pct_start", [0.2, 0.3, 0.45])
def test_onecycle_matches_pytorch(pct_start):
    config = onecycle_config(onecycle_warmup=pct_start)
    schedule = factory.build_learning_rate(config, steps_per_epoch=7)  # 70 steps
    steps = [0, 1, 5, 12, 13, 14, 20, 31, 40, 55, 68, 69]
    expected = [torch_one_cycle(step, 3e-3, 70, pct_start) for step in steps]
    # float32: cos near -1 cancels; 1e-9 is 3e-7 of the peak.
    np.testing.assert_allclose([float(schedule(step)) for step in steps], expected, rtol=1e-5, atol=1e-9)
    assert float(schedule(0)) == pytest.approx(3e-3 / 25)
    assert float(schedule(69)) == pytest.approx(3e-3 / 25 / 1e4, rel=1e-4)
    assert float(schedule(500)) == pytest.approx(float(schedule(69)))  # past the end: the last value


def test_onecycle_comes_back_from_the_optimizer_config():
    optimizer = factory.build_optimizer(onecycle_config(optimizer="adam"), steps_per_epoch=7)
    restored = type(optimizer).from_config(optimizer.get_config())
    assert isinstance(restored._learning_rate, OneCycle)
    assert restored._learning_rate.get_config() == optimizer._learning_rate.get_config()
    np.testing.assert_allclose(float(restored.learning_rate), 3e-3 / 25, rtol=1e-6)


def test_onecycle_in_a_keras_file(tmp_path):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=OneCycle(0.1, 10, 0.2)), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), batch_size=2, epochs=1, verbose=0)  # 2 steps
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(float(restored.optimizer.learning_rate), torch_one_cycle(2, 0.1, 10, 0.2), rtol=1e-5)


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"warmup_epochs": 1.0}, "config.train.warmup_epochs belongs to config.train.schedule='step'"),
        ({"lr_decay_examples": 1000}, "config.train.lr_decay_examples belongs"),
        ({"onecycle_warmup": 1.0}, "config.train.onecycle_warmup=1.0"),
        ({"onecycle_warmup": 0.0}, "config.train.onecycle_warmup=0.0"),
        ({"schedule": "cosine"}, "config.train.schedule: unknown schedule 'cosine'"),
        ({"weight_decay_mode": "L2"}, "config.train.weight_decay_mode: unknown mode 'L2'"),
        ({"optimizer": "lamb"}, "config.train.optimizer: unknown optimizer 'lamb' \\(sgd, adam, adamw\\)"),
        ({"ema_decay": 1.0}, "config.train.ema_decay=1.0"),
        ({"backbone_lr_multiplier": -0.1}, "config.train.backbone_lr_multiplier=-0.1"),
    ],
)
def test_recipe_fields_are_checked(fields, message):
    config = onecycle_config(**fields)
    with pytest.raises(ConfigError, match=message):
        factory.validate_config(config)


def test_freezing_is_refused_for_a_backbone_without_stages():
    config = onecycle_config()
    config.model.backbone, config.data.image_size = "convnext_small", 64
    config.model.backbone_frozen_stages = 1
    with pytest.raises(ConfigError, match="config.model.backbone_frozen_stages is for config.model.backbone 'small' or 'resnet101'"):
        factory.validate_config(config)
    config.model.backbone_frozen_stages = 3
    with pytest.raises(ConfigError, match="config.model.backbone_frozen_stages=3"):
        factory.validate_config(config)
