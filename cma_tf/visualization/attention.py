"""Category-wise attention maps of a trained classifier, as the paper's Fig. 4 (images) and Fig. 5
(video) show them: for each label, where in the image (or when in the video) the head looked.

Every head that returns attention (`head(features, return_attention=True)` → `(logits, [A_s])`,
`A_s` `[B, N, M_s]` per scale, `M_s` the positions of that scale) has maps: CMA (Eq. 8's `a`),
MS-CMA (one per scale), self-attention, HSVLT, MMDSR (its class maps), Query2Label (the last
decoder layer's cross-attention). ML-Decoder's maps are per query; with `K < N` queries label k
is answered by query `k // ⌈N / K⌉`, whose map it shows. Plain and ML-GCN pool without
attention and have none (`NoAttentionError`).
"""

import inspect
import math

import numpy as np

from cma_tf.errors import ConfigError


class NoAttentionError(ConfigError):
    """The model's head pools without attention, so there is no map to show."""


def has_attention(model) -> bool:
    """Whether the classifier's head can return attention maps."""
    return "return_attention" in inspect.signature(model.head.call).parameters


def require_attention(model, owner, head_name=None):
    """Raises `NoAttentionError` naming `owner` (a workdir, or the model) and the head (its
    config name, else its class) when the head has no maps."""
    if not has_attention(model):
        raise NoAttentionError(
            f"{owner}: its head ({head_name or model.head.__class__.__name__}) pools without attention, so it has no maps to "
            "show (heads with maps: cma, ms_cma, self_attention, hsvlt, mmdsr, q2l, ml_decoder)"
        )


def attention_maps(model, inputs):
    """`(probabilities [B, N], maps)`: the classifier's σ(logits) and, per scale, float32 maps
    `[B, N, h, w]` (images: the scale's grid, rows × columns) or `[B, N, T_s]` (video), one per
    label, in inference mode.

    Raises:
        NoAttentionError: the head has no attention (plain, ML-GCN).
    """
    import tensorflow as tf

    require_attention(model, model.name)
    inputs = tf.convert_to_tensor(inputs, tf.float32)
    probabilities = tf.sigmoid(model(inputs, training=False)).numpy()
    _, attention = model.head(model.backbone(inputs, training=False), training=False, return_attention=True)
    num_classes = probabilities.shape[1]
    maps = []
    for scale in attention:
        scale = np.asarray(scale, np.float32)
        if scale.shape[1] != num_classes:  # ML-Decoder's group queries
            per_query = math.ceil(num_classes / scale.shape[1])
            scale = scale[:, np.arange(num_classes) // per_query]
        if inputs.shape.rank == 4:  # an image: M = h × w positions of a square grid
            side = math.isqrt(scale.shape[-1])
            if side * side != scale.shape[-1]:
                raise ValueError(f"{scale.shape[-1]} attention positions are not a square grid")
            scale = scale.reshape(scale.shape[:2] + (side, side))
        maps.append(scale)
    return probabilities, maps


def upsample(grid, size):
    """A `[h, w]` map bilinearly resized to `size × size` pixels, each cell centred on the pixels
    it covers (`tf.image.resize`'s half-pixel centres): the map of the backbone positions laid
    over the image the model saw."""
    import tensorflow as tf

    resized = tf.image.resize(np.asarray(grid, np.float32)[..., None], [size, size], method="bilinear")
    return resized.numpy()[..., 0]


def normalize(values):
    """`values` scaled to [0, 1] (a constant map becomes zeros)."""
    values = np.asarray(values, np.float32)
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def overlay(image, heat, alpha=0.5, colormap="jet"):
    """uint8 `[S, S, 3]`: the image (0..255) blended with the colour-mapped heat (0..1)."""
    from matplotlib import colormaps

    colored = colormaps[colormap](np.clip(heat, 0.0, 1.0))[..., :3] * 255.0
    blended = (1.0 - alpha) * np.asarray(image, np.float32) + alpha * colored
    return np.clip(blended, 0, 255).astype(np.uint8)
