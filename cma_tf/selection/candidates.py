"""The heads `cma_tf.select` tries by default, and the loss each head is trained with.

Defaults, cheapest first (per-epoch cost on the demo's 3,000 cached maps, 2 cores, measured for
docs/design.md §2.27-2.28): plain (0.3 s), ML-GCN, self-attention, CMA, ML-Decoder (2.5 s),
Query2Label (7 s). Left out by default, each named with `--heads` when wanted: MS-CMA (CMA at
several scales, about twice CMA's cost), MMDSR and HSVLT (10-80× plain's step time; HSVLT 23 s an
epoch there), the most expensive heads, which a budget of minutes would spend on one head.
Video (frame- and video-level records) trains the model's own SNet/FC with each head, and has
plain, self-attention, CMA and ML-Decoder (the heads with a video form in `configs/yt8m.py`).
"""

# Each head with the loss of its paper; the others are trained with BCE (Eq. 12).
ASL_ML_DECODER = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=4.0, asl_clip=0.05)
ASL_QUERY2LABEL = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=2.0, asl_clip=0.0)
PAPER_LOSSES = {"q2l": ASL_QUERY2LABEL, "ml_decoder": ASL_ML_DECODER}

IMAGE_HEADS = ("plain", "mlgcn", "self_attention", "cma", "ml_decoder", "q2l")
VIDEO_HEADS = ("plain", "self_attention", "cma", "ml_decoder")


def default_heads(reads_images):
    return IMAGE_HEADS if reads_images else VIDEO_HEADS


def candidate_config(base, head):
    """A copy of `base` with `head` and its paper's loss."""
    config = base.copy_and_resolve_references()
    config.model.head = head
    config.train.loss = "bce"
    for field, value in PAPER_LOSSES.get(head, {}).items():
        config.train[field] = value
    return config
