"""The recipe `bench/heads.py` trains every head with: the demo's model sizes, a recipe none diverges under.

Usage: `--config=configs/bench_heads.py:<head>` (any registered head; default plain).

The same small backbone at 96 px, widths and ASGE as `configs/demo.py`; only the optimizer
differs. Under the demo's (the paper's) SGD at lr 0.01 HSVLT's interaction blocks diverge
within the first epoch, with or without a warm-up (`docs/design.md` §2.18), so every head here
trains with AdamW at lr 1e-3 after one epoch of linear warm-up, ÷10 after `lr_decay_epochs`.
The data directory is set by `bench/heads.py` (`--config.data.data_dir`).
"""

import importlib.util
import os


def _demo_config(head):
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py")
    spec = importlib.util.spec_from_file_location("demo_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(head)


def get_config(head="plain"):
    config = _demo_config(head)
    config.train.optimizer = "adamw"
    config.train.learning_rate = 1e-3
    config.train.warmup_epochs = 1.0
    config.train.epochs = 12
    config.train.lr_decay_epochs = 8
    return config
