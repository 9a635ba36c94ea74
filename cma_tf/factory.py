"""The one place that turns a config (`configs/*.py`) into objects: backbone, head, classifier,
loss, optimizer, datasets, vocabulary and the evaluation metrics of the data's kind. Nothing
else reads `config.model` or the optimiser fields of `config.train`; the trainer reads the
run's own fields (data directory and splits, epochs, batch size, seed) and, to fit and cache
the label embeddings, `config.asge` and `config.model.label_embedding`.

What depends on the data (`config.data.format`) is asked of its kind (`cma_tf/kinds/`); what
depends on the head (`config.model.head`), of its registration (`cma_tf/heads/registry.py`)."""

import keras
import numpy as np

from cma_tf.backbones.convnext import convnext_small_backbone
from cma_tf.backbones.freezing import STAGE_PREFIXES, freeze_batchnorm, freeze_stages
from cma_tf.backbones.resnet import resnet101_backbone
from cma_tf.backbones.small import small_backbone
from cma_tf.backbones.video import fc_backbone, frames_backbone, snet_backbone
from cma_tf.backbones.weights import resolve_small_weights
from cma_tf import config_schema
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.word2vec import FixedLabelEmbedding
from cma_tf.heads.registry import get_head, head_names
from cma_tf.kinds.registry import get_kind, kind_names
from cma_tf.layers.torch_init import INITS
from cma_tf.losses import AsymmetricLoss, WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier
from cma_tf.optimizers import WEIGHT_DECAY_MODES, RecipeAdam, RecipeAdamW, RecipeSGD
from cma_tf.schedules import LinearWarmup, OneCycle

# How many feature maps each backbone gives its head (shallow to deep).
BACKBONE_TAPS = {"resnet101": 2, "small": 2, "convnext_small": 4, "snet": 1, "fc": 1, "frames": 1}
# The image sides each image backbone builds at: (smallest, a multiple of). Keras' ResNet-101
# refuses inputs under 32; the small CNN and ConvNeXt divide the side by 16 and 32 exactly.
IMAGE_SIZES = {"resnet101": (32, 1), "small": (16, 16), "convnext_small": (32, 32)}
LABEL_EMBEDDINGS = ("asge", "word2vec", "file")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "onecycle")
LOSSES = ("bce", "asl")
CLASSIFIERS = ("dense", "moe")  # config.model.classifier (None: the head's own)


def data_kind(config):
    """The `DataKind` of `config.data.format` (a `ConfigError` naming the registered ones)."""
    return get_kind(config.data.format)


def feature_names(config) -> tuple:
    """The YouTube-8M features `config.data.feature_names` names, checked (`kinds/yt8m.py`)."""
    return data_kind(config).feature_names(config)


def validate_config(config) -> None:
    """Fails fast, before any data is read or file written, on field values no builder accepts:
    first every numeric field against its range (`config_schema.check_config`), then the
    choices (head, backbone, data kind, loss, optimizer) and the relations between fields."""
    config_schema.check_config(config)
    model = config.model
    head = get_head(model.head)
    kind = data_kind(config)
    if model.backbone not in BACKBONE_TAPS:
        raise ConfigError(
            f"config.model.backbone: unknown backbone {model.backbone!r} ({', '.join(BACKBONE_TAPS)})"
        )
    if model.backbone not in kind.backbones:
        raise ConfigError(
            f"config.model.backbone={model.backbone!r} does not read config.data.format={config.data.format!r} "
            f"data (use one of {', '.join(kind.backbones)})"
        )
    if head.taps > BACKBONE_TAPS[model.backbone]:
        single = [name for name in head_names() if get_head(name).taps <= BACKBONE_TAPS[model.backbone]]
        raise ConfigError(
            f"config.model.head={model.head!r} reads {head.taps} backbone maps but config.model.backbone="
            f"{model.backbone!r} gives {BACKBONE_TAPS[model.backbone]} (heads that fit: {', '.join(single)})"
        )
    _validate_classifier(config, head)
    if model.backbone in IMAGE_SIZES:
        smallest, multiple = IMAGE_SIZES[model.backbone]
        size = config.data.image_size
        if size < smallest or size % multiple:
            rule = f"a multiple of {multiple}" if multiple > 1 else f"at least {smallest}"
            near = max(smallest, round(size / multiple) * multiple)
            raise ConfigError(
                f"config.data.image_size={size}: config.model.backbone={model.backbone!r} needs {rule} (e.g. {near})"
            )
    if config.data.eval_segments and not kind.supports_eval_segments:
        segmented = [name for name in kind_names() if get_kind(name).supports_eval_segments]
        raise ConfigError(
            f"config.data.eval_segments needs config.data.format={' or '.join(map(repr, segmented))} "
            "(segment-rated records)"
        )
    tfds_fields = [f"config.data.{field}" for field in ("tfds_name", "tfds_data_dir", "tfds_label_field") if config.data[field]]
    if tfds_fields and kind.name != "tfds":
        raise ConfigError(
            f"{', '.join(tfds_fields)} set but config.data.format={config.data.format!r}: they are read only "
            "with --config.data.format=tfds"
        )
    kind.validate(config)
    if config.train.optimizer not in OPTIMIZERS:
        raise ConfigError(
            f"config.train.optimizer: unknown optimizer {config.train.optimizer!r} ({', '.join(OPTIMIZERS)})"
        )
    _validate_recipe(config)
    if config.train.loss not in LOSSES:
        raise ConfigError(f"config.train.loss: unknown loss {config.train.loss!r} ({', '.join(LOSSES)})")
    if config.train.loss == "asl" and config.train.beta:
        raise ConfigError("config.train.beta weights Eq. 12 (config.train.loss='bce'); ASL has no β: set it to 0")
    if model.init not in INITS:
        raise ConfigError(f"config.model.init: unknown {model.init!r} ({', '.join(INITS)})")
    if model.label_embedding not in LABEL_EMBEDDINGS:
        raise ConfigError(
            f"config.model.label_embedding: unknown {model.label_embedding!r} ({', '.join(LABEL_EMBEDDINGS)})"
        )
    if model.label_embedding != "asge" and (model.finetune_label_embeddings or model.graph_loss_weight > 0):
        raise ConfigError(
            f"config.model.label_embedding={model.label_embedding!r} is a fixed table: no fine-tuning or graph loss"
        )
    if (model.label_embedding == "file") != bool(model.label_embedding_file):
        raise ConfigError(
            "config.model.label_embedding_file (a .npy of [N, D] label vectors) goes with "
            f"config.model.label_embedding='file', got label_embedding={model.label_embedding!r} and "
            f"label_embedding_file={model.label_embedding_file!r}"
        )
    if model.graph_loss_weight > 0 and not model.finetune_label_embeddings:
        raise ConfigError(
            "config.model.graph_loss_weight > 0 only acts on fine-tuned label embeddings: "
            "also set config.model.finetune_label_embeddings=True (or the weight to 0)"
        )
    if model.graph_loss_weight > 0 and not head.label_embeddings:
        embedding_heads = [name for name in head_names() if get_head(name).label_embeddings]
        raise ConfigError(
            f"config.model.graph_loss_weight > 0 needs a head with label embeddings ({', '.join(embedding_heads)})"
        )


def _validate_classifier(config, head):
    """`config.model.classifier` and `probability_gating` (docs/design.md §2.29): known values, on
    heads that take them."""
    model = config.model
    for field in ("classifier", "probability_gating"):
        value = model[field]
        if value is not None and field not in head.options:
            takers = [name for name in head_names() if field in get_head(name).options]
            raise ConfigError(
                f"config.model.{field}={value!r}: config.model.head={model.head!r} has no such option "
                f"(heads that take it: {', '.join(takers)}); leave it at None"
            )
    if model.classifier not in (None,) + CLASSIFIERS:
        raise ConfigError(f"config.model.classifier: unknown {model.classifier!r} ({', '.join(CLASSIFIERS)})")
    if model.probability_gating and model.classifier != "moe":
        raise ConfigError(
            "config.model.probability_gating=True gates the mixture of experts' probabilities: "
            "also set config.model.classifier='moe'"
        )


def _validate_recipe(config):
    """The choices and relations of the recipe options of docs/design.md §2.24."""
    train, model = config.train, config.model
    if train.schedule not in SCHEDULES:
        raise ConfigError(f"config.train.schedule: unknown schedule {train.schedule!r} ({', '.join(SCHEDULES)})")
    if train.schedule == "onecycle":
        for field in ("warmup_epochs", "lr_decay_examples"):
            if train[field]:
                raise ConfigError(
                    f"config.train.{field} belongs to config.train.schedule='step'; 'onecycle' warms up over "
                    f"config.train.onecycle_warmup of the steps and decays by itself: unset config.train.{field}"
                )
    if train.weight_decay_mode not in WEIGHT_DECAY_MODES:
        raise ConfigError(
            f"config.train.weight_decay_mode: unknown mode {train.weight_decay_mode!r} ({', '.join(WEIGHT_DECAY_MODES)})"
        )
    for field in ("freeze_backbone_batchnorm", "backbone_frozen_stages"):
        if model[field] and model.backbone not in STAGE_PREFIXES:
            raise ConfigError(
                f"config.model.{field} is for config.model.backbone {' or '.join(map(repr, STAGE_PREFIXES))}, "
                f"not {model.backbone!r}: leave it at its default"
            )


def needs_label_embeddings(config) -> bool:
    return get_head(config.model.head).label_embeddings


def build_backbone(config):
    model = config.model
    shape = data_kind(config).input_shape(config)
    if model.backbone == "snet":
        return snet_backbone(shape[0], shape[1], tuple(model.snet_filters))
    if model.backbone == "fc":
        return fc_backbone(shape[0], shape[1], tuple(model.fc_units))
    if model.backbone == "frames":
        return frames_backbone(shape[0], shape[1])
    if model.backbone == "resnet101":
        return resnet101_backbone(image_size=shape[0], weights=model.backbone_weights)
    if model.backbone == "convnext_small":
        return convnext_small_backbone(image_size=shape[0], weights=model.backbone_weights)
    if model.backbone == "small":
        widths = tuple(model.backbone_widths)
        weights = resolve_small_weights(model.backbone_weights, widths)
        return small_backbone(image_size=shape[0], widths=widths, weights=weights)
    raise ConfigError(f"config.model.backbone: unknown backbone {model.backbone!r} ({', '.join(BACKBONE_TAPS)})")


def freeze_backbone_parts(config, backbone):
    """Freezes what the recipe keeps fixed (docs/design.md §2.24): the whole backbone when
    `config.train.backbone_lr_multiplier` is 0, its BatchNorms (`config.model.freeze_backbone_batchnorm`),
    its first stages (`config.model.backbone_frozen_stages`). Frozen layers are not trained and
    their BatchNorms run in inference mode."""
    model = config.model
    if config.train.backbone_lr_multiplier == 0:
        backbone.trainable = False
    if model.freeze_backbone_batchnorm:
        freeze_batchnorm(backbone)
    freeze_stages(backbone, model.backbone, model.backbone_frozen_stages)
    return backbone


def build_label_encoder(config, num_classes, fitted_encoder=None):
    """The head's label embeddings: for `asge`, a copy of the fitted Φ, frozen unless fine-tuned
    jointly; for `word2vec` (the W2V-MS-CMA ablation) and `file` (vectors of the user's own, e.g.
    GloVe for ML-GCN), a fixed table of the given vectors (`fitted_encoder` is then the
    `[N, D]` array; without it the table is `config.asge.units` wide)."""
    if config.model.label_embedding in ("word2vec", "file"):
        units = config.asge.units if fitted_encoder is None else int(np.shape(fitted_encoder)[1])
        table = FixedLabelEmbedding(num_classes, units, name="label_encoder")
        table.build()
        if fitted_encoder is not None:
            table.set_embeddings(fitted_encoder)
        return table
    encoder = ASGEEncoder(num_classes, units=config.asge.units, depth=config.asge.depth, name="label_encoder")
    encoder.build()
    if fitted_encoder is not None:
        encoder.set_weights(fitted_encoder.get_weights())
    encoder.trainable = bool(config.model.finetune_label_embeddings)
    return encoder


def frame_streams(config):
    """`((name, size), …)` of the YouTube-8M features the `frames` backbone passes on, in
    `config.data.feature_names`' order; None over any other backbone (its output is one stream)."""
    if config.model.backbone != "frames":
        return None
    sizes = feature_sizes(config)
    return tuple((name, sizes[name]) for name in feature_names(config))


def build_head(config, num_classes, label_encoder=None, label_counts=None):
    """The head of `config.model.head` from its registration: its `options` are read from
    `config.model` and passed as keyword arguments of the same name; a head built from the label
    graph (ML-GCN) also gets the training set's `label_counts`."""
    model = config.model
    spec = get_head(model.head)
    options = {field: model[field] for field in spec.options}
    if spec.feature_streams:
        options["feature_streams"] = frame_streams(config)
    if spec.label_graph:
        if label_counts is None:
            raise ConfigError(f"config.model.head={model.head!r} is built from the label graph (run it through cma_tf.train)")
        options["label_counts"] = label_counts
    if not spec.label_embeddings:
        return spec.layer(num_classes, name="head", **options)
    if label_encoder is None:
        raise ConfigError(f"config.model.head={model.head!r} needs label embeddings (run ASGE first)")
    return spec.layer(num_classes, label_encoder, name="head", **options)


def build_classifier(config, num_classes, fitted_encoder=None, label_graph=None, backbone=None):
    """The classifier of `config.model.head` over `config.model.backbone`.

    Args:
        fitted_encoder: what the label encoder starts from (heads with label embeddings): the
            ASGE-fitted `ASGEEncoder`, or the `[N, C_e]` vectors of Word2Vec or of a file.
        label_graph: the training set's `LabelGraph` (`graph/cooccurrence.py`), needed by heads
            built from it (ML-GCN) and when `config.model.graph_loss_weight > 0` (its `A`), and
            whose label counts set the logits' offset when `config.model.label_prior` (without
            it the offset stays 0 until the weights are loaded or `set_label_prior` is called).
        backbone: the backbone to use instead of `config.model.backbone`'s, e.g. the identity
            over cached maps of `selection/feature_head.py` (default: `build_backbone(config)`).
    """
    validate_config(config)
    label_encoder = None
    if needs_label_embeddings(config):
        label_encoder = build_label_encoder(config, num_classes, fitted_encoder)
    joint = config.model.graph_loss_weight > 0
    counts = None
    if label_graph is not None and get_head(config.model.head).label_graph:
        counts = label_graph.dense_counts(f"the {config.model.head} head (its label graph is a dense N × N weight)")
    model = MultiLabelClassifier(
        freeze_backbone_parts(config, build_backbone(config)) if backbone is None else backbone,
        build_head(config, num_classes, label_encoder, counts),
        graph_loss_weight=config.model.graph_loss_weight if joint else 0.0,
        graph_alpha=config.asge.alpha,
        graph_row_guard=config.asge.row_guard if joint else 0.0,
        scale_loss_weight=config.model.scale_loss_weight,
        label_prior=config.model.label_prior,
        name=f"{config.model.head}_classifier",
    )
    if config.model.label_prior and label_graph is not None:
        model.set_label_prior(label_graph.counts.diagonal(), label_graph.num_examples)
    if joint:
        if label_graph is None:
            raise ConfigError("config.model.graph_loss_weight > 0 needs the label graph")
        label_graph.dense_counts("config.model.graph_loss_weight > 0 (the joint ASGE loss holds A as a dense N × N weight)")
        model.set_label_graph(label_graph.adjacency)
    return model


def build_loss(config, label_frequencies=None):
    """`config.train.loss`: "bce", Eq. 12 with β = `config.train.beta` (the paper's), or "asl",
    the asymmetric loss with `config.train.asl_*` (`losses.AsymmetricLoss`); both summed over
    the labels and averaged over the batch."""
    train = config.train
    if train.loss == "asl":
        return AsymmetricLoss(train.asl_gamma_pos, train.asl_gamma_neg, train.asl_clip)
    if train.loss != "bce":
        raise ConfigError(f"config.train.loss: unknown loss {train.loss!r} ({', '.join(LOSSES)})")
    return WeightedBinaryCrossentropy(label_frequencies if train.beta else None, beta=train.beta)


def build_learning_rate(config, steps_per_epoch):
    """`config.train.schedule="step"`: lr ÷ `lr_decay_factor` every `lr_decay_epochs` epochs (the
    paper's images: ÷10 every 30), or every `lr_decay_examples` training examples when that is set
    (the paper's video: ×0.8 every 2·10⁶ samples). `config.train.warmup_epochs` > 0 (0: none, the
    paper) ramps it up linearly over that many epochs first (`schedules.LinearWarmup`).
    "onecycle": PyTorch's OneCycleLR over `epochs × steps_per_epoch` steps, rising over the first
    `onecycle_warmup` of them (`schedules.OneCycle`)."""
    train = config.train
    if train.schedule == "onecycle":
        return OneCycle(train.learning_rate, train.epochs * steps_per_epoch, pct_start=train.onecycle_warmup)
    schedule = _decay_schedule(config, steps_per_epoch)
    if train.warmup_epochs:
        schedule = LinearWarmup(schedule, max(1, round(train.warmup_epochs * steps_per_epoch)))
    return schedule


def _decay_schedule(config, steps_per_epoch):
    train = config.train
    if train.lr_decay_examples:
        return keras.optimizers.schedules.ExponentialDecay(
            train.learning_rate, decay_steps=max(1, train.lr_decay_examples // train.batch_size),
            decay_rate=1.0 / train.lr_decay_factor, staircase=True,
        )
    boundaries = list(range(train.lr_decay_epochs, train.epochs, train.lr_decay_epochs))
    if not boundaries:
        return train.learning_rate
    values = [train.learning_rate / train.lr_decay_factor**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [epoch * steps_per_epoch for epoch in boundaries], values
    )


def build_optimizer(config, steps_per_epoch, model=None):
    """`config.train.optimizer`: "sgd" (the paper's: momentum `config.train.momentum`), "adam"
    (ML-Decoder's) or "adamw" (HSVLT's released recipe is AdamW at lr 1e-5), all with weight decay
    `config.train.weight_decay` and the learning-rate schedule of `build_learning_rate`. Keras
    applies weight decay decoupled from the gradient (`w -= lr·wd·w`; Adam with it is AdamW);
    `config.train.weight_decay_mode="l2"` adds `wd·w` to the gradient as PyTorch's SGD and Adam
    do. `config.train.global_clipnorm` (None: off, the paper) rescales the whole gradient to at
    most that norm before the update.

    The recipe options (`weight_decay_mode`, `weight_decay_1d`, `backbone_lr_multiplier`,
    `ema_decay`; docs/design.md §2.24) take the `optimizers.Recipe*` classes; at their defaults
    the optimizer is Keras' own, as before them. `model` (the classifier) names the backbone's
    variables for a `backbone_lr_multiplier` other than 1 and 0."""
    train = config.train
    common = dict(
        learning_rate=build_learning_rate(config, steps_per_epoch),
        weight_decay=train.weight_decay or None,
        global_clipnorm=train.global_clipnorm,
    )
    multiplier = train.backbone_lr_multiplier
    scaled = multiplier not in (0.0, 1.0)  # 0: the backbone is frozen (`freeze_backbone_parts`)
    recipe = scaled or train.ema_decay is not None or train.weight_decay_mode != "decoupled" or not train.weight_decay_1d
    if recipe:
        if scaled and model is None:
            raise ValueError("build_optimizer needs the model to scale the backbone's learning rate")
        common.update(
            scaled_variables=[variable.path for variable in model.backbone.trainable_variables] if scaled else [],
            lr_multiplier=multiplier if scaled else 1.0,
            weight_decay_mode=train.weight_decay_mode, decay_1d=train.weight_decay_1d,
        )
        if train.ema_decay is not None:
            common.update(use_ema=True, ema_momentum=train.ema_decay)
    classes = {
        "sgd": (keras.optimizers.SGD, RecipeSGD),
        "adam": (keras.optimizers.Adam, RecipeAdam),
        "adamw": (keras.optimizers.AdamW, RecipeAdamW),
    }
    if train.optimizer in classes:
        optimizer_class = classes[train.optimizer][1 if recipe else 0]
        if train.optimizer == "sgd":
            return optimizer_class(momentum=train.momentum, **common)
        return optimizer_class(**common)
    raise ConfigError(f"config.train.optimizer: unknown optimizer {train.optimizer!r} ({', '.join(OPTIMIZERS)})")


def epoch_seed(config, epoch):
    """The data seed of one epoch: a resumed run sees exactly the data it would have seen."""
    return config.seed * 100_003 + epoch


def list_data_files(config, split):
    """The record files of `split` (an error naming the pattern if there are none; for
    YouTube-8M, also a `DataError` when the first record is not of the config's kind)."""
    return data_kind(config).list_files(config, split)


def check_record_kind(config, files):
    """YouTube-8M: a `DataError` when `files` hold the other kind of records (`kinds/yt8m.py`)."""
    data_kind(config).check_record_kind(config, files)


def feature_sizes(config) -> dict:
    """YouTube-8M: each feature's size, `config.data.feature_sizes` over the published ones."""
    return data_kind(config).feature_sizes(config)


def check_records(config, num_classes):
    """Before any work: a bounded scan of the training and evaluation splits' records (a
    `DataError` naming the first bad record; `kinds/registry.py` `check_records`)."""
    data_kind(config).check_records(config, num_classes)


def first_bad_record(config, files, num_classes):
    """After a failed read: one line naming the first record of `files` that cannot be used
    (shard, record index, id, field), or None."""
    return data_kind(config).first_bad_record(config, files, num_classes)


def read_vocabulary(config):
    """Label names: `config.data.vocabulary`, else `<data_dir>/labels.txt`, else (YouTube-8M)
    `<data_dir>/vocabulary.csv` or the one in its parent."""
    return data_kind(config).read_vocabulary(config)


def label_parser(config):
    """Serialized records → sparse label ids, for the streaming label graph; None for images
    (the graph builder's own image parser, which also finds the bad record after an error)."""
    return data_kind(config).label_parser(config)


def evaluation_metrics(config):
    """`(metrics_fn(scores, targets) -> dict, keys, monitor)`: the paper's metrics of the data's
    kind (images: mAP, C/O P/R/F1; video: GAP, Hit@1, PERR, mAP) and the one `best.keras` follows."""
    kind = data_kind(config)
    return kind.metrics, kind.metric_keys, kind.monitor


def build_dataset(config, num_classes, split, training, repeat=False, epoch=None, input_context=None):
    """The input pipeline of `split`; `epoch` seeds its shuffle and augmentation (training).

    Images give `(images, multi_hot)`; YouTube-8M gives `(frames [B, T, D], multi_hot)`, and
    with `config.data.eval_segments` (evaluation) `(segment frames, rated scores, rated mask)`
    per rated 5-frame segment."""
    kind = data_kind(config)
    files = kind.list_files(config, split)
    if not training:
        kind.check_eval_split(config, split, files)
    batch_size = config.train.batch_size if training else config.train.eval_batch_size
    seed = config.seed if epoch is None else epoch_seed(config, epoch)
    return kind.build_dataset(config, files, num_classes, batch_size, training, seed, repeat, input_context)


def serving_request(config):
    """The `RequestFormat` a served model of this config reads (images, frame-level
    `SequenceExample`s or video-level `Example`s), decoded as `build_dataset` evaluates."""
    return data_kind(config).serving_request(config)


def set_precision_policy(config):
    """`config.train.mixed_precision`: None (float32), "bfloat16" or "float16" (Keras scales the
    loss of float16 automatically). Variables stay float32; logits are cast to float32."""
    policies = {None: "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    if config.train.mixed_precision not in policies:
        raise ConfigError(
            f"config.train.mixed_precision: {config.train.mixed_precision!r} is not one of None, 'bfloat16', 'float16'"
        )
    keras.mixed_precision.set_global_policy(policies[config.train.mixed_precision])
