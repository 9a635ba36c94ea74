"""The starter-code model classes (TF1 graphs, `cma_tf/yt8m_starter/models.py`) and the Keras
video models (`cma_tf.factory`, what `python -m cma_tf.train` trains) are the same model: with
the same weights copied across, they give the same logits on the same frames, in inference mode
and in training mode (BatchNorm on the batch's statistics).

The frames are already `T` per video, so the starter's resampling is the identity in both modes
(each of the `T` bins holds one frame) and both models see the same input.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_paper_video_config
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.yt8m_starter import models as starter_models
from tests.yt8m_starter.test_models import randomize_variables, seeded_graph

v1 = tf.compat.v1
B, T, N, C_E, WIDTH = 4, 20, 5, 6, 8
STARTER = {
    "cma_snet": starter_models.CmaSnetModel,
    "cma_fc": starter_models.CmaFcModel,
    "self_attention_snet": starter_models.SelfAttentionSnetModel,
    "self_attention_fc": starter_models.SelfAttentionFcModel,
}


def keras_model(variant):
    config = get_paper_video_config(variant)
    config.data.frames = T
    config.model.snet_filters = (WIDTH,) * starter_models.SNET_LAYERS
    config.model.fc_units = (WIDTH,) * starter_models.FC_LAYERS
    config.asge.units = C_E
    encoder = ASGEEncoder(N, units=C_E)
    encoder.build()
    for weight in encoder.weights:  # non-trivial E (the encoder is random, its BN statistics too)
        weight.assign(np.random.default_rng(len(weight.name)).uniform(0.5, 1.5, weight.shape).astype("float32"))
    model = factory.build_classifier(config, N, encoder if factory.needs_label_embeddings(config) else None)
    return model


def keras_variable(model, name):
    """The Keras variable that the starter graph's variable `name` (below the tower scope) is."""
    parts = name.split("/")
    head = model.head
    if parts[0] == "backbone":
        stage, index = parts[1].rsplit("_", 1)
        layer = {"snet": "conv", "fc": "dense"}[stage] if parts[2] in ("kernel", "dense") else "bn"
        target = model.backbone.get_layer(f"{layer}{index}")
    elif parts[0].startswith("cmt_"):
        conv, norm = head.branch.cmt.stages[int(parts[0].split("_")[1])]
        target = conv if parts[1] == "conv1x1" else norm
    elif parts[0] == "self_attention":
        target = head.attention.score_conv
    else:
        target = head.branch.classifier if hasattr(head, "branch") else head.classifier
    return getattr(target, parts[-1])


@pytest.mark.parametrize("training", [False, True], ids=["inference", "training"])
@pytest.mark.parametrize("variant", sorted(STARTER))
def test_the_starter_class_and_the_keras_model_answer_the_same(variant, training):
    model = keras_model(variant)
    frames = np.random.default_rng(1).normal(size=(B, T, model.input_shape[-1])).astype("float32")
    kwargs = dict(frames=T, snet_filters=WIDTH, fc_units=WIDTH)
    if factory.needs_label_embeddings(get_paper_video_config(variant)):
        kwargs["label_embeddings"] = np.asarray(model.head.label_embeddings(training=False))
    graph = seeded_graph()
    with graph.as_default():
        inputs = v1.placeholder(tf.float32, [None, T, frames.shape[-1]])
        with v1.variable_scope("tower"):
            result = STARTER[variant](**kwargs).create_model(
                inputs, vocab_size=N, num_frames=tf.fill([tf.shape(inputs)[0]], T), is_training=training
            )
        with v1.Session(graph=graph) as session:
            session.run(v1.global_variables_initializer())
            values = randomize_variables(session, graph, np.random.default_rng(2))
            starter_logits = session.run(result["logits"], {inputs: frames})
    copied = set()
    for name, value in values.items():
        variable = keras_variable(model, name.split("/", 1)[1])
        assert tuple(variable.shape) == value.shape, name
        variable.assign(value)
        copied.add(id(variable))
    trained_by_the_head = [w for w in model.weights if "label_encoder" not in w.path]
    assert {id(w) for w in trained_by_the_head} == copied  # every weight has its counterpart, and only one
    keras_logits = keras.ops.convert_to_numpy(model(frames, training=training))
    assert np.abs(starter_logits).max() > 0.1 and np.std(starter_logits) > 0.01
    np.testing.assert_allclose(keras_logits, starter_logits, rtol=1e-5, atol=1e-5)
