"""Fields shared by every config file under configs/; experiment files override what differs.

Every field is read by exactly one place: `cma_tf/factory.py` (model, ASGE, data pipeline,
loss, optimizer) or `cma_tf/training/trainer.py` (the run: data directory and splits, epochs,
steps, seed).
"""

import importlib.util
import os

import ml_collections

from cma_tf.architecture import CMT_LAYERS, FC_LAYERS, SNET_LAYERS


def load_config_file(path):
    """The module of a config file (`configs/*.py`), loaded by path as `--config=<path>` loads it;
    its `get_config(argument)` gives the config."""
    spec = importlib.util.spec_from_file_location(os.path.splitext(os.path.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def config_from_dict(values):
    """A config from the nested dict of a saved one (`config.json`, `cma_tf.select`'s
    `selected.py`), over today's defaults: a field the dict lacks keeps its default, and the
    defaults' field types stay (so `--config.<field>=…` still parses)."""
    config = get_base_config()
    with config.unlocked():
        merge_values(config, values)
    return config


def merge_values(config, values):
    """Sets the nested `values` on `config` (lists become tuples, as config files write them)."""
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(config.get(key), ml_collections.ConfigDict):
            merge_values(config[key], value)
        else:
            config[key] = tuple(value) if isinstance(value, list) else value


def get_base_config():
    config = ml_collections.ConfigDict()
    config.seed = 0

    config.data = ml_collections.ConfigDict()
    config.data.format = "image"  # a registered data kind (cma_tf/kinds/): "image", "tfds", YouTube-8M "yt8m_frame" / "yt8m_video"
    config.data.data_dir = ""  # image: labels.txt + {split}-*-of-*.tfrecord; YouTube-8M: {split}*.tfrecord
    config.data.vocabulary = ml_collections.config_dict.placeholder(str)  # None: <data_dir>/labels.txt or vocabulary.csv; a file must list those same names in that order (checked: the records hold ids, it does not map names)
    config.data.label_graph = ml_collections.config_dict.placeholder(str)  # None: <data_dir>/label_graph_<split>.npz
    config.data.train_split = "train"
    config.data.eval_split = "val"
    config.data.image_size = 448
    config.data.shuffle_buffer = 2048
    config.data.deterministic = False
    # YouTube-8M only
    config.data.feature_names = ("rgb",)  # frame level: rgb, audio; video level: mean_rgb, mean_audio
    config.data.max_frames = 300  # frames read per video (the published maximum)
    config.data.frames = 300  # T: each video's frames resampled to this many (frames.py)
    config.data.eval_segments = False  # evaluate on the rated 5-frame segments of eval_split
    # Values a frame of each feature holds: the published extractor's (data/yt8m/records.py). Features of
    # another extractor: e.g. --config.data.feature_sizes.rgb=2048 (the model's input width follows).
    config.data.feature_sizes = ml_collections.ConfigDict({"rgb": 1024, "audio": 128, "mean_rgb": 1024, "mean_audio": 128})
    # Records of each shard of train_split and eval_split checked before any work (feature sizes, empty
    # videos, label ids, rated segments): a bounded scan; 0 skips it (data/yt8m/validate.py check_records).
    config.data.check_records = 1
    # TensorFlow Datasets only (format "tfds"): a prepared image dataset, read where it is
    config.data.tfds_name = ""  # e.g. "coco/2014", "voc/2007"
    config.data.tfds_data_dir = ""  # where it is prepared; "" = TFDS's default ($TFDS_DATA_DIR or ~/tensorflow_datasets)
    config.data.tfds_label_field = ""  # the ClassLabel field; "" = the first of labels, objects/label, label

    config.model = ml_collections.ConfigDict()
    config.model.head = "ms_cma"  # a registered head (cma_tf/heads/): plain, self_attention, cma, ms_cma, hsvlt, mmdsr, mlgcn, q2l, ml_decoder, dbof, netvlad, nextvlad
    config.model.backbone = "resnet101"  # images: "resnet101", "convnext_small" or "small"; video: "snet", "fc" or "frames" (the identity, for dbof, netvlad, nextvlad)
    # resnet101, convnext_small: "imagenet", None, or a file; small: None, a preset ("small_synthetic",
    # backbones/presets.py) or a file ("imagenet" = random). A typed reference, so a config may
    # set it to None and `--config.model.backbone_weights=…` still parses (a bare None loses the type).
    config.model.backbone_weights = ml_collections.FieldReference("imagenet", field_type=str)
    config.model.backbone_widths = (32, 64, 128, 256)  # small only
    # small, resnet101: True keeps every BatchNorm of the backbone in inference mode, its scale and
    # offset untrained (Query2Label's FrozenBatchNorm2d); 1 freezes the stem, 2 the stem and the
    # first stage (Query2Label freezes ResNet's conv1 and layer1). docs/design.md §2.24.
    config.model.freeze_backbone_batchnorm = False
    config.model.backbone_frozen_stages = 0
    config.model.snet_filters = (1024,) * SNET_LAYERS  # snet only: Conv1D channels
    config.model.fc_units = (1024,) * FC_LAYERS  # fc only: the two frame-wise Dense layers
    config.model.feature_channels = ml_collections.config_dict.placeholder(int)  # C; None keeps the backbone's
    config.model.cmt_layers = CMT_LAYERS
    config.model.extra_block_filters = 128  # MS-CMA I_3: 4 × 128 = 512 channels
    config.model.blocks_per_scale = 2  # HSVLT: interaction blocks (IVLA) per backbone scale
    config.model.gcn_hidden_units = 1024  # ML-GCN: width of the first GCN layer (the released)
    config.model.gcn_threshold = 0.4  # ML-GCN: τ binarising P(L_j | L_i)
    config.model.gcn_reweight = 0.25  # ML-GCN: the neighbours' mass beside a self weight of 1 (= p 0.2)
    # Query2Label and ML-Decoder; None takes each head's released value (see its file).
    config.model.transformer_heads = ml_collections.config_dict.placeholder(int)  # Q2L 4, ML-Decoder 8
    config.model.transformer_ffn_units = ml_collections.config_dict.placeholder(int)  # Q2L 4·d, ML-Decoder 2048·d/768
    config.model.transformer_dropout = 0.1
    config.model.encoder_layers = 1  # Q2L: transformer encoder layers over the map
    config.model.decoder_layers = ml_collections.config_dict.placeholder(int)  # Q2L 2, ML-Decoder 1
    config.model.decoder_self_attention = False  # Q2L: the released code removes it
    config.model.decoder_groups = ml_collections.config_dict.placeholder(int)  # ML-Decoder K; None: min(100, N)
    # Q2L: pre-norm transformer layers and a final encoder norm (DETR's normalize_before); False: the released post-norm
    config.model.pre_norm = False
    # Q2L, ML-Decoder, HSVLT: "official" initialises as their official PyTorch code does (Xavier over PyTorch's
    # fans, nn.Linear's U(±1/√fan_in)); "keras": Keras' defaults. Other heads ignore it (docs/design.md §2.25)
    config.model.init = "keras"
    # The YouTube-8M field's video heads over the frames backbone (dbof, netvlad, nextvlad; docs/design.md
    # §2.29). None takes each head's official value (its file); the classifier is also an option of cma and
    # self_attention: "dense" (None there: the per-class linear classifier of Eq. 10) or "moe" (a per-class
    # mixture of experts). None: "moe" for dbof and netvlad, "dense" (logistic) for nextvlad.
    config.model.classifier = ml_collections.config_dict.placeholder(str)
    config.model.moe_mixtures = 2  # M, experts per class besides the dummy one
    config.model.classifier_l2 = ml_collections.config_dict.placeholder(float)  # slim's L2 λ (dbof, netvlad, nextvlad only): 1e-8, 1e-6, 1e-5
    config.model.probability_gating = ml_collections.config_dict.placeholder(bool)  # None: netvlad True, others False
    config.model.clusters = ml_collections.config_dict.placeholder(int)  # dbof 8192, netvlad 256, nextvlad 128 (audio: half)
    config.model.hidden_units = ml_collections.config_dict.placeholder(int)  # dbof, netvlad 1024; nextvlad 2048
    config.model.nextvlad_expansion = 2  # λ
    config.model.nextvlad_groups = 8  # G (audio: half)
    config.model.gating_reduction = 8  # nextvlad's SE context gating r
    config.model.nextvlad_dropout = 0.5
    config.model.batchnorm_momentum = 0.999  # dbof, netvlad, nextvlad: slim's decay (0.99 for short runs)
    config.model.label_embedding = "asge"  # or "word2vec" (the W2V-MS-CMA ablation), or "file"
    # "file": a .npy [N, D] in the vocabulary's order, or a shipped name: "coco_glove_300d" (ML-GCN's GloVe vectors
    # of COCO's 80 names, alphabetical; cma_tf/graph/label_vectors.py), checked against the vocabulary
    config.model.label_embedding_file = ml_collections.config_dict.placeholder(str)
    config.model.finetune_label_embeddings = False  # False: E frozen after ASGE (the paper)
    config.model.graph_loss_weight = 0.0  # λ of L_ge when fine-tuning E jointly
    config.model.scale_loss_weight = 1.0  # MS-CMA: weight of the per-scale losses (0: fused loss only)
    # True: the logits start at the training labels' prior (a fixed offset, layers/label_prior.py;
    # docs/design.md §2.31); False: at ½ for every label (the paper)
    config.model.label_prior = False

    config.asge = ml_collections.ConfigDict()
    config.asge.units = 256  # C_e (also the Word2Vec dimension)
    config.asge.depth = 3
    config.asge.steps = 3000
    config.asge.optimizer = "adam"  # or "sgd" (the paper's; collapses on sparse graphs of 1,000+ labels)
    config.asge.learning_rate = ml_collections.config_dict.placeholder(float)  # None: 0.001 (adam), 0.01 (sgd, the paper's)
    config.asge.momentum = 0.9  # sgd only
    config.asge.balance_pairs = True  # weight zero pairs of a sparse graph down (False: Eq. 4 as printed)
    config.asge.alpha = 0.0  # Eq. 5 relaxation; 0.1 for YouTube-8M
    config.asge.row_guard = 1.0  # weight of the term that keeps labels from dying (asge.row_guard_loss); 0: Eq. 4 alone

    config.train = ml_collections.ConfigDict()
    config.train.epochs = 100
    config.train.batch_size = 64
    config.train.eval_batch_size = 64
    config.train.learning_rate = 0.01
    config.train.optimizer = "sgd"  # the paper's; "adamw" (HSVLT's released recipe); "adam" (ML-Decoder's)
    config.train.momentum = 0.9  # sgd only
    config.train.weight_decay = 1e-5
    # "decoupled": w -= lr·wd·w before the step (Keras', AdamW's); "l2": wd·w added to the gradient
    # (PyTorch's SGD and Adam `weight_decay`: ML-GCN, ML-Decoder).
    config.train.weight_decay_mode = "decoupled"
    config.train.weight_decay_1d = True  # False: biases and every 1-D weight without decay (ML-Decoder)
    # The backbone's variables train at this × the learning rate (their weight decay too); 0 freezes
    # the backbone (BatchNorm in inference mode). ML-GCN: 0.1 (lr 0.1 for the GCN, 0.01 for the backbone).
    config.train.backbone_lr_multiplier = 1.0
    # Moving average of the weights (timm's ModelEma: Query2Label, ML-Decoder 0.9997): validation
    # and the saved models use it, training goes on from the raw weights. None: off.
    config.train.ema_decay = ml_collections.config_dict.placeholder(float)
    config.train.lr_decay_epochs = 30  # lr ÷ lr_decay_factor every this many epochs
    config.train.lr_decay_factor = 10.0
    # "step": lr_decay_* and warmup_epochs (today's); "onecycle": PyTorch's OneCycleLR, cosine up to
    # learning_rate over the first onecycle_warmup of the steps, then down (Query2Label, ML-Decoder).
    config.train.schedule = "step"
    config.train.onecycle_warmup = 0.2  # onecycle only: its pct_start
    config.train.warmup_epochs = 0.0  # step only: linear lr warm-up over this many epochs (0: none, the paper)
    config.train.lr_decay_examples = ml_collections.config_dict.placeholder(int)  # if set: decay every this many examples instead
    config.train.beta = 0.0  # Eq. 12; 0.4 for NUS-WIDE
    config.train.loss = "bce"  # "bce": Eq. 12 (the paper); "asl": the asymmetric loss (Query2Label, ML-Decoder)
    config.train.asl_gamma_pos = 0.0  # ASL γ+ (both repositories)
    config.train.asl_gamma_neg = 4.0  # ASL γ− (ML-Decoder; Query2Label's COCO recipe: 2)
    config.train.asl_clip = 0.05  # ASL probability margin m (ML-Decoder; Query2Label: 0)
    config.train.steps_per_epoch = ml_collections.config_dict.placeholder(int)  # None: one pass
    config.train.mixed_precision = ml_collections.config_dict.placeholder(str)  # None, "bfloat16", "float16"
    config.train.global_clipnorm = ml_collections.config_dict.placeholder(float)  # None: no clipping (the paper)
    return config


# The image recipes of the paper (§4.1), shared by configs/coco.py and configs/nuswide.py.
PAPER_VARIANTS = {
    "plain": dict(head="plain"),
    "self_attention": dict(head="self_attention"),
    "cma": dict(head="cma"),
    "ms_cma": dict(head="ms_cma"),
    "w2v_ms_cma": dict(head="ms_cma", label_embedding="word2vec"),
}


def get_paper_image_config(variant, data_dir, beta):
    """A paper recipe: the base config already holds the paper's image settings (ResNet-101 with
    ImageNet weights at 448; SGD momentum 0.9, weight decay 1e-5, lr 0.01 ÷10 every 30 epochs,
    batch 64; ASGE α = 0 (fitted with Adam, not the paper's
    SGD: see `graph/asge_model.fit_asge`); 100 epochs, our choice as the paper gives none);
    a recipe names its data, its β of Eq. 12 and the variant's head and label embeddings."""
    config = get_base_config()
    config.data.data_dir = data_dir
    config.train.beta = beta
    # An unknown variant becomes the head name, which the factory reports as config.model.head.
    for field, value in PAPER_VARIANTS.get(variant, dict(head=variant)).items():
        config.model[field] = value
    return config


def get_tfds_image_config(variant, tfds_name, train_split, eval_split, beta=0.0):
    """A paper image recipe (`get_paper_image_config`) over a dataset TensorFlow Datasets has
    prepared (`config.data.format="tfds"`; `--config.data.tfds_data_dir` says where)."""
    config = get_paper_image_config(variant, data_dir="", beta=beta)
    config.data.format = "tfds"
    config.data.tfds_name = tfds_name
    config.data.train_split = train_split
    config.data.eval_split = eval_split
    return config


# The video recipes of the paper (§4.2, Table 4), shared by configs/yt8m.py and configs/yt8m_demo.py.
VIDEO_VARIANTS = {
    "cma_snet": dict(head="cma", backbone="snet"),
    "cma_fc": dict(head="cma", backbone="fc"),
    "self_attention_snet": dict(head="self_attention", backbone="snet"),
    "self_attention_fc": dict(head="self_attention", backbone="fc"),
    "plain_snet": dict(head="plain", backbone="snet"),
    # Not in the paper: ML-Decoder's group decoding (100 queries for 3,862 labels) over SNet's positions.
    "ml_decoder_snet": dict(head="ml_decoder", backbone="snet"),
}

# Video-level recipes (not in the paper): the published video/ records, one mean_rgb vector per
# video read as one position ([B, 1, 1024], `kinds/yt8m.py` VideoLevelKind) through the FC
# backbone (frame-wise Dense layers: here an MLP of the vector); scored on the video labels, as
# these records carry no rated segments. Each is the frame-level variant it names plus these data fields.
VIDEO_LEVEL_VARIANTS = {
    "cma_fc_video": "cma_fc",
    "self_attention_fc_video": "self_attention_fc",
    "plain_fc_video": dict(head="plain", backbone="fc"),
}
# The YouTube-8M field's strongest video models (not in the paper; docs/design.md §2.29): DBoF + MoE
# (the starter code's), NetVLAD + Context Gating + MoE (the 2017 winner's best single model), NeXtVLAD
# (Lin et al. 2018's best single model), over the frames backbone with rgb and audio, at their official
# sizes (the heads' defaults) and with their official recipes: Adam, batches, learning-rate decay per
# examples, L2 on the layers (config.model.classifier_l2) instead of weight decay. Not translated:
# TF1 Adam's ε 1e-8 (Keras': 1e-7) and the per-tensor gradient clipping at norm 1 (there is only
# config.train.global_clipnorm). Kept apart from VIDEO_VARIANTS, which tests build at full size:
# NetVLAD's hidden layer alone holds 285 M weights; configs/yt8m_demo.py gives them demo sizes.
FIELD_VIDEO_VARIANTS = {
    # google/youtube-8m: 30 frames (`iterations`), Adam 0.01 × 0.95 every 4 M examples, batch 1024, 5 epochs.
    "dbof": dict(
        model=dict(head="dbof", backbone="frames"), data=dict(frames=30),
        train=dict(learning_rate=0.01, lr_decay_factor=1 / 0.95, lr_decay_examples=4_000_000, batch_size=1024, epochs=5),
    ),
    # Youtube-8M-WILLOW README: 300 frames, Adam 2e-4 × 0.8 every 4 M examples, batch 80, 300,000 steps
    # (24 M examples: about 6 passes over the 2018 training split's 3.9 M videos).
    "netvlad": dict(
        model=dict(head="netvlad", backbone="frames"), data=dict(frames=300),
        train=dict(learning_rate=2e-4, lr_decay_factor=1.25, lr_decay_examples=4_000_000, batch_size=80, epochs=6),
    ),
    # linrongc/youtube-8m scripts/train_nextvlad_local.sh: all 300 frames, Adam 2e-4 × 0.8 every 2 M
    # examples, batch 160 (80 on each of 2 GPUs), 5 epochs.
    "nextvlad": dict(
        model=dict(head="nextvlad", backbone="frames"), data=dict(frames=300),
        train=dict(learning_rate=2e-4, lr_decay_factor=1.25, lr_decay_examples=2_000_000, batch_size=160, epochs=5),
    ),
}
FIELD_VIDEO_DATA = dict(feature_names=("rgb", "audio"))
FIELD_VIDEO_TRAIN = dict(optimizer="adam", weight_decay=0.0)
VIDEO_LEVEL_DATA = dict(format="yt8m_video", data_dir="data/yt8m/video", eval_segments=False, feature_names=("mean_rgb",))


def get_paper_video_config(variant):
    """A YouTube-8M recipe of the paper (Table 4). §4.2: SGD momentum 0.9, lr 2e-4 × 0.8 every
    2·10⁶ samples, batch 256, β = 0, ASGE α = 0.1, RGB only, single-scale CMA. Not in the paper (our choices): 300 frames resampled per video,
    SNet/FC widths 1024, 5 epochs, weight decay 1e-5 as for images. The `*_video` variants
    (`VIDEO_LEVEL_VARIANTS`) read the video-level records instead; `dbof`, `netvlad` and
    `nextvlad` (`FIELD_VIDEO_VARIANTS`) are the field's models with their official recipes."""
    config = get_base_config()
    config.data.format = "yt8m_frame"
    config.data.data_dir = "data/yt8m/frame"
    config.data.eval_split = "validate"
    config.data.eval_segments = True
    config.data.feature_names = ("rgb",)
    config.data.frames = 300
    config.model.backbone_weights = None
    config.asge.alpha = 0.1
    config.train.epochs = 5
    config.train.batch_size = 256
    config.train.eval_batch_size = 256
    config.train.learning_rate = 2e-4
    config.train.lr_decay_factor = 1.25  # × 0.8
    config.train.lr_decay_examples = 2_000_000
    if variant in FIELD_VIDEO_VARIANTS:
        fields = FIELD_VIDEO_VARIANTS[variant]
        for section, values in (("data", FIELD_VIDEO_DATA), ("train", FIELD_VIDEO_TRAIN)) + tuple(fields.items()):
            for field, value in values.items():
                config[section][field] = value
        return config
    model_fields = VIDEO_LEVEL_VARIANTS.get(variant, variant)
    if isinstance(model_fields, str):
        # An unknown variant becomes the head name, which the factory reports as config.model.head.
        model_fields = VIDEO_VARIANTS.get(model_fields, dict(head=variant, backbone="snet"))
    for field, value in model_fields.items():
        config.model[field] = value
    if variant in VIDEO_LEVEL_VARIANTS:
        for field, value in VIDEO_LEVEL_DATA.items():
            config.data[field] = value
    return config
