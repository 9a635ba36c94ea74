"""NUS-WIDE (Concepts81.txt, ImageList, Groundtruth/TrainTestLabels, Flickr/) → TFRecords."""

import os

import numpy as np
import pytest

from cma_tf.data.convert.common import convert_split
from cma_tf.data.convert.nuswide import nuswide_source_images, read_concept_labels
from cma_tf.errors import DataError
from tests.data.convert import fixtures
from tests.data.convert.helpers import assert_one_line_error, check_conversion, run_cli


def label_file(expected, concept, part="Train"):
    return os.path.join(expected.root, "Groundtruth", "TrainTestLabels", f"Labels_{concept}_{part}.txt")


def test_nuswide_source_images(nuswide_dataset):
    images, vocabulary = nuswide_source_images(nuswide_dataset.root)
    assert vocabulary == fixtures.NUS_CONCEPTS
    assert len(images) == nuswide_dataset.listed
    first = images[0]
    assert first.source_id == "actor/0001_2124494179.jpg"  # the list's backslash read as a separator
    assert first.path == os.path.join(nuswide_dataset.root, "Flickr", "actor", "0001_2124494179.jpg")
    assert first.labels == ("animal", "beach")  # in concept order


@pytest.mark.parametrize("crlf", [True, False])
def test_nuswide_conversion(tmp_path, out_dir, crlf):
    expected = fixtures.make_nuswide(str(tmp_path), crlf=crlf)
    images, vocabulary = nuswide_source_images(expected.root, "Train")
    summary = convert_split(images, vocabulary, out_dir, "train", num_shards=2, num_workers=1, progress=False)
    check_conversion(out_dir, "train", expected, summary)
    assert summary["per_class_counts"] == {"airport": 2, "animal": 2, "beach": 2, "bear": 1, "birds": 2}


def test_nuswide_test_part_and_image_directory(nuswide_dataset, tmp_path):
    elsewhere = str(tmp_path / "images")
    os.rename(os.path.join(nuswide_dataset.root, "Flickr"), elsewhere)
    images, _ = nuswide_source_images(nuswide_dataset.root, "Test", image_dir=elsewhere)
    assert [(image.path, image.labels) for image in images] == [
        (os.path.join(elsewhere, "actor", "0001_2124494179.jpg"), ("beach",))]


def test_nuswide_label_file_with_the_wrong_number_of_lines_is_a_data_error(nuswide_dataset):
    path = label_file(nuswide_dataset, "bear")
    with open(path) as f:
        lines = f.read().splitlines()
    with open(path, "w") as f:
        f.write("\n".join(lines[:-2]) + "\n")
    with pytest.raises(DataError) as raised:
        nuswide_source_images(nuswide_dataset.root, "Train")
    assert path in str(raised.value)
    assert f"{len(lines) - 2} lines" in str(raised.value) and f"has {len(lines)}" in str(raised.value)

    with open(path, "w") as f:
        f.write("\n".join(lines + ["0"]) + "\n")  # one too many
    with pytest.raises(DataError, match="Labels_bear_Train.txt"):
        nuswide_source_images(nuswide_dataset.root, "Train")


def test_nuswide_label_value_other_than_0_or_1_is_a_data_error(nuswide_dataset):
    path = label_file(nuswide_dataset, "beach")
    with open(path) as f:
        lines = f.read().splitlines()
    lines[3] = "2"
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(DataError, match="line 4 is '2'") as raised:
        nuswide_source_images(nuswide_dataset.root, "Train")
    assert path in str(raised.value)


@pytest.mark.parametrize("missing", ["Concepts81.txt", "ImageList/TrainImagelist.txt",
                                     "Groundtruth/TrainTestLabels/Labels_birds_Train.txt"])
def test_nuswide_missing_file_is_a_data_error(nuswide_dataset, missing):
    path = os.path.join(nuswide_dataset.root, *missing.split("/"))
    os.remove(path)
    with pytest.raises(DataError, match="NUS-WIDE file not found") as raised:
        nuswide_source_images(nuswide_dataset.root, "Train")
    assert path in str(raised.value)


def test_nuswide_unknown_part_is_a_data_error(nuswide_dataset):
    with pytest.raises(DataError, match="part must be one of"):
        nuswide_source_images(nuswide_dataset.root, "Val")


def test_read_concept_labels(tmp_path):
    path = tmp_path / "Labels_x_Train.txt"
    path.write_text("0\r\n1 \r\n\r\n1\r\n")
    np.testing.assert_array_equal(read_concept_labels(str(path), 3), [False, True, True])


def test_nuswide_command_line_strict(nuswide_dataset, tmp_path):
    out = str(tmp_path / "cli_out")
    result = run_cli("nuswide", f"--root={nuswide_dataset.root}", "--part=Train", f"--out_dir={out}",
                     "--split=train", "--num_shards=3", "--num_workers=1", "--strict")
    assert_one_line_error(result, 1, f"{len(nuswide_dataset.problems)} problems in split 'train'")
    check_conversion(out, "train", nuswide_dataset)


@pytest.mark.parametrize("emptied,match", [("Concepts81.txt", "lists no concepts"),
                                           ("ImageList/TrainImagelist.txt", "lists no images")])
def test_nuswide_empty_concepts_or_image_list_is_a_data_error(nuswide_dataset, emptied, match):
    path = os.path.join(nuswide_dataset.root, *emptied.split("/"))
    with open(path, "w") as f:
        f.write("\r\n")
    with pytest.raises(DataError, match=match) as raised:
        nuswide_source_images(nuswide_dataset.root, "Train")
    assert path in str(raised.value)
