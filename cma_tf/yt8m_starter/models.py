"""CMA and its self-attention baseline (Table 4), and the YouTube-8M field's NetVLAD and NeXtVLAD,
as YouTube-8M starter-code model classes.

The starter code (github.com/google/youtube-8m, TF 1.14-era) trains any class that has
`create_model(model_input, vocab_size, num_frames, **params) → {"predictions": …}` and that its
`train.py --model=NAME` finds by name in its `frame_level_models` module. Four classes here
are the video rows of the paper's Table 4:

    SelfAttentionFcModel    FC backbone   → self-attention (Eq. 7 replaced by σ(conv1×1(I)), Eq. 8-9)
    SelfAttentionSnetModel  SNet backbone → self-attention
    CmaFcModel              FC backbone   → CMT (Eq. 6) → CMA (Eq. 7-9)
    CmaSnetModel            SNet backbone → CMT (Eq. 6) → CMA (Eq. 7-9)

each ending in the per-class classifier (Eq. 10), `y*_k = σ(w_k · h_k + b_k)`; three more are
the Keras heads `dbof`, `netvlad` and `nextvlad` (`cma_tf/heads/dbof.py`, `netvlad.py`,
`nextvlad.py`) over the
weightless `frames` backbone, with the same variable layout below `head/`, the same
normalisations and the MoE's log-odds (`cma_tf/layers/mixture_of_experts.py`):

    DbofMoeModel            frames → L2 → BN → [D, K] → BN → σ → max over T → σ(BN(hidden)) → MoE
    NetVladModel            frames → L2 → BN → NetVLAD per stream → hidden → Context Gating → MoE
    NextVladModel           frames → NeXtVLAD per stream → dropout → BN(hidden) → SE gating → logistic

(`--cma_feature_streams` names NetVLAD's and NeXtVLAD's streams, e.g. `rgb:1024,audio:128`;
the audio gets half the clusters, as in the Keras factory).

They compute the equations of the Keras layers in `cma_tf/layers/cross_modality.py` and
`cma_tf/layers/self_attention.py`, written with graph ops that TF 1.14 and `tf.compat.v1` of
TF 2.21 share (`tf.compat.v1.get_variable`, `tf.nn`, `tf.einsum`): the starter code builds one
`tf.Graph` fed by queue runners and run by a `Supervisor`, where Keras 3 layers do not fit, and
`tf.compat.v1.layers` and `tf.contrib` are gone or broken next to Keras 3. This module imports
neither Keras nor the starter code; `python -m cma_tf.yt8m_starter.run` puts the classes into
the starter's `frame_level_models` (see there for the command).

Pipeline of the Table 4 classes, for a padded batch `[B, max_frames, D]` (the starter
L2-normalises each frame; the DBoF, NetVLAD and NeXtVLAD classes share step 1, then pool):
    1. `resample_frames` to `T` frames (`--cma_frames`): a random frame of each of `T` equal
       bins when training, the bin's centre frame otherwise.
    2. Backbone → visual features `I [B, M, C]`:
       SNet: 4 × (Conv1D kernel 3 'SAME' → BN → ReLU → max-pool 2 'SAME'), T=300 → M=19
             (as `cma_tf/backbones/video.py`), C = `--cma_snet_filters`;
       FC:   2 × (frame-wise Dense → BN → ReLU), M = T, C = `--cma_fc_units`.
       Convolutions and Dense layers followed by BN have no bias (BN's β is the bias).
    3. Attention `a [B, N, M]` over the M positions (N = vocab_size), then Eq. 9-10.

Label embeddings E `[vocab_size, C_e]` (e.g. ASGE's output, Eq. 2-5) are a constant loaded from
the `.npy` file that `--cma_label_embeddings` names; `C_e` is the file's second dimension. They
stay frozen: the paper trains ASGE first, and the starter code has no label graph to tune
them against.

BatchNorm keeps moving mean and variance (Keras's defaults: momentum 0.99, ε 1e-3). When
training it normalises with the batch statistics and adds the moving-average assign ops to the
`UPDATE_OPS` collection. The starter `train.py` runs that collection: its `build_graph` makes
the label loss it fetches every step depend on `tf.get_collection(tf.GraphKeys.UPDATE_OPS)`.
All variables also go into `MODEL_VARIABLES`, whose histograms the starter code summarises.
"""

import numpy as np
import tensorflow as tf
from absl import flags

from cma_tf.architecture import (
    ATTENTION_EPSILON, BN_EPSILON, BN_MOMENTUM, CMT_LAYERS, FC_LAYERS, SNET_KERNEL, SNET_LAYERS,
    SNET_POOL,
)
from cma_tf.data.yt8m.frames import resample_frames
from cma_tf.errors import ConfigError, DataError

v1 = tf.compat.v1

FLAGS = flags.FLAGS
FLAG_DEFINITIONS = (
    (flags.DEFINE_string, "cma_label_embeddings", None,
     "CMA models: .npy file of the label embeddings E, float [vocab_size, C_e] (e.g. from ASGE)."),
    (flags.DEFINE_integer, "cma_frames", 300,
     "Every model: frames T each video is resampled to."),
    (flags.DEFINE_integer, "cma_snet_filters", 1024,
     "SNet models: filters of each of the 4 Conv1D layers (the channels C of I)."),
    (flags.DEFINE_integer, "cma_fc_units", 1024,
     "FC models: units of each of the 2 frame-wise Dense layers (the channels C of I)."),
    (flags.DEFINE_string, "cma_feature_streams", None,
     "NetVLAD and NeXtVLAD models: the frames' features in order as NAME:SIZE,… (e.g. "
     "rgb:1024,audio:128), each pooled on its own, audio with half the clusters (and groups); "
     "unset: one stream of the whole width."),
    (flags.DEFINE_integer, "cma_clusters", None,
     "DBoF, NetVLAD and NeXtVLAD models: clusters K (of the first stream) (unset: 8192 DBoF, 256 NetVLAD, "
     "128 NeXtVLAD)."),
    (flags.DEFINE_integer, "cma_hidden_units", None,
     "DBoF, NetVLAD and NeXtVLAD models: units H of the hidden layer (unset: 1024 DBoF and NetVLAD, "
     "2048 NeXtVLAD)."),
    (flags.DEFINE_integer, "cma_nextvlad_expansion", 2, "NeXtVLAD model: the expansion λ."),
    (flags.DEFINE_integer, "cma_nextvlad_groups", 8,
     "NeXtVLAD model: groups G of the first stream (audio G/2); λ·(stream size) must be divisible by it."),
    (flags.DEFINE_integer, "cma_nextvlad_gating_reduction", 8,
     "NeXtVLAD model: the SE gating's reduction r (H must be divisible by it)."),
    (flags.DEFINE_float, "cma_nextvlad_dropout", 0.5, "NeXtVLAD model: dropout rate before the hidden layer."),
)
for _define, _name, _default, _help in FLAG_DEFINITIONS:
    if _name not in FLAGS:  # the starter code and tests may import this module more than once
        _define(_name, _default, _help)



def read_label_embeddings(path):
    """The float32 array in the `.npy` file `path` (local or `gs://`), as the models use it."""
    try:
        with tf.io.gfile.GFile(path, "rb") as f:
            return np.load(f).astype(np.float32)
    except (tf.errors.OpError, IOError, ValueError) as error:
        raise DataError("Cannot read label embeddings from %s: %s" % (path, error))


def load_label_embeddings(path, vocab_size):
    """The `[vocab_size, C_e]` float32 array in the `.npy` file `path` (local or `gs://`)."""
    embeddings = read_label_embeddings(path)
    if embeddings.ndim != 2 or embeddings.shape[0] != vocab_size:
        raise DataError(
            "Label embeddings file %s has shape %s, but the model needs [vocab_size, C_e] with "
            "vocab_size = %d (the reader's number of classes)"
            % (path, tuple(embeddings.shape), vocab_size))
    if not np.all(np.isfinite(embeddings)):
        raise DataError("Label embeddings file %s holds NaN or infinite values" % path)
    return embeddings


def _variable(name, shape, initializer, trainable=True):
    collections = [v1.GraphKeys.GLOBAL_VARIABLES, v1.GraphKeys.MODEL_VARIABLES]
    return v1.get_variable(name, shape, tf.float32, initializer=initializer,
                           trainable=trainable, collections=collections)


def _channels(x):
    return x.shape.as_list()[-1]


def frame_dense(x, units, use_bias, scope):
    """A 1×1 convolution over time: `[B, M, C]` → `[B, M, units]`."""
    with v1.variable_scope(scope):
        kernel = _variable("kernel", [_channels(x), units], v1.glorot_uniform_initializer())
        y = tf.einsum("bmc,cu->bmu", x, kernel)
        if use_bias:
            y += _variable("bias", [units], v1.zeros_initializer())
    return y


def batch_norm(x, is_training, scope, momentum=BN_MOMENTUM, epsilon=BN_EPSILON):
    """BatchNorm over all axes but the last; moving averages updated through `UPDATE_OPS`."""
    channels = _channels(x)
    with v1.variable_scope(scope):
        gamma = _variable("gamma", [channels], v1.ones_initializer())
        beta = _variable("beta", [channels], v1.zeros_initializer())
        moving_mean = _variable("moving_mean", [channels], v1.zeros_initializer(), False)
        moving_variance = _variable("moving_variance", [channels], v1.ones_initializer(), False)
    if is_training:
        mean, variance = tf.nn.moments(x, list(range(x.shape.ndims - 1)))
        for moving, batch in ((moving_mean, mean), (moving_variance, variance)):
            update = v1.assign_sub(moving, (moving - batch) * (1.0 - momentum))
            v1.add_to_collection(v1.GraphKeys.UPDATE_OPS, update)
    else:
        mean, variance = moving_mean, moving_variance
    return tf.nn.batch_normalization(x, mean, variance, beta, gamma, epsilon)


def max_pool_same(x, pool=SNET_POOL):
    """Max-pool `pool`, stride `pool`, 'SAME' over time, as `keras.layers.MaxPooling1D(pool,
    padding="same")`: T → ⌈T/pool⌉, the padding (⌊total/2⌋ before, the rest after) never
    chosen (edge frames repeat in it)."""
    length, channels = x.shape.as_list()[1:]
    out = -(-length // pool)
    pad = out * pool - length
    before, after = pad // 2, pad - pad // 2
    x = tf.concat([x[:, :1]] * before + [x] + [x[:, -1:]] * after, axis=1) if pad else x
    return tf.reduce_max(tf.reshape(x, [-1, out, pool, channels]), axis=2)


def snet(frames, is_training, filters):
    """SNet: `SNET_LAYERS` × (Conv1D kernel `SNET_KERNEL` 'SAME' → BN → ReLU → max-pool
    `SNET_POOL` 'SAME'): `[B, T, D]` → `[B, ⌈T/16⌉, filters]` with the architecture's 4, 3, 2."""
    x = frames
    for index in range(SNET_LAYERS):
        with v1.variable_scope("snet_%d" % index):
            kernel = _variable("kernel", [SNET_KERNEL, _channels(x), filters],
                               v1.glorot_uniform_initializer())
            x = tf.nn.conv1d(x, kernel, 1, "SAME")
            x = max_pool_same(tf.nn.relu(batch_norm(x, is_training, "bn")))
    return x


def frame_fc(frames, is_training, units):
    """The FC backbone: 2 × (frame-wise Dense → BN → ReLU): `[B, T, D]` → `[B, T, units]`."""
    x = frames
    for index in range(FC_LAYERS):
        with v1.variable_scope("fc_%d" % index):
            x = tf.nn.relu(batch_norm(frame_dense(x, units, False, "dense"), is_training, "bn"))
    return x


def cross_modality_transformer(features, units, is_training):
    """Eq. 6: `I_s = f_cmt(I)`, 2 × (1×1 conv → BN → ReLU) to the embedding width `C_e`."""
    x = features
    for index in range(CMT_LAYERS):
        with v1.variable_scope("cmt_%d" % index):
            x = tf.nn.relu(batch_norm(frame_dense(x, units, False, "conv1x1"), is_training, "bn"))
    return x


def l2_normalize(x, epsilon=ATTENTION_EPSILON):
    """x / max(‖x‖, ε) on the last axis, written as x·rsqrt(max(‖x‖², ε²)) like
    `tf.nn.l2_normalize`: the same value, with no sqrt of 0 on the gradient path of an all-zero
    row (a position that CMT's ReLU zeroed)."""
    squared = tf.reduce_sum(tf.square(x), axis=-1, keepdims=True)
    return x * tf.math.rsqrt(tf.maximum(squared, epsilon * epsilon))


def cross_modality_scores(projected, embeddings, epsilon=ATTENTION_EPSILON):
    """Eq. 7: `z_k^i = ReLU(cos(I_s^i, e_k))`, `[B, M, C_e]` × `[N, C_e]` → `[B, N, M]`."""
    semantic = l2_normalize(projected, epsilon)
    labels = l2_normalize(embeddings, epsilon)
    return tf.nn.relu(tf.einsum("bmd,nd->bnm", semantic, labels))


def self_attention_scores(features, num_classes):
    """The baseline's Eq. 7: `z_k^i = σ(w_k · I^i + b_k)`, one map per class → `[B, N, M]`."""
    with v1.variable_scope("self_attention"):
        scores = tf.sigmoid(frame_dense(features, num_classes, True, "conv1x1"))
    return tf.transpose(scores, [0, 2, 1])


def normalize_attention(scores, epsilon=ATTENTION_EPSILON):
    """Eq. 8: `a_k^i = z_k^i / max(Σ_i z_k^i, ε)` (a label with all z = 0 gets a = 0, not NaN)."""
    return scores / tf.maximum(tf.reduce_sum(scores, axis=-1, keepdims=True), epsilon)


def per_class_logits(attention, features, num_classes):
    """Eq. 9-10: `h_k = Σ_i a_k^i I^i`, `logit_k = w_k · h_k + b_k`, one `w_k` per class.

    Computed as `Σ_i a_k^i (w_k · I^i) + b_k`, the same number (Eq. 9 is linear in I), without
    the `[B, N, C]` tensor `h` (for B=256, N=3,862, C=1,024 that is 4 GB; `[B, N, M]` is 1/54
    of it for SNet's M=19).
    """
    with v1.variable_scope("classifier"):
        kernel = _variable("kernel", [num_classes, _channels(features)],
                           v1.glorot_uniform_initializer())
        bias = _variable("bias", [num_classes], v1.zeros_initializer())
    class_scores = tf.einsum("bmc,nc->bnm", features, kernel)
    return tf.reduce_sum(attention * class_scores, axis=-1) + bias


def _flag_value(name):
    return FLAGS[name].value  # the default when flags are not parsed (library use, tests)


def resampled_input(model, model_input, num_frames, frames, is_training):
    """Step 1 of the module docstring: `model_input [B, max_frames, D]` → `[B, T, D]`, `T` =
    `frames` (None: `--cma_frames`); a `ConfigError` for video-level input or `T` < 1."""
    name = type(model).__name__
    if model_input.shape.ndims != 3:
        raise ConfigError(
            "%s needs frame-level input [batch, frames, features], got %s: pass --frame_features "
            "with frame-level records (SequenceExamples, e.g. --feature_names=rgb --feature_sizes=1024)"
            % (name, model_input.shape))
    frames = frames if frames is not None else _flag_value("cma_frames")
    if frames < 1:
        raise ConfigError("%s needs --cma_frames ≥ 1, got %d" % (name, frames))
    offsets = None
    if is_training:
        offsets = tf.random.uniform(tf.stack([tf.shape(model_input)[0], frames]))
    sampled = resample_frames(model_input, num_frames, frames, offsets)
    sampled.set_shape([None, frames, _channels(model_input)])
    return sampled


class _FrameAttentionModel(object):
    """Resampling → backbone → attention → per-class classifier (see the module docstring).

    Args (each None takes its flag; the starter code builds models without arguments):
        label_embeddings: `.npy` path or `[vocab_size, C_e]` array (`--cma_label_embeddings`).
        frames: int, `T` (`--cma_frames`).
        snet_filters: int, SNet's Conv1D filters, all 4 layers (`--cma_snet_filters`).
        fc_units: int, the FC backbone's width (`--cma_fc_units`).
    """

    backbone = None  # "snet" or "fc"
    uses_label_embeddings = False

    def __init__(self, label_embeddings=None, frames=None, snet_filters=None, fc_units=None):
        self.label_embeddings = label_embeddings
        self.frames = frames
        self.snet_filters = snet_filters
        self.fc_units = fc_units

    @classmethod
    def flag_names(cls):
        """The `--cma_*` flags this class reads: the model it builds depends on their values."""
        names = ("cma_frames", "cma_snet_filters" if cls.backbone == "snet" else "cma_fc_units")
        return names + ("cma_label_embeddings",) if cls.uses_label_embeddings else names

    def create_model(self, model_input, vocab_size, num_frames, is_training=True,
                     **unused_params):
        """`model_input [B, max_frames, D]`, `num_frames [B]` → `{"predictions", "logits"}`,
        both `[B, vocab_size]` (predictions are sigmoid probabilities)."""
        sampled = resampled_input(self, model_input, num_frames, self.frames, is_training)
        with v1.variable_scope("backbone"):
            if self.backbone == "snet":
                features = snet(sampled, is_training, self.snet_filters or _flag_value("cma_snet_filters"))
            else:
                features = frame_fc(sampled, is_training, self.fc_units or _flag_value("cma_fc_units"))
        scores = self.attention_scores(features, vocab_size, is_training)
        logits = per_class_logits(normalize_attention(scores), features, vocab_size)
        return {"predictions": tf.sigmoid(logits), "logits": logits}

    def attention_scores(self, features, vocab_size, is_training):
        raise NotImplementedError


class _CmaModel(_FrameAttentionModel):
    uses_label_embeddings = True

    def embeddings(self, vocab_size):
        """E as a numpy array, from the constructor argument or `--cma_label_embeddings`."""
        source = self.label_embeddings
        if source is None:
            source = _flag_value("cma_label_embeddings")
        if source is None:
            raise ConfigError("%s needs label embeddings: pass --cma_label_embeddings=FILE.npy "
                              "(float [vocab_size, C_e])" % type(self).__name__)
        if isinstance(source, str):
            return load_label_embeddings(source, vocab_size)
        embeddings = np.asarray(source, np.float32)
        if embeddings.ndim != 2 or embeddings.shape[0] != vocab_size:
            raise DataError("Label embeddings have shape %s, but the model needs [vocab_size, C_e] "
                            "with vocab_size = %d" % (embeddings.shape, vocab_size))
        return embeddings

    def attention_scores(self, features, vocab_size, is_training):
        """CMT (Eq. 6) then Eq. 7 against the constant label embeddings."""
        embeddings = self.embeddings(vocab_size)
        projected = cross_modality_transformer(features, embeddings.shape[1], is_training)
        return cross_modality_scores(projected, tf.constant(embeddings, name="label_embeddings"))


class _SelfAttentionModel(_FrameAttentionModel):
    def attention_scores(self, features, vocab_size, is_training):
        return self_attention_scores(features, vocab_size)


class CmaSnetModel(_CmaModel):
    """CMA-SNet (Table 4): SNet → CMT (Eq. 6) → CMA (Eq. 7-9) → per-class classifier (Eq. 10)."""

    backbone = "snet"


class CmaFcModel(_CmaModel):
    """CMA-FC (Table 4): FC → CMT (Eq. 6) → CMA (Eq. 7-9) → per-class classifier (Eq. 10)."""

    backbone = "fc"


class SelfAttentionSnetModel(_SelfAttentionModel):
    """Self-attention-SNet (Table 4): SNet → σ(conv1×1(I)) attention (Eq. 8-9) → Eq. 10."""

    backbone = "snet"


class SelfAttentionFcModel(_SelfAttentionModel):
    """Self-attention-FC (Table 4): FC → σ(conv1×1(I)) attention (Eq. 8-9) → Eq. 10."""

    backbone = "fc"


# === The YouTube-8M field's models (the Keras heads dbof, netvlad and nextvlad, cma_tf/heads/) ===
# Their official sizes, as the heads' defaults (cma_tf/heads/dbof.py, netvlad.py, nextvlad.py; a test
# checks that the two agree): this module does not import Keras.
DBOF_CLUSTERS, DBOF_HIDDEN_UNITS, DBOF_CLASSIFIER_L2 = 8192, 1024, 1e-8
NETVLAD_CLUSTERS, NETVLAD_HIDDEN_UNITS, NETVLAD_CLASSIFIER_L2 = 256, 1024, 1e-6
NETVLAD_HIDDEN_BIAS_STDDEV = 0.01
NEXTVLAD_CLUSTERS, NEXTVLAD_HIDDEN_UNITS, NEXTVLAD_CLASSIFIER_L2 = 128, 2048, 1e-5
MOE_MIXTURES = 2
VIDEO_BN_MOMENTUM = 0.999  # slim's decay, the heads' default batchnorm_momentum
PROBABILITY_EPSILON = 1e-5  # the starter code's ε of its cross-entropy (losses.py L39-55)
HALVED_STREAMS = ("audio", "mean_audio")  # pooled with K/2 clusters (and G/2 groups)


def _normal(stddev):
    return v1.random_normal_initializer(0.0, stddev)


def _he_normal():
    """Keras' `he_normal` (and slim's variance scaling): truncated normal, variance 2/fan_in."""
    return v1.variance_scaling_initializer(2.0, "fan_in", "truncated_normal")


def parse_feature_streams(text):
    """`"rgb:1024,audio:128"` → `(("rgb", 1024), ("audio", 128))`; None or "" → None."""
    if not text:
        return None
    streams = []
    for part in text.split(","):
        name, _, size = part.strip().partition(":")
        if not name or not size.strip().isdigit() or int(size) < 1:
            raise ConfigError("--cma_feature_streams=%s: each stream is NAME:SIZE (e.g. rgb:1024,audio:128)"
                              % text)
        streams.append((name, int(size)))
    return tuple(streams)


def feature_streams_of(feature_streams, width, model_name):
    """`[(name, size), …]` summing to `width`; one stream `("frames", width)` when none is given
    (`cma_tf/heads/frame_pooling.py` `streams_of`)."""
    if isinstance(feature_streams, str):
        feature_streams = parse_feature_streams(feature_streams)
    if not feature_streams:
        return [("frames", width)]
    streams = [(str(name), int(size)) for name, size in feature_streams]
    if sum(size for _, size in streams) != width:
        raise ConfigError("%s: --cma_feature_streams %s do not add up to the input's %d features a frame "
                          "(--feature_sizes)" % (model_name, streams, width))
    return streams


def split_streams(frames, streams):
    """`[B, T, D]` → one `[B, T, size]` slice per stream, in order."""
    slices, start = [], 0
    for _, size in streams:
        slices.append(frames[..., start:start + size])
        start += size
    return slices


def stream_share(name, count):
    """How many clusters (or groups) of `count` a stream gets: half for the audio."""
    return max(1, count // 2) if name in HALVED_STREAMS else count


def dense(x, units, scope, kernel_initializer, bias_initializer=None):
    """`x · W (+ b)` on the last axis; `(y, W, b)` (b None without `bias_initializer`)."""
    with v1.variable_scope(scope):
        kernel = _variable("kernel", [_channels(x), units], kernel_initializer)
        bias = _variable("bias", [units], bias_initializer) if bias_initializer is not None else None
    y = tf.tensordot(x, kernel, 1)
    return (y + bias if bias is not None else y), kernel, bias


def netvlad(x, clusters, is_training, momentum, scope):
    """NetVLAD (`cma_tf/layers/netvlad.py`; WILLOW `frame_level_models.py` L183-241):
    `a = softmax_k(BN(x·W))`, `V_dk = Σ_t a_tk x_td − (Σ_t a_tk) c_dk`, intra-normalised over d,
    flattened d-major and L2-normalised: `[B, T, D]` → `[B, D·K]`."""
    width = _channels(x)
    with v1.variable_scope(scope):
        initializer = _normal(1.0 / np.sqrt(width))
        weights = _variable("assignment", [width, clusters], initializer)
        centers = _variable("centers", [width, clusters], initializer)
        logits = batch_norm(tf.tensordot(x, weights, 1), is_training, "batch_norm", momentum)
    assignment = tf.nn.softmax(logits, axis=-1)
    residuals = tf.einsum("btk,btd->bdk", assignment, x) - tf.reduce_sum(assignment, 1)[:, None, :] * centers
    flat = tf.reshape(tf.nn.l2_normalize(residuals, axis=1), [-1, width * clusters])
    return tf.nn.l2_normalize(flat, axis=-1)


def nextvlad(x, clusters, expansion, groups, is_training, momentum, scope):
    """NeXtVLAD (`cma_tf/layers/nextvlad.py`; Lin et al. 2018 Eq. 4-8, linrongc/youtube-8m
    `nextvlad.py` L25-83): `[B, T, N]` → `BN(flatten(intra-normalised V))` `[B, K·λN/G]`."""
    frames, width = x.shape.as_list()[1:]
    expanded_width = expansion * width
    if expanded_width % groups:
        raise ConfigError("NeXtVLAD: λN = %d is not divisible by the %d groups (--cma_nextvlad_groups)"
                          % (expanded_width, groups))
    group_width = expanded_width // groups
    with v1.variable_scope(scope):
        expand_kernel = _variable("expand_kernel", [width, expanded_width], _he_normal())
        expand_bias = _variable("expand_bias", [expanded_width], v1.zeros_initializer())
        attention_kernel = _variable("attention_kernel", [expanded_width, groups], _he_normal())
        attention_bias = _variable("attention_bias", [groups], v1.zeros_initializer())
        weights = _variable("assignment", [expanded_width, groups * clusters], _he_normal())
        centers = _variable("centers", [group_width, clusters], _he_normal())
        expanded = tf.tensordot(x, expand_kernel, 1) + expand_bias  # [B, T, λN]
        attention = tf.sigmoid(tf.tensordot(expanded, attention_kernel, 1) + attention_bias)  # [B, T, G]
        logits = batch_norm(tf.tensordot(expanded, weights, 1), is_training, "assignment_norm", momentum)
        assignment = tf.nn.softmax(tf.reshape(logits, [-1, frames, groups, clusters]), axis=-1)
        assignment *= attention[..., None]  # [B, T, G, K]
        grouped = tf.reshape(expanded, [-1, frames, groups, group_width])
        residuals = (tf.einsum("btgk,btgd->bdk", assignment, grouped)
                     - tf.reduce_sum(assignment, [1, 2])[:, None, :] * centers)
        flat = tf.reshape(tf.nn.l2_normalize(residuals, axis=1), [-1, clusters * group_width])
        return batch_norm(flat, is_training, "output_norm", momentum)


def context_gating_logits(x, is_training, momentum, kernel_initializer=None):
    """Context Gating's `z = BN(x · W)`, `W` `[D, D]` ~ N(0, 1/√D) by default, no bias
    (`cma_tf/layers/context_gating.py`; WILLOW `frame_level_models.py` L698-726)."""
    width = _channels(x)
    kernel = _variable("kernel", [width, width], kernel_initializer or _normal(1.0 / np.sqrt(width)))
    return batch_norm(tf.matmul(x, kernel), is_training, "batch_norm", momentum)


def se_gating(x, reduction, is_training, momentum):
    """NeXtVLAD's SE context gating, `x ⊙ σ(ReLU(BN(x · W_1)) · W_2)` (linrongc `nextvlad.py`
    L152-175)."""
    width = _channels(x)
    if width % reduction:
        raise ConfigError("SE gating: the width %d is not divisible by the reduction %d "
                          "(--cma_nextvlad_gating_reduction)" % (width, reduction))
    squeeze = _variable("squeeze", [width, width // reduction], _he_normal())
    excite = _variable("excite", [width // reduction, width], _he_normal())
    squeezed = tf.nn.relu(batch_norm(tf.matmul(x, squeeze), is_training, "batch_norm", momentum))
    return x * tf.sigmoid(tf.matmul(squeezed, excite))


def mixture_of_experts_logits(hidden, vocab_size, mixtures, l2, probability_gating, is_training, momentum):
    """The starter's MoE (`video_level_models.py` `MoeModel`, L57-113; class-major columns),
    with WILLOW's probability gating, as log-odds (`cma_tf/layers/mixture_of_experts.py`):
    `(log(p + ε) − log(q + ε), slim L2 of the gate and expert weights)`, `q = 1 − p` summed
    from positive terms, ε = 1e-5."""
    with v1.variable_scope("classifier"):
        gates, gates_kernel, _ = dense(hidden, vocab_size * (mixtures + 1), "gates", v1.glorot_uniform_initializer())
        experts, experts_kernel, _ = dense(hidden, vocab_size * mixtures, "experts",
                                           v1.glorot_uniform_initializer(), v1.zeros_initializer())
        weights = tf.nn.softmax(tf.reshape(gates, [-1, vocab_size, mixtures + 1]), axis=-1)
        experts = tf.reshape(experts, [-1, vocab_size, mixtures])
        p = tf.reduce_sum(weights[..., :mixtures] * tf.sigmoid(experts), -1)
        q = weights[..., mixtures] + tf.reduce_sum(weights[..., :mixtures] * tf.sigmoid(-experts), -1)
        if probability_gating:
            with v1.variable_scope("probability_gating"):
                z = context_gating_logits(p, is_training, momentum, _normal(1.0 / np.sqrt(vocab_size)))
            p, q = p * tf.sigmoid(z), q + p * tf.sigmoid(-z)
    logits = tf.math.log(p + PROBABILITY_EPSILON) - tf.math.log(q + PROBABILITY_EPSILON)
    return logits, l2 * (tf.nn.l2_loss(gates_kernel) + tf.nn.l2_loss(experts_kernel))


class _FramePoolingModel(object):
    """Resampling (step 1 of the module docstring) → the video model on `[B, T, D]`, the starter
    code's frames as given (train.py L2-normalises each frame). Returns logits, their sigmoid as
    `predictions`, and the slim L2 penalty as `regularization_loss` (train.py adds it to the loss).

    Args (each None takes its flag, as the starter code builds models without arguments):
        frames: int, `T` (`--cma_frames`).
        feature_streams: `((name, size), …)` or `"rgb:1024,audio:128"` (`--cma_feature_streams`).
        clusters: int, `K` of the first stream (`--cma_clusters`, unset: the official size).
        hidden_units: int, `H` (`--cma_hidden_units`, unset: the official size).
        batchnorm_momentum: float, of every BatchNorm. Default 0.999 (slim's; the heads' default).
    """

    default_clusters = default_hidden_units = None
    uses_streams = True
    extra_flags = ()

    def __init__(self, frames=None, feature_streams=None, clusters=None, hidden_units=None,
                 batchnorm_momentum=VIDEO_BN_MOMENTUM):
        self.frames = frames
        self.feature_streams = feature_streams
        self.clusters = clusters
        self.hidden_units = hidden_units
        self.batchnorm_momentum = batchnorm_momentum

    @classmethod
    def flag_names(cls):
        """The `--cma_*` flags this class reads: the model it builds depends on their values."""
        streams = ("cma_feature_streams",) if cls.uses_streams else ()
        return ("cma_frames",) + streams + ("cma_clusters", "cma_hidden_units") + cls.extra_flags

    def _option(self, value, flag, default=None):
        value = value if value is not None else _flag_value(flag)
        return value if value is not None else default

    def create_model(self, model_input, vocab_size, num_frames, is_training=True, **unused_params):
        """`model_input [B, max_frames, D]`, `num_frames [B]` → `{"predictions", "logits",
        "regularization_loss"}`, the first two `[B, vocab_size]`."""
        sampled = resampled_input(self, model_input, num_frames, self.frames, is_training)
        streams = None
        if self.uses_streams:
            streams = feature_streams_of(self._option(self.feature_streams, "cma_feature_streams"),
                                         _channels(sampled), type(self).__name__)
        with v1.variable_scope("head"):
            logits, penalty = self.video_logits(sampled, streams, vocab_size, is_training)
        return {"predictions": tf.sigmoid(logits), "logits": logits, "regularization_loss": penalty}

    def video_logits(self, frames, streams, vocab_size, is_training):
        raise NotImplementedError


class DbofMoeModel(_FramePoolingModel):
    """The starter's DBoF with its MoE, as the Keras head `dbof` computes it
    (`cma_tf/heads/dbof.py`; google/youtube-8m `frame_level_models.py` `DbofModel` L89-214):
    frames L2-normalised → BN → `[D, K]` projection → BN → σ → max over the frames → hidden
    `σ(BN(v · W_h))` → MoE (M = 2, slim L2 1e-8) as log-odds. The starter's own `DbofModel`
    samples its frames inside the model and returns the MoE's probability; this one takes the
    `--cma_frames` resampling and gives the Keras head's logits. All streams are pooled
    together (no `--cma_feature_streams`)."""

    default_clusters, default_hidden_units = DBOF_CLUSTERS, DBOF_HIDDEN_UNITS
    uses_streams = False

    def video_logits(self, frames, streams, vocab_size, is_training):
        momentum = self.batchnorm_momentum
        clusters = self._option(self.clusters, "cma_clusters", self.default_clusters)
        hidden_units = self._option(self.hidden_units, "cma_hidden_units", self.default_hidden_units)
        frames = tf.nn.l2_normalize(frames, axis=-1)
        with v1.variable_scope("pooling"):
            width = _channels(frames)
            projection = _variable("projection", [width, clusters], _normal(1.0 / np.sqrt(width)))
            projected = tf.tensordot(batch_norm(frames, is_training, "input_norm", momentum), projection, 1)
            pooled = tf.reduce_max(tf.sigmoid(batch_norm(projected, is_training, "cluster_norm", momentum)), 1)
        hidden, _, _ = dense(pooled, hidden_units, "hidden", _normal(1.0 / np.sqrt(clusters)))
        hidden = tf.sigmoid(batch_norm(hidden, is_training, "hidden_norm", momentum))
        return mixture_of_experts_logits(hidden, vocab_size, MOE_MIXTURES, DBOF_CLASSIFIER_L2, False,
                                         is_training, momentum)


class NetVladModel(_FramePoolingModel):
    """Gated NetVLAD, the Keras head `netvlad` (`cma_tf/heads/netvlad.py`; Miech et al. 2017,
    WILLOW `NetVLADModelLF` L592-736): frames L2-normalised → BN → NetVLAD per stream (audio K/2)
    → hidden `v · W_h + b_h` → Context Gating → MoE (M = 2, slim L2 1e-6) with probability gating."""

    default_clusters, default_hidden_units = NETVLAD_CLUSTERS, NETVLAD_HIDDEN_UNITS

    def video_logits(self, frames, streams, vocab_size, is_training):
        momentum = self.batchnorm_momentum
        clusters = self._option(self.clusters, "cma_clusters", self.default_clusters)
        hidden_units = self._option(self.hidden_units, "cma_hidden_units", self.default_hidden_units)
        frames = batch_norm(tf.nn.l2_normalize(frames, axis=-1), is_training, "input_norm", momentum)
        pooled = [netvlad(stream, stream_share(name, clusters), is_training, momentum, "netvlad_" + name)
                  for (name, _), stream in zip(streams, split_streams(frames, streams))]
        hidden, _, _ = dense(tf.concat(pooled, -1), hidden_units, "hidden", _normal(1.0 / np.sqrt(clusters)),
                             _normal(NETVLAD_HIDDEN_BIAS_STDDEV))
        with v1.variable_scope("context_gating"):
            hidden = hidden * tf.sigmoid(context_gating_logits(hidden, is_training, momentum))
        return mixture_of_experts_logits(hidden, vocab_size, MOE_MIXTURES, NETVLAD_CLASSIFIER_L2, True,
                                         is_training, momentum)


class NextVladModel(_FramePoolingModel):
    """NeXtVLAD, the Keras head `nextvlad` (`cma_tf/heads/nextvlad.py`; Lin et al. 2018, linrongc
    `NeXtVLADModel` L86-184): NeXtVLAD per stream (audio K/2, G/2) → dropout → `BN(v · W_h)` →
    SE gating → logistic classifier (slim L2 1e-5 on `W` and `b`).

    Args: those of the base class, and `expansion` λ (`--cma_nextvlad_expansion`), `groups` G
    (`--cma_nextvlad_groups`), `gating_reduction` r (`--cma_nextvlad_gating_reduction`),
    `dropout` (`--cma_nextvlad_dropout`).
    """

    default_clusters, default_hidden_units = NEXTVLAD_CLUSTERS, NEXTVLAD_HIDDEN_UNITS
    extra_flags = ("cma_nextvlad_expansion", "cma_nextvlad_groups", "cma_nextvlad_gating_reduction",
                   "cma_nextvlad_dropout")

    def __init__(self, expansion=None, groups=None, gating_reduction=None, dropout=None, **kwargs):
        super(NextVladModel, self).__init__(**kwargs)
        self.expansion = expansion
        self.groups = groups
        self.gating_reduction = gating_reduction
        self.dropout = dropout

    def video_logits(self, frames, streams, vocab_size, is_training):
        momentum = self.batchnorm_momentum
        clusters = self._option(self.clusters, "cma_clusters", self.default_clusters)
        hidden_units = self._option(self.hidden_units, "cma_hidden_units", self.default_hidden_units)
        expansion = self._option(self.expansion, "cma_nextvlad_expansion")
        groups = self._option(self.groups, "cma_nextvlad_groups")
        pooled = [
            nextvlad(stream, stream_share(name, clusters), expansion, stream_share(name, groups), is_training,
                     momentum, "nextvlad_" + name)
            for (name, _), stream in zip(streams, split_streams(frames, streams))
        ]
        pooled = tf.concat(pooled, -1)
        if is_training:
            pooled = tf.nn.dropout(pooled, rate=self._option(self.dropout, "cma_nextvlad_dropout"))
        hidden, _, _ = dense(pooled, hidden_units, "hidden", _he_normal())
        hidden = batch_norm(hidden, is_training, "hidden_norm", momentum)
        with v1.variable_scope("se_gating"):
            hidden = se_gating(hidden, self._option(self.gating_reduction, "cma_nextvlad_gating_reduction"),
                               is_training, momentum)
        logits, kernel, bias = dense(hidden, vocab_size, "classifier", v1.glorot_uniform_initializer(),
                                     v1.zeros_initializer())
        return logits, NEXTVLAD_CLASSIFIER_L2 * (tf.nn.l2_loss(kernel) + tf.nn.l2_loss(bias))


ATTENTION_MODELS = (CmaSnetModel, CmaFcModel, SelfAttentionSnetModel, SelfAttentionFcModel)  # Table 4
POOLING_MODELS = (DbofMoeModel, NetVladModel, NextVladModel)  # the field's: the heads dbof, netvlad, nextvlad
MODELS = ATTENTION_MODELS + POOLING_MODELS
