"""Label vectors shipped with the package, named in `config.model.label_embedding_file`.

`coco_glove_300d`: ML-GCN's node features for MS-COCO (Chen et al., "Multi-Label Image
Recognition with Graph Convolutional Networks", CVPR 2019): the 300-d GloVe vectors of COCO's
80 label names, float32 `[80, 300]`, row i for the i-th name in alphabetical order (ML-GCN's
`coco.py` indexes the categories by `sorted(names)`; the `coco_stats` dataset and
`tests/fixtures/coco2014_train_label_stats.json` list the same names in the same order). Copied
value for value from github.com/megvii-research/ML-GCN `data/coco/coco_glove_word2vec.pkl`
(commit 5517d6f; the pickle's SHA-256 is in the JSON) into `coco_glove_300d.npy`; the
`coco_glove_300d.json` beside it holds the provenance, the `.npy`'s SHA-256 and the 80 names.

A shipped name resolves to its `.npy` and its names, which the trainer holds against the run's
vocabulary (a class id is a row: vectors in another order would give every label another
label's features); any other value of the field is the path of a `.npy` of the user's own.
"""

import dataclasses
import json
import os
from typing import Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
SHIPPED = ("coco_glove_300d",)


@dataclasses.dataclass(frozen=True)
class ShippedVectors:
    """One shipped set of label vectors.

    Attributes:
        name: what `config.model.label_embedding_file` calls it.
        path: its `.npy` (float32 `[N, D]`).
        labels: the `N` label names, in row order.
        sha256: the `.npy` file's SHA-256.
        source: where the vectors come from (a URL and a file in it).
    """

    name: str
    path: str
    labels: Tuple[str, ...]
    sha256: str
    source: str


def shipped_vectors(name) -> Optional[ShippedVectors]:
    """The shipped vectors called `name`, or None when `name` is not one of `SHIPPED` (a path)."""
    if name not in SHIPPED:
        return None
    with open(os.path.join(HERE, f"{name}.json"), encoding="utf-8") as f:
        meta = json.load(f)
    return ShippedVectors(
        name=name, path=os.path.join(HERE, f"{name}.npy"), labels=tuple(meta["labels"]), sha256=meta["sha256"],
        source=f"{meta['source']} {meta['source_file']}",
    )
