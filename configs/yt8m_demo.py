"""The CPU video demo (`make demo-video`): Table 4's four rows on the synthetic YouTube-8M
dataset of `python -m cma_tf.datasets.yt8m_synthetic`, small widths, evaluated on its rated segments.

Usage: `--config=configs/yt8m_demo.py:cma_snet` (or cma_fc, self_attention_snet, self_attention_fc,
plain_snet, ml_decoder_snet; the video-level cma_fc_video, self_attention_fc_video, plain_fc_video;
the field's dbof, netvlad, nextvlad at demo sizes, Adam at 1e-3).
"""

from cma_tf.config_base import FIELD_VIDEO_VARIANTS, get_paper_video_config

# dbof, netvlad, nextvlad at CPU sizes (their official ones: configs/yt8m.py).
FIELD_DEMO_MODEL = {
    "dbof": dict(clusters=256, hidden_units=64),
    "netvlad": dict(clusters=16, hidden_units=64),
    "nextvlad": dict(clusters=16, hidden_units=64, nextvlad_groups=4, gating_reduction=4),
}


def get_config(variant="cma_snet"):
    config = get_paper_video_config(variant)
    config.data.data_dir = "runs/yt8m_demo/data/frame"
    config.data.frames = 32
    config.data.shuffle_buffer = 512
    config.data.deterministic = True  # same table on every run (same machine)
    config.model.snet_filters = (128, 128, 128, 128)
    config.model.fc_units = (128, 128)
    config.model.feature_channels = None
    config.asge.units = 64
    config.asge.steps = 1000
    config.train.epochs = 10
    config.train.batch_size = 32
    config.train.eval_batch_size = 256
    config.train.learning_rate = 0.01
    config.train.lr_decay_examples = 8_000  # × 0.8 every 250 steps
    if variant in FIELD_VIDEO_VARIANTS:
        for field, value in FIELD_DEMO_MODEL[variant].items():
            config.model[field] = value
        config.model.batchnorm_momentum = 0.99  # moving statistics that follow a run of a few hundred steps
        config.train.learning_rate = 1e-3
    if config.data.format == "yt8m_video":  # the *_video entries: the demo's video-level records
        config.data.data_dir = "runs/yt8m_demo/data/video"
    return config
