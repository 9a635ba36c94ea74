"""The heads `cma_tf.select` tries by default, and the loss each head is trained with.

Defaults, cheapest first (per-epoch cost on the demo's 3,000 cached maps, 2 cores, measured for
docs/design.md §2.27-2.28): plain (0.3 s), ML-GCN, self-attention, CMA, ML-Decoder (2.5 s),
Query2Label (7 s). Left out by default, each named with `--heads` when wanted: MS-CMA (CMA at
several scales, about twice CMA's cost), MMDSR and HSVLT (10-80× plain's step time; HSVLT 23 s an
epoch there), the most expensive heads, which a budget of minutes would spend on one head.
Video (frame- and video-level records) trains the model's own SNet/FC with each head, and has
plain, self-attention, CMA and ML-Decoder (the heads with a video form in `configs/yt8m.py`).
Frame-level records add the YouTube-8M field's models, DBoF, NetVLAD and NeXtVLAD (heads with
`HeadSpec.video_model`), each as published: over the raw frames (the `frames` backbone) instead
of the user's SNet/FC, at the sizes of `config.model` (the official ones unless the config
changes them). Video-level records hold one vector a video, with no frames to pool, so they
have only the four.
"""

from cma_tf.heads.registry import get_head

# Each head with the loss of its paper; the others are trained with BCE (Eq. 12).
ASL_ML_DECODER = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=4.0, asl_clip=0.05)
ASL_QUERY2LABEL = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=2.0, asl_clip=0.0)
PAPER_LOSSES = {"q2l": ASL_QUERY2LABEL, "ml_decoder": ASL_ML_DECODER}

IMAGE_HEADS = ("plain", "mlgcn", "self_attention", "cma", "ml_decoder", "q2l")
VIDEO_HEADS = ("plain", "self_attention", "cma", "ml_decoder")
FIELD_VIDEO_MODELS = ("dbof", "netvlad", "nextvlad")


def default_heads(reads_images, frame_level=False):
    """The candidates `cma_tf.select` tries when `--heads` is not given (module docstring)."""
    if reads_images:
        return IMAGE_HEADS
    return VIDEO_HEADS + FIELD_VIDEO_MODELS if frame_level else VIDEO_HEADS


def candidate_config(base, head):
    """A copy of `base` with `head` and its paper's loss; a YouTube-8M field model (`video_model`)
    on frame-level records pools the raw frames (`backbone="frames"`), as its official code does,
    rather than the SNet/FC features the other video heads read."""
    config = base.copy_and_resolve_references()
    config.model.head = head
    if get_head(head).video_model and config.data.format == "yt8m_frame":
        config.model.backbone = "frames"
    config.train.loss = "bce"
    for field, value in PAPER_LOSSES.get(head, {}).items():
        config.train[field] = value
    return config
