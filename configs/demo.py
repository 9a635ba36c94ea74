"""The CPU demo: the small backbone at 96 px on the generated demo dataset (`make demo`).

Usage: `--config=configs/demo.py:ms_cma` (or plain, self_attention, cma).
"""

from cma_tf.config_base import get_base_config


def get_config(head="ms_cma"):
    # An unknown head is reported by the factory, as one line naming config.model.head.
    config = get_base_config()
    config.data.data_dir = "runs/demo/data"
    config.data.image_size = 96
    config.data.shuffle_buffer = 1024
    config.data.deterministic = True  # the same table on every run on one machine (docs/training.md, what varies)
    config.model.head = head
    config.model.backbone = "small"
    config.model.backbone_weights = None
    config.model.feature_channels = 128
    config.model.extra_block_filters = 32
    config.asge.units = 64
    config.asge.steps = 1000
    config.train.epochs = 12
    config.train.batch_size = 32
    config.train.eval_batch_size = 100
    config.train.learning_rate = 0.01
    config.train.lr_decay_epochs = 8
    return config
