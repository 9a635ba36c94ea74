"""PASCAL VOC 2007 (Annotations/*.xml, ImageSets/Main, JPEGImages) → TFRecords."""

import os

import pytest

from cma_tf.data.convert.common import convert_split
from cma_tf.data.convert.voc2007 import VOC_CLASSES, object_labels, voc_source_images
from cma_tf.errors import DataError
from tests.data.convert import fixtures
from tests.data.convert.helpers import assert_one_line_error, check_conversion, run_cli


def convert_voc(expected, out_dir, image_set="trainval", include_difficult=False, **kwargs):
    images, vocabulary, problems = voc_source_images(expected.root, image_set, include_difficult)
    return convert_split(images, vocabulary, out_dir, "train", num_shards=3, num_workers=1, progress=False,
                         listing_problems=problems, **kwargs)


def test_voc_classes_are_the_usual_twenty():
    assert list(VOC_CLASSES) == fixtures.VOC_CLASSES


def test_voc_object_labels(voc_dataset):
    xml = os.path.join(voc_dataset.root, "Annotations", "000005.xml")
    assert object_labels(xml, False) == ("dog", "person")  # a person's <part> names are not objects
    xml = os.path.join(voc_dataset.root, "Annotations", "000007.xml")
    assert object_labels(xml, False) == ("car", "bicycle")
    assert object_labels(xml, True) == ("car", "car", "bicycle")
    with pytest.raises(ValueError, match="malformed XML"):
        object_labels(os.path.join(voc_dataset.root, "Annotations", "000012.xml"), False)
    with pytest.raises(ValueError, match="object 1 has no <name>"):
        object_labels(os.path.join(voc_dataset.root, "Annotations", "000021.xml"), False)


def test_voc_conversion(voc_dataset, out_dir):
    summary = convert_voc(voc_dataset, out_dir)
    _, _, rows = check_conversion(out_dir, "train", voc_dataset, summary)
    details = {(row["source_id"], row["reason"]): row["detail"] for row in rows}
    assert "000016.xml" in details[("000016", "bad_annotation")]
    assert "malformed XML" in details[("000012", "bad_annotation")]
    assert details[("000020", "unknown_label")] == "label 'unicorn'"
    paths = {(row["source_id"], row["reason"]): row["path"] for row in rows}
    assert paths[("000017", "missing_file")] == os.path.join(voc_dataset.root, "JPEGImages", "000017.jpg")


def test_voc_include_difficult(voc_dataset, out_dir):
    summary = convert_voc(voc_dataset, out_dir, include_difficult=True)
    check_conversion(out_dir, "train", fixtures.voc_with_difficult(voc_dataset), summary)


def test_voc_other_image_set(voc_dataset, out_dir):
    images, _, problems = voc_source_images(voc_dataset.root, "test")
    assert [image.source_id for image in images] == ["000005", "000007"] and problems == []


def test_voc_missing_image_set_is_a_data_error(voc_dataset):
    with pytest.raises(DataError, match="VOC image set not found"):
        voc_source_images(voc_dataset.root, "val")


def test_voc_command_line_strict_with_difficult(voc_dataset, tmp_path):
    out = str(tmp_path / "cli_out")
    expected = fixtures.voc_with_difficult(voc_dataset)
    result = run_cli("voc2007", f"--root={voc_dataset.root}", "--image_set=trainval", "--include_difficult",
                     f"--out_dir={out}", "--split=trainval", "--num_shards=2", "--num_workers=1", "--strict")
    assert_one_line_error(result, 1, f"{len(expected.problems)} problems in split 'trainval'")
    check_conversion(out, "trainval", expected)


def test_voc_empty_image_set_is_a_data_error(voc_dataset):
    path = os.path.join(voc_dataset.root, "ImageSets", "Main", "val.txt")
    with open(path, "w") as f:
        f.write("\n")
    with pytest.raises(DataError, match="lists no image ids: nothing to convert") as raised:
        voc_source_images(voc_dataset.root, "val")
    assert path in str(raised.value)
