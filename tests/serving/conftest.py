"""Fixtures of the serving tests: a tiny trained image run, its SavedModel, encoded images."""

import io

import numpy as np
import pytest
from PIL import Image

from cma_tf.datasets.demo import generate_demo_dataset
from tests.test_cli import tiny_config

IMAGE_SIZE = 32
TOP_K = 3


@pytest.fixture(scope="session")
def image_data(tmp_path_factory):
    data_dir = str(tmp_path_factory.mktemp("serving_data"))
    generate_demo_dataset(data_dir, num_train=32, num_val=16, image_size=IMAGE_SIZE, seed=0, num_shards=2, progress=False)
    return data_dir


@pytest.fixture(scope="session")
def image_workdir(image_data, tmp_path_factory):
    """An MS-CMA run of 1 short epoch (the head with the most layers: two scales, ASGE, CMT)."""
    from cma_tf.training.trainer import train_and_evaluate

    workdir = str(tmp_path_factory.mktemp("serving_run"))
    config = tiny_config("ms_cma", image_data)
    config.train.epochs = 1
    config.train.steps_per_epoch = 2
    train_and_evaluate(config, workdir)
    return workdir


@pytest.fixture(scope="session")
def image_export(image_workdir, tmp_path_factory):
    """`<base>/1`: the run exported with K = TOP_K."""
    from cma_tf.serving.saved_model import export_workdir

    export_dir = str(tmp_path_factory.mktemp("models") / "tiny" / "1")
    export_workdir(image_workdir, export_dir, top_k=TOP_K)
    return export_dir


def random_image(rng, height=None, width=None):
    """uint8 [H, W, 3] with smooth structure (JPEG-friendly) and noise, of random size."""
    height = height or int(rng.integers(20, 90))
    width = width or int(rng.integers(20, 90))
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def encode(image, image_format="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, image_format)
    return buffer.getvalue()
