"""The one place that turns a config (`configs/*.py`) into objects: backbone, head, classifier,
loss, optimizer, datasets, vocabulary and the evaluation metrics of the data's kind. Nothing
else reads `config.model`, `config.asge` or the optimiser fields of `config.train`; the
trainer reads only the run's own fields (data directory and splits, epochs, batch size, seed)."""

import keras

from cma_tf.backbones.resnet import resnet101_backbone
from cma_tf.backbones.small import small_backbone
from cma_tf.backbones.video import fc_backbone, snet_backbone
from cma_tf.config_base import HEADS
from cma_tf.data import images, records, vocab
from cma_tf.data.yt8m import readers as yt8m_readers
from cma_tf.data.yt8m import validate as yt8m_validate
from cma_tf.data.yt8m.vocabulary import VOCABULARY_FILENAME, first_existing, published_locations, read_yt8m_vocabulary
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.word2vec import FixedLabelEmbedding
from cma_tf.heads.cma import CMAHead
from cma_tf.heads.ms_cma import MultiScaleCMAHead
from cma_tf.heads.plain import PlainHead
from cma_tf.heads.self_attention import SelfAttentionHead
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.metrics.image import multilabel_metrics
from cma_tf.metrics.video import REPORT_KEYS as VIDEO_KEYS
from cma_tf.metrics.video import video_report_metrics
from cma_tf.models.classifier import MultiLabelClassifier
from cma_tf.data import requests as serving_requests

EMBEDDING_HEADS = ("cma", "ms_cma")


IMAGE_BACKBONES = ("resnet101", "small")
VIDEO_BACKBONES = ("snet", "fc")
BACKBONES = IMAGE_BACKBONES + VIDEO_BACKBONES
DATA_FORMATS = ("image", "yt8m_frame", "yt8m_video")
IMAGE_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


def is_video(config) -> bool:
    return config.data.format != "image"


# The record kind and the features of each YouTube-8M format.
RECORD_KINDS = {"yt8m_frame": yt8m_validate.FRAME_LEVEL, "yt8m_video": yt8m_validate.VIDEO_LEVEL}


def feature_names(config) -> tuple:
    """`config.data.feature_names` as a tuple, a comma-separated entry split as the starter
    code's `--feature_names=rgb,audio` (`--config.data.feature_names=rgb,audio` arrives as the
    one name "rgb,audio"); a `ConfigError` naming the valid names of the format otherwise."""
    given = config.data.feature_names
    given = [given] if isinstance(given, str) else list(given or ())
    names = tuple(part.strip() for entry in given for part in str(entry).split(",") if part.strip())
    valid = yt8m_validate.FEATURES_OF_KIND[RECORD_KINDS[config.data.format]]
    kind = "frame-level" if config.data.format == "yt8m_frame" else "video-level"
    unknown = [name for name in names if name not in valid]
    if unknown or not names or len(set(names)) != len(names):
        problem = f"unknown {', '.join(map(repr, unknown))}" if unknown else (
            "none given" if not names else f"a name repeats in {', '.join(names)}")
        raise ConfigError(
            f"config.data.feature_names: {problem}; config.data.format={config.data.format!r} ({kind} records) "
            f"has {', '.join(valid)} (e.g. --config.data.feature_names={','.join(valid)})"
        )
    return names


def validate_config(config) -> None:
    """Fails fast, before any data is read, on field values no builder accepts."""
    model = config.model
    if model.head not in HEADS:
        raise ConfigError(f"config.model.head: unknown head {model.head!r} ({', '.join(HEADS)})")
    if config.data.format not in DATA_FORMATS:
        raise ConfigError(f"config.data.format: unknown format {config.data.format!r} ({', '.join(DATA_FORMATS)})")
    if model.backbone not in BACKBONES:
        raise ConfigError(f"config.model.backbone: unknown backbone {model.backbone!r} ({', '.join(BACKBONES)})")
    backbones = VIDEO_BACKBONES if is_video(config) else IMAGE_BACKBONES
    if model.backbone not in backbones:
        raise ConfigError(
            f"config.model.backbone={model.backbone!r} does not read config.data.format={config.data.format!r} "
            f"data (use one of {', '.join(backbones)})"
        )
    if is_video(config) and model.head == "ms_cma":
        raise ConfigError("config.model.head='ms_cma' needs an image backbone's two taps; video models are single-scale (cma)")
    if config.data.eval_segments and config.data.format != "yt8m_frame":
        raise ConfigError("config.data.eval_segments needs config.data.format='yt8m_frame' (segment-rated records)")
    if is_video(config):
        feature_names(config)
    if model.label_embedding not in LABEL_EMBEDDINGS:
        raise ConfigError(
            f"config.model.label_embedding: unknown {model.label_embedding!r} ({', '.join(LABEL_EMBEDDINGS)})"
        )
    if model.label_embedding == "word2vec" and (model.finetune_label_embeddings or model.graph_loss_weight > 0):
        raise ConfigError("config.model.label_embedding='word2vec' is a fixed table: no fine-tuning or graph loss")
    if model.graph_loss_weight > 0 and not model.finetune_label_embeddings:
        raise ConfigError(
            "config.model.graph_loss_weight > 0 only acts on fine-tuned label embeddings: "
            "also set config.model.finetune_label_embeddings=True (or the weight to 0)"
        )
    if model.graph_loss_weight > 0 and model.head not in EMBEDDING_HEADS:
        raise ConfigError(f"config.model.graph_loss_weight > 0 needs a head with label embeddings ({', '.join(EMBEDDING_HEADS)})")


def needs_label_embeddings(config) -> bool:
    return config.model.head in EMBEDDING_HEADS


def input_frames(config) -> int:
    """`T` of video models: `config.data.frames` for frame-level data, 1 for video-level."""
    return 1 if config.data.format == "yt8m_video" else config.data.frames


def build_backbone(config):
    model, size = config.model, config.data.image_size
    if model.backbone in VIDEO_BACKBONES:
        features = yt8m_readers.feature_size(feature_names(config))
        if model.backbone == "snet":
            return snet_backbone(input_frames(config), features, tuple(model.snet_filters))
        return fc_backbone(input_frames(config), features, tuple(model.fc_units))
    if model.backbone == "resnet101":
        return resnet101_backbone(image_size=size, weights=model.backbone_weights)
    if model.backbone == "small":
        return small_backbone(image_size=size, widths=tuple(model.backbone_widths))
    raise ConfigError(f"config.model.backbone: unknown backbone {model.backbone!r} ({', '.join(BACKBONES)})")


LABEL_EMBEDDINGS = ("asge", "word2vec")


def build_label_encoder(config, num_classes, fitted_encoder=None):
    """The head's label embeddings: for `asge`, a copy of the fitted Φ, frozen unless fine-tuned
    jointly; for `word2vec` (the W2V-MS-CMA ablation), a fixed table of the fitted vectors
    (`fitted_encoder` is then the `[N, C_e]` array)."""
    if config.model.label_embedding == "word2vec":
        table = FixedLabelEmbedding(num_classes, config.asge.units, name="label_encoder")
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


def build_head(config, num_classes, label_encoder=None):
    model = config.model
    if model.head == "plain":
        return PlainHead(num_classes, name="head")
    if model.head == "self_attention":
        return SelfAttentionHead(num_classes, model.feature_channels, name="head")
    if model.head not in EMBEDDING_HEADS:
        raise ConfigError(f"config.model.head: unknown head {model.head!r} ({', '.join(HEADS)})")
    if label_encoder is None:
        raise ConfigError(f"config.model.head={model.head!r} needs label embeddings (run ASGE first)")
    if model.head == "cma":
        return CMAHead(num_classes, label_encoder, model.feature_channels, model.cmt_layers, name="head")
    return MultiScaleCMAHead(
        num_classes, label_encoder, model.feature_channels, model.cmt_layers,
        model.extra_block_filters, name="head",
    )


def build_classifier(config, num_classes, fitted_encoder=None, adjacency=None):
    """The classifier of `config.model.head` over `config.model.backbone`.

    Args:
        fitted_encoder: the ASGE-fitted `ASGEEncoder` (CMA and MS-CMA only).
        adjacency: `A` (`[N, N]`), needed when `config.model.graph_loss_weight > 0`.
    """
    validate_config(config)
    label_encoder = None
    if needs_label_embeddings(config):
        label_encoder = build_label_encoder(config, num_classes, fitted_encoder)
    joint = config.model.graph_loss_weight > 0
    model = MultiLabelClassifier(
        build_backbone(config),
        build_head(config, num_classes, label_encoder),
        graph_loss_weight=config.model.graph_loss_weight if joint else 0.0,
        graph_alpha=config.asge.alpha,
        scale_loss_weight=config.model.scale_loss_weight,
        name=f"{config.model.head}_classifier",
    )
    if joint:
        if adjacency is None:
            raise ConfigError("config.model.graph_loss_weight > 0 needs the label graph")
        model.set_label_graph(adjacency)
    return model


def build_loss(config, label_frequencies=None):
    beta = config.train.beta
    return WeightedBinaryCrossentropy(label_frequencies if beta else None, beta=beta)


def build_learning_rate(config, steps_per_epoch):
    """lr ÷ `lr_decay_factor` every `lr_decay_epochs` epochs (the paper's images: ÷10 every 30),
    or every `lr_decay_examples` training examples when that is set (the paper's video: ×0.8
    every 2·10⁶ samples)."""
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


def build_optimizer(config, steps_per_epoch):
    """SGD with momentum and weight decay. Keras applies weight decay decoupled from the
    gradient (`w -= lr·wd·w`), where PyTorch's SGD adds `wd·w` to the gradient; at 1e-5 the
    two differ negligibly."""
    train = config.train
    return keras.optimizers.SGD(
        learning_rate=build_learning_rate(config, steps_per_epoch),
        momentum=train.momentum,
        weight_decay=train.weight_decay or None,
    )


def epoch_seed(config, epoch):
    """The data seed of one epoch: a resumed run sees exactly the data it would have seen."""
    return config.seed * 100_003 + epoch


def list_data_files(config, split):
    """The record files of `split` (an error naming the pattern if there are none). For
    YouTube-8M, also a `DataError` when the first record is not of the config's kind (frame-level
    vs video-level) or lacks a feature of `config.data.feature_names`."""
    if is_video(config):
        files = yt8m_readers.list_record_files(config.data.data_dir, split)
        check_record_kind(config, files)
        return files
    return records.list_shards(config.data.data_dir, split)


def check_record_kind(config, files):
    """Reads the first record of `files`: the one-line error, saying which folder and format to
    use, when frame-level records are given to a `yt8m_video` config or the reverse."""
    data = config.data
    frame = data.format == "yt8m_frame"
    other = "video" if frame else "frame"
    other_features = ",".join(yt8m_validate.FEATURES_OF_KIND[RECORD_KINDS["yt8m_" + other]])
    fix = (
        f"point config.data.data_dir at the {'frame' if frame else 'video'}-level records (the published "
        f"{'frame' if frame else 'video'}/ folder), or read these with --config.data.format=yt8m_{other} "
        f"--config.data.feature_names={other_features}"
    )
    try:
        names = feature_names(config)
    except ConfigError:
        names = ()  # `validate_config` reports them; the label graph CLI reads only the labels
    yt8m_validate.check_kind(
        files, RECORD_KINDS[data.format], names, f"config.data.format={data.format!r}", fix, "config.data.feature_names",
    )


def check_eval_split(config, split, files):
    """A `DataError` before any training when the evaluation split has no labels (or, with
    `config.data.eval_segments`, no rated segments) in its first records, e.g. the published
    `test` split: its metrics would be GAP 0 and mAP nan, and `best.keras` chosen on them."""
    data = config.data
    labelled = [name for name in yt8m_validate.other_splits(data.data_dir, split, "test") if name != data.train_split]
    example = f" (--config.data.eval_split={labelled[0]})" if labelled else ""
    yt8m_validate.check_labelled(
        files, split, segments=bool(is_video(config) and data.eval_segments),
        field=records.LABELS if not is_video(config) else yt8m_validate.records.LABELS,
        fix=f"set config.data.eval_split to a labelled split{example}",
        segments_fix=(
            "evaluate on its video-level labels with --config.data.eval_segments=False, or on the 2019 "
            "segment-rated records"
        ),
    )


def first_bad_record(config, files, num_classes):
    """After a failed read: one line naming the first record of `files` that cannot be used
    (shard, record index, id, field), or None. YouTube-8M: a label id outside the vocabulary;
    images: that or an undecodable image (`cma_tf/data/validate.py`)."""
    if not is_video(config):
        from cma_tf.data.validate import first_bad_record as first_bad_image_record

        return first_bad_image_record(files, num_classes)
    return yt8m_validate.first_label_outside(
        files, num_classes, frame_level=config.data.format == "yt8m_frame", segments=bool(config.data.eval_segments)
    )


def read_vocabulary(config):
    """Label names: `config.data.vocabulary`, else `<data_dir>/labels.txt`, else (YouTube-8M)
    `<data_dir>/vocabulary.csv` or the one in its parent (the published layout keeps it beside
    the `frame/` and `video/` folders)."""
    data = config.data
    path = data.vocabulary
    if not path and is_video(config):
        candidates = [vocab.vocabulary_path(data.data_dir)] + published_locations(data.data_dir, VOCABULARY_FILENAME)
        path = first_existing(candidates) or candidates[1]
    return read_vocabulary_file(path or vocab.vocabulary_path(data.data_dir))


def read_vocabulary_file(path, unique=True):
    """A YouTube-8M `vocabulary.csv` (by its extension) or a one-name-a-line file, validated."""
    if path.endswith(".csv"):
        return read_yt8m_vocabulary(path)
    return vocab.read_vocabulary(path, unique=unique)


def label_parser(config):
    """Serialized records → sparse label ids, for the streaming label graph; None for images
    (the graph builder's own image parser, which also finds the bad record after an error)."""
    if config.data.format == "image":
        return None
    frame_level = config.data.format == "yt8m_frame"
    return lambda serialized: yt8m_readers.parse_labels(serialized, frame_level=frame_level)


def evaluation_metrics(config):
    """`(metrics_fn(scores, targets) -> dict, keys, monitor)`: the paper's metrics of the data's
    kind (images: mAP, C/O P/R/F1; video: GAP, Hit@1, PERR, mAP) and the one `best.keras` follows."""
    if is_video(config):
        return video_report_metrics, VIDEO_KEYS, "GAP"
    return multilabel_metrics, IMAGE_KEYS, "mAP"


def build_dataset(config, num_classes, split, training, repeat=False, epoch=None, input_context=None):
    """The input pipeline of `split`; `epoch` seeds its shuffle and augmentation (training).

    Images give `(images, multi_hot)`; YouTube-8M gives `(frames [B, T, D], multi_hot)`, and
    with `config.data.eval_segments` (evaluation) `(segment frames, rated scores, rated mask)`
    per rated 5-frame segment."""
    data = config.data
    files = list_data_files(config, split)
    if not training:
        check_eval_split(config, split, files)
    batch_size = config.train.batch_size if training else config.train.eval_batch_size
    seed = config.seed if epoch is None else epoch_seed(config, epoch)
    features = feature_names(config) if is_video(config) else ()
    if data.format == "yt8m_video":
        return yt8m_readers.make_video_level_dataset(
            files, num_classes, batch_size, training, features, seed=seed, shuffle_buffer=data.shuffle_buffer,
            deterministic=data.deterministic, repeat=repeat, input_context=input_context,
        )
    if data.format == "yt8m_frame":
        if data.eval_segments and not training:
            segments = yt8m_readers.segment_records(
                files, num_classes, batch_size, features, deterministic=data.deterministic, max_frames=data.max_frames
            )
            return segments.map(
                lambda batch: (yt8m_readers.segment_inputs(batch, data.frames), batch["labels"], batch["label_weights"])
            )
        return yt8m_readers.make_frame_dataset(
            files, num_classes, data.frames, batch_size, training, features, data.max_frames, seed=seed,
            shuffle_buffer=data.shuffle_buffer, deterministic=data.deterministic, repeat=repeat,
            input_context=input_context,
        )
    return images.make_image_dataset(
        files,
        num_classes=num_classes,
        image_size=data.image_size,
        batch_size=batch_size,
        training=training,
        seed=seed,
        shuffle_buffer=data.shuffle_buffer,
        deterministic=data.deterministic,
        repeat=repeat,
        input_context=input_context,
    )


def serving_request(config):
    """The `RequestFormat` a served model of this config reads (images, frame-level
    `SequenceExample`s or video-level `Example`s), decoded as `build_dataset` evaluates."""
    data = config.data
    if data.format == "yt8m_frame":
        return serving_requests.frame_request(data.frames, feature_names(config), data.max_frames)
    if data.format == "yt8m_video":
        return serving_requests.video_level_request(feature_names(config))
    return serving_requests.image_request(data.image_size)


def set_precision_policy(config):
    """`config.train.mixed_precision`: None (float32), "bfloat16" or "float16" (Keras scales the
    loss of float16 automatically). Variables stay float32; logits are cast to float32."""
    policies = {None: "float32", "bfloat16": "mixed_bfloat16", "float16": "mixed_float16"}
    if config.train.mixed_precision not in policies:
        raise ConfigError(
            f"config.train.mixed_precision: {config.train.mixed_precision!r} is not one of None, 'bfloat16', 'float16'"
        )
    keras.mixed_precision.set_global_policy(policies[config.train.mixed_precision])
