"""The MS-COCO recipes of `configs/coco.py` on COCO 2014 as TensorFlow Datasets prepares it
(`coco/2014`: train2014 → `train`, val2014 → `validation`), read where TFDS keeps it.

    --config=configs/coco_tfds.py:ms_cma [--config.data.tfds_data_dir=DIR]   (or :cma, :plain, …)

Labels: each image's object labels (`objects/label`), each once; the 80 names come from the
dataset. Prepare it once where the network is reachable (`tfds build coco/2014
--data_dir=DIR`); cma_tf never downloads.
"""

from cma_tf.config_base import get_tfds_image_config


def get_config(variant="ms_cma"):
    return get_tfds_image_config(variant, "coco/2014", train_split="train", eval_split="validation")
