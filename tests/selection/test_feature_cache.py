"""The frozen-backbone regime's pieces: cached maps, the held-out part, a head trained on maps.

References: the backbone applied to the images itself (cached maps), PIL-decoded image bytes of
the records (held-out never overlaps val), and the full classifier over images (the head over
cached maps computes the same logits)."""

import hashlib
import io
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cma_tf import factory
from cma_tf.config_base import load_config_file
from cma_tf.data import records
from cma_tf.datasets.demo import generate_demo_dataset
from cma_tf.selection import feature_cache, feature_head
from cma_tf.selection.holdout import holdout_split

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIDTHS = (8, 16, 32, 64)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("demo"))
    generate_demo_dataset(out, num_train=40, num_val=16, image_size=32, seed=0, num_shards=2, progress=False)
    return out


def tiny_config(data_dir, head="plain"):
    config = load_config_file(os.path.join(ROOT, "configs", "demo.py")).get_config(head)
    config.data.data_dir = data_dir
    config.data.image_size = 32
    config.model.backbone_widths = WIDTHS
    config.model.feature_channels = 16
    config.asge.units, config.asge.steps = 8, 20
    config.train.batch_size = config.train.eval_batch_size = 8
    config.train.epochs = 1
    return config


def test_cached_maps_equal_the_backbones_output(data_dir, tmp_path):
    config = tiny_config(data_dir)
    backbone = factory.build_backbone(config)
    maps, labels = feature_cache.load_or_compute(config, backbone, "train", str(tmp_path), progress=False)
    expected, expected_labels = [[], []], []
    for images, multi_hot in factory.build_dataset(config, len(factory.read_vocabulary(config)), "train", training=False):
        for store, output in zip(expected, backbone(images, training=False)):
            store.append(np.asarray(output))
        expected_labels.append(np.asarray(multi_hot))
    assert len(maps) == 2 and len(labels) == 40
    for cached, reference in zip(maps, expected):
        reference = np.concatenate(reference)
        assert cached.dtype == np.float16 and cached.shape == reference.shape
        np.testing.assert_array_equal(np.asarray(cached), reference.astype(np.float16))
        np.testing.assert_allclose(np.asarray(cached, np.float32), reference, rtol=2e-3, atol=2e-3)
    np.testing.assert_array_equal(labels, np.concatenate(expected_labels))


def test_a_cache_of_other_weights_is_computed_again(data_dir, tmp_path):
    config = tiny_config(data_dir)
    first = factory.build_backbone(config)
    maps, _ = feature_cache.load_or_compute(config, first, "val", str(tmp_path), progress=False)
    again, _ = feature_cache.load_or_compute(config, first, "val", str(tmp_path), progress=False)
    np.testing.assert_array_equal(np.asarray(again[1]), np.asarray(maps[1]))
    keras.utils.set_random_seed(123)
    other = factory.build_backbone(config)
    assert feature_cache.load(str(tmp_path), "val", feature_cache.cache_key(config, other, "val")) is None
    recomputed, _ = feature_cache.load_or_compute(config, other, "val", str(tmp_path), progress=False)
    assert not np.array_equal(np.asarray(recomputed[1]), np.asarray(maps[1]))
    with open(os.path.join(tmp_path, "val", feature_cache.MANIFEST)) as f:
        assert json.load(f)["key"]["backbone_weights"] == feature_cache.weights_digest(other)


def test_the_held_out_part_is_fixed_disjoint_and_the_same_for_every_caller():
    fit, held = holdout_split(1000, 0.15, seed=0)
    assert len(held) == 150 and len(fit) == 850
    assert not set(fit) & set(held) and sorted(set(fit) | set(held)) == list(range(1000))
    again_fit, again_held = holdout_split(1000, 0.15, seed=0)
    np.testing.assert_array_equal(held, again_held)
    np.testing.assert_array_equal(fit, again_fit)
    assert not np.array_equal(holdout_split(1000, 0.15, seed=1)[1], held)
    with pytest.raises(ValueError):
        holdout_split(1000, 0.0)


def image_digests(files):
    """sha1 of each record's decoded pixels (PIL), in file order."""
    digests = []
    for path in files:
        for raw in tf.data.TFRecordDataset(path):
            example = tf.train.Example.FromString(raw.numpy())
            encoded = example.features.feature[records.ENCODED].bytes_list.value[0]
            digests.append(hashlib.sha1(np.asarray(Image.open(io.BytesIO(encoded))).tobytes()).hexdigest())
    return digests


def test_the_held_out_part_never_overlaps_val(data_dir):
    config = tiny_config(data_dir)
    train = image_digests(factory.list_data_files(config, "train"))
    val = set(image_digests(factory.list_data_files(config, "val")))
    _, held = holdout_split(len(train), 0.15, seed=0)
    assert len(held) == 6
    assert not {train[i] for i in held} & val


@pytest.mark.parametrize("head", ["plain", "cma"])
def test_a_head_on_cached_maps_computes_what_it_computes_over_the_backbone(data_dir, tmp_path, head):
    config = tiny_config(data_dir, head)
    backbone = factory.build_backbone(config)
    maps, labels = feature_cache.load_or_compute(config, backbone, "train", str(tmp_path / "cache"), progress=False)
    vocabulary = factory.read_vocabulary(config)
    result = feature_head.train_head_on_features(
        config, maps, labels, {"train": (maps, labels)}, vocabulary, str(tmp_path / "embeddings"))
    assert "diverged" not in result and 0.0 < result["metrics"]["train"]["mAP"] <= 1.0
    assert [row["epoch"] for row in result["history"]] == [1] and np.isfinite(result["history"][0]["train_mAP"])
    # The same head (weights copied) over the real backbone gives the same logits on images.
    graph = feature_head.label_graph_of(labels, vocabulary)
    on_maps = factory.build_classifier(config, len(vocabulary), None if head == "plain" else _encoder(config, graph, tmp_path),
                                       graph, backbone=feature_head.maps_backbone([m.shape[1:] for m in maps]))
    full = factory.build_classifier(config, len(vocabulary), None if head == "plain" else _encoder(config, graph, tmp_path), graph)
    full.backbone.set_weights(backbone.get_weights())
    full.head.set_weights(on_maps.head.get_weights())
    images = next(iter(factory.build_dataset(config, len(vocabulary), "train", training=False)))[0]
    expected = np.asarray(full(images, training=False))
    got = np.asarray(on_maps([tf.cast(m[:len(images)], tf.float32) for m in maps], training=False))
    np.testing.assert_allclose(got, expected, rtol=2e-2, atol=2e-2)  # float16 maps


def _encoder(config, graph, tmp_path):
    from cma_tf.graph.label_embeddings import label_embeddings

    return label_embeddings(config, graph, str(tmp_path / "embeddings"))


def test_the_epoch_scores_follow_the_run_s_metric(data_dir, tmp_path):
    """`epoch_metric` other than the mAP (the video benchmark's GAP) is logged after each epoch as
    the final evaluation computes it: with one epoch and no averaging, the same model, the same figure."""
    config = tiny_config(data_dir)
    backbone = factory.build_backbone(config)
    maps, labels = feature_cache.load_or_compute(config, backbone, "train", str(tmp_path / "cache"), progress=False)
    result = feature_head.train_head_on_features(config, maps, labels, {"train": (maps, labels)},
                                                 factory.read_vocabulary(config), str(tmp_path / "embeddings"),
                                                 epoch_metric="OF1")
    (epoch,) = result["history"]
    assert "train_mAP" not in epoch
    assert epoch["train_OF1"] == pytest.approx(result["metrics"]["train"]["OF1"], abs=1e-6)
