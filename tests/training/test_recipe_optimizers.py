"""The recipe options of the optimizer (issue 31, docs/design.md §2.24) against numpy: the
backbone's learning-rate multiplier, L2 and decoupled weight decay, 1-D variables exempt from
it, and the moving average of the weights (one `fit` per epoch keeps training the raw ones)."""

import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import load_config_file
from cma_tf.optimizers import RecipeAdam, RecipeSGD
from tests.test_cli import DEMO_CONFIG, TINY

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras' Adam defaults, which build_optimizer keeps
LEARNING_RATE = 0.05
NUM_CLASSES = 3


def plain_config(**train):
    config = load_config_file(DEMO_CONFIG).get_config("plain")
    for key, value in TINY.items():
        section, field = key.split(".")
        config[section][field] = value
    config.train.warmup_epochs = 0.0
    config.train.learning_rate = LEARNING_RATE
    config.train.momentum = 0.0
    for field, value in train.items():
        config.train[field] = value
    return config


def model_and_optimizer(config, seed=0):
    keras.utils.set_random_seed(seed)
    model = factory.build_classifier(config, NUM_CLASSES)
    return model, factory.build_optimizer(config, steps_per_epoch=10, model=model)


def batch(seed=1, size=4):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, size=(size, 32, 32, 3)).astype("float32")
    labels = (rng.uniform(size=(size, NUM_CLASSES)) < 0.5).astype("float32")
    return images, labels


def gradients(model, images, labels):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        logits = model(images, training=True)
        loss = keras.ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))
    return tape.gradient(loss, model.trainable_variables)


def numpy_first_step(name, w, g, lr, wd, mode, decays):
    """One step from fresh state, written from the algorithms: PyTorch's L2 `weight_decay`
    (g + wd·w) or the decoupled decay w·(1 - lr·wd) first; then SGD (no momentum), or Adam
    (Kingma & Ba with ε outside the bias correction, as Keras writes it)."""
    if decays and wd and mode == "l2":
        g = g + wd * w
    if decays and wd and mode == "decoupled":
        w = w - lr * wd * w
    if name == "sgd":
        return w - lr * g
    m = (1 - BETA_1) * g
    v = (1 - BETA_2) * g * g
    alpha = lr * np.sqrt(1 - BETA_2) / (1 - BETA_1)
    return w - alpha * m / (np.sqrt(v) + EPSILON)


@pytest.mark.parametrize(
    "optimizer, weight_decay, mode, decay_1d, multiplier",
    [
        ("adam", 0.0, "decoupled", True, 0.1),  # the fine-tuned regime's backbone at a tenth
        ("adamw", 0.05, "decoupled", True, 0.1),  # decoupled decay at the group's lr·wd
        ("sgd", 0.05, "l2", True, 0.1),  # ML-GCN's recipe
        ("sgd", 0.05, "l2", False, 1.0),  # biases and norms without decay
        ("adam", 0.05, "l2", False, 1.0),  # ML-Decoder's Adam + L2 without biases
        ("adamw", 0.05, "decoupled", False, 1.0),
    ],
)
def test_one_step_matches_numpy(optimizer, weight_decay, mode, decay_1d, multiplier):
    config = plain_config(
        optimizer=optimizer, weight_decay=weight_decay, weight_decay_mode=mode, weight_decay_1d=decay_1d,
        backbone_lr_multiplier=multiplier,
    )
    model, opt = model_and_optimizer(config)
    backbone_paths = {variable.path for variable in model.backbone.trainable_variables}
    assert backbone_paths and len(backbone_paths) < len(model.trainable_variables)
    grads = gradients(model, *batch())
    before = [np.array(variable) for variable in model.trainable_variables]
    opt.apply(grads, model.trainable_variables)
    for variable, w, g in zip(model.trainable_variables, before, grads):
        lr = LEARNING_RATE * (multiplier if variable.path in backbone_paths else 1.0)
        decays = decay_1d or w.ndim > 1
        expected = numpy_first_step(optimizer, w, np.array(g), lr, weight_decay, mode, decays)
        # float32: Keras' 1 - β2 alone is off by 1e-5 of itself; a wrong rate is off by 0.9·lr.
        np.testing.assert_allclose(np.array(variable), expected, rtol=1e-5, atol=2e-5 * LEARNING_RATE, err_msg=variable.path)


def test_the_multiplier_is_not_a_gradient_scale():
    """Adam's first step is ±lr whatever the gradient's scale: the backbone moves by a tenth."""
    model, opt = model_and_optimizer(plain_config(optimizer="adam", weight_decay=0.0, backbone_lr_multiplier=0.1))
    grads = gradients(model, *batch())
    kernel = model.backbone.get_layer("stem_conv").kernel
    head_kernel = model.head.trainable_variables[0]
    before, head_before = np.array(kernel), np.array(head_kernel)
    opt.apply(grads, model.trainable_variables)
    moved = np.abs(np.array(kernel) - before)[np.abs(np.array(grads[0])) > 1e-3]
    head_moved = np.abs(np.array(head_kernel) - head_before)
    np.testing.assert_allclose(moved, 0.1 * LEARNING_RATE, rtol=1e-2)
    assert head_moved.max() > 0.9 * LEARNING_RATE


def test_defaults_build_keras_own_optimizers():
    """At their defaults the options leave today's optimizers as they were (bit-identical)."""
    for name, cls in (("sgd", keras.optimizers.SGD), ("adamw", keras.optimizers.AdamW), ("adam", keras.optimizers.Adam)):
        config = plain_config(optimizer=name)
        assert type(factory.build_optimizer(config, steps_per_epoch=10)) is cls


@pytest.mark.slow
def test_the_options_survive_a_keras_file(tmp_path):
    config = plain_config(optimizer="adam", weight_decay=0.01, weight_decay_mode="l2", weight_decay_1d=False,
                          backbone_lr_multiplier=0.1, ema_decay=0.9)
    model, opt = model_and_optimizer(config)
    model.compile(optimizer=opt, loss=factory.build_loss(config))
    images, labels = batch()
    model.fit(images, labels, batch_size=2, epochs=1, verbose=0)
    model.save(tmp_path / "m.keras")
    restored = keras.saving.load_model(tmp_path / "m.keras").optimizer
    assert isinstance(restored, RecipeAdam)
    assert restored.lr_multiplier == 0.1 and restored.weight_decay_mode == "l2" and not restored.decay_1d
    assert restored.scaled_variables == sorted(v.path for v in model.backbone.trainable_variables)
    assert restored.use_ema and restored.ema_momentum == 0.9
    for saved, loaded in zip(opt._model_variables_moving_average, restored._model_variables_moving_average):
        np.testing.assert_array_equal(np.array(loaded), np.array(saved))


class RecordWeights(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.after_each_step = []

    def on_train_batch_end(self, batch, logs=None):
        self.after_each_step.append([np.array(v) for v in self.model.trainable_variables])


def test_moving_average_matches_numpy_and_training_keeps_the_raw_weights():
    decay = 0.8
    config = plain_config(optimizer="sgd", weight_decay=0.0, ema_decay=decay)
    model, opt = model_and_optimizer(config)
    assert isinstance(opt, RecipeSGD)
    model.compile(optimizer=opt, loss=factory.build_loss(config))
    images, labels = batch(size=6)
    record = RecordWeights()
    for epoch in range(2):  # as the trainer does: one fit per epoch
        model.fit(images, labels, batch_size=2, initial_epoch=epoch, epochs=epoch + 1, callbacks=[record], verbose=0)
        # Keras would have written the averages over the weights here; training goes on from the raw ones.
        for variable, raw in zip(model.trainable_variables, record.after_each_step[-1]):
            np.testing.assert_array_equal(np.array(variable), raw)
    # Keras' average: the weights after the first step, then avg ← d·avg + (1 - d)·w each step.
    expected = record.after_each_step[0]
    for weights in record.after_each_step[1:]:
        expected = [decay * a + (1 - decay) * w for a, w in zip(expected, weights)]
    assert len(record.after_each_step) == 6
    raw = [np.array(v) for v in model.trainable_variables]
    opt.swap_averaged_weights()
    for variable, average in zip(model.trainable_variables, expected):
        np.testing.assert_allclose(np.array(variable), average, rtol=1e-5, atol=1e-7)
    assert not all(np.array_equal(a, b) for a, b in zip(raw, expected))
    opt.swap_averaged_weights()
    for variable, w in zip(model.trainable_variables, raw):
        np.testing.assert_array_equal(np.array(variable), w)
