"""Small TFDS datasets prepared in a directory, under the names and feature specs of the real
`coco/2014` and `voc/2007` (the registered builders' own features, COCO's and VOC's label
names), so that `tfds.builder("coco/2014", data_dir=DIR)` finds them prepared and nothing is
downloaded. Each image holds a few objects; `LABELS[split][i]` are image i's object labels
(with repeats, as detection data has them)."""

import json
import os

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def coco_names():
    with open(os.path.join(REPO, "tests", "fixtures", "coco2014_train_label_stats.json")) as f:
        return list(json.load(f)["labels"])


def voc_names():
    with open(os.path.join(REPO, "tests", "fixtures", "voc2007_trainval_label_stats.json")) as f:
        return list(json.load(f)["labels"])


def _objects(rng, num_classes, size=24, labelled=True):
    """An image with 1-4 objects (a label may repeat) drawn as filled squares of label-coded colour."""
    count = int(rng.integers(1, 5)) if labelled else 0
    labels = rng.integers(0, num_classes, count)
    image = np.full((size, size + 8, 3), 128, np.uint8)
    for label in labels:
        top, left = rng.integers(0, size - 8, 2)
        image[top:top + 8, left:left + 8] = (label * 37 % 256, label * 91 % 256, label * 13 % 256)
    return image, [int(label) for label in labels]


def prepare(kind, data_dir, sizes, seed=0, unlabelled=()):
    """Prepares the mock `coco/2014` (kind "coco") or `voc/2007` ("voc") in `data_dir`, with
    `sizes` `{split: examples}` (the splits of `unlabelled` without any object or label, as a
    published test split); returns `{split: [labels of each example, in the order drawn]}`
    (TFDS stores them shuffled)."""
    import tensorflow_datasets as tfds

    name, config = ("coco", "2014") if kind == "coco" else ("voc", "2007")
    real = tfds.builder(f"{name}/{config}", data_dir=os.path.join(data_dir, "_empty"), try_gcs=False)
    features = real.info.features
    names = coco_names() if kind == "coco" else voc_names()
    features["objects"]["label"].names = names
    if kind == "voc":
        features["labels"].feature.names = names
        features["labels_no_difficult"].feature.names = names
    drawn = {}
    for index, (split, count) in enumerate(sorted(sizes.items())):
        rng = np.random.default_rng(seed * 1000 + index)
        drawn[split] = [_objects(rng, len(names), labelled=split not in unlabelled) for _ in range(count)]

    def example(image, labels, i):
        k = len(labels)
        box = tfds.features.BBox(0.1, 0.1, 0.5, 0.5)
        if kind == "coco":
            objects = {"area": [64] * k, "bbox": [box] * k, "id": list(range(k)), "is_crowd": [False] * k, "label": labels}
            return {"image": image, "image/filename": f"{i}.jpg", "image/id": i, "objects": objects}
        objects = {"bbox": [box] * k, "is_difficult": [False] * k, "is_truncated": [False] * k, "label": labels,
                   "pose": [0] * k}
        unique = sorted(set(labels))
        return {"image": image, "image/filename": f"{i}.jpg", "labels": unique, "labels_no_difficult": unique,
                "objects": objects}

    class Mock(tfds.core.GeneratorBasedBuilder, skip_registration=True):
        VERSION = real.version
        BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=config)]

        def _info(self):
            return tfds.core.DatasetInfo(builder=self, features=features)

        def _split_generators(self, dl_manager):
            return {split: self._generate_examples(split) for split in drawn}

        def _generate_examples(self, split):
            for i, (image, labels) in enumerate(drawn[split]):
                yield i, example(image, labels, i)

    Mock.name = name
    Mock(data_dir=data_dir, config=config).download_and_prepare()
    return {split: [labels for _, labels in examples] for split, examples in drawn.items()}
