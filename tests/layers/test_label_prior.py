"""The label prior offset (`layers/label_prior.py`, docs/design.md §2.31): the log-odds formula
re-derived in numpy, the model's logits with and without it under the same weights, the
multi-scale train step, the factory setting it from the training labels, and a `.keras` round trip."""

import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.backbones.small import small_backbone
from cma_tf.config_base import load_config_file
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.graph.cooccurrence import label_graph_from_label_lists
from cma_tf.heads.ms_cma import MultiScaleCMAHead
from cma_tf.heads.plain import PlainHead
from cma_tf.layers.label_prior import LabelPriorOffset, prior_log_odds
from cma_tf.losses import WeightedBinaryCrossentropy
from cma_tf.models.classifier import MultiLabelClassifier
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS

NUM_CLASSES = 4
RNG = np.random.default_rng(7)


def test_log_odds_of_the_smoothed_frequency():
    counts, n = np.array([0, 1, 50, 99]), 99
    p = (counts + 0.5) / (n + 1)  # written out: p = (n_k + 1/2) / (n + 1)
    np.testing.assert_allclose(prior_log_odds(counts, n), np.log(p / (1 - p)), rtol=1e-6)
    assert np.all(np.isfinite(prior_log_odds([0, 10], 10)))  # never seen, always seen: finite


@pytest.mark.parametrize("counts, n", [([[1, 2]], 3), ([4], 3), ([-1], 3)])
def test_bad_counts_are_refused(counts, n):
    with pytest.raises(ValueError):
        prior_log_odds(counts, n)


def test_a_count_vector_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="3 label counts for a model of 4 labels"):
        LabelPriorOffset(NUM_CLASSES).set_prior([1, 2, 3], 10)


def images(n=3):
    return RNG.uniform(0, 255, (n, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")


def test_the_logits_are_the_head_s_plus_the_prior_and_the_offset_is_not_trained():
    keras.utils.set_random_seed(0)
    plain = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), PlainHead(NUM_CLASSES))
    keras.utils.set_random_seed(0)
    prior = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), PlainHead(NUM_CLASSES), label_prior=True)
    prior.set_weights(plain.get_weights() + [np.zeros(NUM_CLASSES, np.float32)])
    counts, n = np.array([3, 0, 10, 1]), 10
    prior.set_label_prior(counts, n)
    x = images()
    p = (counts + 0.5) / (n + 1)
    np.testing.assert_allclose(prior.predict(x, verbose=0), plain.predict(x, verbose=0) + np.log(p / (1 - p)), atol=1e-5)
    assert all("label_prior" not in w.path for w in prior.trainable_weights)
    prior.compile(optimizer=keras.optimizers.Adam(0.1), loss=WeightedBinaryCrossentropy())
    prior.fit(x, (RNG.random((3, NUM_CLASSES)) < 0.5).astype("float32"), epochs=2, verbose=0)
    np.testing.assert_allclose(prior.label_prior.offset.numpy(), np.log(p / (1 - p)), rtol=1e-6)


def test_a_model_without_the_offset_refuses_to_set_it():
    model = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), PlainHead(NUM_CLASSES))
    with pytest.raises(ValueError, match="label_prior=False"):
        model.set_label_prior([1, 1, 1, 1], 2)


def test_the_multi_scale_train_step_adds_the_offset_to_every_scale():
    """MS-CMA's train step computes its logits itself (fused and per scale): with an offset of
    −30 and labels all 0, the loss is ≈ 0 only if every scale's logits carry it."""
    encoder = ASGEEncoder(NUM_CLASSES, units=8, name="label_encoder")
    encoder.build()
    encoder.trainable = False
    head = MultiScaleCMAHead(NUM_CLASSES, encoder, feature_channels=16, extra_block_filters=4)
    model = MultiLabelClassifier(small_backbone(TINY_IMAGE_SIZE, TINY_WIDTHS), head, label_prior=True)
    model.label_prior.offset.assign(np.full(NUM_CLASSES, -30.0, np.float32))
    model.compile(optimizer=keras.optimizers.SGD(0.0), loss=WeightedBinaryCrossentropy())
    logs = model.fit(images(), np.zeros((3, NUM_CLASSES), np.float32), epochs=1, verbose=0).history
    assert logs["scale_loss"][0] < 1e-6 and logs["loss"][0] < 1e-6


def test_the_factory_sets_the_offset_from_the_training_labels_and_it_survives_saving(tmp_path):
    config = load_config_file("configs/demo.py").get_config()
    config.model.head = "plain"
    config.model.backbone = "small"
    config.model.backbone_widths = TINY_WIDTHS
    config.data.image_size = TINY_IMAGE_SIZE
    config.model.label_prior = True
    label_lists = [[0, 2], [2], [2, 3], [], [2]]
    graph = label_graph_from_label_lists(label_lists, NUM_CLASSES, [f"l{k}" for k in range(NUM_CLASSES)])
    model = factory.build_classifier(config, NUM_CLASSES, label_graph=graph)
    counts = np.array([1, 0, 4, 1])
    np.testing.assert_allclose(model.label_prior.offset.numpy(), np.log((counts + 0.5) / (5.5 - counts)), rtol=1e-6)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    x = images(2)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-5)
    np.testing.assert_allclose(loaded.label_prior.offset.numpy(), model.label_prior.offset.numpy())
