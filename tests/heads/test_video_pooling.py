"""The YouTube-8M field's video heads (`dbof`, `netvlad`, `nextvlad`) over the `frames` backbone,
built by `factory.build_classifier` from the demo configs at tiny sizes: each head re-derived in
numpy end to end from its own weights (per-frame L2, the feature streams with half the clusters
and groups for audio, hidden layer, gating, classifier), one train step on 8-bit frame codes, a
`.keras` round trip; and the MoE option of the CMA and self-attention heads."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import FIELD_VIDEO_VARIANTS, get_paper_video_config, load_config_file
from cma_tf.errors import ConfigError
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.dbof import DBoFHead
from cma_tf.heads.netvlad import NetVLADHead
from cma_tf.heads.nextvlad import NeXtVLADHead
from cma_tf.heads.projection import deepest
from cma_tf.layers.cross_modality import PerClassClassifier
from cma_tf.layers.mixture_of_experts import PROBABILITY_EPSILON, PerClassMixtureOfExperts
from tests.helpers import numpy_batch_norm, numpy_frames, randomize_batch_norm, run_model_saving_test
from tests.layers.test_frame_pooling import np_dbof, np_netvlad, np_nextvlad, sigmoid, unit
from tests.layers.test_mixture_of_experts import np_context_gating, np_moe

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
N, T, RGB, AUDIO = 5, 6, 16, 8
RNG = np.random.default_rng(0)


def tiny_config(variant):
    config = load_config_file(os.path.join(CONFIGS, "yt8m_demo.py")).get_config(variant)
    config.data.frames = T
    config.data.feature_sizes.rgb, config.data.feature_sizes.audio = RGB, AUDIO
    config.model.clusters, config.model.hidden_units = 4, 8
    config.model.nextvlad_groups, config.model.gating_reduction = 4, 2
    config.model.nextvlad_dropout = 0.0  # the train step then descends what the test measures
    return config


def build(variant):
    keras.utils.set_random_seed(0)
    model = factory.build_classifier(tiny_config(variant), N)
    model(np.zeros((1, T, RGB + AUDIO), np.float32))
    randomize_batch_norm(model, RNG)
    return model


def codes(batch=4, seed=1):
    rng = np.random.default_rng(seed)
    return {"frame_codes": rng.integers(0, 256, (batch, T, RGB + AUDIO), dtype=np.uint8),
            "num_frames": np.array([T, T, 0, T][:batch], np.int32)}  # a video without frames: all rows zero


def np_moe_of(classifier, h):
    p = np_moe(h, np.asarray(classifier.gates.kernel, np.float64), np.asarray(classifier.experts.kernel, np.float64),
               np.asarray(classifier.experts.bias, np.float64), classifier.mixtures)
    return np_context_gating(p, classifier.gate)[0] if classifier.gate is not None else p


def np_head(head, frames):
    """σ(logits) of each head in inference mode, from its weights, float64."""
    if isinstance(head, DBoFHead):
        x = np.stack([[unit(f) for f in video] for video in frames])
        v = np_dbof(x, head.pooling)
        h = sigmoid(numpy_batch_norm(v @ np.asarray(head.hidden.kernel, np.float64), head.hidden_norm))
        return np_moe_of(head.classifier, h)
    if isinstance(head, NetVLADHead):
        x = numpy_batch_norm(np.stack([[unit(f) for f in video] for video in frames]), head.input_norm)
        v = np.concatenate([np_netvlad(x[..., :RGB], head.pooling[0]), np_netvlad(x[..., RGB:], head.pooling[1])], -1)
        h = v @ np.asarray(head.hidden.kernel, np.float64) + np.asarray(head.hidden.bias, np.float64)
        return np_moe_of(head.classifier, np_context_gating(h, head.gating)[0])
    v = np.concatenate([np_nextvlad(frames[..., :RGB], head.pooling[0]), np_nextvlad(frames[..., RGB:], head.pooling[1])], -1)
    h = numpy_batch_norm(v @ np.asarray(head.hidden.kernel, np.float64), head.hidden_norm)
    gate = head.gating
    squeezed = np.maximum(numpy_batch_norm(h @ np.asarray(gate.squeeze, np.float64), gate.batch_norm), 0.0)
    h = h * sigmoid(squeezed @ np.asarray(gate.excite, np.float64))
    return sigmoid(h @ np.asarray(head.classifier.kernel, np.float64) + np.asarray(head.classifier.bias, np.float64))


@pytest.mark.parametrize("variant", sorted(FIELD_VIDEO_VARIANTS))
def test_the_head_over_the_frames_matches_numpy(variant):
    model = build(variant)
    inputs = codes()
    frames = numpy_frames(inputs).astype(np.float64)
    scores = sigmoid(model(inputs, training=False).numpy().astype(np.float64))
    np.testing.assert_allclose(scores, np_head(model.head, frames), atol=5e-5)
    assert model.backbone.count_params() == 0  # the frames backbone is the identity
    if variant != "dbof":  # rgb K clusters, audio K / 2 (and NeXtVLAD's G / 2 groups)
        assert model.head.feature_streams == (("rgb", RGB), ("audio", AUDIO))
        assert [p.clusters for p in model.head.pooling] == [4, 2]
    if variant == "nextvlad":
        assert [p.groups for p in model.head.pooling] == [4, 2]


@pytest.mark.parametrize("variant", sorted(FIELD_VIDEO_VARIANTS))
def test_a_train_step_on_frame_codes_and_a_keras_round_trip(variant, tmp_path):
    config = tiny_config(variant)
    model = build(variant)
    model.compile(optimizer=factory.build_optimizer(config, 10), loss=factory.build_loss(config))
    inputs, labels = codes(), (RNG.random((4, N)) < 0.4).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = factory.build_loss(config)(labels, model(inputs, training=True))
    gradients = tape.gradient(loss, model.trainable_weights)
    assert all(g is not None for g in gradients), [w.path for w, g in zip(model.trainable_weights, gradients) if g is None]
    before = [w.numpy() for w in model.trainable_weights]
    logs = model.train_step((inputs, labels))
    assert np.isfinite(float(logs["loss"]))
    assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))
    restored = run_model_saving_test(model, inputs, tmp_path)
    assert restored.head.get_config() == model.head.get_config()


def test_the_paper_scale_configs_are_the_official_best_single_models():
    dbof, netvlad, nextvlad = (get_paper_video_config(v) for v in ("dbof", "netvlad", "nextvlad"))
    for config in (dbof, netvlad, nextvlad):
        factory.validate_config(config)
        assert config.model.backbone == "frames" and config.data.feature_names == ("rgb", "audio")
        assert config.train.optimizer == "adam" and config.train.weight_decay == 0.0
    assert (dbof.data.frames, dbof.train.batch_size, dbof.train.learning_rate) == (30, 1024, 0.01)
    assert (netvlad.data.frames, netvlad.train.batch_size, netvlad.train.learning_rate) == (300, 80, 2e-4)
    assert (nextvlad.train.batch_size, nextvlad.train.lr_decay_examples) == (160, 2_000_000)
    heads = {name: factory.build_head(config, 3862, None) for name, config in
             (("dbof", dbof), ("netvlad", netvlad), ("nextvlad", nextvlad))}  # not built: no weights made
    d = heads["dbof"]
    assert (d.clusters, d.hidden_units, d.classifier_kind, d.moe_mixtures, d.classifier_l2) == (8192, 1024, "moe", 2, 1e-8)
    n = heads["netvlad"]
    assert (n.clusters, n.hidden_units, n.classifier_kind, n.moe_mixtures, n.classifier_l2) == (256, 1024, "moe", 2, 1e-6)
    assert n.context_gating and n.probability_gating and n.feature_streams == (("rgb", 1024), ("audio", 128))
    assert [p.clusters for p in n.pooling] == [256, 128]
    x = heads["nextvlad"]
    assert (x.clusters, x.hidden_units, x.nextvlad_expansion, x.nextvlad_groups, x.gating_reduction) == (128, 2048, 2, 8, 8)
    assert (x.nextvlad_dropout, x.classifier_kind, x.classifier_l2, x.batchnorm_momentum) == (0.5, "dense", 1e-5, 0.999)
    assert [(p.clusters, p.groups) for p in x.pooling] == [(128, 8), (64, 4)]


@pytest.mark.slow
def test_paper_scale_parameter_counts():
    """DBoF: 1152·8192 + 8192·1024 + MoE 1024·V·5 + 2V (≈ 37.6 M at V = 3862); NeXtVLAD ≈ 89 M (Lin et al. Table 1)."""
    v = 3862
    dbof = factory.build_classifier(get_paper_video_config("dbof"), v)
    bn = 4 * (1152 + 8192 + 1024)  # γ, β, moving mean and variance of the three BatchNorms
    assert dbof.count_params() == 1152 * 8192 + 8192 * 1024 + 1024 * v * 5 + v * 2 + bn
    nextvlad = factory.build_classifier(get_paper_video_config("nextvlad"), v)
    assert 88e6 < nextvlad.count_params() < 90e6


def video_config(head, classifier):
    config = get_paper_video_config(f"{head}_snet")
    config.data.frames, config.data.feature_sizes.rgb = 16, RGB
    config.model.snet_filters, config.asge.units = (8, 8, 8, 8), 6
    config.model.classifier = classifier
    return config


def build_class_wise(head, classifier):
    keras.utils.set_random_seed(0)
    config = video_config(head, classifier)
    encoder = ASGEEncoder(N, units=6)
    encoder.build()
    return config, factory.build_classifier(config, N, encoder if head == "cma" else None)


@pytest.mark.parametrize("head", ["cma", "self_attention"])
def test_the_class_wise_heads_take_a_per_class_moe(head, tmp_path):
    _, default = build_class_wise(head, None)
    classifier = (default.head.branch if head == "cma" else default.head).classifier
    assert type(classifier) is PerClassClassifier  # today's classifier unless asked
    config, model = build_class_wise(head, "moe")
    classifier = (model.head.branch if head == "cma" else model.head).classifier
    assert isinstance(classifier, PerClassMixtureOfExperts) and classifier.mixtures == 2
    x = RNG.normal(size=(4, 16, RGB)).astype(np.float32)
    # σ(logits) is the per-class MoE of the attention-pooled vectors h_k
    logits, (attention,) = model.head(model.backbone(x, training=False), training=False, return_attention=True)
    visual = deepest(model.backbone(x, training=False))
    if head == "cma":
        visual = model.head.branch.projection(visual)
    pooled = np.einsum("bkp,bpc->bkc", np.asarray(attention, np.float64),
                       np.asarray(visual, np.float64).reshape(4, -1, np.shape(visual)[-1]))
    kernel, bias = np.asarray(classifier.kernel, np.float64), np.asarray(classifier.bias, np.float64)
    p = np.zeros((4, N))
    for k in range(N):  # class k's own MoE on its own h_k
        p[:, k] = np_moe(pooled[:, k], kernel[k, :, :3], kernel[k, :, 3:], bias[k], 2)[:, 0]
    np.testing.assert_allclose(sigmoid(np.asarray(logits, np.float64)), p, atol=3 * PROBABILITY_EPSILON)
    model.compile(optimizer=factory.build_optimizer(config, 10), loss=factory.build_loss(config))
    labels = (RNG.random((4, N)) < 0.4).astype(np.float32)
    assert np.isfinite(float(model.train_step((x, labels))["loss"]))
    run_model_saving_test(model, x, tmp_path)


def test_classifier_options_are_checked_before_building():
    config = video_config("cma", "moe")
    config.model.head = "plain"
    with pytest.raises(ConfigError, match="config.model.classifier='moe': config.model.head='plain' has no such option"):
        factory.validate_config(config)
    config = video_config("cma", "softmax")
    with pytest.raises(ConfigError, match=r"config.model.classifier: unknown 'softmax' \(dense, moe\)"):
        factory.validate_config(config)
    config = tiny_config("nextvlad")
    config.model.probability_gating = True
    with pytest.raises(ConfigError, match="also set config.model.classifier='moe'"):
        factory.validate_config(config)
    config.model.classifier = "moe"
    factory.validate_config(config)
    model = factory.build_classifier(config, N)
    assert model.head.classifier.gate is not None


@pytest.mark.parametrize("make", [
    lambda: DBoFHead(N, clusters=6, hidden_units=4),
    lambda: NetVLADHead(N, clusters=3, hidden_units=4),
    lambda: NeXtVLADHead(N, clusters=3, hidden_units=4, nextvlad_groups=2, gating_reduction=2),
], ids=["dbof", "netvlad", "nextvlad"])
def test_an_image_map_is_a_bag_of_its_positions(make):
    head = make()
    grid = RNG.normal(size=(2, 3, 4, 8)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(head([grid], training=False)),
                               np.asarray(head([grid.reshape(2, 12, 8)], training=False)), rtol=1e-5, atol=1e-6)
