"""A run whose loss becomes NaN stops at once with one line saying where and what to change,
instead of training on and failing later in the metrics (or saving a model that scores NaN)."""

import os

import pytest

from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.errors import ConfigError, TrainingDivergedError
from cma_tf.training import workdir as files
from cma_tf.training.callbacks import StopOnNonFiniteLoss
from cma_tf.training.trainer import train_and_evaluate
from tests.test_cli import tiny_config


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    generate_demo_dataset(path, num_train=48, num_val=16, image_size=32, seed=0, num_shards=2, progress=False)
    return path


def test_a_diverging_run_stops_with_one_line_and_writes_no_final_model(data_dir, tmp_path):
    config = tiny_config("plain", data_dir)
    config.train.epochs, config.train.steps_per_epoch = 2, 4
    config.train.learning_rate = 1e12
    workdir = str(tmp_path / "run")
    with pytest.raises(TrainingDivergedError) as error:
        train_and_evaluate(config, workdir)
    message = str(error.value)
    assert message.startswith("training diverged: the loss is ") and "at epoch 1, step " in message
    assert "config.train.learning_rate (1000000000000.0)" in message
    assert isinstance(error.value, ConfigError)  # the CLIs print it as one line, exit 2
    assert not os.path.exists(files.path(workdir, files.FINAL_MODEL))


@pytest.mark.parametrize("loss", [float("nan"), float("inf"), -float("inf")])
def test_the_check_names_the_epoch_and_step(loss):
    check = StopOnNonFiniteLoss("lower it")
    check.on_epoch_begin(2)
    with pytest.raises(TrainingDivergedError, match=r"the loss is .* at epoch 3, step 5; lower it"):
        check.on_train_batch_end(4, {"loss": loss})
    with pytest.raises(TrainingDivergedError, match="at the end of epoch 3"):
        check.on_epoch_end(2, {"loss": loss})
    check.on_train_batch_end(0, {"loss": 0.7})  # a finite loss passes


def test_global_clipnorm_bounds_the_first_update(data_dir):
    """`config.train.global_clipnorm`: the first SGD step moves the weights by at most lr × norm
    (momentum starts at zero; weight decay is off here)."""
    import numpy as np

    from cma_tf import factory

    config = tiny_config("plain", data_dir)
    config.train.learning_rate, config.train.weight_decay, config.train.global_clipnorm = 1.0, 0.0, 0.5
    model = factory.build_classifier(config, 16)
    model.compile(optimizer=factory.build_optimizer(config, steps_per_epoch=10), loss=factory.build_loss(config))
    labels = np.eye(16, dtype="float32")[:4]
    size = config.data.image_size
    images = np.random.default_rng(0).uniform(0, 255, (4, size, size, 3)).astype("float32")
    before = [np.asarray(v).copy() for v in model.trainable_variables]
    model.train_on_batch(images, labels)
    step = np.sqrt(sum(np.sum((np.asarray(v) - b) ** 2) for v, b in zip(model.trainable_variables, before)))
    assert 0 < step <= 1.0 * 0.5 * (1 + 1e-5)


def test_the_optimizer_is_chosen_by_config(data_dir):
    import keras

    from cma_tf import factory
    from cma_tf.errors import ConfigError

    config = tiny_config("plain", data_dir)
    sgd = factory.build_optimizer(config, steps_per_epoch=10)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == config.train.momentum
    config.train.optimizer, config.train.weight_decay = "adamw", 1e-4
    adamw = factory.build_optimizer(config, steps_per_epoch=10)
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == 1e-4
    config.train.optimizer = "adam"
    adam = factory.build_optimizer(config, steps_per_epoch=10)
    assert type(adam) is keras.optimizers.Adam and adam.weight_decay == 1e-4
    config.train.optimizer = "lamb"
    with pytest.raises(ConfigError, match=r"config.train.optimizer: unknown optimizer 'lamb' \(sgd, adam, adamw\)"):
        factory.validate_config(config)
