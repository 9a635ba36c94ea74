"""The starter-code classes `DbofMoeModel`, `NetVladModel` and `NextVladModel` (TF1 graphs,
`cma_tf/yt8m_starter/models.py`) and the Keras heads `dbof`, `netvlad` and `nextvlad` built by
`cma_tf.factory` from `configs/yt8m_demo.py` are the same model: with the same weights copied
across, they give the same logits on the same frames, in inference mode (BatchNorm's moving
statistics) and in training mode (the batch's statistics; NeXtVLAD's dropout set to 0, as the
two draw different masks).

The frames are already `T` per video, so the starter's resampling is the identity and both
models see the same input. The weights are drawn at the scale of their fan-in, so the
activations stay O(1) and no sigmoid, softmax or MoE probability saturates.
"""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import load_config_file
from cma_tf.heads import dbof as dbof_head
from cma_tf.heads import netvlad as netvlad_head
from cma_tf.heads import nextvlad as nextvlad_head
from cma_tf.layers import mixture_of_experts
from cma_tf.yt8m_starter import models as starter_models
from tests.yt8m_starter.test_models import seeded_graph

v1 = tf.compat.v1
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
B, N = 3, 7
STARTER = {"dbof": starter_models.DbofMoeModel, "netvlad": starter_models.NetVladModel,
           "nextvlad": starter_models.NextVladModel}
L2 = {"dbof": ("classifier/gates/kernel", "classifier/experts/kernel"),
      "netvlad": ("classifier/gates/kernel", "classifier/experts/kernel"),
      "nextvlad": ("classifier/kernel", "classifier/bias")}


def demo_config(variant, training):
    config = load_config_file(os.path.join(REPO, "configs", "yt8m_demo.py")).get_config(variant)
    if variant == "nextvlad" and training:
        config.model.nextvlad_dropout = 0.0
    return config


def starter_kwargs(config, variant, training):
    """The starter class's constructor arguments for the sizes of the Keras `config`."""
    streams = ",".join("%s:%d" % (name, {"rgb": 1024, "audio": 128}[name]) for name in config.data.feature_names)
    kwargs = dict(frames=config.data.frames, clusters=config.model.clusters,
                  hidden_units=config.model.hidden_units, batchnorm_momentum=config.model.batchnorm_momentum)
    if STARTER[variant].uses_streams:
        kwargs["feature_streams"] = streams
    if variant == "nextvlad":
        kwargs.update(groups=config.model.nextvlad_groups, gating_reduction=config.model.gating_reduction,
                      dropout=0.0 if training else 0.5)
    return kwargs


def randomize(session, graph, rng):
    """Every variable to random values: kernels N(0, 1/fan-in), BN statistics and affine terms
    away from their initial 0 and 1, biases N(0, 0.3)."""
    values = {}
    ranges = {"moving_mean": (-0.3, 0.3), "moving_variance": (0.5, 2.0), "gamma": (0.5, 1.5), "beta": (-0.3, 0.3)}
    with graph.as_default():
        for variable in v1.global_variables():
            name, shape = variable.op.name, variable.shape.as_list()
            suffix = next((s for s in ranges if name.endswith(s)), None)
            if suffix:
                value = rng.uniform(*ranges[suffix], shape)
            elif len(shape) == 2:
                value = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), shape)
            else:
                value = rng.normal(0.0, 0.3, shape)
            variable.load(value.astype(np.float32), session)
            values[name] = value.astype(np.float32)
    return values


def starter_outputs(variant, config, frames, training):
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, [None, frames.shape[1], frames.shape[2]])
        with v1.variable_scope("tower"):
            result = STARTER[variant](**starter_kwargs(config, variant, training)).create_model(
                inputs, vocab_size=N, num_frames=tf.fill([tf.shape(inputs)[0]], frames.shape[1]), is_training=training
            )
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            values = randomize(session, graph, np.random.default_rng(2))
            logits, penalty = session.run([result["logits"], result["regularization_loss"]], {inputs: frames})
    return values, logits, penalty


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("variant", sorted(STARTER))
def test_the_starter_class_and_the_keras_head_answer_the_same(variant, training):
    config = demo_config(variant, training)
    model = factory.build_classifier(config, N)
    frames = np.random.default_rng(1).normal(size=(B, config.data.frames, model.input_shape[-1])).astype("float32")
    values, starter_logits, starter_penalty = starter_outputs(variant, config, frames, training)
    weights = {w.path: w for w in model.weights}
    assert sorted(weights) == sorted(name.replace("tower/", "", 1) for name in values)  # one counterpart each
    for name, value in values.items():
        variable = weights[name.replace("tower/", "", 1)]
        assert tuple(variable.shape) == value.shape, name
        variable.assign(value)
    keras_logits = keras.ops.convert_to_numpy(model(frames, training=training))
    assert np.std(starter_logits) > 0.05 and np.abs(starter_logits).max() < 8  # varied, not saturated
    np.testing.assert_allclose(keras_logits, starter_logits, rtol=1e-5, atol=1e-5)
    # slim's l2_regularizer(λ) = λ·Σw²/2 on the classifier's weights, as train.py adds it
    l2 = {"dbof": starter_models.DBOF_CLASSIFIER_L2, "netvlad": starter_models.NETVLAD_CLASSIFIER_L2,
          "nextvlad": starter_models.NEXTVLAD_CLASSIFIER_L2}[variant]
    expected = sum(l2 * np.sum(np.square(values["tower/head/" + name].astype(np.float64))) / 2 for name in L2[variant])
    np.testing.assert_allclose(starter_penalty, expected, rtol=1e-5)
    np.testing.assert_allclose(sum(keras.ops.convert_to_numpy(loss) for loss in model.losses), expected, rtol=1e-5)


def test_the_starter_classes_default_to_the_heads_official_sizes():
    """models.py does not import Keras; its defaults restate the heads' (and MoE's ε)."""
    assert (starter_models.DBOF_CLUSTERS, starter_models.DBOF_HIDDEN_UNITS, starter_models.DBOF_CLASSIFIER_L2) == (
        dbof_head.CLUSTERS, dbof_head.HIDDEN_UNITS, dbof_head.CLASSIFIER_L2)
    assert (starter_models.NETVLAD_CLUSTERS, starter_models.NETVLAD_HIDDEN_UNITS,
            starter_models.NETVLAD_CLASSIFIER_L2, starter_models.NETVLAD_HIDDEN_BIAS_STDDEV) == (
        netvlad_head.CLUSTERS, netvlad_head.HIDDEN_UNITS, netvlad_head.CLASSIFIER_L2, netvlad_head.HIDDEN_BIAS_STDDEV)
    assert (starter_models.NEXTVLAD_CLUSTERS, starter_models.NEXTVLAD_HIDDEN_UNITS,
            starter_models.NEXTVLAD_CLASSIFIER_L2) == (
        nextvlad_head.CLUSTERS, nextvlad_head.HIDDEN_UNITS, nextvlad_head.CLASSIFIER_L2)
    assert starter_models.PROBABILITY_EPSILON == mixture_of_experts.PROBABILITY_EPSILON
    head = nextvlad_head.NeXtVLADHead(N)
    model = starter_models.NextVladModel()
    assert (head.nextvlad_expansion, head.nextvlad_groups, head.gating_reduction, head.nextvlad_dropout) == tuple(
        starter_models.FLAGS[name].default for name in model.extra_flags)
    assert netvlad_head.NetVLADHead(N).moe_mixtures == starter_models.MOE_MIXTURES
    assert head.batchnorm_momentum == starter_models.VIDEO_BN_MOMENTUM


def test_feature_streams_that_do_not_add_up_are_refused():
    with pytest.raises(starter_models.ConfigError, match="do not add up"):
        starter_models.feature_streams_of("rgb:1024,audio:64", 1152, "NetVladModel")
    with pytest.raises(starter_models.ConfigError, match="NAME:SIZE"):
        starter_models.parse_feature_streams("rgb=1024")
    assert starter_models.feature_streams_of(None, 12, "NetVladModel") == [("frames", 12)]


@pytest.mark.parametrize("variant", sorted(STARTER))
def test_the_training_graph_updates_every_batchnorm_and_gives_probabilities(variant):
    """train.py runs `UPDATE_OPS` with each step: two assign ops (mean, variance) per BatchNorm."""
    config = demo_config(variant, True)
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, [None, 40, 1152])
        with v1.variable_scope("tower"):
            result = STARTER[variant](**starter_kwargs(config, variant, False)).create_model(
                inputs, vocab_size=N, num_frames=tf.constant([40, 12, 1]), is_training=True)
        updates = v1.get_collection(v1.GraphKeys.UPDATE_OPS)
        moving_means = [v for v in v1.global_variables() if v.op.name.endswith("moving_mean")]
        init = v1.global_variables_initializer()
    assert len(moving_means) >= 3 and len(updates) == 2 * len(moving_means)
    with v1.Session(graph=graph) as session:
        session.run(init)
        before = session.run(moving_means)
        predictions, _ = session.run([result["predictions"], updates],
                                     {inputs: np.random.default_rng(6).normal(size=(3, 40, 1152))})
        after = session.run(moving_means)
    assert predictions.shape == (3, N) and np.all((predictions > 0) & (predictions < 1))
    assert all(np.any(a != b) for a, b in zip(after, before))
