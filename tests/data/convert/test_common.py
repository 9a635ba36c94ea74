"""The shared converter machinery: image checks, label mapping, shards, reports, resume."""

import glob
import io
import os

import numpy as np
import pytest
from PIL import Image

from cma_tf.data import records
from cma_tf.data.convert import common
from cma_tf.data.convert.common import ConversionError, Problem, SourceImage, convert_split
from cma_tf.errors import DataError
from tests.data.image_modes import mode_cases
from tests.data.convert.helpers import (
    Expected,
    check_conversion,
    file_bytes,
    raw_records,
    read_problems,
    read_split,
    read_summary,
    save_image,
    save_random_bytes,
    save_truncated_jpeg,
    shard_files,
)

VOCABULARY = ["boat", "cat", "dog", "person"]


def tf_decoded(path):
    import tensorflow as tf

    return tf.io.decode_image(file_bytes(path), channels=3, expand_animations=False).numpy()


def make_source(root):
    """SourceImages with every kind of problem the shared code detects, and their expectation."""
    images, written, problems, raw, reencoded = [], {}, [], {}, {}

    def add(name, labels, kind="JPEG", width=32, height=24, mode="RGB"):
        path = os.path.join(root, name)
        if kind in ("JPEG", "PNG", "BMP", "GIF", "TIFF", "WEBP"):
            exact = save_image(path, seed=len(images), width=width, height=height, fmt=kind, mode=mode)
            if kind in ("JPEG", "PNG") and mode in ("RGB", "L"):
                raw[name] = file_bytes(path)
            else:
                # A CMYK JPEG's pixels are TensorFlow's conversion (docs/design.md §3.1 "Pixels").
                reencoded[name] = exact if kind != "JPEG" else tf_decoded(path)
        elif kind == "random":
            save_random_bytes(path, seed=len(images))
        elif kind == "truncated":
            save_truncated_jpeg(path, seed=len(images))
        elif kind == "dir":
            os.makedirs(path)
        images.append(SourceImage(path, name, tuple(labels)))

    add("a.jpg", ["cat", "dog"], width=40, height=30)
    written["a.jpg"] = {"cat", "dog"}
    add("b.png", ["person"], "PNG", 21, 17)
    written["b.png"] = {"person"}
    add("c.bmp", ["boat"], "BMP", 19, 23)
    written["c.bmp"] = {"boat"}
    add("d.gif", ["dog", "dog", "cat"], "GIF", 30, 20)
    written["d.gif"] = {"dog", "cat"}
    add("e.tif", ["cat"], "TIFF", 16, 16)
    written["e.tif"] = {"cat"}
    add("f.png", ["person"], "PNG", 18, 14, mode="RGBA")  # RGBA: re-encoded as RGB PNG
    written["f.png"] = {"person"}
    add("g.jpg", ["dog"], "JPEG", 20, 20, mode="CMYK")  # CMYK JPEG: re-encoded
    written["g.jpg"] = {"dog"}
    add("h.jpg", ["cat", "unicorn"])
    written["h.jpg"] = {"cat"}
    problems.append(("h.jpg", "unknown_label"))
    add("i.jpg", ["unicorn"])
    problems += [("i.jpg", "unknown_label"), ("i.jpg", "no_labels")]
    add("j.jpg", [])
    problems.append(("j.jpg", "no_labels"))
    add("k.jpg", ["cat"], "random")
    problems.append(("k.jpg", "unreadable_image"))
    add("l.jpg", ["cat"], "truncated")
    problems.append(("l.jpg", "unreadable_image"))
    add("m.jpg", ["cat"], "missing")
    problems.append(("m.jpg", "missing_file"))
    add("n.jpg", ["dog"], "dir")  # a directory where a file should be
    problems.append(("n.jpg", "unreadable_image"))
    add("o.jpg", ["unicorn"], "missing")  # both problems are reported
    problems += [("o.jpg", "unknown_label"), ("o.jpg", "missing_file")]
    add("p.jpg", ["person", "boat"], mode="L", width=25, height=35)
    written["p.jpg"] = {"person", "boat"}
    return images, Expected(VOCABULARY, written, problems, len(images), raw, reencoded, root=root)


@pytest.fixture
def source(tmp_path):
    return make_source(str(tmp_path / "src"))


def convert(images, out_dir, **kwargs):
    kwargs.setdefault("num_shards", 3)
    kwargs.setdefault("num_workers", 1)
    kwargs.setdefault("progress", False)
    return convert_split(images, VOCABULARY, out_dir, "train", **kwargs)


def mtimes(out_dir):
    paths = shard_files(out_dir, "train") + sorted(glob.glob(os.path.join(out_dir, ".convert", "*.json")))
    return {os.path.relpath(p, out_dir): os.stat(p).st_mtime_ns for p in paths}


class RecordingWriter:
    """Wraps `records.write_shard`, recording the shards written (optionally interrupting)."""

    def __init__(self, monkeypatch, interrupt_after=None):
        self.paths = []
        self.interrupt_after = interrupt_after
        self.real = records.write_shard
        monkeypatch.setattr(records, "write_shard", self)

    def __call__(self, path, serialized):
        self.paths.append(os.path.basename(path))
        if self.interrupt_after is not None:
            serialized = interrupting(serialized, self.interrupt_after)
        return self.real(path, serialized)


def interrupting(items, after):
    for index, item in enumerate(items):
        if index == after:
            raise KeyboardInterrupt
        yield item
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- read_image


def test_read_image_keeps_jpeg_and_png_bytes_and_reencodes_the_rest(tmp_path):
    jpeg = str(tmp_path / "x.jpg")
    save_image(jpeg, seed=1, width=33, height=21)
    data, fmt, height, width = common.read_image(jpeg)
    assert (data, fmt, height, width) == (file_bytes(jpeg), "jpeg", 21, 33)

    png = str(tmp_path / "x.png")
    save_image(png, seed=2, width=15, height=25, fmt="PNG")
    assert common.read_image(png) == (file_bytes(png), "png", 25, 15)

    for fmt in ("BMP", "GIF", "TIFF", "WEBP"):
        path = str(tmp_path / f"x.{fmt.lower()}")
        expected = save_image(path, seed=3, width=14, height=9, fmt=fmt)
        data, stored, height, width = common.read_image(path)
        assert (stored, height, width) == ("png", 9, 14), fmt
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.mode == "RGB"
            if fmt != "WEBP":  # lossy by default
                np.testing.assert_array_equal(np.asarray(image), expected)


@pytest.mark.parametrize("kind", ["random", "truncated", "empty", "text"])
def test_read_image_rejects_what_is_not_a_decodable_image(tmp_path, kind):
    path = str(tmp_path / "bad.jpg")
    if kind == "random":
        save_random_bytes(path)
    elif kind == "truncated":
        save_truncated_jpeg(path)
    elif kind == "empty":
        open(path, "wb").close()
    else:
        with open(path, "w") as f:
            f.write("<html>404 not found</html>\n")
    with pytest.raises(ValueError):
        common.read_image(path)


@pytest.mark.parametrize("case", mode_cases(), ids=lambda case: case.name)
def test_read_image_stores_the_documented_pixels_of_each_mode(tmp_path, case):
    """16-bit gray, palette, alpha and CMYK, in PNG/JPEG/GIF and in TIFF: the stored image,
    decoded as training decodes it, holds the documented conversion (tests/data/image_modes.py)."""
    import tensorflow as tf

    path = tmp_path / f"x.{case.extension}"
    path.write_bytes(case.data)
    data, stored_format, height, width = common.read_image(str(path))
    stored = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
    np.testing.assert_array_equal(stored, case.expected)
    assert (height, width) == stored.shape[:2] and stored_format in ("jpeg", "png")


@pytest.mark.parametrize("kind", ["empty", "random", "text"])
def test_read_image_says_in_words_why_a_file_is_not_an_image(tmp_path, kind):
    path = str(tmp_path / "bad.jpg")
    if kind == "empty":
        open(path, "wb").close()
    elif kind == "random":
        save_random_bytes(path)
    else:
        with open(path, "w") as f:
            f.write("<html>404 not found</html>\n")
    with pytest.raises(ValueError) as error:
        common.read_image(path)
    message = str(error.value)
    assert "BytesIO" not in message and " at 0x" not in message, message
    if kind == "empty":
        assert message == "empty file (0 bytes)"
    else:
        assert message.startswith("not an image"), message


def test_encode_source_image_reports_problems(tmp_path):
    path = str(tmp_path / "a.jpg")
    save_image(path)
    label_ids = {"cat": 0, "dog": 1}
    (serialized, ids), problems = common.encode_source_image(SourceImage(path, "a", ("dog", "x", "dog", "cat")), label_ids)
    assert ids == [1, 0] and [p.reason for p in problems] == ["unknown_label"]
    assert problems[0] == Problem("a", path, "unknown_label", "label 'x'")
    assert isinstance(serialized, bytes)
    encoded, problems = common.encode_source_image(SourceImage(str(tmp_path / "nope.jpg"), "b", ("cat",)), label_ids)
    assert encoded is None and [p.reason for p in problems] == ["missing_file"]


# --------------------------------------------------------------------------- planning


@pytest.mark.parametrize("count,num_shards,expected_shards", [(10, 3, 3), (2, 8, 2), (7, 1, 1), (0, 4, 1)])
def test_plan_shards_is_contiguous_and_covers_every_image(count, num_shards, expected_shards):
    images = [SourceImage(f"/x/{i}.jpg", str(i), ("a",)) for i in range(count)]
    tasks = common.plan_shards(images, "/out", "train", num_shards, {"a": 0})
    assert len(tasks) == expected_shards
    assert [image for task in tasks for image in task.images] == images
    sizes = [len(task.images) for task in tasks]
    assert max(sizes) - min(sizes) <= 1
    assert [os.path.basename(t.shard_path) for t in tasks] == [
        f"train-{i:05d}-of-{expected_shards:05d}.tfrecord" for i in range(expected_shards)
    ]
    assert common.plan_shards(images, "/out", "train", num_shards, {"a": 0}) == tasks


# --------------------------------------------------------------------------- convert_split


def test_convert_split_writes_records_summary_and_problem_report(source, out_dir):
    images, expected = source
    summary = convert(images, out_dir)
    records_read, on_disk, rows = check_conversion(out_dir, "train", expected, summary)
    assert summary["shards"] == 3 and len(shard_files(out_dir, "train")) == 3
    # records keep the source order across shards
    order = [image.source_id for image in images if image.source_id in expected.written]
    assert [record.source_id for record in records_read] == order
    # the problem report names the file and says why
    by_key = {(row["source_id"], row["reason"]): row for row in rows}
    assert by_key[("h.jpg", "unknown_label")]["detail"] == "label 'unicorn'"
    assert by_key[("m.jpg", "missing_file")]["path"] == os.path.join(expected.root, "m.jpg")
    assert by_key[("l.jpg", "unreadable_image")]["detail"]
    assert summary["problem_report"] == os.path.join(out_dir, "train_problems.tsv")


def test_listing_problems_join_the_counts_and_the_report(source, out_dir):
    images, expected = source
    listing = [Problem("z1", "/data/z1.jpg", "bad_annotation", "malformed\tXML\nline 3"),
               Problem("z2", "/data/z2.jpg", "bad_annotation", "missing z2.xml")]
    summary = convert(images, out_dir, listing_problems=listing)
    expected.problems += [("z1", "bad_annotation"), ("z2", "bad_annotation")]
    expected.listed += 2
    _, on_disk, rows = check_conversion(out_dir, "train", expected, summary)
    assert {row["detail"] for row in rows if row["source_id"] == "z1"} == {"malformed XML line 3"}


def test_strict_mode_raises_after_writing_everything_else(source, out_dir):
    images, expected = source
    with pytest.raises(ConversionError, match="problems in split 'train'"):
        convert(images, out_dir, strict=True)
    check_conversion(out_dir, "train", expected)


def test_strict_mode_passes_clean_input(source, out_dir):
    images, expected = source
    clean = [image for image in images if image.source_id in expected.written and image.source_id != "h.jpg"]
    summary = convert(clean, out_dir, strict=True)
    assert summary["images_written"] == len(clean) and sum(summary["problems"].values()) == 0


def test_empty_image_list_writes_one_empty_shard(out_dir):
    summary = convert([], out_dir)
    assert summary["images_written"] == 0 and summary["labels_per_image"] == 0.0
    assert summary["per_class_counts"] == {name: 0 for name in VOCABULARY}
    assert len(shard_files(out_dir, "train")) == 1 and read_split(out_dir, "train") == []


def test_a_bad_vocabulary_is_a_data_error(source, out_dir):
    images, _ = source
    with pytest.raises(DataError, match="repeat"):
        convert_split(images, ["cat", "dog", "cat"], out_dir, "train", num_workers=1, progress=False)


# --------------------------------------------------------------------------- resume


def test_second_run_rewrites_nothing(source, out_dir, monkeypatch):
    images, expected = source
    first = convert(images, out_dir)
    before = mtimes(out_dir)
    assert len(before) == 6
    writer = RecordingWriter(monkeypatch)
    second = convert(images, out_dir)
    assert writer.paths == []
    assert mtimes(out_dir) == before
    assert second == first
    check_conversion(out_dir, "train", expected, second)


def test_a_deleted_shard_and_only_it_is_rewritten(source, out_dir, monkeypatch):
    images, expected = source
    first = convert(images, out_dir)
    before = mtimes(out_dir)
    raw_before = raw_records(out_dir, "train")
    os.remove(shard_files(out_dir, "train")[1])
    writer = RecordingWriter(monkeypatch)
    second = convert(images, out_dir)
    assert writer.paths == ["train-00001-of-00003.tfrecord"]
    after = mtimes(out_dir)
    changed = {name for name in before if after[name] != before[name]}
    assert changed == {"train-00001-of-00003.tfrecord", os.path.join(".convert", "train-00001-of-00003.json")}
    assert raw_records(out_dir, "train") == raw_before
    assert second == first
    check_conversion(out_dir, "train", expected, second)


def test_a_shard_without_its_report_is_rewritten(source, out_dir, monkeypatch):
    images, expected = source
    convert(images, out_dir)
    os.remove(os.path.join(out_dir, ".convert", "train-00002-of-00003.json"))
    writer = RecordingWriter(monkeypatch)
    convert(images, out_dir)
    assert writer.paths == ["train-00002-of-00003.tfrecord"]
    check_conversion(out_dir, "train", expected)


def test_rerun_with_another_vocabulary_is_refused_and_changes_nothing(source, out_dir, monkeypatch):
    """Every split of a directory reads its ids through one labels.txt: another vocabulary
    would silently relabel the splits already there."""
    images, expected = source
    convert(images, out_dir)
    before = mtimes(out_dir)
    writer = RecordingWriter(monkeypatch)
    reordered = ["person", "dog", "cat", "boat"]
    with pytest.raises(DataError) as raised:
        convert_split(images, reordered, out_dir, "val", num_shards=3, num_workers=1, progress=False)
    message = str(raised.value)
    assert os.path.join(out_dir, "labels.txt") in message and "line 1: 'boat' vs 'person'" in message
    assert "\n" not in message
    assert writer.paths == [] and mtimes(out_dir) == before and not shard_files(out_dir, "val")
    check_conversion(out_dir, "train", expected)


def test_rerun_with_another_vocabulary_after_deleting_labels_txt_rewrites_the_shards(source, out_dir):
    """Deleting labels.txt is how a vocabulary is changed; the shard fingerprints then make
    the re-run rewrite every shard instead of keeping ids of the old vocabulary."""
    images, expected = source
    convert(images, out_dir)
    os.remove(os.path.join(out_dir, "labels.txt"))
    reordered = ["person", "dog", "cat", "boat"]
    convert_split(images, reordered, out_dir, "train", num_shards=3, num_workers=1, progress=False)
    expected.vocabulary = reordered
    check_conversion(out_dir, "train", expected)


def test_choose_vocabulary(tmp_path):
    out_dir = str(tmp_path / "out")
    lines = []
    assert common.choose_vocabulary(out_dir, ["b", "a"], log=lines.append) == ["b", "a"] and lines == []
    os.makedirs(out_dir)
    with open(os.path.join(out_dir, "labels.txt"), "w") as f:
        f.write("a\nb\nc\n")
    # an existing labels.txt wins over the input's own labels, and says so on one line
    assert common.choose_vocabulary(out_dir, ["c", "z"], log=lines.append) == ["a", "b", "c"]
    assert len(lines) == 1 and "using the existing vocabulary" in lines[0]
    assert os.path.join(out_dir, "labels.txt") in lines[0] and "\n" not in lines[0]
    # a given file must be that same vocabulary
    same, other = str(tmp_path / "same.txt"), str(tmp_path / "other.txt")
    with open(same, "w") as f:
        f.write("a\nb\nc\n")
    with open(other, "w") as f:
        f.write("a\nc\nb\n")
    assert common.choose_vocabulary(out_dir, ["z"], same, log=lines.append) == ["a", "b", "c"]
    with pytest.raises(DataError) as raised:
        common.choose_vocabulary(out_dir, ["z"], other, log=lines.append)
    assert f"--vocabulary={other} differs from {os.path.join(out_dir, 'labels.txt')}" in str(raised.value)
    assert "line 2: 'b' vs 'c'" in str(raised.value)
    assert len(lines) == 1


def test_an_empty_vocabulary_is_refused_before_anything_is_written(source, out_dir):
    images, _ = source
    with pytest.raises(DataError, match="no label names"):
        convert_split(images, [], out_dir, "train", num_workers=1, progress=False)
    assert not os.path.exists(os.path.join(out_dir, "labels.txt"))
    assert not shard_files(out_dir, "train")


def test_rerun_with_another_image_list_rewrites_the_shards(source, out_dir):
    images, expected = source
    convert(images, out_dir)
    fewer = [image for image in images if image.source_id != "a.jpg"]
    summary = convert(fewer, out_dir)
    del expected.written["a.jpg"]
    expected.listed -= 1
    check_conversion(out_dir, "train", expected, summary)


def test_rerun_with_fewer_shards_removes_the_stale_ones(source, out_dir):
    images, expected = source
    convert(images, out_dir, num_shards=4)
    convert_split(images, VOCABULARY, out_dir, "val", num_shards=2, num_workers=1, progress=False)
    summary = convert(images, out_dir, num_shards=2)
    assert [os.path.basename(p) for p in shard_files(out_dir, "train")] == [
        "train-00000-of-00002.tfrecord", "train-00001-of-00002.tfrecord"]
    assert len(shard_files(out_dir, "val")) == 2  # another split is left alone
    check_conversion(out_dir, "train", expected, summary)


# --------------------------------------------------------------------------- interruption


def test_write_shard_interrupted_leaves_neither_temp_file_nor_half_shard(tmp_path):
    path = str(tmp_path / "train-00000-of-00001.tfrecord")
    examples = [records.encode_image_example(b"x", "jpeg", 1, 1, str(i), [0]) for i in range(5)]
    with pytest.raises(KeyboardInterrupt):
        records.write_shard(path, interrupting(examples, 3))
    assert os.listdir(tmp_path) == []

    # an interrupted rewrite keeps the complete shard that was there
    assert records.write_shard(path, examples) == 5
    before = file_bytes(path)
    with pytest.raises(KeyboardInterrupt):
        records.write_shard(path, interrupting(examples[::-1], 2))
    assert os.listdir(tmp_path) == [os.path.basename(path)]
    assert file_bytes(path) == before


def test_convert_shard_interrupted_mid_write_leaves_nothing_and_resumes(source, out_dir, monkeypatch):
    images, expected = source
    label_ids = {name: i for i, name in enumerate(VOCABULARY)}
    os.makedirs(os.path.join(out_dir, ".convert"))
    task = common.plan_shards(images, out_dir, "train", 1, label_ids)[0]
    writer = RecordingWriter(monkeypatch, interrupt_after=2)
    with pytest.raises(KeyboardInterrupt):
        common.convert_shard(task)
    assert writer.paths == [os.path.basename(task.shard_path)]
    leftovers = [os.path.relpath(os.path.join(d, name), out_dir) for d, dirs, files in os.walk(out_dir)
                 for name in dirs + files]
    assert leftovers == [".convert"]
    monkeypatch.undo()
    report = common.convert_shard(task)
    assert report["written"] == len(expected.written)


def test_interrupted_conversion_keeps_finished_shards_and_resumes(source, out_dir, monkeypatch):
    images, expected = source
    real = common.read_image
    calls = []

    def read_image_then_interrupt(path):
        calls.append(path)
        if len(calls) == 8:  # in the second of three shards
            raise KeyboardInterrupt
        return real(path)

    monkeypatch.setattr(common, "read_image", read_image_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        convert(images, out_dir)
    assert [os.path.basename(p) for p in shard_files(out_dir, "train")] == ["train-00000-of-00003.tfrecord"]
    assert not [name for _, _, names in os.walk(out_dir) for name in names if ".tmp" in name]  # no temp file
    monkeypatch.undo()
    writer = RecordingWriter(monkeypatch)
    summary = convert(images, out_dir)
    assert writer.paths == ["train-00001-of-00003.tfrecord", "train-00002-of-00003.tfrecord"]
    check_conversion(out_dir, "train", expected, summary)


# --------------------------------------------------------------------------- parallel


def content(out_dir):
    return [(r.shard, r.source_id, r.label_ids, r.format, r.height, r.width, r.encoded)
            for r in read_split(out_dir, "train")]


@pytest.mark.slow
def test_two_spawned_workers_write_the_same_records_as_one(source, tmp_path):
    images, expected = source
    one = convert(images, str(tmp_path / "one"), num_shards=3, num_workers=1)
    two = convert(images, str(tmp_path / "two"), num_shards=3, num_workers=2)
    # (protobuf map order in the serialized bytes may differ between processes: compare content)
    assert content(str(tmp_path / "two")) == content(str(tmp_path / "one"))
    assert {k: len(v) for k, v in raw_records(str(tmp_path / "two"), "train").items()} == {
        k: len(v) for k, v in raw_records(str(tmp_path / "one"), "train").items()}
    assert {k: v for k, v in two.items() if k != "problem_report"} == {
        k: v for k, v in one.items() if k != "problem_report"}
    # (details may quote PIL's messages, which name objects by address)
    assert [(r["source_id"], r["path"], r["reason"]) for r in read_problems(str(tmp_path / "two"), "train")] == [
        (r["source_id"], r["path"], r["reason"]) for r in read_problems(str(tmp_path / "one"), "train")]
    check_conversion(str(tmp_path / "two"), "train", expected, two)
    assert read_summary(str(tmp_path / "two"), "train") == two
