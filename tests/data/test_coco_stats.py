"""Tests for the COCO-statistics benchmark dataset (cma_tf.datasets.coco_stats): records read back with
the reference spec, byte-identical files from the same seed (in another process), the looks of
the labels and of the ambiguous pairs."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image

from cma_tf.data import vocab
from cma_tf.datasets import coco_stats
from cma_tf.datasets import demo
from cma_tf.errors import ConfigError
from tests.helpers import label_stats, reference_image_spec

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NUM_TRAIN = 24
NUM_VAL = 8
IMAGE_SIZE = 48
NUM_SHARDS = 2
REFERENCE_SPEC = reference_image_spec()  # independent of records.FEATURE_SPEC


def _generate(out_dir, **overrides):
    kwargs = dict(num_train=NUM_TRAIN, num_val=NUM_VAL, image_size=IMAGE_SIZE, seed=0, num_shards=NUM_SHARDS,
                  progress=False)
    kwargs.update(overrides)
    return coco_stats.generate_coco_stats_dataset(str(out_dir), **kwargs)


def _read_split(data_dir, split):
    """{source_id: (pixels uint8, labels list, parsed example)} with the reference reader."""
    out = {}
    for path in sorted(tf.io.gfile.glob(os.path.join(str(data_dir), f"{split}-*-of-*.tfrecord"))):
        for serialized in tf.data.TFRecordDataset(path):
            example = tf.io.parse_single_example(serialized, REFERENCE_SPEC)
            pixels = np.asarray(Image.open(io.BytesIO(example["image/encoded"].numpy())))
            labels = example["image/class/label"].values.numpy().tolist()
            out[example["image/source_id"].numpy().decode()] = (pixels, labels, example)
    return out


def _files(data_dir):
    return {name: open(os.path.join(data_dir, name), "rb").read() for name in sorted(os.listdir(data_dir))}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("coco_stats")
    _generate(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def model():
    return coco_stats.coco_label_model()


def test_records_read_back_with_the_reference_parser(data_dir, model):
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        examples = _read_split(data_dir, split)
        assert len(examples) == count
        for source_id, (pixels, labels, example) in examples.items():
            assert example["image/format"].numpy() == b"png"
            assert int(example["image/height"]) == int(example["image/width"]) == IMAGE_SIZE
            assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and pixels.dtype == np.uint8
            assert labels and labels == sorted(set(labels)) and all(0 <= i < 80 for i in labels)
            index = int(source_id.rsplit("-", 1)[1])
            ref_pixels, ref_labels = coco_stats.render_example(
                coco_stats.example_rng(0, split, index), model, IMAGE_SIZE)
            assert labels == ref_labels
            np.testing.assert_array_equal(pixels, ref_pixels)


def test_labels_txt_holds_cocos_names(data_dir):
    names = vocab.read_vocabulary(vocab.vocabulary_path(str(data_dir)))
    assert names == label_stats("coco").labels
    assert "traffic light" in names and "hair drier" in names


def test_summary_records_the_pairs_and_the_counts(data_dir):
    with open(os.path.join(data_dir, "summary.json")) as f:
        summary = json.load(f)
    assert summary["labels"] == label_stats("coco").labels
    assert summary["ambiguous_pairs"][0] == ["toilet", "traffic light"] and len(summary["ambiguous_pairs"]) == 8
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        stats = summary["splits"][split]
        label_lists = [labels for _, labels, _ in _read_split(data_dir, split).values()]
        counts = np.bincount(np.concatenate(label_lists), minlength=80)
        assert stats["num_images"] == count
        assert [stats["class_counts"][name] for name in summary["labels"]] == counts.tolist()


def test_the_same_seed_gives_byte_identical_files_in_another_process(data_dir, tmp_path):
    """The command line, in a new process (protobuf map order and Python's hash seed differ)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=ROOT)
    out_dir = tmp_path / "again"
    proc = subprocess.run(
        [sys.executable, "-m", "cma_tf.datasets.coco_stats", f"--out_dir={out_dir}", f"--train={NUM_TRAIN}",
         f"--val={NUM_VAL}", f"--image_size={IMAGE_SIZE}", f"--num_shards={NUM_SHARDS}", "--seed=0"],
        capture_output=True, text=True, timeout=300, env=env, cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ambiguous pairs: toilet / traffic light" in proc.stdout
    first, second = _files(data_dir), _files(out_dir)
    assert sorted(first) == sorted(second) and len(first) == 2 * NUM_SHARDS + 2
    for name in first:
        assert first[name] == second[name], name


def test_another_seed_or_shard_count(data_dir, tmp_path):
    _generate(tmp_path / "other", seed=1)
    first, second = _read_split(data_dir, "train"), _read_split(tmp_path / "other", "train")
    assert sum(np.array_equal(first[k][0], second[k][0]) for k in first) == 0
    _generate(tmp_path / "three", num_shards=3)
    third = _read_split(tmp_path / "three", "train")
    assert first.keys() == third.keys()
    for key in first:
        np.testing.assert_array_equal(first[key][0], third[key][0])
        assert first[key][1] == third[key][1]


def _draw_alone(look, seed, size=40):
    obj = demo.DemoObject("any", "large", 0.35, 7, 5, 23)
    canvas = Image.new("RGB", (size, size), (demo.BACKGROUND_GRAY,) * 3)
    coco_stats.draw_object(canvas, obj, look, np.random.default_rng(seed))
    return np.asarray(canvas)


def test_ambiguous_pairs_are_drawn_identically(model):
    for first, second in model.ambiguous_pairs:
        assert model.looks[first] == model.looks[second]
        for seed in range(3):
            np.testing.assert_array_equal(_draw_alone(model.looks[first], seed), _draw_alone(model.looks[second], seed))


def test_every_other_label_looks_different(model):
    """80 combinations; with the 8 pairs sharing, 72 looks, each drawn differently."""
    assert len(set(coco_stats.label_looks(model.labels, []).values())) == 80
    partners = {second for _, second in model.ambiguous_pairs}
    drawn = {}
    for name in model.labels:
        if name not in partners:
            drawn[name] = _draw_alone(model.looks[name], 0).tobytes()
    assert len(drawn) == 72 and len(set(drawn.values())) == 72
    person = model.looks["person"]
    shapes, colours = coco_stats.SHAPES, list(coco_stats.COLOURS)
    assert len(shapes) * len(colours) * len(coco_stats.PATTERNS) == 80
    assert person == coco_stats.Look(shapes[49 % len(shapes)], colours[49 // len(shapes) % len(colours)], "striped")


def test_objects_span_three_sizes_and_stay_inside():
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(300):
        objects = coco_stats.sample_objects(rng, ["a", "b", "c"], 96)
        assert [o.side for o in objects] == sorted((o.side for o in objects), reverse=True)
        for o in objects:
            (low, high), _ = coco_stats.SIZE_BINS[o.size_bin]
            assert low <= o.size_fraction <= high and o.side == round(o.size_fraction * 96)
            assert 0 <= o.x0 and o.x0 + o.side <= 96 and 0 <= o.y0 and o.y0 + o.side <= 96
            seen.add(o.size_bin)
    assert seen == {"small", "medium", "large"}


def test_an_unchanged_directory_is_not_regenerated(data_dir, monkeypatch):
    shard = sorted(os.listdir(data_dir))[-1]
    mtime = os.path.getmtime(os.path.join(data_dir, shard))
    monkeypatch.setattr(coco_stats, "_render_split", lambda *a, **k: pytest.fail("regenerated"))
    assert _generate(data_dir)["splits"]["train"]["num_images"] == NUM_TRAIN
    assert os.path.getmtime(os.path.join(data_dir, shard)) == mtime


def test_bad_parameters_are_one_line_errors(tmp_path):
    with pytest.raises(ConfigError, match="--image_size"):
        _generate(tmp_path, image_size=8)
    with pytest.raises(ConfigError, match="--num_shards"):
        _generate(tmp_path, num_shards=0)
    with pytest.raises(ConfigError, match=r"--train and --val must be >= 1, got 0 and 4"):
        _generate(tmp_path, num_train=0, num_val=4)


def test_every_flag_is_explained():
    flag_values = coco_stats.define_flags(flags.FlagValues())
    for name in ("out_dir", "train", "val", "image_size", "seed", "num_shards", "overwrite"):
        assert len(flag_values[name].help) > 20, name
    flag_values(["coco_stats", "--out_dir=/tmp/x"])
    assert (flag_values.train, flag_values.val, flag_values.image_size) == (4000, 1000, 96)
