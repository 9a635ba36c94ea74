"""Video models (Table 4): SNet and FC backbones under the plain, self-attention and CMA heads."""

import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.backbones.video import fc_backbone, snet_backbone
from cma_tf.config_base import VIDEO_VARIANTS, get_paper_video_config
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import ASGEEncoder
from tests.helpers import run_model_saving_test


@pytest.mark.parametrize("frames, positions", [(300, 19), (32, 2), (17, 2)])
def test_snet_squeezes_time_by_16(frames, positions):
    # 4 × max-pool 2 with 'same' padding: ⌈T / 2⌉ four times (300 → 150 → 75 → 38 → 19).
    expected = frames
    for _ in range(4):
        expected = -(-expected // 2)
    assert expected == positions
    features = snet_backbone(frames, 1024, filters=(8, 8, 8, 16))(np.zeros((2, frames, 1024), "float32"))
    assert features.shape == (2, positions, 16)


def test_fc_keeps_every_frame():
    features = fc_backbone(20, 1152, units=(16, 12))(np.zeros((3, 20, 1152), "float32"))
    assert features.shape == (3, 20, 12)


def test_snet_temporal_receptive_field_is_local():
    # A change in frame 0 reaches only the first positions: SNet squeezes time, it does not pool it.
    backbone = snet_backbone(64, 8, filters=(4, 4, 4, 4))
    x = np.random.default_rng(0).normal(size=(1, 64, 8)).astype("float32")
    y = x.copy()
    y[0, 0] += 5.0
    a, b = backbone(x, training=False), backbone(y, training=False)
    changed = np.abs(np.asarray(a) - np.asarray(b)).max(axis=-1)[0] > 1e-6
    assert changed[0] and not changed[-1]


def tiny_video_config(variant, data_format="yt8m_frame"):
    config = get_paper_video_config(variant)
    config.data.format = data_format
    config.data.eval_segments = data_format == "yt8m_frame"
    config.data.frames = 16
    config.data.feature_names = ("rgb", "audio") if data_format == "yt8m_frame" else ("mean_rgb",)
    config.model.snet_filters = (8, 8, 8, 16)
    config.model.fc_units = (16, 16)
    config.asge.units = 8
    return config


@pytest.mark.parametrize("variant", sorted(VIDEO_VARIANTS))
def test_every_video_variant_builds_trains_and_round_trips(variant, tmp_path):
    config = tiny_video_config(variant)
    encoder = ASGEEncoder(5, units=8)
    encoder.build()
    model = factory.build_classifier(config, 5, encoder if factory.needs_label_embeddings(config) else None)
    model.compile(optimizer=factory.build_optimizer(config, 10), loss=factory.build_loss(config))
    x = np.random.default_rng(1).normal(size=(4, 16, 1152)).astype("float32")
    y = (np.random.default_rng(2).random((4, 5)) < 0.4).astype("float32")
    model.fit(x, y, epochs=1, verbose=0)
    assert model.predict(x, verbose=0).shape == (4, 5)
    run_model_saving_test(model, x, tmp_path)


def test_video_level_input_is_one_frame():
    config = tiny_video_config("cma_fc", data_format="yt8m_video")
    encoder = ASGEEncoder(5, units=8)
    encoder.build()
    model = factory.build_classifier(config, 5, encoder)
    assert model.input_shape == (None, 1, 1024)


def test_backbone_must_match_the_data():
    config = tiny_video_config("cma_snet")
    config.model.backbone = "small"
    with pytest.raises(ConfigError, match="config.model.backbone='small' does not read config.data.format='yt8m_frame'"):
        factory.validate_config(config)
    config.model.backbone, config.model.head = "snet", "ms_cma"
    with pytest.raises(ConfigError, match=r"config.model.head=.ms_cma. reads 2 backbone maps but config.model.backbone=.snet. gives 1"):
        factory.validate_config(config)
    config = tiny_video_config("cma_snet", data_format="yt8m_video")
    config.data.eval_segments = True
    with pytest.raises(ConfigError, match="eval_segments"):
        factory.validate_config(config)


def test_learning_rate_decays_by_examples():
    # The paper's video schedule: × 0.8 every 2·10⁶ samples (here every 1,000 at batch 100).
    config = tiny_video_config("cma_snet")
    config.train.learning_rate, config.train.batch_size = 2e-4, 100
    config.train.lr_decay_examples, config.train.lr_decay_factor = 1000, 1.25
    schedule = factory.build_learning_rate(config, steps_per_epoch=7)
    for step in (0, 9, 10, 25, 99, 100):
        expected = 2e-4 * 0.8 ** (step // 10)
        assert float(keras.ops.convert_to_numpy(schedule(step))) == pytest.approx(expected, rel=1e-5)


def test_cma_attention_over_time_from_an_eager_backbone_call():
    # Attention maps for a person (Fig. 5): one distribution over SNet's positions per class.
    config = tiny_video_config("cma_snet")
    encoder = ASGEEncoder(5, units=8)
    encoder.build()
    model = factory.build_classifier(config, 5, encoder)
    x = np.random.default_rng(3).normal(size=(2, 16, 1152)).astype("float32")
    logits, (attention,) = model.head(model.backbone(x, training=False), training=False, return_attention=True)
    np.testing.assert_allclose(np.asarray(logits), model.predict(x, verbose=0), rtol=1e-5, atol=1e-5)
    attention = np.asarray(attention)
    assert attention.shape == (2, 5, 1)  # 16 frames → 1 position after 4 poolings
    config.data.frames = 64
    model = factory.build_classifier(config, 5, encoder)
    x = np.random.default_rng(4).normal(size=(2, 64, 1152)).astype("float32")
    _, (attention,) = model.head(model.backbone(x, training=False), training=False, return_attention=True)
    attention = np.asarray(attention)
    assert attention.shape == (2, 5, 4)
    sums = attention.sum(axis=-1)
    assert np.all((np.abs(sums - 1) < 1e-5) | (sums == 0))  # Eq. 8: a distribution, or all zero
