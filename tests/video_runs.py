"""Tiny video runs on synthetic YouTube-8M records, shared by the evaluation and segment
inference tests (module-scoped fixtures: import them into the test module)."""

import os

import pytest
import tensorflow as tf

from cma_tf.config_base import get_paper_video_config
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.training.trainer import train_and_evaluate

NUM_CLASSES, TRAIN_VIDEOS = 8, 32


@pytest.fixture(scope="module")
def yt8m(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m"))
    write_synthetic_yt8m(out, num_classes=NUM_CLASSES, train_videos=TRAIN_VIDEOS, validate_videos=8, test_videos=4,
                         num_shards=1, min_frames=10, max_frames=23, seed=5)
    return out


def tiny_video_config(data_dir, data_format="yt8m_frame"):
    config = get_paper_video_config("cma_fc")
    config.data.format = data_format
    config.data.data_dir = data_dir
    config.data.frames = 8
    config.model.fc_units = (8, 8)
    config.asge.units = 8
    config.asge.steps = 5
    config.train.epochs = 1
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    if data_format == "yt8m_video":
        config.data.feature_names = ("mean_rgb",)
        config.data.eval_segments = False
    else:
        config.data.feature_names = ("rgb", "audio")
    return config


@pytest.fixture(scope="module")
def segment_run(yt8m, tmp_path_factory):
    """A CMA-FC run on frame-level records, evaluated on the rated segments of 'validate'."""
    workdir = str(tmp_path_factory.mktemp("segments") / "cma_fc")
    train_and_evaluate(tiny_video_config(os.path.join(yt8m, "frame")), workdir)
    return workdir


@pytest.fixture(scope="module")
def video_level_run(yt8m, tmp_path_factory):
    """A CMA-FC run on video-level records (mean_rgb), evaluated on whole videos."""
    workdir = str(tmp_path_factory.mktemp("videos") / "cma_fc_video")
    train_and_evaluate(tiny_video_config(os.path.join(yt8m, "video"), "yt8m_video"), workdir)
    return workdir


def records_with_rgb_only(folder, split):
    """One frame-level record with an `rgb` list and no `audio`, and the vocabulary beside it."""
    os.makedirs(folder, exist_ok=True)
    example = tf.train.SequenceExample()
    example.context.feature["id"].bytes_list.value.append(b"rgbonly")
    example.context.feature["labels"].int64_list.value.append(1)
    for _ in range(10):
        example.feature_lists.feature_list["rgb"].feature.add().bytes_list.value.append(bytes(1024))
    with tf.io.TFRecordWriter(os.path.join(folder, f"{split}0000.tfrecord")) as writer:
        writer.write(example.SerializeToString())
    return folder
