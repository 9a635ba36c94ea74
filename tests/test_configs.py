"""Every config under configs/ builds (STYLE.md rule 6): a model, a loss and an optimizer."""

import glob
import importlib.util
import os

import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import HEADS
from cma_tf.graph.asge import ASGEEncoder

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "configs")


def load_config_module(path):
    spec = importlib.util.spec_from_file_location(os.path.basename(path)[:-3], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONFIG_FILES = sorted(glob.glob(os.path.join(CONFIG_DIR, "*.py")))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
@pytest.mark.parametrize("head", HEADS)
def test_config_builds(path, head):
    config = load_config_module(path).get_config(head)
    if config.model.backbone == "resnet101":
        config.model.backbone_weights = None  # no downloads in tests
    num_classes = 7
    encoder = None
    if factory.needs_label_embeddings(config):
        encoder = ASGEEncoder(num_classes, config.asge.units, config.asge.depth)
        encoder.build()
    model = factory.build_classifier(config, num_classes, encoder, np.eye(num_classes, dtype="float32"))
    assert model.output_shape == (None, num_classes)
    factory.build_optimizer(config, steps_per_epoch=10)
    factory.build_loss(config, np.full(num_classes, 0.1))


def test_unknown_head_is_a_clear_error():
    config = load_config_module(CONFIG_FILES[0]).get_config("cma")
    config.model.head = "transformer"
    with pytest.raises(ValueError, match="config.model.head"):
        factory.build_head(config, 3)


def test_learning_rate_drops_tenfold_every_decay_period():
    config = load_config_module(os.path.join(CONFIG_DIR, "demo.py")).get_config("cma")
    config.train.epochs, config.train.lr_decay_epochs, config.train.learning_rate = 90, 30, 0.01
    schedule = factory.build_learning_rate(config, steps_per_epoch=5)
    values = [float(schedule(step)) for step in (0, 149, 151, 299, 301)]
    np.testing.assert_allclose(values, [0.01, 0.01, 0.001, 0.001, 0.0001], rtol=1e-6)
