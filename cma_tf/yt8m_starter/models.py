"""CMA and its self-attention baseline as YouTube-8M starter-code model classes (Table 4).

The starter code (github.com/google/youtube-8m, TF 1.14-era) trains any class that has
`create_model(model_input, vocab_size, num_frames, **params) → {"predictions": …}` and that its
`train.py --model=NAME` finds by name in its `frame_level_models` module. The four classes here
are the video rows of the paper's Table 4:

    SelfAttentionFcModel    FC backbone   → self-attention (Eq. 7 replaced by σ(conv1×1(I)), Eq. 8-9)
    SelfAttentionSnetModel  SNet backbone → self-attention
    CmaFcModel              FC backbone   → CMT (Eq. 6) → CMA (Eq. 7-9)
    CmaSnetModel            SNet backbone → CMT (Eq. 6) → CMA (Eq. 7-9)

each ending in the per-class classifier (Eq. 10), `y*_k = σ(w_k · h_k + b_k)`.

They compute the equations of the Keras layers in `cma_tf/layers/cross_modality.py` and
`cma_tf/layers/self_attention.py`, written with graph ops that TF 1.14 and `tf.compat.v1` of
TF 2.21 share (`tf.compat.v1.get_variable`, `tf.nn`, `tf.einsum`): the starter code builds one
`tf.Graph` fed by queue runners and run by a `Supervisor`, where Keras 3 layers do not fit, and
`tf.compat.v1.layers` and `tf.contrib` are gone or broken next to Keras 3. This module imports
neither Keras nor the starter code; `python -m cma_tf.yt8m_starter.run` puts the classes into
the starter's `frame_level_models` (see there for the command).

Pipeline, for a padded batch `[B, max_frames, D]` (the starter L2-normalises each frame):
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
     "CMA and self-attention models: frames T each video is resampled to."),
    (flags.DEFINE_integer, "cma_snet_filters", 1024,
     "SNet models: filters of each of the 4 Conv1D layers (the channels C of I)."),
    (flags.DEFINE_integer, "cma_fc_units", 1024,
     "FC models: units of each of the 2 frame-wise Dense layers (the channels C of I)."),
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
        if model_input.shape.ndims != 3:
            raise ConfigError(
                "%s needs frame-level input [batch, frames, features], got %s: pass --frame_features "
                "with frame-level records (SequenceExamples, e.g. --feature_names=rgb --feature_sizes=1024)"
                % (type(self).__name__, model_input.shape))
        frames = self.frames if self.frames is not None else _flag_value("cma_frames")
        if frames < 1:
            raise ConfigError("%s needs --cma_frames ≥ 1, got %d" % (type(self).__name__, frames))
        offsets = None
        if is_training:
            offsets = tf.random.uniform(tf.stack([tf.shape(model_input)[0], frames]))
        sampled = resample_frames(model_input, num_frames, frames, offsets)
        sampled.set_shape([None, frames, _channels(model_input)])
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


MODELS = (CmaSnetModel, CmaFcModel, SelfAttentionSnetModel, SelfAttentionFcModel)
