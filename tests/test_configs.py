"""Every config under configs/ builds (docs/design.md §5 rule 9): a model, a loss and an optimizer."""

import glob
import os

import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import FIELD_VIDEO_VARIANTS, PAPER_VARIANTS, VIDEO_LEVEL_VARIANTS, VIDEO_VARIANTS, load_config_file
from cma_tf.heads.registry import head_names
from cma_tf.graph.asge import ASGEEncoder
from tests.helpers import tiny_label_graph

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "configs")


CONFIG_FILES = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.py")))


CASES = [
    (path, variant)
    for path in CONFIG_FILES
    for variant in (
        head_names() if os.path.basename(path) == "demo.py"
        else tuple(load_config_file(path).entries()) if os.path.basename(path) == "bench_heads.py"
        else tuple(load_config_file(path).ENTRIES) if os.path.basename(path) == "bench_video_heads.py"
        # the field's dbof, netvlad, nextvlad at demo sizes (at yt8m.py's, NetVLAD alone holds 333 M weights:
        # tests/heads/test_video_pooling.py checks those configs without building them)
        else tuple(VIDEO_VARIANTS) + tuple(VIDEO_LEVEL_VARIANTS) + tuple(FIELD_VIDEO_VARIANTS)
        if os.path.basename(path) == "yt8m_demo.py"
        else tuple(VIDEO_VARIANTS) + tuple(VIDEO_LEVEL_VARIANTS) if os.path.basename(path).startswith("yt8m")
        # the same recipes as coco.py over TFDS data: one variant checks the data fields
        else ("cma",) if os.path.basename(path).endswith("_tfds.py")
        else tuple(PAPER_VARIANTS)
    )
]


@pytest.mark.parametrize("path,variant", CASES, ids=[f"{os.path.basename(p)}:{v}" for p, v in CASES])
def test_config_builds(path, variant):
    config = load_config_file(path).get_config(variant)
    if config.model.backbone == "resnet101":
        config.model.backbone_weights = None  # no downloads in tests
    num_classes = 7
    encoder = None
    if factory.needs_label_embeddings(config) and config.model.label_embedding == "word2vec":
        encoder = np.random.default_rng(0).normal(size=(num_classes, config.asge.units)).astype("float32")
    elif factory.needs_label_embeddings(config):
        encoder = ASGEEncoder(num_classes, config.asge.units, config.asge.depth)
        encoder.build()
    model = factory.build_classifier(config, num_classes, encoder, tiny_label_graph(num_classes))
    assert model.output_shape == (None, num_classes)
    factory.build_optimizer(config, steps_per_epoch=10)
    factory.build_loss(config, np.full(num_classes, 0.1))


def test_unknown_head_is_a_clear_error():
    config = load_config_file(CONFIG_FILES[0]).get_config("cma")
    config.model.head = "transformer"
    with pytest.raises(ValueError, match="config.model.head"):
        factory.build_head(config, 3)


def test_learning_rate_drops_tenfold_every_decay_period():
    config = load_config_file(os.path.join(CONFIG_DIR, "demo.py")).get_config("cma")
    config.train.epochs, config.train.lr_decay_epochs, config.train.learning_rate = 90, 30, 0.01
    schedule = factory.build_learning_rate(config, steps_per_epoch=5)
    values = [float(schedule(step)) for step in (0, 149, 151, 299, 301)]
    np.testing.assert_allclose(values, [0.01, 0.01, 0.001, 0.001, 0.0001], rtol=1e-6)


def test_warmup_ramps_linearly_then_keeps_the_decay_boundaries():
    config = load_config_file(os.path.join(CONFIG_DIR, "demo.py")).get_config("cma")
    config.train.epochs, config.train.lr_decay_epochs, config.train.learning_rate = 90, 30, 0.01
    config.train.warmup_epochs = 2  # 10 steps of 5 per epoch
    schedule = factory.build_learning_rate(config, steps_per_epoch=5)
    values = [float(schedule(step)) for step in (0, 4, 9, 10, 149, 151)]
    np.testing.assert_allclose(values, [0.001, 0.005, 0.01, 0.01, 0.01, 0.001], rtol=1e-6)
    optimizer = factory.build_optimizer(config, steps_per_epoch=5)
    restored = type(optimizer).from_config(optimizer.get_config())  # as a checkpoint brings it back
    np.testing.assert_allclose(float(restored.learning_rate), 0.001, rtol=1e-6)


def test_a_warmed_up_optimizer_comes_back_from_a_keras_file(tmp_path):
    import keras

    from cma_tf.schedules import LinearWarmup

    schedule = LinearWarmup(keras.optimizers.schedules.PiecewiseConstantDecay([6], [0.1, 0.01]), 4)
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.AdamW(learning_rate=schedule), loss="mse")
    model.fit(np.ones((4, 3)), np.ones((4, 1)), batch_size=2, epochs=1, verbose=0)  # 2 steps
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras")
    assert int(restored.optimizer.iterations) == 2
    assert isinstance(restored.optimizer._learning_rate, LinearWarmup)
    np.testing.assert_allclose(float(restored.optimizer.learning_rate), 0.1 * 3 / 4, rtol=1e-6)  # step 2


@pytest.mark.parametrize("value", [-1.0, float("nan")])
def test_a_negative_or_nan_warmup_is_refused(value):
    from cma_tf.errors import ConfigError

    config = load_config_file(os.path.join(CONFIG_DIR, "demo.py")).get_config("plain")
    config.train.warmup_epochs = value
    with pytest.raises(ConfigError, match="config.train.warmup_epochs"):
        factory.validate_config(config)


def test_the_loss_is_chosen_by_config():
    from cma_tf.errors import ConfigError
    from cma_tf.losses import AsymmetricLoss, WeightedBinaryCrossentropy

    config = load_config_file(os.path.join(CONFIG_DIR, "demo.py")).get_config("cma")
    assert isinstance(factory.build_loss(config), WeightedBinaryCrossentropy)  # the paper's, by default
    config.train.loss, config.train.asl_gamma_neg, config.train.asl_clip = "asl", 2.0, 0.0
    factory.validate_config(config)
    loss = factory.build_loss(config)
    assert isinstance(loss, AsymmetricLoss) and (loss.gamma_neg, loss.clip) == (2.0, 0.0)
    config.train.beta = 0.4
    with pytest.raises(ConfigError, match="ASL has no β"):
        factory.validate_config(config)
    config.train.beta, config.train.asl_clip = 0.0, 1.5
    with pytest.raises(ConfigError, match="asl_clip"):
        factory.validate_config(config)
    config.train.loss, config.train.asl_clip = "focal", 0.0  # the clip's range is checked whatever the loss
    with pytest.raises(ConfigError, match=r"config.train.loss: unknown loss 'focal' \(bce, asl\)"):
        factory.validate_config(config)


def test_paper_recipes_have_the_paper_settings():
    coco = load_config_file(os.path.join(CONFIG_DIR, "coco.py"))
    nuswide = load_config_file(os.path.join(CONFIG_DIR, "nuswide.py"))
    for config in (coco.get_config("ms_cma"), nuswide.get_config("ms_cma")):
        assert config.model.backbone == "resnet101" and config.model.backbone_weights == "imagenet"
        assert config.data.image_size == 448 and config.train.batch_size == 64
        assert (config.train.learning_rate, config.train.lr_decay_epochs, config.train.lr_decay_factor) == (0.01, 30, 10.0)
        assert config.train.weight_decay == 1e-5 and config.train.momentum == 0.9
        # ASGE: the paper's width and α; fitted with Adam at its default lr (the paper's SGD, lr 0.01
        # through the same None, collapses on sparse graphs: graph/asge_model.fit_asge).
        assert (config.asge.units, config.asge.momentum, config.asge.alpha) == (256, 0.9, 0.0)
        assert (config.asge.optimizer, config.asge.learning_rate, config.asge.balance_pairs) == ("adam", None, True)
    assert coco.get_config("ms_cma").train.beta == 0.0 and nuswide.get_config("ms_cma").train.beta == 0.4
    assert coco.get_config("w2v_ms_cma").model.label_embedding == "word2vec"
    assert coco.get_config("cma").model.head == "cma" and coco.get_config("plain").model.head == "plain"
