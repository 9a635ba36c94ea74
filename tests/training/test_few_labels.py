"""A dataset of two labels (issue 35 item 1.5): ASGE cannot embed it (`check_graph`), and
`train` says so before it writes the workdir's config; three labels train."""

import io
import os

import numpy as np
import pytest
from PIL import Image

from cma_tf.data import records
from cma_tf.data.vocab import write_vocabulary
from cma_tf.graph.asge_model import DegenerateFitError
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.helpers import slow_for
from tests.test_cli import tiny_config


def _png(rng):
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _dataset(root, num_labels, rng):
    data_dir = os.path.join(root, f"labels{num_labels}")
    os.makedirs(data_dir)
    write_vocabulary(os.path.join(data_dir, "labels.txt"), [f"l{i}" for i in range(num_labels)])
    for split in ("train", "val"):
        examples = []
        for index in range(16):
            labels = sorted({index % num_labels, (index * 7 + 1) % num_labels} if index % 3 else {index % num_labels})
            examples.append(records.encode_image_example(_png(rng), "png", 32, 32, f"{split}{index}", labels))
        records.write_split(data_dir, split, examples, 1)
    return data_dir


@pytest.mark.parametrize("num_labels", slow_for([2, 3], (3,)))
def test_two_labels_are_refused_before_the_workdir_is_written_and_three_train(tmp_path, num_labels):
    data_dir = _dataset(str(tmp_path), num_labels, np.random.default_rng(num_labels))
    config = tiny_config("cma", data_dir)
    config.train.epochs, config.train.steps_per_epoch, config.asge.steps = 1, 1, 20
    workdir = str(tmp_path / "run")
    if num_labels == 2:
        with pytest.raises(DegenerateFitError, match="2 labels"):
            train_and_evaluate(config, workdir)
        assert not os.path.exists(files.path(workdir, files.CONFIG))
        assert not os.path.exists(files.path(workdir, files.VOCABULARY))
    else:
        metrics = train_and_evaluate(config, workdir)
        assert np.isfinite(metrics["mAP"])
        embeddings = np.load(files.path(workdir, files.ASGE_WEIGHTS))
        assert len(embeddings.files) > 0
