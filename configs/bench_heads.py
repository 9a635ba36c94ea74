"""The recipe `bench/heads.py` trains every head with: the demo's model sizes, a recipe none diverges under.

Usage: `--config=configs/bench_heads.py:<entry>,<dataset>`, e.g. `configs/bench_heads.py:hsvlt,coco_stats`.
An entry is a registered head, trained with the loss of its paper (`PAPER_LOSSES`), or one of
`VARIANTS` (`cma_asl`: CMA under ML-Decoder's asymmetric loss); the dataset is `demo` (the
default) or `coco_stats`.

The same small backbone at 96 px, widths and ASGE as `configs/demo.py`; the optimizer and the
length differ. Under the demo's (the paper's) SGD at lr 0.01 HSVLT's interaction blocks
diverge within the first epochs, with or without a warm-up (`docs/design.md` §2.18), so every
head here trains with AdamW at lr 1e-3 after one epoch of linear warm-up, ÷10 after
`lr_decay_epochs`. The length is the dataset's, the same for every head: long enough that the
heads stop improving (the demo: 12 epochs; the 80-label COCO-statistics data: 60. There, 12
epochs left CMA's val mAP rising 0.7 points an epoch after the decay, and 30 (÷10 after 20)
still 0.2-0.4 in one of two seeds, at 1.5 points an epoch before the decay).

Losses: Query2Label and ML-Decoder train with the asymmetric loss as released (γ− = 2, no clip;
γ− = 4, clip 0.05; γ+ = 0 for both), every other head with BCE (Eq. 12, β = 0): CMA's, ML-GCN's
(`MultiLabelSoftMarginLoss`, a mean over the labels where ours sums them: under Adam the same
steps), HSVLT's released `BCEWithLogitsLoss`; MMDSR's is not known (its reconstruction follows
ADD-GCN's BCE). All are summed over the labels and averaged over the batch, so one learning rate
serves them all.
"""

import os

from cma_tf.config_base import load_config_file
from cma_tf.heads.registry import head_names

# dataset: (epochs, lr_decay_epochs), and where `bench/heads.py` generates its data
SCHEDULES = {"demo": (12, 8), "coco_stats": (60, 45)}
ASL_ML_DECODER = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=4.0, asl_clip=0.05)
ASL_QUERY2LABEL = dict(loss="asl", asl_gamma_pos=0.0, asl_gamma_neg=2.0, asl_clip=0.0)
PAPER_LOSSES = {"q2l": ASL_QUERY2LABEL, "ml_decoder": ASL_ML_DECODER}  # the others: BCE
# entry: (head, its loss fields)
VARIANTS = {"cma_asl": ("cma", ASL_ML_DECODER)}


def entries():
    """Every entry the benchmark compares: each registered head, then the variants."""
    return tuple(head_names()) + tuple(VARIANTS)


def get_config(spec="plain"):
    entry, _, dataset = spec.partition(",")
    dataset = dataset or "demo"
    if dataset not in SCHEDULES:
        raise ValueError(f"configs/bench_heads.py: unknown dataset {dataset!r} ({', '.join(SCHEDULES)})")
    head, loss = VARIANTS.get(entry, (entry, PAPER_LOSSES.get(entry, {})))
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py")).get_config(head)
    config.data.data_dir = f"runs/bench_heads/{dataset}/data"
    config.train.optimizer = "adamw"
    config.train.learning_rate = 1e-3
    config.train.warmup_epochs = 1.0
    config.train.epochs, config.train.lr_decay_epochs = SCHEDULES[dataset]
    for field, value in loss.items():
        config.train[field] = value
    return config
