"""Several splits converted into one directory share its labels.txt: a later split can never
change what the label ids of an earlier one mean."""

import os

import pytest

from tests.data.convert import fixtures
from tests.data.convert.helpers import (
    assert_one_line_error,
    own_stderr_lines,
    read_problems,
    read_split,
    read_summary,
    read_vocabulary_file,
    run_cli,
    save_image,
    save_random_bytes,
    shard_files,
)


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("path,labels\n" + "".join(f"{name},{labels}\n" for name, labels in rows))
    return path


def fruit_lists(root):
    """train.csv (apple, banana, cherry) and val.csv (cherry only) over tiny PNGs."""
    for seed, name in enumerate(["t1.png", "t2.png", "t3.png", "v1.png", "v2.png"]):
        save_image(os.path.join(root, name), seed=seed, width=12, height=10, fmt="PNG")
    train = write_csv(os.path.join(root, "train.csv"),
                      [("t1.png", "apple|banana"), ("t2.png", "banana"), ("t3.png", "cherry|apple")])
    val = write_csv(os.path.join(root, "val.csv"), [("v1.png", "cherry"), ("v2.png", "cherry")])
    return train, val


def labelled(out_dir, split):
    """{source_id: label names} read back independently (ids through labels.txt)."""
    return {record.source_id: record.labels for record in read_split(out_dir, split)}


def stamps(out_dir, split):
    return {path: os.stat(path).st_mtime_ns for path in shard_files(out_dir, split)}


@pytest.mark.slow
def test_a_second_split_without_vocabulary_uses_the_existing_labels_txt(tmp_path):
    train, val = fruit_lists(str(tmp_path))
    out = str(tmp_path / "D")
    first = run_cli("csv_list", f"--csv={train}", f"--out_dir={out}", "--split=train", "--num_workers=1")
    assert first.returncode == 0, first.stderr
    assert read_vocabulary_file(out) == ["apple", "banana", "cherry"]
    train_labels = labelled(out, "train")
    train_stamps = stamps(out, "train")

    second = run_cli("csv_list", f"--csv={val}", f"--out_dir={out}", "--split=val", "--num_workers=1")
    assert second.returncode == 0, second.stderr
    assert read_vocabulary_file(out) == ["apple", "banana", "cherry"]
    assert labelled(out, "train") == train_labels == {
        "t1.png": ["apple", "banana"], "t2.png": ["banana"], "t3.png": ["cherry", "apple"]}
    assert labelled(out, "val") == {"v1.png": ["cherry"], "v2.png": ["cherry"]}
    assert [record.label_ids for record in read_split(out, "val")] == [[2], [2]]
    notes = [line for line in second.stdout.splitlines() if "existing vocabulary" in line]
    assert len(notes) == 1 and os.path.join(out, "labels.txt") in notes[0], second.stdout
    assert stamps(out, "train") == train_stamps

    # re-converting train (its own labels, no --vocabulary) resumes: no shard is rewritten
    again = run_cli("csv_list", f"--csv={train}", f"--out_dir={out}", "--split=train", "--num_workers=1")
    assert again.returncode == 0, again.stderr
    assert stamps(out, "train") == train_stamps


@pytest.mark.slow
def test_a_vocabulary_file_that_differs_from_labels_txt_is_refused(tmp_path):
    train, val = fruit_lists(str(tmp_path))
    out = str(tmp_path / "D")
    assert run_cli("csv_list", f"--csv={train}", f"--out_dir={out}", "--num_workers=1").returncode == 0
    train_stamps = stamps(out, "train")
    other = str(tmp_path / "other.txt")
    with open(other, "w") as f:
        f.write("cherry\napple\nbanana\n")
    result = run_cli("csv_list", f"--csv={val}", f"--out_dir={out}", "--split=val", f"--vocabulary={other}",
                     "--num_workers=1")
    assert_one_line_error(result, 2, f"--vocabulary={other}", os.path.join(out, "labels.txt"),
                          "line 1: 'apple' vs 'cherry'")
    assert read_vocabulary_file(out) == ["apple", "banana", "cherry"]
    assert not shard_files(out, "val") and not os.path.exists(os.path.join(out, "val_summary.json"))
    assert stamps(out, "train") == train_stamps


def coco_args(expected, out):
    images = os.path.join(os.path.dirname(os.path.dirname(expected.root)), "train2017")
    return ["coco", f"--annotations={expected.root}", f"--images={images}", f"--out_dir={out}"]


@pytest.mark.parametrize("converter", ["coco", "voc2007", "nuswide"])
def test_every_converter_uses_an_existing_labels_txt(tmp_path, converter):
    """COCO (category names), VOC (its 20 classes) and NUS-WIDE (Concepts81.txt) take their
    vocabulary from the input too: with labels.txt already there, they use it instead."""
    out = str(tmp_path / "D")
    if converter == "coco":
        expected = fixtures.make_coco(str(tmp_path / "coco"))
        args = coco_args(expected, out)
        vocabulary, dropped = ["person", "dog"], "car"
    elif converter == "voc2007":
        expected = fixtures.make_voc(str(tmp_path / "VOCdevkit"))
        args = ["voc2007", f"--root={expected.root}", f"--out_dir={out}"]
        vocabulary, dropped = ["person", "dog", "horse"], "car"
    else:
        expected = fixtures.make_nuswide(str(tmp_path))
        args = ["nuswide", f"--root={os.path.join(str(tmp_path), 'NUS-WIDE')}", f"--out_dir={out}"]
        vocabulary, dropped = ["beach", "animal"], "airport"
    os.makedirs(out)
    with open(os.path.join(out, "labels.txt"), "w") as f:
        f.write("".join(name + "\n" for name in vocabulary))

    result = run_cli(*args, "--split=val", "--num_shards=2", "--num_workers=1")
    assert result.returncode == 0, result.stderr
    assert read_vocabulary_file(out) == vocabulary
    assert sum("existing vocabulary" in line for line in result.stdout.splitlines()) == 1, result.stdout
    for record in read_split(out, "val"):
        assert set(record.labels) <= set(vocabulary)
        assert set(record.labels) <= set(expected.written[record.source_id]), record.source_id
    unknown = {row["detail"] for row in read_problems(out, "val") if row["reason"] == "unknown_label"}
    assert f"label {dropped!r}" in unknown
    assert list(read_summary(out, "val")["per_class_counts"]) == vocabulary


def test_a_csv_whose_images_are_all_unreadable_exits_2(tmp_path):
    """Zero images written is not a successful conversion, whatever the report says (even
    with --max_dropped=1; a list whose images are all missing is refused before writing, see
    test_csv_label_checks.py)."""
    for seed, name in enumerate(["gone1.png", "gone2.png"]):
        save_random_bytes(str(tmp_path / name), seed=seed)
    listing = write_csv(str(tmp_path / "list.csv"), [("gone1.png", "cat"), ("gone2.png", "dog")])
    out = str(tmp_path / "D")
    result = run_cli("csv_list", f"--csv={listing}", f"--out_dir={out}", "--num_workers=1", "--max_dropped=1")
    line = assert_one_line_error(result, 2, "none of the 2 images of split 'train' could be written",
                                 "2 unreadable_image", os.path.join(out, "train_problems.tsv"))
    assert "\n" not in line
    assert [row["reason"] for row in read_problems(out, "train")] == ["unreadable_image", "unreadable_image"]
    assert own_stderr_lines(result.stderr) == [line]
