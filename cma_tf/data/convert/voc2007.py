r"""PASCAL VOC 2007 → TFRecords: `python -m cma_tf.data.convert.voc2007`.

Reads `ImageSets/Main/<image_set>.txt` (trainval, test, …) and, for each id, the objects of
`Annotations/<id>.xml`; the image is `JPEGImages/<id>.jpg`. An image's labels are the classes
of its objects; objects marked `<difficult>1</difficult>` count only with
`--include_difficult` (the classification benchmark treats them as "ignore"). The vocabulary
is VOC's 20 classes in their usual order (`data/voc2007_labels.txt`), or `<out_dir>/labels.txt`
if an earlier split made it (every split of a directory shares one).

Example:
    python -m cma_tf.data.convert.voc2007 --root=VOCdevkit/VOC2007 --image_set=trainval \
        --out_dir=data/voc2007 --split=train
"""

import os
import xml.etree.ElementTree as ElementTree

from absl import flags

from cma_tf.data.convert.common import BAD_ANNOTATION, Problem, SourceImage
from cma_tf.errors import DataError

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)

# --root is also defined by another converter: allow_override lets one process import
# several converters (tests, notebooks) without absl's DuplicateFlagError.
_ROOT = flags.DEFINE_string(
    "root", None, "The VOC2007 directory (holding Annotations/, ImageSets/, JPEGImages/).", allow_override=True
)
_IMAGE_SET = flags.DEFINE_string("image_set", "trainval", "Image set under ImageSets/Main/: trainval, train, val or test.")
_INCLUDE_DIFFICULT = flags.DEFINE_bool("include_difficult", False, "Also label objects marked difficult.")


def read_image_set(root: str, image_set: str):
    path = os.path.join(root, "ImageSets", "Main", f"{image_set}.txt")
    if not os.path.exists(path):
        raise DataError(f"VOC image set not found: {path}")
    with open(path) as f:
        ids = [line.split()[0] for line in f if line.strip()]
    if not ids:
        raise DataError(f"{path}: lists no image ids: nothing to convert")
    return ids


def object_labels(xml_path: str, include_difficult: bool):
    """The class names of the objects in one annotation file (raises ValueError if malformed)."""
    try:
        root = ElementTree.parse(xml_path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"malformed XML: {error}") from error
    labels = []
    for index, obj in enumerate(root.iter("object")):
        name = obj.findtext("name")
        if not name or not name.strip():
            raise ValueError(f"object {index} has no <name>")
        if obj.findtext("difficult", "0").strip() == "1" and not include_difficult:
            continue
        labels.append(name.strip())
    return tuple(labels)


def voc_source_images(root: str, image_set: str, include_difficult: bool = False):
    """`(images, vocabulary, problems)` for one image set."""
    images, problems = [], []
    for image_id in read_image_set(root, image_set):
        xml_path = os.path.join(root, "Annotations", f"{image_id}.xml")
        image_path = os.path.join(root, "JPEGImages", f"{image_id}.jpg")
        if not os.path.exists(xml_path):
            problems.append(Problem(image_id, image_path, BAD_ANNOTATION, f"missing {xml_path}"))
            continue
        try:
            labels = object_labels(xml_path, include_difficult)
        except ValueError as error:
            problems.append(Problem(image_id, image_path, BAD_ANNOTATION, f"{xml_path}: {error}"))
            continue
        images.append(SourceImage(image_path, image_id, labels))
    return images, list(VOC_CLASSES), problems


if __name__ == "__main__":
    # --out_dir, --split, --num_shards, --num_workers, --strict: defined by the shared cli module,
    # imported only by the command line; adopted here, in the main module, so --help lists them.
    import cma_tf.data.convert.cli as _shared_flags

    flags.adopt_module_key_flags(_shared_flags)
    _shared_flags.run_command(
        lambda: voc_source_images(_ROOT.value, _IMAGE_SET.value, _INCLUDE_DIFFICULT.value), ["root"]
    )
