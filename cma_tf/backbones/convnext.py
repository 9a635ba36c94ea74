"""ConvNeXt-S feature taps: the four stage outputs, for heads that read every scale (HSVLT).

HSVLT (Ouyang et al., ACM MM 2023, arXiv 2407.16244; github.com/NaturalKnight/HSVLT) is built
on ConvNeXt-S (Liu et al., "A ConvNet for the 2020s", CVPR 2022): depths 3, 3, 27, 3, widths
96, 192, 384, 768, strides 4, 8, 16, 32 (at 448: 112², 56², 28², 14²). This backbone returns
the output of each stage's last block, before any normalisation, as the released HSVLT feeds
its stages. `keras.applications.ConvNeXtSmall` has no layer for a block's residual sum, so
each tap is read as the input of the layer after the stage: the downsampling block of the
next stage, or, for the last stage, the final LayerNorm that `include_top=False` appends (not
used).

Input: RGB in [0, 255]. The Keras ConvNeXt holds its own ImageNet normalisation (a
`Normalization` layer, mean 255·(0.485, 0.456, 0.406), std 255·(0.229, 0.224, 0.225)), so
models still take raw pixels, as with the other backbones (docs/design.md §2.10).

Weights: Keras' ImageNet-1k ConvNeXt-S (224 px); HSVLT starts from ImageNet-22k → 1k weights at
384 px (`convnext_small_22k_1k_384.pth`), which Keras does not ship.
"""

import keras

from cma_tf.backbones.weights import load_application, resolve_weights

CONVNEXT_SMALL_CHANNELS = (96, 192, 384, 768)
CONVNEXT_SMALL_DEPTHS = (3, 3, 27, 3)
# The layers whose input is a stage's output: the next downsampling blocks (stages 0-2).
CONVNEXT_SMALL_STAGE_READERS = tuple(f"convnext_small_downsampling_block_{i}" for i in range(3))
IMAGENET_WEIGHTS_FILE = "convnext_small_notop.h5"


def convnext_small_backbone(image_size=448, weights="imagenet", name="convnext_small"):
    """A functional model: RGB images `[B, S, S, 3]` in [0, 255] → the four stage outputs.

    Args:
        image_size: int, input side (a multiple of 32). Default 448 (HSVLT's).
        weights: "imagenet" (Keras' ImageNet-1k weights, downloaded once into ~/.keras/models/),
            None or "None" (random), or the path of a weights file of `keras.applications.ConvNeXtSmall`
            (`include_top=False`).

    Returns:
        A `keras.Model` with 4 outputs: `[B, S/4, S/4, 96]`, `[B, S/8, S/8, 192]`,
        `[B, S/16, S/16, 384]`, `[B, S/32, S/32, 768]`.

    Examples:
    >>> backbone = convnext_small_backbone(image_size=64, weights=None)
    >>> [tuple(t.shape) for t in backbone.outputs]
    [(None, 16, 16, 96), (None, 8, 8, 192), (None, 4, 4, 384), (None, 2, 2, 768)]
    """
    if image_size % 32:
        raise ValueError(f"image_size must be a multiple of 32, got {image_size}")
    weights = resolve_weights(weights)
    # The model keeps Keras' name: Keras checks it against the ImageNet weights' variant.
    convnext = load_application(
        lambda: keras.applications.ConvNeXtSmall(
            include_top=False, include_preprocessing=True, weights=weights, input_shape=(image_size, image_size, 3)
        ),
        weights, "ConvNeXt-S", IMAGENET_WEIGHTS_FILE,
    )
    final_norm = convnext.layers[-1]
    if not isinstance(final_norm, keras.layers.LayerNormalization):  # a Keras release that builds it otherwise
        raise RuntimeError(
            f"keras.applications.ConvNeXtSmall ends in {type(final_norm).__name__}, not the LayerNorm whose input is read"
        )
    taps = [convnext.get_layer(reader).input for reader in CONVNEXT_SMALL_STAGE_READERS] + [final_norm.input]
    features = keras.Model(convnext.input, taps, name=f"{name}_features")
    images = keras.Input((image_size, image_size, 3), name="images")
    return keras.Model(images, features(images), name=name)
