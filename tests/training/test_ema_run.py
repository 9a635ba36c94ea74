"""A run with a moving average of the weights (`config.train.ema_decay`, docs/design.md §2.24):
each epoch's validation and `final.keras` use the averages, the checkpoint keeps the raw weights
with the averages beside them, and a killed run resumes to the same averaged model."""

import csv

import keras
import numpy as np
import pytest

from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.test_cli import tiny_config, tiny_data  # noqa: F401 (fixture)
from tests.training.test_resume import InterruptAt, Interrupted


def ema_config(data_dir):
    config = tiny_config("plain", data_dir)
    config.data.deterministic = True
    config.train.epochs, config.train.steps_per_epoch = 2, 3
    config.train.ema_decay = 0.5
    return config


def checkpoint_model(workdir):
    return keras.saving.load_model(files.resume_point(workdir)[1])


@pytest.mark.slow
def test_validation_and_final_model_use_the_averages(tiny_data, tmp_path):  # noqa: F811
    workdir = str(tmp_path / "ema")
    metrics = train_and_evaluate(ema_config(tiny_data), workdir)
    final = keras.saving.load_model(files.path(workdir, files.FINAL_MODEL))
    checkpoint = checkpoint_model(workdir)  # the last epoch's: raw weights, averages in the optimizer
    averages = checkpoint.optimizer._model_variables_moving_average
    assert len(averages) == len(final.trainable_variables)
    for average, variable in zip(averages, final.trainable_variables):
        np.testing.assert_array_equal(np.array(variable), np.array(average))
    assert any(
        not np.array_equal(np.array(raw), np.array(avg)) for raw, avg in zip(checkpoint.trainable_variables, averages)
    )
    with open(files.path(workdir, files.HISTORY)) as f:
        last_epoch = list(csv.DictReader(f))[-1]
    # The last epoch was validated on the averaged weights the final model holds.
    assert float(last_epoch["val_mAP"]) == pytest.approx(metrics["mAP"], abs=1e-6)


@pytest.mark.slow  # two end-to-end runs (~30 s on 2 cores)
def test_a_killed_run_resumes_with_its_averages(tiny_data, tmp_path):  # noqa: F811
    config = ema_config(tiny_data)
    config.train.epochs = 3
    straight = str(tmp_path / "straight")
    train_and_evaluate(config, straight)
    interrupted = str(tmp_path / "interrupted")
    with pytest.raises(Interrupted):
        train_and_evaluate(config, interrupted, extra_callbacks=[InterruptAt(epoch=1, batch=1)])
    train_and_evaluate(config, interrupted)
    expected = keras.saving.load_model(files.path(straight, files.FINAL_MODEL)).get_weights()
    resumed = keras.saving.load_model(files.path(interrupted, files.FINAL_MODEL)).get_weights()
    for x, y in zip(expected, resumed):
        np.testing.assert_allclose(y, x, rtol=1e-6, atol=1e-7)
