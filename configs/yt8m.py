"""The paper's YouTube-8M Segments recipes (§4.2, Table 4): frame-level RGB features, SNet or
FC backbone, CMA or self-attention.

Usage: `--config=configs/yt8m.py:cma_snet` (or cma_fc, self_attention_snet, self_attention_fc,
plain_snet, and ml_decoder_snet: ML-Decoder over SNet, not in the paper) with `--config.data.data_dir=<folder of train*.tfrecord / validate*.tfrecord>`
(e.g. gs://<your copy>/frame; the public bucket is read-only, so also set
`--config.data.label_graph=<writable path>`).

Video-level models (not in the paper): `--config=configs/yt8m.py:cma_fc_video` (or
self_attention_fc_video, plain_fc_video) read the published video/ records (mean_rgb, one vector
a video, through the FC backbone; `data_dir` data/yt8m/video) and are scored on the video labels.

The YouTube-8M field's video models (not in the paper; docs/design.md §2.29): `dbof` (the starter
code's DBoF + MoE: 8192 clusters, hidden 1024, 30 frames, MoE of 2), `netvlad` (the 2017 winner's
best single model, NetVLAD K = 256 (audio 128), hidden 1024, Context Gating, MoE of 2 with
probability gating, 300 frames) and `nextvlad` (Lin et al.'s best single model: λ = 2, G = 8,
K = 128, hidden 2048, SE r = 8, dropout 0.5, logistic classifier), over the `frames` backbone with
rgb and audio and their official recipes (Adam; `config_base.FIELD_VIDEO_VARIANTS`).
"""

from cma_tf.config_base import get_paper_video_config


def get_config(variant="cma_snet"):
    return get_paper_video_config(variant)
