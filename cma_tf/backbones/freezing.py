"""Freezing parts of a backbone, as the heads' official recipes do (docs/design.md §2.24).

A frozen Keras layer (`trainable = False`) has no trainable variables and, for
`BatchNormalization`, normalises with its moving statistics and leaves them alone (inference
mode), as PyTorch's `FrozenBatchNorm2d` (Query2Label) does. Layer `trainable` flags are part of
a `.keras` file, so a resumed run comes back frozen as it was.
"""

import keras

# The layer-name prefixes of each backbone's stages, shallow to deep: `small.py` names its
# stem `stem_*` and its stages `stage1..3`; Keras' ResNet-101 names its stem `conv1_*` and its
# stages `conv2_*` … `conv5_*` (PyTorch's `conv1`/`bn1` and `layer1` … `layer4`).
STAGE_PREFIXES = {
    "small": ("stem_", "stage1", "stage2", "stage3"),
    "resnet101": ("conv1_", "conv2_", "conv3_", "conv4_", "conv5_"),
}


def _layers(model):
    """Every layer inside `model`, nested models included."""
    return model._flatten_layers(include_self=False, recursive=True)


def freeze_batchnorm(backbone) -> int:
    """Freezes every `BatchNormalization` layer of `backbone`; returns how many."""
    frozen = 0
    for layer in _layers(backbone):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.trainable = False
            frozen += 1
    return frozen


def freeze_stages(backbone, backbone_name, stages) -> int:
    """Freezes the first `stages` stages of `backbone` (1: the stem; 2: the stem and the first
    stage); returns how many layers. `backbone_name` is `config.model.backbone`."""
    if not stages:
        return 0
    prefixes = STAGE_PREFIXES.get(backbone_name)
    if prefixes is None:
        raise ValueError(f"no stages known for backbone {backbone_name!r} ({', '.join(STAGE_PREFIXES)})")
    if stages > len(prefixes):
        raise ValueError(f"backbone {backbone_name!r} has {len(prefixes)} stages, asked to freeze {stages}")
    frozen = 0
    for layer in _layers(backbone):
        if layer.name.startswith(prefixes[:stages]):
            layer.trainable = False
            frozen += 1
    if not frozen:
        raise ValueError(f"no layer of {backbone.name!r} is named {' or '.join(prefixes[:stages])}*")
    return frozen
