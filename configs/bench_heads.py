"""The recipe `bench/heads.py` trains every head with: the demo's model sizes, a recipe none diverges under.

Usage: `--config=configs/bench_heads.py:<entry>,<dataset>[,official|,finetuned]`, e.g.
`configs/bench_heads.py:hsvlt,coco_stats`; with `,official` the head's own published recipe,
translated (`OFFICIAL_RECIPES`, below); with `,finetuned` the pretrained preset fine-tuned at a
tenth of the head's learning rate (`finetuned`, below: `bench/heads.py` sets the head's learning
rate and schedule to those its frozen-backbone search chose).
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
still 0.2-0.4 in one of two seeds, at 1.5 points an epoch before the decay). Those 60 epochs are
for a backbone that learns from random weights; with the pretrained preset (`,finetuned`,
`,official`) every dataset trains 12 epochs (`PRETRAINED_SCHEDULES`), the length of the frozen
regime's runs, so the three pretrained regimes compare at one budget and the 30 runs of a
regime on the COCO-statistics data stay within reach of 2 cores (60 epochs would take five times
as long; docs/design.md §2.28).

Losses: Query2Label and ML-Decoder train with the asymmetric loss as released (γ− = 2, no clip;
γ− = 4, clip 0.05; γ+ = 0 for both), every other head with BCE (Eq. 12, β = 0): CMA's, ML-GCN's
(`MultiLabelSoftMarginLoss`, a mean over the labels where ours sums them: under Adam the same
steps), HSVLT's released `BCEWithLogitsLoss`; MMDSR's is not known (its reconstruction follows
ADD-GCN's BCE). All are summed over the labels and averaged over the batch, so one learning rate
serves them all.
"""

import os

from cma_tf.config_base import load_config_file
from cma_tf.heads.registry import get_head, head_names
from cma_tf.selection.candidates import ASL_ML_DECODER, PAPER_LOSSES

# dataset: (epochs, lr_decay_epochs), and where `bench/heads.py` generates its data
SCHEDULES = {"demo": (12, 8), "coco_stats": (60, 45)}
# the same with the pretrained preset (`,finetuned`, `,official`): the frozen regime's length
PRETRAINED_SCHEDULES = {"demo": (12, 8), "coco_stats": (12, 9)}
# Each head's loss: PAPER_LOSSES (cma_tf/selection/candidates.py, shared with cma_tf.select); the others BCE.
# entry: (head, its loss fields)
VARIANTS = {"cma_asl": ("cma", ASL_ML_DECODER)}


# Each head's official recipe (its released code; docs/design.md §2.24-2.25), translated to this
# benchmark: the pretrained preset backbone, `PRETRAINED_SCHEDULES`' epochs, batch 32. Translations:
# - EMA 0.9997 averages over 3,333 steps, 2.6 epochs of COCO at batch 64 (Query2Label) and 2.3 at
#   batch 56 (ML-Decoder): kept as that many epochs of this dataset (`ema_epochs`), since at 0.9997
#   a run of a few thousand steps would mostly average its first weights.
# - ML-GCN's MultiLabelSoftMarginLoss is a mean over the labels where ours sums them: under SGD its
#   lr 0.1 is 0.1 / N here (`lr_per_label`); the backbone at a tenth (`backbone_lr_multiplier`).
# - HSVLT's ReduceLROnPlateau is left out (no decay), its batch 4 is not kept.
# - "paper": the CMA paper's SGD recipe (§4.1) for the heads of the paper and for MMDSR, whose
#   recipe is not published.
OFFICIAL_RECIPES = {
    "q2l": dict(optimizer="adamw", learning_rate=1e-4, weight_decay=1e-2, schedule="onecycle", ema_epochs=2.6,
                freeze_backbone_batchnorm=True, backbone_frozen_stages=2),
    "ml_decoder": dict(optimizer="adam", learning_rate=1e-4, weight_decay=1e-4, weight_decay_mode="l2",
                       weight_decay_1d=False, schedule="onecycle", ema_epochs=2.3),
    "mlgcn": dict(optimizer="sgd", lr_per_label=0.1, backbone_lr_multiplier=0.1, weight_decay=1e-4,
                  weight_decay_mode="l2", global_clipnorm=10.0, schedule="step"),
    "hsvlt": dict(optimizer="adamw", learning_rate=1e-5, weight_decay=1e-4, warmup_epochs=2.0, schedule="constant"),
    "paper": dict(optimizer="sgd", learning_rate=0.01, weight_decay=1e-5, schedule="step"),
}
NUM_TRAIN = {"demo": 3000, "coco_stats": 4000}  # the generators' defaults: steps per epoch for ema_epochs
NUM_LABELS = {"demo": 16, "coco_stats": 80}
TRAIN_FIELDS = ("optimizer", "learning_rate", "weight_decay", "weight_decay_mode", "weight_decay_1d",
                "backbone_lr_multiplier", "global_clipnorm", "warmup_epochs")
MODEL_FIELDS = ("freeze_backbone_batchnorm", "backbone_frozen_stages")


def official_recipe(config, head, dataset):
    """`config` trained with `head`'s official recipe (`OFFICIAL_RECIPES`; "paper" for heads without one)."""
    recipe = OFFICIAL_RECIPES.get(head, OFFICIAL_RECIPES["paper"])
    train = config.train
    train.warmup_epochs = 0.0
    for field in TRAIN_FIELDS:
        if field in recipe:
            train[field] = recipe[field]
    for field in MODEL_FIELDS:
        if field in recipe:
            config.model[field] = recipe[field]
    if "lr_per_label" in recipe:
        train.learning_rate = recipe["lr_per_label"] / NUM_LABELS[dataset]
    if recipe["schedule"] == "onecycle":
        train.schedule, train.onecycle_warmup = "onecycle", 0.2
    elif recipe["schedule"] == "constant":
        train.lr_decay_epochs = train.epochs + 1  # no decay within the run
    else:  # step: ÷10 after three quarters of the epochs (ML-GCN: epoch 30 of 40)
        train.lr_decay_epochs = max(1, round(0.75 * train.epochs))
    if "ema_epochs" in recipe:
        steps_per_epoch = NUM_TRAIN[dataset] // train.batch_size
        train.ema_decay = 1.0 - 1.0 / (recipe["ema_epochs"] * steps_per_epoch)
    config.model.backbone_weights = "small_synthetic"
    config.model.init = "official"
    if head == "mlgcn" and dataset == "coco_stats":
        config.model.label_embedding, config.model.label_embedding_file = "file", "coco_glove_300d"
    return config


def finetuned(config):
    """`config` with the pretrained preset (`small_synthetic`) trained at a tenth of the head's
    learning rate (`train.backbone_lr_multiplier`), the regime in which the published heads
    were designed; the head's learning rate and schedule are left to the caller."""
    config.model.backbone_weights = "small_synthetic"
    config.train.backbone_lr_multiplier = 0.1
    return config


def entries():
    """Every entry the benchmark compares: each registered image head (the YouTube-8M video models,
    `HeadSpec.video_model`, are compared on video), then the variants."""
    return tuple(name for name in head_names() if not get_head(name).video_model) + tuple(VARIANTS)


def get_config(spec="plain"):
    entry, _, rest = spec.partition(",")
    dataset, _, protocol = rest.partition(",")
    dataset = dataset or "demo"
    if protocol not in ("", "official", "finetuned"):
        raise ValueError(f"configs/bench_heads.py: unknown protocol {protocol!r} ('official' or 'finetuned')")
    if dataset not in SCHEDULES:
        raise ValueError(f"configs/bench_heads.py: unknown dataset {dataset!r} ({', '.join(SCHEDULES)})")
    head, loss = VARIANTS.get(entry, (entry, PAPER_LOSSES.get(entry, {})))
    config = load_config_file(os.path.join(os.path.dirname(os.path.abspath(__file__)), "demo.py")).get_config(head)
    config.data.data_dir = f"runs/bench_heads/{dataset}/data"
    config.train.optimizer = "adamw"
    config.train.learning_rate = 1e-3
    config.train.warmup_epochs = 1.0
    config.train.epochs, config.train.lr_decay_epochs = (PRETRAINED_SCHEDULES if protocol else SCHEDULES)[dataset]
    for field, value in loss.items():
        config.train[field] = value
    if protocol == "finetuned":
        return finetuned(config)
    return official_recipe(config, head, dataset) if protocol else config
