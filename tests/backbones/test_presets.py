"""The pretrained preset of the small backbone (`cma_tf/backbones/presets.py`, `weights.py`,
docs/design.md §2.26): it loads, matches its checksum, and loads exactly the file's weights."""

import configparser
import fnmatch
import hashlib
import json
import os
import shutil

import h5py
import keras
import numpy as np
import pytest

from cma_tf import factory
from cma_tf.backbones import presets
from cma_tf.backbones.small import small_backbone
from cma_tf.backbones.weights import resolve_small_weights
from cma_tf.config_base import get_base_config
from cma_tf.datasets import pretrain_corpus
from cma_tf.errors import ConfigError

PRESET = presets.get_preset("small_synthetic")
PACKAGED = os.path.join(os.path.dirname(presets.__file__), "preset_files", "small_synthetic.weights.h5")
ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def small_config(weights, image_size=96, widths=(32, 64, 128, 256)):
    config = get_base_config()
    config.model.backbone, config.model.head = "small", "plain"
    config.model.backbone_weights = weights
    config.model.backbone_widths = widths
    config.data.image_size = image_size
    return config


def images(size=96, count=2):
    return np.random.default_rng(0).uniform(0, 255, (count, size, size, 3)).astype("float32")


def test_the_preset_file_matches_its_registered_checksum_and_provenance():
    with open(PACKAGED, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    assert digest == PRESET.sha256
    assert resolve_small_weights("small_synthetic", PRESET.widths) == PACKAGED
    with open(os.path.join(os.path.dirname(PACKAGED), PRESET.provenance)) as f:
        provenance = json.load(f)
    assert provenance["sha256"] == digest and provenance["bytes"] == os.path.getsize(PACKAGED)
    assert provenance["corpus"]["classes"] == list(pretrain_corpus.CLASSES)
    assert tuple(provenance["backbone"]["widths"]) == PRESET.widths
    assert provenance["backbone"]["image_size"] == PRESET.image_size
    assert provenance["command"].startswith("python -m cma_tf.pretrain --out=")
    assert provenance["command"] in PRESET.regenerate  # the registry names the command that made the file


def test_the_loaded_backbone_equals_keras_loading_the_file_directly():
    loaded = factory.build_backbone(small_config("small_synthetic"))
    direct = small_backbone(96)
    direct.load_weights(PACKAGED)
    random = small_backbone(96)
    for ours, reference, fresh in zip(loaded(images()), direct(images()), random(images())):
        np.testing.assert_allclose(np.asarray(ours), np.asarray(reference), rtol=1e-6, atol=1e-6)
        assert np.abs(np.asarray(ours) - np.asarray(fresh)).max() > 1e-2


def test_the_loaded_weights_are_the_arrays_of_the_file():
    """Read with h5py, not Keras: every array the file holds is one of the backbone's variables."""
    stored = []
    with h5py.File(PACKAGED, "r") as f:
        f.visititems(lambda name, item: stored.append(np.asarray(item)) if isinstance(item, h5py.Dataset) else None)
    loaded = factory.build_backbone(small_config("small_synthetic")).get_weights()
    assert len(stored) == len(loaded)
    key = lambda array: (array.shape, float(np.round(array.sum(), 3)))  # noqa: E731
    for ours, theirs in zip(sorted(loaded, key=key), sorted(stored, key=key)):
        np.testing.assert_array_equal(ours, theirs)


def test_a_weights_file_path_and_none_and_the_base_default():
    by_path = factory.build_backbone(small_config(PACKAGED))
    by_name = factory.build_backbone(small_config("small_synthetic"))
    np.testing.assert_array_equal(np.asarray(by_path(images())[1]), np.asarray(by_name(images())[1]))
    for weights in (None, "None", "imagenet"):  # random, as before presets (imagenet: ResNet's default)
        assert resolve_small_weights(weights, PRESET.widths) is None
    # the weights are convolutions: another side loads them too
    assert factory.build_backbone(small_config("small_synthetic", image_size=64)).output_shape[1][1:] == (4, 4, 256)


def test_a_corrupted_copy_is_refused_naming_the_file(tmp_path, monkeypatch):
    copy = tmp_path / PRESET.file
    shutil.copy(PACKAGED, copy)
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=str(copy)) as error:
        resolve_small_weights("small_synthetic", PRESET.widths, preset_dir=str(tmp_path))
    assert PRESET.sha256 in str(error.value) and "\n" not in str(error.value)
    monkeypatch.setattr(presets, "PRESET_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=str(copy)):
        factory.build_backbone(small_config("small_synthetic"))
    copy.unlink()
    with pytest.raises(ConfigError, match=f"{copy} is missing"):
        factory.build_backbone(small_config("small_synthetic"))


def test_unservable_weights_are_one_line_naming_the_setting(tmp_path):
    with pytest.raises(ConfigError, match="no such weights file .*nowhere.weights.h5.*small_synthetic"):
        factory.build_backbone(small_config(str(tmp_path / "nowhere.weights.h5")))
    with pytest.raises(ConfigError, match=r"backbone_widths is \(16, 32, 64, 128\)"):
        factory.build_backbone(small_config("small_synthetic", widths=(16, 32, 64, 128)))
    with pytest.raises(ConfigError, match=f"{PACKAGED} does not hold the weights of a small backbone of widths"):
        factory.build_backbone(small_config(PACKAGED, widths=(16, 32, 64, 128)))


def test_the_preset_files_are_package_data():
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    patterns = [p.strip() for p in parser["options.package_data"]["cma_tf.backbones"].split(",")]
    for name in (PRESET.file, PRESET.provenance):
        assert any(fnmatch.fnmatch(f"preset_files/{name}", pattern) for pattern in patterns), name
