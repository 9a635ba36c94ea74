"""Tests for the embedded demo dataset (cma_tf.datasets.demo)."""

import io
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from PIL import Image, ImageDraw

from cma_tf.data import records
from cma_tf.data import vocab
from cma_tf.datasets import demo
from cma_tf.errors import ConfigError
from tests.helpers import reference_image_spec

NUM_TRAIN = 40
NUM_VAL = 16
IMAGE_SIZE = 48
NUM_SHARDS = 2
NUM_LAYOUT_SAMPLES = 4000

REFERENCE_SPEC = reference_image_spec()  # independent of records.FEATURE_SPEC


def _generate(out_dir, **overrides):
    kwargs = dict(num_train=NUM_TRAIN, num_val=NUM_VAL, image_size=IMAGE_SIZE, seed=0,
                  num_shards=NUM_SHARDS, progress=False)
    kwargs.update(overrides)
    return demo.generate_demo_dataset(str(out_dir), **kwargs)


def _read_split(data_dir, split):
    """{source_id: (pixels uint8, labels list, parsed example)} with the reference reader."""
    pattern = os.path.join(str(data_dir), f"{split}-*-of-*.tfrecord")
    out = {}
    for serialized in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(pattern))):
        example = tf.io.parse_single_example(serialized, REFERENCE_SPEC)
        pixels = np.asarray(Image.open(io.BytesIO(example["image/encoded"].numpy())))
        labels = example["image/class/label"].values.numpy().tolist()
        out[example["image/source_id"].numpy().decode()] = (pixels, labels, example)
    return out


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("demo")
    _generate(out_dir)
    return out_dir


@pytest.fixture(scope="module")
def layouts():
    rng = np.random.default_rng(123)
    return [demo.sample_demo_layout(rng, demo.DEFAULT_IMAGE_SIZE) for _ in range(NUM_LAYOUT_SAMPLES)]


def test_tables_are_consistent():
    assert len(demo.DEMO_LABELS) == len(set(demo.DEMO_LABELS)) == 16
    assert set(demo.DEMO_APPEARANCE) == set(demo.DEMO_LABELS)
    scene_objects = set()
    for scene, table in demo.DEMO_SCENES.items():
        assert sum(table.values()) == pytest.approx(1.0), scene
        scene_objects |= set(table)
    assert scene_objects == set(demo.DEMO_LABELS)
    shared = [label for label in demo.DEMO_LABELS
              if sum(label in table for table in demo.DEMO_SCENES.values()) > 1]
    assert "person" in shared and len(shared) >= 2


def test_docstring_describes_every_label_and_scene():
    for name in list(demo.DEMO_LABELS) + list(demo.DEMO_SCENES):
        assert name in demo.__doc__, name
    for scene, table in demo.DEMO_SCENES.items():
        row = next(line for line in demo.__doc__.splitlines() if line.startswith(f"| {scene} "))
        for label, probability in table.items():
            assert f"{label} {probability:.2f}".replace("0.", ".") in row, (scene, label)


def test_render_demo_example_types():
    pixels, labels = demo.render_demo_example(np.random.default_rng(5), IMAGE_SIZE)
    assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3) and pixels.dtype == np.uint8
    assert labels == sorted(set(labels)) and 1 <= len(labels) <= demo.MAX_OBJECTS_PER_SCENE + 1
    assert all(0 <= label < len(demo.DEMO_LABELS) for label in labels)


def test_records_read_back_with_reference_parser(demo_dir):
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        examples = _read_split(demo_dir, split)
        assert len(examples) == count
        for source_id, (pixels, labels, example) in examples.items():
            assert example["image/format"].numpy() == b"png"
            assert int(example["image/height"]) == int(example["image/width"]) == IMAGE_SIZE
            assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
            assert labels and labels == sorted(set(labels))
            assert all(0 <= label < len(demo.DEMO_LABELS) for label in labels)
            # The stored labels are those of the image's own random stream.
            index = int(source_id.rsplit("-", 1)[1])
            ref_pixels, ref_labels = demo.render_demo_example(
                demo.example_rng(0, split, index), IMAGE_SIZE)
            assert labels == ref_labels
            np.testing.assert_array_equal(pixels, ref_pixels)


def test_same_seed_is_identical_whatever_the_shards(demo_dir, tmp_path):
    _generate(tmp_path / "again", num_shards=3)
    for split in ("train", "val"):
        first, second = _read_split(demo_dir, split), _read_split(tmp_path / "again", split)
        assert first.keys() == second.keys()
        for key in first:
            np.testing.assert_array_equal(first[key][0], second[key][0])
            assert first[key][1] == second[key][1]


def test_different_seed_differs(demo_dir, tmp_path):
    _generate(tmp_path / "other", seed=1)
    first, second = _read_split(demo_dir, "train"), _read_split(tmp_path / "other", "train")
    same_pixels = sum(np.array_equal(first[k][0], second[k][0]) for k in first)
    same_labels = sum(first[k][1] == second[k][1] for k in first)
    assert same_pixels == 0
    assert same_labels < NUM_TRAIN // 2


def test_train_and_val_differ(demo_dir):
    train, val = _read_split(demo_dir, "train"), _read_split(demo_dir, "val")
    train_images = {pixels.tobytes() for pixels, _, _ in train.values()}
    assert not any(pixels.tobytes() in train_images for pixels, _, _ in val.values())


def test_vocabulary_round_trip(demo_dir):
    assert vocab.read_vocabulary(vocab.vocabulary_path(str(demo_dir))) == demo.DEMO_LABELS


def test_summary_matches_records(demo_dir):
    with open(os.path.join(demo_dir, demo.SUMMARY_FILENAME)) as f:
        summary = json.load(f)
    assert summary["image_size"] == IMAGE_SIZE and summary["seed"] == 0
    assert summary["labels"] == demo.DEMO_LABELS
    for split, count in (("train", NUM_TRAIN), ("val", NUM_VAL)):
        stats = summary["splits"][split]
        label_lists = [labels for _, labels, _ in _read_split(demo_dir, split).values()]
        assert stats["num_images"] == count
        counts = np.bincount(np.concatenate(label_lists), minlength=len(demo.DEMO_LABELS))
        assert [stats["class_counts"][name] for name in demo.DEMO_LABELS] == counts.tolist()
        assert stats["mean_labels_per_image"] == pytest.approx(
            np.mean([len(labels) for labels in label_lists]), abs=1e-4)
        assert sum(stats["scene_counts"].values()) == count


def _probability_given(label_sets, target, given):
    with_given = [labels for labels in label_sets if given in labels]
    return sum(target in labels for labels in with_given) / len(with_given)


def test_cooccurrence_is_structured(layouts):
    label_sets = [{obj.label for obj in layout.objects} for layout in layouts]
    p_frisbee_dog = _probability_given(label_sets, "frisbee", "dog")
    p_frisbee_fork = _probability_given(label_sets, "frisbee", "fork")
    p_kite_umbrella = _probability_given(label_sets, "kite", "umbrella")
    p_kite_car = _probability_given(label_sets, "kite", "car")
    assert p_frisbee_dog > 0.3 and p_frisbee_fork < 0.05
    assert p_kite_umbrella > 0.3 and p_kite_car < 0.05
    # Intruders make co-occurrence strong but not deterministic.
    assert p_frisbee_fork > 0.0
    counts = [len(layout.objects) for layout in layouts]
    assert min(counts) == demo.MIN_OBJECTS_PER_SCENE
    assert max(counts) == demo.MAX_OBJECTS_PER_SCENE + 1


def _draw_alone(label, seed):
    obj = demo.DemoObject(label, "large", 0.35, 5, 7, 17)
    canvas = Image.new("RGB", (32, 32), (demo.BACKGROUND_GRAY,) * 3)
    demo.draw_demo_object(ImageDraw.Draw(canvas), obj, np.random.default_rng(seed))
    return np.asarray(canvas)


@pytest.mark.parametrize("first,second", demo.AMBIGUOUS_PAIRS)
def test_ambiguous_pairs_are_drawn_identically(first, second):
    assert demo.DEMO_APPEARANCE[first] == demo.DEMO_APPEARANCE[second]
    for seed in range(5):
        np.testing.assert_array_equal(_draw_alone(first, seed), _draw_alone(second, seed))
    # ...and they live in different scenes, so only context separates them.
    for table in demo.DEMO_SCENES.values():
        assert not (first in table and second in table)


def test_other_labels_look_different():
    appearances = [demo.DEMO_APPEARANCE[label] for label in demo.DEMO_LABELS]
    ambiguous = {label for pair in demo.AMBIGUOUS_PAIRS for label in pair}
    assert len(set(appearances)) == len(demo.DEMO_LABELS) - len(demo.AMBIGUOUS_PAIRS)
    for label in set(demo.DEMO_LABELS) - ambiguous:
        assert not np.array_equal(_draw_alone(label, 0), _draw_alone("frisbee", 0)), label


def test_sizes_span_three_ranges_and_stay_inside(layouts):
    size = demo.DEFAULT_IMAGE_SIZE
    seen = set()
    for layout in layouts:
        sides = [obj.side for obj in layout.objects]
        assert sides == sorted(sides, reverse=True)  # painted largest first
        for obj in layout.objects:
            (low, high), _ = demo.SIZE_BINS[obj.size_bin]
            assert low <= obj.size_fraction <= high
            assert obj.side == max(demo.MIN_OBJECT_PIXELS, round(obj.size_fraction * size))
            assert 0 <= obj.x0 and obj.x0 + obj.side <= size
            assert 0 <= obj.y0 and obj.y0 + obj.side <= size
            seen.add(obj.size_bin)
    assert seen == {"small", "medium", "large"}


def test_background_does_not_depend_on_scene():
    empty = demo.DemoLayout("park", ())
    other = demo.DemoLayout("beach", ())
    np.testing.assert_array_equal(
        demo.paint_layout(np.random.default_rng(0), empty, IMAGE_SIZE),
        demo.paint_layout(np.random.default_rng(0), other, IMAGE_SIZE))


def test_skips_regeneration_with_same_parameters(tmp_path, monkeypatch):
    first = _generate(tmp_path)
    shard = records.list_shards(str(tmp_path), "train")[0]
    mtime = os.path.getmtime(shard)

    def fail(*args, **kwargs):
        raise AssertionError("regenerated although the parameters did not change")

    with monkeypatch.context() as patch:
        patch.setattr(demo, "_render_split", fail)
        assert _generate(tmp_path) == first
        assert os.path.getmtime(shard) == mtime
        with pytest.raises(AssertionError, match="regenerated"):
            _generate(tmp_path, overwrite=True)
    # The interrupted overwrite removed the summary, so the next call regenerates.
    assert not os.path.exists(demo.summary_path(str(tmp_path)))
    assert _generate(tmp_path) == first


def test_new_parameters_regenerate_and_remove_stale_shards(tmp_path):
    _generate(tmp_path, num_shards=3)
    summary = _generate(tmp_path, num_shards=2, num_train=10)
    assert summary["splits"]["train"]["num_images"] == 10
    assert len(records.list_shards(str(tmp_path), "train")) == 2
    assert len(_read_split(tmp_path, "train")) == 10


def test_rejects_bad_parameters(tmp_path):
    with pytest.raises(ValueError, match="num_shards"):
        _generate(tmp_path, num_shards=0)
    with pytest.raises(ValueError, match="image_size"):
        _generate(tmp_path, image_size=4)
    with pytest.raises(ConfigError, match=r"--num_train and --num_val must be >= 1, got 0 and 2"):
        _generate(tmp_path, num_train=0, num_val=2)
    assert not os.path.exists(demo.summary_path(str(tmp_path)))


def test_command_line_rejects_an_empty_split_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "cma_tf.datasets.demo", f"--out_dir={tmp_path}",
                           "--num_val=0"], capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    assert "--num_train and --num_val must be >= 1, got 3000 and 0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_command_line_flags(tmp_path, capsys):
    flag_values = demo.define_flags(flags.FlagValues())
    for name in ("out_dir", "num_train", "num_val", "image_size", "seed", "num_shards", "overwrite"):
        assert flag_values[name].help, name
    flag_values(["demo", f"--out_dir={tmp_path}", "--num_train=4", "--num_val=2",
                 "--image_size=32", "--num_shards=1"])
    demo.run_from_flags(flag_values)
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["num_images"] == 4
    assert len(records.list_shards(str(tmp_path), "val")) == 1


def test_docstring_appearance_table_matches_code():
    rows = [line for line in demo.__doc__.splitlines()
            if line.startswith("| ") and ":" in line and "colour" not in line]
    described = {}
    for row in rows:
        shape, entries = [cell.strip() for cell in row.strip("|").split("|")]
        for entry in entries.split(";"):
            for label in entry.split(":")[1].split(","):
                described[label.strip()] = shape.replace(" ", "_")
    assert described == {label: a.shape for label, a in demo.DEMO_APPEARANCE.items()}


@pytest.mark.slow
def test_demo_as_files_is_a_csv_dataset_csv_list_converts(tmp_path):
    """`--as_files` writes PNGs and train/val CSVs; converting both splits gives the records of the
    TFRecord demo (same pixels and labels for the same seed), with one shared labels.txt."""
    import csv
    import subprocess
    import sys

    import numpy as np
    import tensorflow as tf

    from cma_tf.datasets.demo import DEMO_LABELS, generate_demo_dataset, write_demo_files

    written = write_demo_files(str(tmp_path / "mine"), num_train=6, num_val=4, image_size=32, seed=3, progress=False)
    reference = tmp_path / "reference"
    generate_demo_dataset(str(reference), num_train=6, num_val=4, image_size=32, seed=3, num_shards=1, progress=False)
    out_dir = tmp_path / "data"
    for split, csv_path in written.items():
        proc = subprocess.run(
            [sys.executable, "-m", "cma_tf.data.convert.csv_list", f"--csv={csv_path}", f"--out_dir={out_dir}",
             f"--split={split}", "--num_shards=1", "--num_workers=1"],
            capture_output=True, text=True, timeout=300,
        )
        assert proc.returncode == 0, proc.stderr
        with open(csv_path) as f:
            rows = list(csv.reader(f))[1:]
        spec = {"image/encoded": tf.io.FixedLenFeature([], tf.string), "image/class/label": tf.io.VarLenFeature(tf.int64)}
        names = (out_dir / "labels.txt").read_text().split("\n")[:-1]
        converted = {}
        for serialized in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(f"{out_dir}/{split}-*.tfrecord"))):
            example = tf.io.parse_single_example(serialized, spec)
            labels = sorted(names[i] for i in tf.sparse.to_dense(example["image/class/label"]).numpy())
            converted[tf.io.decode_png(example["image/encoded"]).numpy().tobytes()] = labels
        expected = {}
        for serialized in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(f"{reference}/{split}-*.tfrecord"))):
            example = tf.io.parse_single_example(serialized, spec)
            # The val split uses the vocabulary of the train split (labels.txt): other labels are dropped.
            labels = sorted(
                DEMO_LABELS[i] for i in tf.sparse.to_dense(example["image/class/label"]).numpy() if DEMO_LABELS[i] in names
            )
            if labels:
                expected[tf.io.decode_png(example["image/encoded"]).numpy().tobytes()] = labels
        assert converted == expected
        assert len(rows) >= len(expected)
    assert np.all([name in DEMO_LABELS for name in names])
