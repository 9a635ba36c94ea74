"""A config of one data kind pointed at data of another: the one line names the data kind found
(read from the folder's files with a plain `tf.train.SequenceExample` / `Example` parse in the
generators) and the setting that reads it, and nothing is trained."""

import os

import pytest

from cma_tf import factory
from cma_tf.config_base import get_paper_video_config
from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.errors import DataError
from cma_tf.training.trainer import train_and_evaluate
from tests.test_cli import tiny_config as tiny_image_config


@pytest.fixture(scope="module")
def yt8m(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m"))
    write_synthetic_yt8m(out, num_classes=6, train_videos=8, validate_videos=4, test_videos=2, num_shards=1,
                         min_frames=10, max_frames=12, seed=2)
    return out


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("images"))
    generate_demo_dataset(out, num_train=8, num_val=4, image_size=32, seed=0, num_shards=1, progress=False)
    return out


@pytest.mark.parametrize("folder,found,fix", [
    ("frame", r"YouTube-8M frame-level records \(train0000\.tfrecord\) and its vocabulary\.csv",
     r"--config\.data\.format=yt8m_frame"),
    ("video", r"YouTube-8M video-level records \(train0000\.tfrecord\) and its vocabulary\.csv",
     r"--config\.data\.format=yt8m_video"),
    ("", r"YouTube-8M data \(vocabulary\.csv; records in frame/, video/\)",
     r"point config\.data\.data_dir at its frame/ \(--config\.data\.format=yt8m_frame\) or video/ "
     r"\(--config\.data\.format=yt8m_video\) folder"),
])
def test_an_image_config_on_youtube8m_data_names_what_it_found(yt8m, tmp_path, folder, found, fix):
    config = tiny_image_config("cma", os.path.join(yt8m, folder))
    with pytest.raises(DataError, match=rf"config\.data\.format='image' reads image records and labels\.txt, "
                                        rf"but {os.path.join(yt8m, folder)} holds {found}: .*{fix}") as raised:
        train_and_evaluate(config, str(tmp_path / "run"))
    assert "\n" not in str(raised.value)
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_a_video_config_on_image_data_names_the_images(images, tmp_path):
    config = get_paper_video_config("cma_fc")
    config.data.data_dir = images
    config.data.eval_split = "val"
    with pytest.raises(DataError, match=r"train-00000-of-00001\.tfrecord holds image Examples .* but config\.data\."
                                        r"format='yt8m_frame' reads frame-level SequenceExamples .*: these are images: "
                                        r"train on them with an image config \(config\.data\.format='image', e\.g\. "
                                        r"--config=configs/demo\.py:cma\)") as raised:
        train_and_evaluate(config, str(tmp_path / "run"))
    assert "yt8m_video" not in str(raised.value)  # the old advice: read images as video-level records
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_the_image_kind_still_says_labels_txt_is_missing_in_a_folder_of_nothing(tmp_path):
    config = tiny_image_config("cma", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="Label vocabulary not found"):
        factory.read_vocabulary(config)
