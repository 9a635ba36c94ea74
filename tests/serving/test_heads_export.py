"""Every registered head exports: its SavedModel's `predict_pixels` gives the Keras model's
scores (a head added under `cma_tf/heads/` is checked here without a line of its own)."""

import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_base_config
from cma_tf.heads.registry import get_head, head_names
from cma_tf.serving.saved_model import export_saved_model
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS, tiny_label_graph

NUM_CLASSES = 5


def tiny_config(head):
    config = get_base_config()
    config.model.head, config.model.backbone, config.model.backbone_weights = head, "small", None
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.feature_channels, config.model.extra_block_filters, config.asge.units = 8, 4, 8
    config.model.transformer_heads, config.model.gcn_hidden_units = 2, 16
    return config


# The YouTube-8M video models (HeadSpec.video_model) export over image maps too, but cost 5-8 s each
# here: they run with the slow checks (their .keras round trip on frames: tests/heads/test_video_pooling.py),
# as do the image heads whose export takes over about 8 s on an idle 2-core machine.
SLOW_IMAGE_HEADS = ("hsvlt", "ms_cma")
HEADS = [pytest.param(name, marks=pytest.mark.slow) if get_head(name).video_model or name in SLOW_IMAGE_HEADS else name
         for name in head_names()]


@pytest.mark.parametrize("head", HEADS)
def test_the_exported_head_scores_as_keras_does(head, tmp_path):
    config = tiny_config(head)
    encoder = factory.build_label_encoder(config, NUM_CLASSES) if get_head(head).label_embeddings else None
    model = factory.build_classifier(config, NUM_CLASSES, encoder, tiny_label_graph(NUM_CLASSES))
    pixels = np.random.default_rng(0).uniform(0, 255, (3, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    expected = 1.0 / (1.0 + np.exp(-np.asarray(model(pixels, training=False), np.float64)))
    vocabulary = [f"label{k}" for k in range(NUM_CLASSES)]
    export_saved_model(model, vocabulary, factory.serving_request(config), str(tmp_path / "1"))
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    scores = loaded.signatures["predict_pixels"](pixels=tf.constant(pixels))["scores"].numpy()
    np.testing.assert_allclose(scores, expected, rtol=1e-5, atol=1e-6)
