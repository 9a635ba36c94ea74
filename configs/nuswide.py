"""NUS-WIDE (81 concepts) recipes of the paper (Table 2): CMA 60.8, MS-CMA 61.4 mAP.

    --config=configs/nuswide.py:ms_cma   (or :cma, :plain, :self_attention, :w2v_ms_cma)

As the COCO recipe but β = 0.4 in Eq. 12 (positives of rare labels weigh `e^{0.4(1−p_k)}`).
Data: `python -m cma_tf.data.convert.nuswide` into `data/nuswide` (Train → train, Test → val).
"""

from cma_tf.config_base import get_paper_image_config


def get_config(variant="ms_cma"):
    return get_paper_image_config(variant, data_dir="data/nuswide", beta=0.4)
