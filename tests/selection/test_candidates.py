"""`cma_tf.select`'s default candidates, and each candidate's config (`selection/candidates.py`)."""

import os

import numpy as np

from cma_tf import factory
from cma_tf.config_base import load_config_file
from cma_tf.selection import candidates, outputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(spec):
    path, _, variant = spec.partition(":")
    return load_config_file(os.path.join(ROOT, path)).get_config(variant)


def test_the_field_models_are_candidates_on_frame_level_records_only():
    assert "dbof" not in candidates.default_heads(reads_images=True)
    video_level = candidates.default_heads(reads_images=False, frame_level=False)
    frame_level = candidates.default_heads(reads_images=False, frame_level=True)
    assert not set(candidates.FIELD_VIDEO_MODELS) & set(video_level)
    assert frame_level == video_level + ("dbof", "netvlad", "nextvlad")


def test_a_field_model_pools_the_raw_frames_and_the_other_heads_keep_the_users_backbone():
    base = _config("configs/yt8m_demo.py:cma_snet")
    for head in candidates.FIELD_VIDEO_MODELS:
        config = candidates.candidate_config(base, head)
        assert (config.model.head, config.model.backbone, config.train.loss) == (head, "frames", "bce")
        assert config.data.frames == base.data.frames and config.data.feature_names == base.data.feature_names
    assert candidates.candidate_config(base, "ml_decoder").model.backbone == "snet"
    assert candidates.candidate_config(base, "ml_decoder").train.loss == "asl"
    assert base.model.backbone == "snet" and base.model.head == "cma"  # the user's config is left alone
    point = {"learning_rate": 1e-3, "schedule": "step"}
    assert outputs.selected_config(base, "nextvlad", point, reads_images=False).model.backbone == "frames"
    video_level = _config("configs/yt8m_demo.py:plain_fc_video")
    assert candidates.candidate_config(video_level, "dbof").model.backbone == "fc"  # no frames to pool there


def test_a_field_model_candidate_builds_without_the_users_snet():
    base = _config("configs/yt8m_demo.py:plain_snet")
    config = candidates.candidate_config(base, "netvlad")
    config.model.clusters, config.model.hidden_units = 4, 8
    config.data.frames = 6
    model = factory.build_classifier(config, num_classes=5)
    assert tuple(config.data.feature_names) == ("rgb",)  # the user's inputs, 1,024 8-bit codes a frame
    frames = np.random.default_rng(0).integers(0, 256, size=(2, 6, 1024)).astype(np.uint8)
    logits = np.asarray(model(frames, training=False))
    assert logits.shape == (2, 5) and np.all(np.isfinite(logits))
    # every weight is NetVLAD's: no SNet convolutions (conv0, bn0, …) under it, as beside CMA
    assert {w.path.split("/")[0] for w in model.weights} == {"head"}
    snet = factory.build_classifier(candidates.candidate_config(base, "plain"), num_classes=5)
    assert "conv0" in {w.path.split("/")[0] for w in snet.weights}
