"""8-bit frames into the model: a video classifier given the uint8 codes and frame counts that
the readers hand it answers, and trains, as when given the frames dequantized in numpy (the
starter code's `Dequantize`, re-derived in `tests.helpers.numpy_frames`)."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.backbones.video import FrameDequantization, fc_backbone, snet_backbone
from cma_tf.graph.asge import ASGEEncoder
from cma_tf.heads.cma import CMAHead
from cma_tf.heads.plain import PlainHead
from cma_tf.models.classifier import MultiLabelClassifier
from tests.helpers import numpy_frames, randomize_batch_norm

B, T, D, N = 4, 16, 12, 5


def codes_and_counts(seed=0):
    rng = np.random.default_rng(seed)
    # A video without frames (count 0, every row must count as zero) and one with codes past
    # its count (they must be ignored, as the reader's padding is).
    return {
        "frame_codes": rng.integers(0, 256, (B, T, D), dtype=np.uint8),
        "num_frames": np.array([T, 0, T, 7], np.int32),
    }


def build(head_name, seed=0):
    keras.utils.set_random_seed(seed)
    if head_name == "plain":
        backbone, head = fc_backbone(T, D, (8, 8)), PlainHead(N)
    elif head_name == "cma":
        backbone, head = snet_backbone(T, D, (8, 8, 8, 8)), CMAHead(N, ASGEEncoder(N, 6))
    else:  # E fine-tuned jointly: the graph loss beside the classification loss
        backbone, head = snet_backbone(T, D, (8, 8, 8, 8)), CMAHead(N, ASGEEncoder(N, 6))
    joint = head_name == "cma_joint"
    model = MultiLabelClassifier(backbone, head, graph_loss_weight=0.5 if joint else 0.0)
    if joint:
        model.set_label_graph(np.random.default_rng(seed).random((N, N)).astype(np.float32))
    model(np.zeros((1, T, D), np.float32))
    randomize_batch_norm(model, np.random.default_rng(seed))
    return model


def test_the_layer_is_the_starter_dequantization_with_the_mask():
    inputs = codes_and_counts()
    out = FrameDequantization()(inputs).numpy()
    np.testing.assert_allclose(out, numpy_frames(inputs), rtol=0, atol=1e-6)
    assert out.dtype == np.float32 and not out[1].any() and not out[3, 7:].any() and out[3, :7].any()
    codes = np.array([0, 127, 255], np.uint8).reshape(1, 1, 3)
    # The starter code's `Dequantize` (utils.py): scalar 4/255, bias 4/512 − 2.
    np.testing.assert_allclose(
        FrameDequantization()({"frame_codes": codes, "num_frames": np.array([1])}).numpy().ravel(),
        [-2 + 4 / 512, 127 * 4 / 255 - 2 + 4 / 512, 4 - 2 + 4 / 512], rtol=0, atol=1e-6,
    )


def test_float_codes_and_wrong_keys_are_refused():
    with pytest.raises(TypeError, match="frame_codes must be uint8 codes, got float32"):
        FrameDequantization()({"frame_codes": np.zeros((1, 2, 3), np.float32), "num_frames": np.ones(1, np.int32)})
    with pytest.raises(ValueError, match="got the keys \\['frame_codes'\\]"):
        FrameDequantization()({"frame_codes": np.zeros((1, 2, 3), np.uint8)})


@pytest.mark.parametrize("head_name", ["plain", "cma"])
def test_codes_give_the_logits_and_gradients_of_the_floats(head_name):
    model = build(head_name)
    inputs = codes_and_counts()
    floats = numpy_frames(inputs)
    for training in (False, True):
        np.testing.assert_allclose(
            model(inputs, training=training).numpy(), model(floats, training=training).numpy(), rtol=0, atol=1e-5
        )

    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(model(x, training=True)))
        return tape.gradient(loss, model.trainable_weights)

    for from_codes, from_floats in zip(gradients(inputs), gradients(floats)):
        np.testing.assert_allclose(tf.convert_to_tensor(from_codes).numpy(), tf.convert_to_tensor(from_floats).numpy(),
                                   rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("head_name", ["cma", "cma_joint"])
def test_fit_on_codes_takes_the_steps_of_fit_on_floats(head_name):
    inputs = codes_and_counts(1)
    labels = (np.random.default_rng(2).random((B, N)) < 0.4).astype(np.float32)
    weights = []
    for x in (inputs, numpy_frames(inputs)):
        model = build(head_name, seed=3)
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=keras.losses.BinaryCrossentropy(from_logits=True))
        history = model.fit(tf.data.Dataset.from_tensor_slices((x, labels)).batch(2), epochs=2, verbose=0).history
        assert np.isfinite(history["loss"]).all()
        weights.append([w.numpy() for w in model.weights])
    for from_codes, from_floats in zip(*weights):
        np.testing.assert_allclose(from_codes, from_floats, rtol=1e-4, atol=1e-5)


def test_a_saved_model_takes_codes_after_loading(tmp_path):
    model = build("cma")
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    inputs = codes_and_counts()
    np.testing.assert_allclose(loaded(inputs).numpy(), model(numpy_frames(inputs)).numpy(), rtol=0, atol=1e-5)
