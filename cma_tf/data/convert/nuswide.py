"""NUS-WIDE (81 concepts) → TFRecords: `python -m cma_tf.data.convert.nuswide`.

The release's layout under `--root`:

    Concepts81.txt                                   the 81 concept names, one per line
    ImageList/TrainImagelist.txt, TestImagelist.txt  image paths (`actor\\0001_2124494179.jpg`)
    Groundtruth/TrainTestLabels/Labels_<concept>_<Train|Test>.txt
                                                     one 0/1 per line, aligned with the list

Images live under `--images` (default `<root>/Flickr`), at the list's path with `\\` read as
a directory separator. Images with no concept are reported as `no_labels` and skipped (the
usual protocol, which leaves ~150k training and ~59k test images of the 161,789 / 107,859).
The vocabulary is `Concepts81.txt`, or `<out_dir>/labels.txt` if an earlier split made it
(every split of a directory shares one).

Example:
    python -m cma_tf.data.convert.nuswide --root=NUS-WIDE --part=Train --out_dir=data/nuswide --split=train
"""

import os

import numpy as np
from absl import flags

from cma_tf.data.convert.common import SourceImage
from cma_tf.errors import DataError

PARTS = ("Train", "Test")

# --root, --images are also defined by another converter: allow_override lets one process import
# several converters (tests, notebooks) without absl's DuplicateFlagError.
_ROOT = flags.DEFINE_string(
    "root", None, "NUS-WIDE directory holding Concepts81.txt, ImageList/, Groundtruth/.", allow_override=True
)
_IMAGES = flags.DEFINE_string("images", None, "Image directory (default: <root>/Flickr).", allow_override=True)
_PART = flags.DEFINE_enum("part", "Train", list(PARTS), "Which official part to convert.")


def _read_lines(path: str):
    if not os.path.exists(path):
        raise DataError(f"NUS-WIDE file not found: {path}")
    with open(path, encoding="utf-8", errors="replace") as f:
        return [line.strip() for line in f if line.strip()]


def read_concept_labels(path: str, expected: int) -> np.ndarray:
    """A `Labels_<concept>_<part>.txt` column as bool, checked against the image list length."""
    lines = _read_lines(path)
    if len(lines) != expected:
        raise DataError(f"{path}: {len(lines)} lines, but the image list has {expected}")
    values = np.zeros(expected, bool)
    for number, line in enumerate(lines, start=1):
        if line not in ("0", "1"):
            raise DataError(f"{path}: line {number} is {line!r}, expected 0 or 1")
        values[number - 1] = line == "1"
    return values


def nuswide_source_images(root: str, part: str = "Train", image_dir: str = None):
    """`(images, vocabulary)` of one official part."""
    if part not in PARTS:
        raise DataError(f"part must be one of {PARTS}, got {part!r}")
    concepts_file = os.path.join(root, "Concepts81.txt")
    list_file = os.path.join(root, "ImageList", f"{part}Imagelist.txt")
    concepts, paths = _read_lines(concepts_file), _read_lines(list_file)
    if not concepts:
        raise DataError(f"{concepts_file}: lists no concepts: there is no vocabulary")
    if not paths:
        raise DataError(f"{list_file}: lists no images: nothing to convert")
    label_dir = os.path.join(root, "Groundtruth", "TrainTestLabels")
    matrix = np.stack(
        [read_concept_labels(os.path.join(label_dir, f"Labels_{concept}_{part}.txt"), len(paths)) for concept in concepts],
        axis=1,
    )
    image_dir = image_dir or os.path.join(root, "Flickr")
    images = []
    for row, relative in enumerate(paths):
        relative = relative.replace("\\", "/")
        labels = tuple(concepts[k] for k in np.flatnonzero(matrix[row]))
        images.append(SourceImage(os.path.join(image_dir, relative), relative, labels))
    return images, concepts


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # imported only by the command line; adopted here, in the main module, so --help lists them.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)
    _shared_flags.run_command(lambda: nuswide_source_images(_ROOT.value, _PART.value, _IMAGES.value), ["root"])
