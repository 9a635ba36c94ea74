"""A run interrupted mid-epoch resumes and ends with the weights of an uninterrupted run; dry runs
and mixed precision build and train."""

import keras
import numpy as np
import pytest

from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.test_cli import tiny_config


class Interrupted(Exception):
    pass


class InterruptAt(keras.callbacks.Callback):
    """Raises in the middle of an epoch, as a kill would stop the process there."""

    def __init__(self, epoch, batch):
        super().__init__()
        self.epoch, self.batch, self.current = epoch, batch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.current = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.current == self.epoch and batch == self.batch:
            raise Interrupted(f"killed at epoch {self.epoch}, batch {batch}")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("data"))
    generate_demo_dataset(path, num_train=48, num_val=16, image_size=32, seed=0, num_shards=2, progress=False)
    return path


def resume_config(data_dir):
    config = tiny_config("ms_cma", data_dir)
    config.data.deterministic = True
    config.train.epochs = 3
    config.train.steps_per_epoch = 4
    config.train.lr_decay_epochs = 2  # the schedule must resume too
    return config


def final_weights(workdir):
    return keras.saving.load_model(files.path(workdir, files.FINAL_MODEL)).get_weights()


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_interrupted_run_resumes_to_the_same_weights(data_dir, tmp_path):
    config = resume_config(data_dir)
    train_and_evaluate(config, str(tmp_path / "straight"))
    interrupted = str(tmp_path / "interrupted")
    with pytest.raises(Interrupted):
        train_and_evaluate(config, interrupted, extra_callbacks=[InterruptAt(epoch=1, batch=2)])
    assert files.resume_point(interrupted)[0] == 1  # epoch 0 finished, epoch 1 was cut
    train_and_evaluate(config, interrupted)
    for straight, resumed in zip(final_weights(str(tmp_path / "straight")), final_weights(interrupted)):
        np.testing.assert_allclose(resumed, straight, rtol=1e-6, atol=1e-7)
    history = open(files.path(interrupted, files.HISTORY)).read().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["0", "1", "2"]  # no lost or repeated epoch


@pytest.mark.slow
def test_dry_run_trains_two_steps(data_dir, tmp_path):
    config = tiny_config("cma", data_dir)
    metrics = train_and_evaluate(config, str(tmp_path / "dry"), dry_run=True)
    assert 0.0 <= metrics["mAP"] <= 1.0
    dry = files.path(str(tmp_path / "dry"), files.DRY_RUN)
    assert len(open(files.path(dry, files.HISTORY)).read().splitlines()) == 2


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
@pytest.mark.parametrize("precision", ["bfloat16", "float16"])
def test_mixed_precision_trains_with_float32_logits(data_dir, tmp_path, precision):
    config = tiny_config("ms_cma", data_dir)
    config.train.mixed_precision = precision
    try:
        metrics = train_and_evaluate(config, str(tmp_path / precision), dry_run=True)
        dry = files.path(str(tmp_path / precision), files.DRY_RUN)
        model = keras.saving.load_model(files.path(dry, files.FINAL_MODEL))
        assert model.output.dtype == "float32"
        assert model.head.branches[0].cmt.compute_dtype == precision
        assert np.isfinite(metrics["mAP"])
    finally:
        keras.mixed_precision.set_global_policy("float32")
