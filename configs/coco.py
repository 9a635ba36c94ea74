"""MS-COCO recipes of the paper (§4.1; Tables 1 and 3), ResNet-101 at 448 with ImageNet weights.

    --config=configs/coco.py:ms_cma          MS-CMA (83.8 mAP in the paper)
    --config=configs/coco.py:cma             CMA on conv5 (82.8)
    --config=configs/coco.py:plain           the ResNet-101 baseline (79.9)
    --config=configs/coco.py:self_attention  the self-attention ablation (81.1)
    --config=configs/coco.py:w2v_ms_cma      MS-CMA with Word2Vec label embeddings (82.5)

Training as the paper (see `cma_tf.config_base.get_paper_image_config`), β = 0 in Eq. 12.
Data: `python -m cma_tf.data.convert.coco` into `data/coco` (train2014 → train, val2014 → val).
"""

from cma_tf.config_base import get_paper_image_config


def get_config(variant="ms_cma"):
    return get_paper_image_config(variant, data_dir="data/coco", beta=0.0)
