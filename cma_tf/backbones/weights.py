"""The weights of a `keras.applications` backbone, as a user names them: "imagenet", None, or a
file; and a failed ImageNet download turned into one line that says how to do without network."""

import tensorflow as tf

from cma_tf.errors import ConfigError

NO_WEIGHTS = ("", "none", "null", "random")


def resolve_weights(weights):
    """`"imagenet"`, None (random initialisation) or an existing weights file, from what a user
    wrote: `--config.model.backbone_weights=None` arrives as the string "None"."""
    if weights is None or str(weights).strip().lower() in NO_WEIGHTS:
        return None
    if weights == "imagenet":
        return weights
    if not tf.io.gfile.exists(weights):
        raise ConfigError(
            f"config.model.backbone_weights: no such weights file {weights!r} "
            "(use 'imagenet', None for random weights, or the path of a Keras ResNet101 .h5/.weights.h5 file)"
        )
    return weights


def download_failed(error):
    return "URL fetch failure" in str(error) or isinstance(error, (ConnectionError, TimeoutError))


def load_application(build, weights, what, weights_file):
    """`build()`, a `keras.applications` constructor called with `weights`; when the ImageNet
    weights cannot be downloaded, a `ConfigError` naming `what` and the file to copy instead."""
    try:
        return build()
    except Exception as error:  # keras.utils.get_file raises a bare Exception on a failed download
        if weights != "imagenet" or not download_failed(error):
            raise
        raise ConfigError(
            f"cannot download the ImageNet weights of {what} ({' '.join(str(error).split())}). Without network, "
            f"copy {weights_file} into ~/.keras/models/ (Keras looks there first) or pass its path with "
            "--config.model.backbone_weights=/path/to/it.h5; --config.model.backbone_weights=None trains from random weights"
        ) from error
