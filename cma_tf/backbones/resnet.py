"""ResNet-101 feature taps for CMA and MS-CMA (§4.1).

At a 448 input `keras.applications.ResNet101` gives `conv4_block23_out` (28×28×1024, the
paper's `I_1`) and `conv5_block3_out` (14×14×2048, `I_2`). The backbone returns both; CMA
uses the last, MS-CMA both (its head builds `I_3`).
"""

import keras

from cma_tf.backbones.preprocessing import CaffeImageNormalization
from cma_tf.backbones.weights import load_application, resolve_weights

RESNET101_TAPS = ("conv4_block23_out", "conv5_block3_out")
IMAGENET_WEIGHTS_FILE = "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5"


def resnet101_backbone(image_size=448, weights="imagenet", taps=RESNET101_TAPS, name="resnet101"):
    """A functional model: RGB images `[B, S, S, 3]` in [0, 255] → `[I_1, I_2]`.

    Args:
        image_size: int, input side. Default 448 (the paper).
        weights: "imagenet" (the Keras ImageNet weights, downloaded once into ~/.keras/models/),
            None or "None" (random), or the path of a weights file.
        taps: layer names of `keras.applications.ResNet101` to return, shallow to deep.

    Examples:
    >>> backbone = resnet101_backbone(image_size=448, weights=None)
    >>> [tuple(t.shape) for t in backbone.outputs]
    [(None, 28, 28, 1024), (None, 14, 14, 2048)]
    """
    weights = resolve_weights(weights)
    resnet = load_application(
        lambda: keras.applications.ResNet101(include_top=False, weights=weights, input_shape=(image_size, image_size, 3)),
        weights, "ResNet-101", IMAGENET_WEIGHTS_FILE,
    )
    features = keras.Model(
        resnet.input, [resnet.get_layer(tap).output for tap in taps], name=f"{name}_features"
    )
    images = keras.Input((image_size, image_size, 3), name="images")
    return keras.Model(images, features(CaffeImageNormalization(name="imagenet_caffe")(images)), name=name)
