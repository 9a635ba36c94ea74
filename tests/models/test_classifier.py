"""Every head over the tiny backbone: shapes, a `.keras` round trip, and the custom train step
(frozen vs jointly fine-tuned label embeddings, the split losses)."""

import keras
import numpy as np
import pytest

from cma_tf.backbones.small import small_backbone
from cma_tf.graph.asge import ASGEEncoder, graph_embedding_loss
from cma_tf.heads.cma import CMAHead
from cma_tf.heads.ms_cma import MultiScaleCMAHead
from cma_tf.heads.plain import PlainHead
from cma_tf.heads.self_attention import SelfAttentionHead
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS, run_model_saving_test, slow_for

NUM_CLASSES = 5
RNG = np.random.default_rng(0)


def frozen_encoder(trainable=False):
    encoder = ASGEEncoder(NUM_CLASSES, units=8, name="label_encoder")
    encoder.build()
    encoder.trainable = trainable
    return encoder


HEADS = {
    "plain": lambda: PlainHead(NUM_CLASSES),
    "self_attention": lambda: SelfAttentionHead(NUM_CLASSES, feature_channels=16),
    "cma": lambda: CMAHead(NUM_CLASSES, frozen_encoder(), feature_channels=16),
    "ms_cma": lambda: MultiScaleCMAHead(NUM_CLASSES, frozen_encoder(), feature_channels=16, extra_block_filters=4),
}


def batch(n=4):
    images = RNG.uniform(0, 255, (n, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    labels = (RNG.random((n, NUM_CLASSES)) < 0.4).astype("float32")
    return images, labels


def build(head, **kwargs):
    model = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), head, **kwargs)
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss=WeightedBinaryCrossentropy())
    return model


@pytest.mark.parametrize("name", slow_for(sorted(HEADS), ("cma", "ms_cma")))
def test_shapes_and_keras_round_trip(name, tmp_path):
    model = build(HEADS[name]())
    images, labels = batch()
    assert model.predict(images, verbose=0).shape == (4, NUM_CLASSES)
    model.fit(images, labels, epochs=1, verbose=0)  # non-trivial BN statistics before saving
    run_model_saving_test(model, images, tmp_path)


@pytest.mark.parametrize("name", slow_for(sorted(HEADS), ("ms_cma",)))
def test_training_reduces_loss_on_a_fixed_batch(name):
    model = build(HEADS[name]())
    images, labels = batch(8)
    before = model.evaluate(images, labels, verbose=0)
    model.fit(images, labels, epochs=15, batch_size=8, verbose=0)
    after = model.evaluate(images, labels, verbose=0)
    assert after < before


def test_ms_cma_prediction_is_the_mean_of_scale_probabilities():
    head = HEADS["ms_cma"]()
    model = build(head)
    images, _ = batch(2)
    features = model.backbone(images)
    embeddings = head.label_embeddings(training=False)
    scales = [features[0], features[1], head.extra_block(features[1], training=False)]
    probabilities = [
        keras.ops.sigmoid(branch(scale, embeddings, training=False)) for branch, scale in zip(head.branches, scales)
    ]
    expected = np.mean([np.asarray(p) for p in probabilities], axis=0)
    np.testing.assert_allclose(np.asarray(keras.ops.sigmoid(model(images))), expected, rtol=1e-5, atol=1e-6)


def test_frozen_label_encoder_is_not_updated():
    head = CMAHead(NUM_CLASSES, frozen_encoder(trainable=False), feature_channels=16)
    model = build(head)
    before = [np.copy(w) for w in head.label_encoder.get_weights()]
    model.fit(*batch(), epochs=2, verbose=0)
    for old, new in zip(before, head.label_encoder.get_weights()):
        np.testing.assert_array_equal(old, new)


def test_joint_fine_tuning_adds_the_graph_loss():
    adjacency = np.eye(NUM_CLASSES, dtype="float32")
    adjacency[0, 1] = adjacency[1, 0] = 0.8
    head = CMAHead(NUM_CLASSES, frozen_encoder(trainable=True), feature_channels=16)
    model = build(head, graph_loss_weight=0.5)
    model.set_label_graph(adjacency)
    images, labels = batch()
    embeddings_before = np.asarray(head.label_embeddings(training=True))
    expected_graph_loss = float(graph_embedding_loss(embeddings_before, adjacency))
    logs = model.train_step((images, labels))
    logs = {k: float(v) for k, v in logs.items()}
    assert logs["graph_loss"] == pytest.approx(expected_graph_loss, rel=1e-4)
    assert logs["loss"] == pytest.approx(logs["classification_loss"] + 0.5 * logs["graph_loss"], rel=1e-4)
    assert not np.allclose(np.asarray(head.label_embeddings(training=True)), embeddings_before)


@pytest.mark.slow
@pytest.mark.parametrize("guard", [0.0, 1.0])
def test_joint_fine_tuning_keeps_labels_alive_with_the_row_guard(guard):
    """Φ starting with most labels dead (last BN shift −3): with the guard in the joint loss
    they come back within a few steps; without it they stay dead (Eq. 4 sends them nothing)."""
    adjacency = np.full((NUM_CLASSES, NUM_CLASSES), 0.3, "float32")
    np.fill_diagonal(adjacency, 1.0)
    encoder = frozen_encoder(trainable=True)
    encoder.norms[-1].beta.assign(np.full(8, -3.0, "float32"))
    model = build(CMAHead(NUM_CLASSES, encoder, feature_channels=16), graph_loss_weight=0.5, graph_row_guard=guard)
    model.set_label_graph(adjacency)

    def dead():
        return int((np.asarray(encoder.all_last_preactivations(training=True)).max(axis=1) <= 0).sum())

    assert dead() == NUM_CLASSES  # BN over 5 labels: no standardised value reaches 3
    images, labels = batch()
    for _ in range(30):
        model.train_step((images, labels))
    assert dead() == (0 if guard else NUM_CLASSES)
    assert model.get_config()["graph_row_guard"] == guard


def test_joint_mode_needs_a_label_encoder():
    with pytest.raises(ValueError, match="label encoder"):
        MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), PlainHead(NUM_CLASSES), graph_loss_weight=1.0)


def test_ms_cma_train_step_supervises_each_scale():
    """loss = L(fused) + w · mean_l L(scale l), each term re-computed here from the scale logits."""
    head = HEADS["ms_cma"]()
    model = build(head, scale_loss_weight=0.5)
    images, labels = batch()
    # Training-mode BN normalises by this batch's statistics, the same in the step below.
    scale_logits = [
        np.asarray(logits) for logits, _ in head.scale_outputs(model.backbone(images, training=True), training=True)
    ]
    loss = WeightedBinaryCrossentropy()
    fused = float(loss(labels, np.asarray(head.fusion(scale_logits))))
    per_scale = np.mean([float(loss(labels, logits)) for logits in scale_logits])
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss)
    logs = {k: float(v) for k, v in model.train_step((images, labels)).items()}
    assert logs["classification_loss"] == pytest.approx(fused, rel=1e-4)
    assert logs["scale_loss"] == pytest.approx(per_scale, rel=1e-4)
    assert logs["loss"] == pytest.approx(fused + 0.5 * per_scale, rel=1e-4)
