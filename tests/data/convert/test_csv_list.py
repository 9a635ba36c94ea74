"""CSV lists (`path,label1|label2`) → TFRecords."""

import os

import pytest

from cma_tf.data.convert.common import convert_split
from cma_tf.data.convert.csv_list import csv_source_images
from cma_tf.errors import DataError
from tests.data.convert import fixtures
from tests.data.convert.helpers import (
    assert_one_line_error,
    check_conversion,
    read_summary,
    run_cli,
    shard_files,
)


def convert_csv(expected, out_dir, vocabulary=None, image_dir=None, **kwargs):
    images, vocab, problems = csv_source_images(expected.root, image_dir, vocabulary)
    return convert_split(images, vocab, out_dir, "train", num_shards=kwargs.pop("num_shards", 3),
                         num_workers=1, progress=False, listing_problems=problems, **kwargs)


def test_csv_with_a_vocabulary(csv_dataset, out_dir):
    summary = convert_csv(csv_dataset, out_dir, fixtures.CSV_VOCABULARY)
    _, _, rows = check_conversion(out_dir, "train", csv_dataset, summary)
    details = {(row["source_id"], row["reason"]): row["detail"] for row in rows}
    assert "'zebra'" in details[("imgs/j.jpg", "unknown_label")]
    assert ":6:" in details[("line 6", "bad_annotation")]
    assert "got ['imgs/a.jpg', 'cat', 'dog'] (one label a cell? --labels_in_columns" in details[("line 9", "bad_annotation")]


def test_csv_vocabulary_defaults_to_every_label_seen(tmp_path, out_dir):
    expected = fixtures.make_csv(str(tmp_path / "src"), vocabulary=False)
    summary = convert_csv(expected, out_dir)
    check_conversion(out_dir, "train", expected, summary)


@pytest.mark.parametrize("header,bom", [(False, False), (True, True), (False, True)])
def test_csv_header_is_optional_and_a_byte_order_mark_is_not_data(tmp_path, out_dir, header, bom):
    """Spreadsheet programs save 'CSV UTF-8' with a BOM; it must not hide the header or
    become part of the first path."""
    expected = fixtures.make_csv(str(tmp_path / "src"), header=header, bom=bom)
    summary = convert_csv(expected, out_dir, fixtures.CSV_VOCABULARY)
    check_conversion(out_dir, "train", expected, summary)


def test_csv_relative_paths_from_an_image_directory(tmp_path, out_dir):
    expected = fixtures.make_csv(str(tmp_path / "src"))
    moved = str(tmp_path / "lists" / "train.csv")
    os.makedirs(os.path.dirname(moved))
    os.rename(expected.root, moved)
    images, _, _ = csv_source_images(moved, str(tmp_path / "src"), fixtures.CSV_VOCABULARY)
    assert images[0].path == str(tmp_path / "src" / "imgs" / "a.jpg")
    expected.root = moved
    summary = convert_csv(expected, out_dir, fixtures.CSV_VOCABULARY, image_dir=str(tmp_path / "src"))
    check_conversion(out_dir, "train", expected, summary)


def test_csv_missing_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="CSV file not found"):
        csv_source_images(str(tmp_path / "nope.csv"))


@pytest.mark.slow  # an end-to-end run of ~15-35 s on 2 cores; CI runs it (make test-slow)
def test_csv_command_line_end_to_end_then_strict_rerun(tmp_path):
    """The fixture's bad rows are far more than 5 %: --max_dropped=1 converts without them.
    Its row without labels is written as a negative (the command line's default)."""
    csv_dataset = fixtures.make_csv(str(tmp_path / "src"), keep_empty=True)
    vocabulary_file = str(tmp_path / "vocab.txt")
    with open(vocabulary_file, "w") as f:
        f.write("\n".join(fixtures.CSV_VOCABULARY) + "\n")
    out = str(tmp_path / "cli_out")
    args = [f"--csv={csv_dataset.root}", f"--out_dir={out}", "--split=train", "--num_shards=2",
            f"--vocabulary={vocabulary_file}", "--max_dropped=1"]
    # one worker: spawned workers (each importing TensorFlow) are covered by test_common
    result = run_cli("csv_list", *args, "--num_workers=1")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert '"images_written": 10' in result.stdout and "per-class counts:" in result.stdout
    check_conversion(out, "train", csv_dataset)
    assert len(shard_files(out, "train")) == 2
    stamps = {path: os.stat(path).st_mtime_ns for path in shard_files(out, "train")}

    strict = run_cli("csv_list", *args, "--num_workers=1", "--strict")
    line = assert_one_line_error(strict, 1, "problems in split 'train' (strict mode)", "train_problems.tsv")
    assert f"{len(csv_dataset.problems)} problems" in line
    assert {path: os.stat(path).st_mtime_ns for path in shard_files(out, "train")} == stamps  # resumed
    summary = check_conversion(out, "train", csv_dataset)[1]
    assert summary == read_summary(out, "train")


def test_csv_command_line_missing_csv_exits_2(tmp_path):
    result = run_cli("csv_list", f"--csv={tmp_path / 'nope.csv'}", f"--out_dir={tmp_path / 'out'}")
    assert_one_line_error(result, 2, "CSV file not found", "nope.csv")
    assert not os.path.exists(tmp_path / "out")


# --------------------------------------------------------------------------- mistakes in the CSV


def write_bytes(path, data):
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def test_csv_not_utf8_names_the_line_and_says_to_save_as_utf8(tmp_path):
    path = write_bytes(tmp_path / "list.csv", "path,labels\nimgs/a.jpg,cat\nimgs/é.jpg,dog\n".encode("latin-1"))
    with pytest.raises(DataError) as raised:
        csv_source_images(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: line 3 is not UTF-8 (byte 0xe9)") and "save the file as UTF-8" in message


@pytest.mark.parametrize("content", [b"", b"path,labels\n", b"\xef\xbb\xbfpath,labels\r\n\r\n", b"\n\n"])
def test_csv_with_no_data_rows_is_refused(tmp_path, content):
    path = write_bytes(tmp_path / "list.csv", content)
    with pytest.raises(DataError, match="has no rows of 'path,label1|label2'") as raised:
        csv_source_images(path)
    assert str(raised.value).startswith(path)


def test_csv_whose_rows_are_all_malformed_is_refused(tmp_path):
    path = write_bytes(tmp_path / "list.csv", b"path,labels\nonly_one_column\na.jpg,cat,dog\n")
    with pytest.raises(DataError, match=r"none of its 2 rows is 'path,label1\|label2' \(first, line 2: expected"):
        csv_source_images(path)


def test_csv_that_names_no_label_is_refused(tmp_path):
    path = write_bytes(tmp_path / "list.csv", b"a.jpg,\nb.jpg,|\n")
    with pytest.raises(DataError, match="no row names a label"):
        csv_source_images(path)


@pytest.mark.parametrize("body,where", [
    ('imgs/b.jpg,"cat|dog\nimgs/c.jpg,cat\nimgs/d.jpg,dog\n', "the end of the file"),
    ('imgs/b.jpg,"cat|dog\nimgs/c.jpg,cat\nimgs/d.jpg,"dog\nimgs/e.jpg,cat\n', "line 5"),
])
def test_csv_unterminated_quote_names_the_line_where_it_opened(tmp_path, body, where):
    """Left open, a quote swallows every following row into one field: refused, not one
    bad row hiding the rest."""
    path = write_bytes(tmp_path / "list.csv", ("path,labels\nimgs/a.jpg,cat\n" + body).encode())
    with pytest.raises(DataError) as raised:
        csv_source_images(path)
    message = str(raised.value)
    assert message.startswith(f"{path}: line 3: a quote opened on this line is not closed"), message
    assert where in message and "\n" not in message


def test_csv_quoted_fields_on_one_line_are_fine(tmp_path):
    path = write_bytes(tmp_path / "list.csv", b'"imgs/a, b.jpg","cat|dog"\nimgs/c.jpg,cat\n')
    images, vocabulary, problems = csv_source_images(path)
    assert [image.source_id for image in images] == ["imgs/a, b.jpg", "imgs/c.jpg"]
    assert vocabulary == ["cat", "dog"] and problems == []


@pytest.mark.parametrize("name,content,fragments", [
    ("latin1.csv", "path,labels\nimgs/é.jpg,dog\n".encode("latin-1"), ["line 2 is not UTF-8", "save the file as UTF-8"]),
    ("header_only.csv", b"path,labels\n", ["has no rows", "empty or only a header"]),
    ("quote.csv", b'imgs/a.jpg,"cat\nimgs/b.jpg,dog\n', ["line 1: a quote opened on this line is not closed"]),
])
def test_csv_command_line_mistakes_are_one_line_exit_2_and_write_nothing(tmp_path, name, content, fragments):
    path = write_bytes(tmp_path / name, content)
    out = tmp_path / "out"
    result = run_cli("csv_list", f"--csv={path}", f"--out_dir={out}")
    assert_one_line_error(result, 2, path, *fragments)
    assert not os.path.exists(out)
