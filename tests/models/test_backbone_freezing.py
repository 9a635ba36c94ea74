"""Frozen backbone parts (issue 31, docs/design.md §2.24): `model.backbone_frozen_stages`,
`model.freeze_backbone_batchnorm` and `train.backbone_lr_multiplier = 0`. After a training step
with a large learning rate, what is frozen (weights and BatchNorm moving statistics) is
unchanged and the rest has moved; a `.keras` file brings the frozen parts back frozen."""

import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import load_config_file
from tests.test_cli import DEMO_CONFIG, TINY

NUM_CLASSES = 3


def config_for(backbone="small", **fields):
    config = load_config_file(DEMO_CONFIG).get_config("plain")
    for key, value in TINY.items():
        section, field = key.split(".")
        config[section][field] = value
    config.model.backbone = backbone
    config.train.warmup_epochs = 0.0
    config.train.optimizer, config.train.learning_rate, config.train.weight_decay = "sgd", 0.5, 0.0
    for key, value in fields.items():
        section, field = key.split(".")
        config[section][field] = value
    return config


def train_one_step(config):
    keras.utils.set_random_seed(0)
    model = factory.build_classifier(config, NUM_CLASSES)
    model.compile(optimizer=factory.build_optimizer(config, 1, model), loss=factory.build_loss(config))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, size=(4, 32, 32, 3)).astype("float32")
    labels = (rng.uniform(size=(4, NUM_CLASSES)) < 0.5).astype("float32")
    before = {v.path: np.array(v) for v in model.variables}
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    moved = {v.path for v in model.variables if not np.array_equal(np.array(v), before[v.path])}
    return model, moved, set(before)


def test_small_backbone_stem_and_first_stage_frozen_with_batchnorm():
    model, moved, every = train_one_step(
        config_for(**{"model.backbone_frozen_stages": 2, "model.freeze_backbone_batchnorm": True})
    )
    frozen = {p for p in every if p.startswith(("stem_", "stage1/"))}
    batchnorm = {p for p in every if "bn" in p.split("/")[-2]}  # stem_bn, stageK/bnJ, stageK/shortcut_bn
    assert len(frozen) == 5 + 20 and len(batchnorm) == 4 * (1 + 3 * 4)
    assert not moved & (frozen | batchnorm)  # weights, gammas, betas and moving statistics
    assert {"stage2/conv1/kernel", "stage3/conv3/kernel", "head/classifier/kernel"} <= moved
    assert moved == every - frozen - batchnorm


def test_small_backbone_stem_frozen_keeps_later_batchnorm_training():
    model, moved, every = train_one_step(config_for(**{"model.backbone_frozen_stages": 1}))
    assert not moved & {p for p in every if p.startswith("stem_")}
    assert {"stage1/bn1/gamma", "stage1/bn1/moving_mean", "stage1/conv1/kernel"} <= moved


def test_a_zero_backbone_multiplier_freezes_the_backbone():
    model, moved, every = train_one_step(config_for(**{"train.backbone_lr_multiplier": 0.0}))
    backbone = {v.path for v in model.backbone.variables}
    assert not model.backbone.trainable_variables
    assert not moved & backbone  # moving statistics too: BatchNorm in inference mode
    assert moved == every - backbone


def test_frozen_parts_come_back_frozen_from_a_keras_file(tmp_path):
    model, _, _ = train_one_step(
        config_for(**{"model.backbone_frozen_stages": 1, "model.freeze_backbone_batchnorm": True})
    )
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert [v.path for v in restored.trainable_variables] == [v.path for v in model.trainable_variables]
    assert [v.path for v in restored.non_trainable_variables] == [v.path for v in model.non_trainable_variables]


def test_defaults_freeze_nothing():
    config = config_for()
    keras.utils.set_random_seed(0)
    model = factory.build_classifier(config, NUM_CLASSES)
    assert all(layer.trainable for layer in model.backbone._flatten_layers())
    assert "frozen_sublayers" not in model.backbone.get_layer("stage1").get_config()


@pytest.mark.slow  # builds and steps ResNet-101 (~20 s on 2 cores)
def test_resnet101_stem_and_conv2_frozen():
    model, moved, every = train_one_step(
        config_for("resnet101", **{"model.backbone_frozen_stages": 2, "model.backbone_weights": None})
    )
    frozen = {p for p in every if p.startswith(("conv1_", "conv2_"))}
    assert "conv1_conv/kernel" in frozen and "conv2_block3_3_bn/moving_mean" in frozen
    assert not moved & frozen
    assert {"conv3_block1_1_conv/kernel", "conv3_block1_1_bn/moving_mean", "conv5_block3_3_bn/gamma"} <= moved
