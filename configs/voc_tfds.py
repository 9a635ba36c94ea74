"""PASCAL VOC 2007 as TensorFlow Datasets prepares it (`voc/2007`), trained on trainval
(`train+validation`) and evaluated on `test`, the usual multi-label protocol, with the paper's
image recipe (ResNet-101 at 448, its COCO settings, β = 0 in Eq. 12). The paper reports no
VOC numbers.

    --config=configs/voc_tfds.py:ms_cma [--config.data.tfds_data_dir=DIR]   (or :cma, :plain, …)

Labels: the image-level `labels` field (20 classes, difficult objects included); use
`--config.data.tfds_label_field=labels_no_difficult` to leave difficult-only labels out.
Prepare it once where the network is reachable (`tfds build voc/2007 --data_dir=DIR`).
"""

from cma_tf.config_base import get_tfds_image_config


def get_config(variant="ms_cma"):
    return get_tfds_image_config(variant, "voc/2007", train_split="train+validation", eval_split="test")
