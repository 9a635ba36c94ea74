"""The weights of a backbone, as a user names them in `config.model.backbone_weights`: for a
`keras.applications` backbone "imagenet", None, or a file (and a failed ImageNet download turned
into one line that says how to do without network); for the small backbone None, a preset name
(`backbones/presets.py`, checked against its sha256) or a file."""

import hashlib

import tensorflow as tf

from cma_tf.backbones import presets
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


def sha256_of(path):
    """The hex sha256 of the file at `path`."""
    digest = hashlib.sha256()
    with tf.io.gfile.GFile(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_small_weights(weights, widths, preset_dir=None):
    """The weights file the small backbone loads, or None for random weights.

    Args:
        weights: what `config.model.backbone_weights` says: None (or "None", "random", ""),
            "imagenet" (the base config's default, which names ResNet's weights: the small CNN has
            none, so random, as before presets existed), a preset name (`presets.PRESETS`), or
            the path of a `.weights.h5` file.
        widths: the backbone's widths (`config.model.backbone_widths`); a preset of other widths
            is refused.
        preset_dir: where the presets' files are (default: the packaged `presets.PRESET_DIR`).

    A preset whose file is missing or whose sha256 is not the registered one, and a path that
    does not exist, are each a `ConfigError` naming the file.
    """
    if weights is None or str(weights).strip().lower() in NO_WEIGHTS + ("imagenet",):
        return None
    preset = presets.get_preset(str(weights))
    if preset is None:
        if not tf.io.gfile.exists(weights):
            raise ConfigError(
                f"config.model.backbone_weights: no such weights file {weights!r} (for the small backbone use a "
                f"preset ({', '.join(presets.preset_names())}), None for random weights, or the path of a "
                ".weights.h5 file)"
            )
        return weights
    path = presets.preset_file(preset, preset_dir)
    if tuple(widths) != tuple(preset.widths):
        raise ConfigError(
            f"config.model.backbone_weights={preset.name!r} holds a small backbone of widths {tuple(preset.widths)}, "
            f"config.model.backbone_widths is {tuple(widths)} (set it to {list(preset.widths)} or use None)"
        )
    if not tf.io.gfile.exists(path):
        raise ConfigError(
            f"config.model.backbone_weights={preset.name!r}: its weights file {path} is missing (reinstall cma_tf, "
            f"or regenerate it with `{preset.regenerate}`)"
        )
    found = sha256_of(path)
    if found != preset.sha256:
        raise ConfigError(
            f"config.model.backbone_weights={preset.name!r}: {path} has sha256 {found}, the preset's is "
            f"{preset.sha256} (the file was changed or truncated: restore it from the package, or regenerate it "
            f"with `{preset.regenerate}` and register the new checksum in cma_tf/backbones/presets.py)"
        )
    return path
