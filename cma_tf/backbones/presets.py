"""Named pretrained weights of the small backbone, shipped with the package (docs/design.md §2.26).

`config.model.backbone_weights` of `model.backbone="small"` takes one of these names, resolved
by `backbones/weights.resolve_small_weights` to the packaged file after checking its sha256.
Each file's provenance JSON (beside it) records the corpus, the recipe, the held-out top-1,
the wall time and machine, the sha256 and the exact command that regenerates it.
"""

import dataclasses
import os
from typing import Optional, Tuple

# Beside this module; not a package (a package and a module never share a name, design §5 rule 12).
PRESET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "preset_files")


@dataclasses.dataclass(frozen=True)
class Preset:
    """A named weights file of a backbone.

    Args:
        name: str, what `config.model.backbone_weights` says.
        backbone: str, the `config.model.backbone` it is for.
        file: str, the weights file's name in `PRESET_DIR`.
        sha256: str, the file's checksum (checked at every load).
        widths: the backbone's widths (`config.model.backbone_widths` must equal them).
        image_size: int, the side it was pretrained at (other sides load: the weights are convolutions).
        provenance: str, the provenance JSON's name in `PRESET_DIR`.
        regenerate: str, the command that wrote the file.
    """

    name: str
    backbone: str
    file: str
    sha256: str
    widths: Tuple[int, ...]
    image_size: int
    provenance: str
    regenerate: str


SMALL_SYNTHETIC = Preset(
    name="small_synthetic",
    backbone="small",
    file="small_synthetic.weights.h5",
    sha256="05f1591923c95372629b7bd65437feb4c53d521041e500ba86829d812e950997",
    widths=(32, 64, 128, 256),
    image_size=96,
    provenance="small_synthetic.provenance.json",
    regenerate="nice python -m cma_tf.pretrain --out=cma_tf/backbones/preset_files/small_synthetic.weights.h5 "
               "--num_train=28800 --num_heldout=4800 --epochs=8",
)

PRESETS = {preset.name: preset for preset in (SMALL_SYNTHETIC,)}


def preset_names(backbone: str = "small") -> Tuple[str, ...]:
    return tuple(name for name, preset in PRESETS.items() if preset.backbone == backbone)


def get_preset(name: str) -> Optional[Preset]:
    """The preset called `name`, or None when `name` is not a preset (e.g. a file's path)."""
    return PRESETS.get(name)


def preset_file(preset: Preset, directory: Optional[str] = None) -> str:
    """The path of `preset`'s weights file (in `directory`, by default the packaged `PRESET_DIR`)."""
    return os.path.join(directory or PRESET_DIR, preset.file)


def provenance_file(preset: Preset, directory: Optional[str] = None) -> str:
    """The path of `preset`'s provenance JSON."""
    return os.path.join(directory or PRESET_DIR, preset.provenance)
