"""CSV lists whose labels would convert into wrong data without a word (issue 35, items 1.7-1.9
and the image root of section 5): another label separator, one label per column, too many rows
dropped, rows without labels, spelling variants, duplicate rows, labels never seen in training,
and a list whose images are all somewhere else."""

import os

import numpy as np
import pytest

from cma_tf.data.convert.common import choose_vocabulary, convert_split
from cma_tf.data.convert.csv_list import csv_source_images, read_csv_list
from cma_tf.errors import DataError
from tests.data.convert.helpers import (
    assert_one_line_error,
    own_stderr_lines,
    read_split,
    read_summary,
    run_cli,
    save_image,
    save_random_bytes,
    shard_files,
)


def make_list(root, rows, missing=(), unreadable=(), header=True, name="list.csv"):
    """`root/<name>` with `rows` (each `(image name, label field)` or a raw line string) and a
    tiny PNG under `root/imgs/` for every image named, except those in `missing` (no file)
    and `unreadable` (random bytes)."""
    lines = ["path,labels"] if header else []
    for index, row in enumerate(rows):
        if isinstance(row, str):
            lines.append(row)
            continue
        image, labels = row
        path = os.path.join(root, "imgs", image)
        if image in unreadable:
            save_random_bytes(path, seed=index)
        elif image not in missing and not os.path.exists(path):
            save_image(path, seed=index, width=8, height=8, fmt="PNG")
        lines.append(f"imgs/{image},{labels}")
    os.makedirs(root, exist_ok=True)
    csv_path = os.path.join(root, name)
    with open(csv_path, "w", encoding="utf-8", newline="") as f:
        f.write("\n".join(lines) + "\n")
    return csv_path


def convert(csv_path, out_dir, split="train", vocabulary=None, **options):
    """The CSV command line's conversion, in process: read, then `convert_split` with the
    CSV's defaults (rows without labels kept, at most 5 % of the rows dropped)."""
    listing = read_csv_list(csv_path, **options.pop("read", {}))
    return convert_split(
        listing.images, vocabulary or listing.labels, out_dir, split, num_shards=2, num_workers=1, progress=False,
        listing_problems=listing.problems, keep_empty=True, max_dropped=options.pop("max_dropped", 0.05),
        notes=listing.notes, warnings=listing.warnings, **options,
    )


def labels_by_id(out_dir, split="train"):
    """{source_id: [label names, in stored order]} read with the tests' own record reader."""
    return {record.source_id: record.labels for record in read_split(out_dir, split)}


def listed_files(directory):
    return sorted(os.path.relpath(os.path.join(d, n), directory) for d, _, names in os.walk(directory) for n in names)


# --------------------------------------------------------------------------- 1.7 label separators


@pytest.mark.parametrize("used,configured", [(";", "|"), ("\t", "|"), ("|", ";")])
def test_labels_separated_by_another_character_stop_naming_it_and_the_flag(tmp_path, used, configured):
    """`cat;dog` read with `|` would be one label 'cat;dog': refused when most rows hold it."""
    rows = [(f"{i}.png", used.join(["cat", "dog"][: 1 + i % 2]) if i % 4 else f"bird{used}cat") for i in range(8)]
    csv_path = make_list(str(tmp_path), rows)
    with pytest.raises(DataError) as raised:
        read_csv_list(csv_path, label_separator=configured)
    message = str(raised.value)
    assert repr(used) in message and "--label_separator" in message and "\n" not in message, message


def test_the_separator_flag_reads_them_and_the_command_line_refuses_without_it(tmp_path):
    rows = [("a.png", "cat;dog"), ("b.png", "dog"), ("c.png", "bird;cat"), ("d.png", "cat;bird;dog")]
    csv_path = make_list(str(tmp_path / "src"), rows)
    out = tmp_path / "out"
    refused = run_cli("csv_list", f"--csv={csv_path}", f"--out_dir={out}", "--num_workers=1")
    assert_one_line_error(refused, 2, "';'", "--label_separator=';'")
    assert not out.exists()
    convert(csv_path, str(out), read={"label_separator": ";"})
    assert {k: sorted(v) for k, v in labels_by_id(str(out)).items()} == {
        "imgs/a.png": ["cat", "dog"], "imgs/b.png": ["dog"], "imgs/c.png": ["bird", "cat"],
        "imgs/d.png": ["bird", "cat", "dog"]}


def one_label_per_column(root):
    """48 rows as a spreadsheet saves one label a cell: 11 with one label, 37 with 2-3 (some
    padded with empty cells to the widest row). Returns (csv path, {id: labels})."""
    names = ["bird", "cat", "dog", "fish"]
    rows, expected = [], {}
    for i in range(48):
        labels = [names[i % 4]] if i < 11 else [names[(i + k) % 4] for k in range(2 + i % 2)]
        cells = labels + [""] * (3 - len(labels)) if i % 5 == 0 else labels
        rows.append((f"{i:02d}.png", ",".join(cells)))
        expected[f"imgs/{i:02d}.png"] = sorted(labels)
    return make_list(root, rows), expected


def test_one_label_per_column_stops_naming_the_flag_that_reads_it(tmp_path):
    """Today 11 of 48 rows are kept and 37 reported as bad_annotation, exit 0."""
    csv_path, _ = one_label_per_column(str(tmp_path))
    with pytest.raises(DataError) as raised:
        read_csv_list(csv_path)
    message = str(raised.value)
    assert "37 of 48 rows" in message and "--labels_in_columns" in message, message


def test_labels_in_columns_reads_every_cell_after_the_path_as_a_label(tmp_path):
    csv_path, expected = one_label_per_column(str(tmp_path / "src"))
    summary = convert(csv_path, str(tmp_path / "out"), read={"labels_in_columns": True})
    assert summary["images_written"] == 48 and summary["images_skipped"] == 0
    assert {k: sorted(v) for k, v in labels_by_id(str(tmp_path / "out")).items()} == expected


def test_a_row_padded_with_empty_cells_is_not_malformed(tmp_path):
    csv_path = make_list(str(tmp_path), [("a.png", "cat,,"), ("b.png", "dog|cat,")])
    listing = read_csv_list(csv_path)
    assert [image.labels for image in listing.images] == [("cat",), ("dog", "cat")] and not listing.problems


# --------------------------------------------------------------------------- 1.7 too many rows dropped


def twenty_rows(root, missing=(), unreadable=()):
    return make_list(root, [(f"{i:02d}.png", "cat|dog" if i % 2 else "dog") for i in range(20)], missing, unreadable)


def test_the_command_line_stops_when_more_than_5_percent_of_rows_are_dropped(tmp_path):
    """2 of 20 files missing (10 %): exit 2 with the counts per reason, nothing written;
    `--max_dropped=0.2` accepts them."""
    csv_path = twenty_rows(str(tmp_path / "src"), missing={"03.png", "07.png"})
    out = tmp_path / "out"
    result = run_cli("csv_list", f"--csv={csv_path}", f"--out_dir={out}", "--num_workers=1")
    line = assert_one_line_error(result, 2, "2 of the 20 rows", "2 missing_file", "--max_dropped")
    assert "imgs/03.png" in line
    assert not out.exists()
    assert convert(csv_path, str(out), max_dropped=0.1)["images_written"] == 18  # 10 % is not more than 10 %


def test_unreadable_images_found_while_writing_remove_the_split_and_keep_the_others(tmp_path):
    """Undecodable files are found only by decoding: the split's shards, reports and
    summary are removed again, and the splits already there (and labels.txt) are untouched."""
    out = str(tmp_path / "out")
    convert(twenty_rows(str(tmp_path / "train")), out, "train")
    before = {name: open(os.path.join(out, name), "rb").read() for name in listed_files(out)}
    val_csv = twenty_rows(str(tmp_path / "val"), unreadable={"01.png", "02.png"})
    with pytest.raises(DataError) as raised:
        convert(val_csv, out, "val")
    message = str(raised.value)
    assert "2 of the 20 rows" in message and "2 unreadable_image" in message and "--max_dropped" in message
    assert {name: open(os.path.join(out, name), "rb").read() for name in listed_files(out)} == before


def test_a_new_directory_is_removed_when_its_first_split_drops_too_many(tmp_path):
    out = str(tmp_path / "out")
    with pytest.raises(DataError, match="3 unreadable_image"):
        convert(twenty_rows(str(tmp_path / "src"), unreadable={"01.png", "02.png", "05.png"}), out)
    assert not os.path.exists(out)  # the directory this conversion made is gone again


# --------------------------------------------------------------------------- 1.8 rows without labels


def binary_rows():
    """A one-label (binary) data set: 4 positives, 4 negatives (no label)."""
    return [(f"{i}.png", "defect" if i % 2 else "") for i in range(8)]


def test_rows_without_labels_are_negatives_kept_and_skip_empty_drops_them(tmp_path):
    """Today the negatives are skipped as no_labels: every kept image is positive. (A row
    listed twice shows how the command line prints warnings: one line each, on stderr.)"""
    csv_path = make_list(str(tmp_path / "src"), binary_rows() + [("1.png", "defect")])
    out = tmp_path / "out"
    result = run_cli("csv_list", f"--csv={csv_path}", f"--out_dir={out}", "--num_workers=1")
    assert result.returncode == 0, result.stderr
    written = labels_by_id(str(out))
    assert written == {f"imgs/{i}.png": (["defect"] if i % 2 else []) for i in range(8)}
    summary = read_summary(str(out), "train")
    assert summary["images_without_labels"] == 4 and summary["problems"]["no_labels"] == 0
    assert "4 images have no label" in result.stdout and "--skip_empty" in result.stdout
    warnings = [line for line in own_stderr_lines(result.stderr) if line.startswith("warning: ")]
    assert len(warnings) == 1 and "1 rows repeat an earlier row" in warnings[0], result.stderr

    skipped = tmp_path / "skipped"
    convert(csv_path, str(skipped), read={"skip_empty": True})
    assert labels_by_id(str(skipped)) == {f"imgs/{i}.png": ["defect"] for i in range(1, 8, 2)}
    summary = read_summary(str(skipped), "train")
    assert summary["empty_rows_skipped"] == 4 and summary["images_without_labels"] == 0


def test_examples_without_labels_go_through_the_label_graph_and_the_input_pipeline(tmp_path):
    """The label graph counts them as examples (so p_k = positives / all examples) and the
    dataset gives them all-zero targets; AP of a label without positives is nan and left out
    of mAP, as sklearn's mean over the labels that have positives."""
    import sklearn.metrics

    from cma_tf import factory
    from cma_tf.graph.cooccurrence import build_label_graph
    from cma_tf.metrics.image import mean_average_precision
    from tests.test_cli import tiny_config

    rows = [(f"{i}.png", ["defect", "", "defect|scratch", ""][i % 4]) for i in range(8)]
    out = str(tmp_path / "out")
    convert(make_list(str(tmp_path / "src"), rows), out)
    graph = build_label_graph(shard_files(out, "train"), 2, ["defect", "scratch"])
    assert graph.num_examples == 8
    np.testing.assert_array_equal(np.asarray(graph.counts), [[4, 2], [2, 2]])
    np.testing.assert_allclose(graph.frequencies, [4 / 8, 2 / 8])

    config = tiny_config("plain", out)
    config.data.eval_split = "train"
    dataset = factory.build_dataset(config, 2, "train", training=False)
    targets = np.concatenate([np.asarray(labels) for _, labels in dataset])
    by_id = labels_by_id(out)
    expected = np.array([[("defect" in by_id[k]), ("scratch" in by_id[k])] for k in sorted(by_id)], np.float32)
    assert sorted(map(tuple, targets.tolist())) == sorted(map(tuple, expected.tolist()))
    assert (targets.sum(axis=1) == 0).sum() == 4

    scores = np.random.default_rng(0).random((8, 3))
    with_absent = np.concatenate([expected, np.zeros((8, 1), np.float32)], axis=1)  # a label with no positive
    reference = np.mean([sklearn.metrics.average_precision_score(with_absent[:, k], scores[:, k]) for k in (0, 1)])
    assert mean_average_precision(scores, with_absent) == pytest.approx(reference)


# --------------------------------------------------------------------------- 1.9 label hygiene


def test_case_and_whitespace_variants_are_warned_about(tmp_path, capsys):
    rows = [("a.png", "TWO"), ("b.png", "two"), ("c.png", "traffic light|two"), ("d.png", "traffic  light"),
            ("e.png", " one ")]
    csv_path = make_list(str(tmp_path / "src"), rows)
    summary = convert(csv_path, str(tmp_path / "out"))
    warnings = summary["warnings"]
    case = [w for w in warnings if "'TWO'" in w and "'two'" in w]
    space = [w for w in warnings if "'traffic light'" in w and "'traffic  light'" in w]
    assert len(case) == 1 and len(space) == 1, warnings
    assert not [w for w in warnings if "one" in w.split("'")[1::2]], warnings  # stripped: no variant


def test_vocabulary_lines_are_stripped_with_a_warning(tmp_path):
    """A line ' cat' would never match the label 'cat' of any row."""
    path = tmp_path / "vocab.txt"
    path.write_text("bird\n cat\ndog \n")
    lines = []
    assert choose_vocabulary(str(tmp_path / "out"), [], str(path), log=lines.append) == ["bird", "cat", "dog"]
    assert len(lines) == 1 and "2 lines" in lines[0] and str(path) in lines[0], lines


def test_a_vocabulary_whose_stripped_lines_repeat_is_refused(tmp_path):
    path = tmp_path / "vocab.txt"
    path.write_text("cat\ncat \n")
    with pytest.raises(DataError, match=r"line 2 .*'cat'.* line 1"):
        choose_vocabulary(str(tmp_path / "out"), [], str(path), log=lambda line: None)


def test_identical_rows_are_counted_and_dropped_by_default_kept_on_request(tmp_path):
    """Today `a.png,cat|dog` listed three times is written three times."""
    rows = [("a.png", "cat|dog"), ("b.png", "dog"), ("a.png", "cat|dog"), ("a.png", "dog|cat"), ("b.png", "cat")]
    csv_path = make_list(str(tmp_path / "src"), rows)
    out = str(tmp_path / "out")
    summary = convert(csv_path, out)
    ids = sorted(record.source_id for record in read_split(out, "train"))
    assert ids == ["imgs/a.png", "imgs/b.png", "imgs/b.png"]
    assert summary["duplicate_rows_dropped"] == 2
    assert any("imgs/b.png" in w and "different labels" in w for w in summary["warnings"]), summary["warnings"]

    kept = str(tmp_path / "kept")
    summary = convert(csv_path, kept, read={"keep_duplicates": True})
    assert sorted(record.source_id for record in read_split(kept, "train")) == ["imgs/a.png"] * 3 + ["imgs/b.png"] * 2
    assert summary["duplicate_rows_kept"] == 2


def test_a_label_in_val_but_never_in_train_is_warned_about_at_conversion(tmp_path):
    out = str(tmp_path / "out")
    vocabulary = ["bird", "cat", "dog"]
    convert(make_list(str(tmp_path / "train"), [("a.png", "cat"), ("b.png", "dog|cat")]), out, "train", vocabulary)
    summary = convert(make_list(str(tmp_path / "val"), [("c.png", "cat"), ("d.png", "bird")]), out, "val", vocabulary)
    warned = [w for w in summary["warnings"] if "'bird'" in w]
    assert len(warned) == 1 and "never in split 'train'" in warned[0], summary["warnings"]
    assert not [w for w in summary["warnings"] if "'cat'" in w or "'dog'" in w]


# --------------------------------------------------------------------------- 5: where image paths are resolved


def test_a_list_whose_images_all_are_elsewhere_names_where_it_looked_and_images(tmp_path):
    csv_path = make_list(str(tmp_path / "lists"), [("a.png", "cat"), ("b.png", "dog")], missing={"a.png", "b.png"})
    out = tmp_path / "out"
    result = run_cli("csv_list", f"--csv={csv_path}", f"--out_dir={out}", "--num_workers=1")
    line = assert_one_line_error(result, 2, "none of the 2 images", str(tmp_path / "lists"), "--images")
    assert "imgs/a.png" in line
    assert not out.exists()


def test_images_flag_sets_the_root_of_relative_paths(tmp_path):
    images_root = tmp_path / "photos"
    make_list(str(images_root), [("a.png", "cat")], name="unused.csv")
    csv_path = make_list(str(tmp_path / "lists"), [("a.png", "cat")], missing={"a.png"})
    listing = read_csv_list(csv_path, str(images_root))
    assert listing.images[0].path == str(images_root / "imgs" / "a.png")
    assert csv_source_images(csv_path, str(images_root))[0] == listing.images


def test_training_and_evaluate_name_the_labels_without_a_training_example(tmp_path, capsys):
    """'bird' is in val, never in train: today its AP counts in val's mAP and nothing says so."""
    from cma_tf.evaluate import evaluate_workdirs
    from cma_tf.training.trainer import train_and_evaluate
    from tests.test_cli import tiny_config

    out = str(tmp_path / "data")
    vocabulary = ["bird", "cat", "dog"]
    train_rows = [(f"t{i}.png", ["cat", "dog", "cat|dog"][i % 3]) for i in range(8)]
    convert(make_list(str(tmp_path / "train"), train_rows), out, "train", vocabulary)
    convert(make_list(str(tmp_path / "val"), [("v0.png", "bird"), ("v1.png", "cat"), ("v2.png", "bird|dog")]),
            out, "val", vocabulary)
    config = tiny_config("plain", out)
    config.train.epochs = 1
    workdir = str(tmp_path / "run")
    capsys.readouterr()
    train_and_evaluate(config, workdir)
    trained = [line for line in capsys.readouterr().out.splitlines() if "no example in split 'train'" in line]
    assert len(trained) == 1 and trained[0].startswith("1 labels") and trained[0].endswith(": bird"), trained
    evaluate_workdirs([workdir], ["run"])
    evaluated = [line for line in capsys.readouterr().out.splitlines() if "no example in split 'train'" in line]
    assert evaluated == [f"{workdir}: {trained[0]}"]
