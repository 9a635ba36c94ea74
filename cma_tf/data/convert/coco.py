r"""MS-COCO → TFRecords: `python -m cma_tf.data.convert.coco`.

Reads `instances_{train,val}{2014,2017}.json` with pycocotools; an image's labels are the
categories of its instance annotations (crowd regions included, as ML-GCN does). The
vocabulary is the category names in alphabetical order (ML-GCN's order, `data/coco_labels.txt`)
unless `--vocabulary` gives a file or an earlier split made `<out_dir>/labels.txt` (every split
of a directory shares one). Images without annotations are reported as `no_labels`.

Example:
    python -m cma_tf.data.convert.coco --annotations=coco/annotations/instances_train2014.json \
        --images=coco/train2014 --out_dir=data/coco --split=train --num_shards=64
"""

import json
import os

from absl import flags

from cma_tf.data.convert.common import SourceImage
from cma_tf.errors import DataError

_ANNOTATIONS = flags.DEFINE_string("annotations", None, "COCO instances JSON (instances_train2014.json, …).")
# --images, --vocabulary are also defined by another converter: allow_override lets one process import
# several converters (tests, notebooks) without absl's DuplicateFlagError.
_IMAGES = flags.DEFINE_string(
    "images", None, "Directory holding the images the JSON's file_name fields name.", allow_override=True
)
_VOCABULARY = flags.DEFINE_string(
    "vocabulary", None, "Optional label file fixing the label order (default: category names, sorted).",
    allow_override=True,
)


def load_coco(annotation_file: str):
    """pycocotools' `COCO` for the file; a malformed file is a `DataError` naming it."""
    import contextlib
    import io

    from pycocotools.coco import COCO

    if not os.path.exists(annotation_file):
        raise DataError(f"COCO annotation file not found: {annotation_file}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # COCO() prints timing chatter
            return COCO(annotation_file)
    # AssertionError: pycocotools asserts the JSON is an object (a results list is not)
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError, AssertionError) as error:
        raise DataError(f"{annotation_file}: not a COCO instances file ({type(error).__name__}: {error})") from error


def coco_source_images(annotation_file: str, image_dir: str):
    """`(images, vocabulary)`: one `SourceImage` per image id (ascending), label names per image.

    Raises:
        DataError: the file is missing or malformed, or lists no images or no categories.
    """
    coco = load_coco(annotation_file)
    names = {category["id"]: category["name"] for category in coco.loadCats(coco.getCatIds())}
    if not coco.getImgIds():
        raise DataError(f"{annotation_file}: field 'images' lists no images: nothing to convert")
    if not names:
        raise DataError(f"{annotation_file}: field 'categories' lists no categories, so no annotation has a label")
    images = []
    for image_id in sorted(coco.getImgIds()):
        info = coco.loadImgs(image_id)[0]
        if "file_name" not in info:
            raise DataError(f"{annotation_file}: image {image_id} has no field 'file_name'")
        labels = tuple(
            names.get(annotation["category_id"], f"category_id {annotation['category_id']}")
            for annotation in coco.imgToAnns.get(image_id, [])
        )
        images.append(SourceImage(os.path.join(image_dir, info["file_name"]), str(image_id), labels))
    return images, sorted(names.values())


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # imported only by the command line; adopted here, in the main module, so --help lists them.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)
    _shared_flags.run_command(
        lambda: coco_source_images(_ANNOTATIONS.value, _IMAGES.value), ["annotations", "images"], _VOCABULARY
    )
