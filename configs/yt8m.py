"""The paper's YouTube-8M Segments recipes (§4.2, Table 4): frame-level RGB features, SNet or
FC backbone, CMA or self-attention.

Usage: `--config=configs/yt8m.py:cma_snet` (or cma_fc, self_attention_snet, self_attention_fc,
plain_snet, and ml_decoder_snet: ML-Decoder over SNet, not in the paper) with `--config.data.data_dir=<folder of train*.tfrecord / validate*.tfrecord>`
(e.g. gs://<your copy>/frame; the public bucket is read-only, so also set
`--config.data.label_graph=<writable path>`).

Video-level models (not in the paper): `--config=configs/yt8m.py:cma_fc_video` (or
self_attention_fc_video, plain_fc_video) read the published video/ records (mean_rgb, one vector
a video, through the FC backbone; `data_dir` data/yt8m/video) and are scored on the video labels.
"""

from cma_tf.config_base import get_paper_video_config


def get_config(variant="cma_snet"):
    return get_paper_video_config(variant)
