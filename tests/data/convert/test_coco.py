"""MS-COCO instances JSON (read with pycocotools) → TFRecords."""

import json
import os

import pytest

from cma_tf.data.convert.coco import coco_source_images, load_coco
from cma_tf.data.convert.common import convert_split
from cma_tf.errors import DataError
from tests.data.convert import fixtures
from tests.data.convert.helpers import Expected, assert_one_line_error, check_conversion, run_cli


def image_dir(expected):
    return os.path.join(os.path.dirname(os.path.dirname(expected.root)), "train2017")


def test_coco_source_images(coco_dataset):
    images, vocabulary = coco_source_images(coco_dataset.root, image_dir(coco_dataset))
    assert vocabulary == ["airplane", "car", "dog", "person"]
    assert [image.source_id for image in images] == ["9", "25", "30", "34", "36", "42", "49", "61", "64", "71", "72"]
    by_id = {image.source_id: image for image in images}
    assert by_id["9"].path == os.path.join(image_dir(coco_dataset), "000000000009.jpg")
    assert set(by_id["25"].labels) == {"car", "person"}  # the crowd annotation counts
    assert by_id["30"].labels == ()
    assert "category_id 99" in by_id["49"].labels


def test_coco_conversion(coco_dataset, out_dir):
    images, vocabulary = coco_source_images(coco_dataset.root, image_dir(coco_dataset))
    summary = convert_split(images, vocabulary, out_dir, "train", num_shards=3, num_workers=1, progress=False)
    _, _, rows = check_conversion(out_dir, "train", coco_dataset, summary)
    assert summary["per_class_counts"] == {"airplane": 1, "car": 2, "dog": 3, "person": 3}
    unknown = [row for row in rows if row["reason"] == "unknown_label"]
    assert {row["detail"] for row in unknown} == {"label 'category_id 99'"}


def test_coco_with_a_given_vocabulary(coco_dataset, out_dir):
    """`--vocabulary` fixes the order; categories outside it are reported and dropped."""
    images, _ = coco_source_images(coco_dataset.root, image_dir(coco_dataset))
    vocabulary = ["person", "dog", "car"]
    convert_split(images, vocabulary, out_dir, "train", num_shards=2, num_workers=1, progress=False)
    expected = Expected(  # the same fixture, with airplane now unknown
        vocabulary, dict(coco_dataset.written), list(coco_dataset.problems), coco_dataset.listed,
        coco_dataset.raw, coco_dataset.reencoded)
    del expected.written["64"]
    expected.problems += [("64", "unknown_label"), ("64", "no_labels")]
    check_conversion(out_dir, "train", expected)


@pytest.mark.parametrize("content,match", [
    ("{not json", "not a COCO instances file"),
    ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.9}]', "not a COCO instances file"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [{"id": 1, "category_id": 1}],'
     ' "categories": [{"id": 1, "name": "x"}]}', "not a COCO instances file"),
    ("\xff\xfe\x00garbage", "not a COCO instances file"),
])
def test_coco_malformed_annotation_file_is_a_data_error(tmp_path, content, match):
    """A broken file, a detection-results list passed by mistake, an annotation without
    image_id, bytes that are not UTF-8: each is a DataError naming the file."""
    path = tmp_path / "instances_val2014.json"
    path.write_bytes(content.encode("latin-1") if content.startswith("\xff") else content.encode())
    with pytest.raises(DataError, match=match) as raised:
        load_coco(str(path))
    assert str(path) in str(raised.value)


def test_coco_image_without_file_name_is_a_data_error(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": [{"id": 7, "height": 2, "width": 2}], "annotations": [],
                                "categories": fixtures.COCO_CATEGORIES}))
    with pytest.raises(DataError, match="image 7 has no field 'file_name'"):
        coco_source_images(str(path), str(tmp_path))


def test_coco_missing_annotation_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="COCO annotation file not found"):
        coco_source_images(str(tmp_path / "nope.json"), str(tmp_path))


def test_coco_command_line_strict(coco_dataset, tmp_path):
    out = str(tmp_path / "cli_out")
    result = run_cli("coco", f"--annotations={coco_dataset.root}", f"--images={image_dir(coco_dataset)}",
                     f"--out_dir={out}", "--split=val", "--num_shards=2", "--num_workers=1", "--strict")
    assert_one_line_error(result, 1, f"{len(coco_dataset.problems)} problems in split 'val'")
    check_conversion(out, "val", coco_dataset)  # everything else is written


def test_coco_command_line_missing_annotation_file_exits_2(tmp_path):
    missing = str(tmp_path / "annotations" / "instances_train2014.json")
    result = run_cli("coco", f"--annotations={missing}", f"--images={tmp_path}", f"--out_dir={tmp_path / 'out'}")
    assert_one_line_error(result, 2, "COCO annotation file not found", missing)
    assert result.stdout == ""


@pytest.mark.parametrize("field,match", [("images", "field 'images' lists no images"),
                                         ("categories", "field 'categories' lists no categories")])
def test_coco_file_without_images_or_categories_is_a_data_error(tmp_path, field, match):
    data = {"images": [{"id": 7, "file_name": "a.jpg", "height": 2, "width": 2}], "annotations": [],
            "categories": fixtures.COCO_CATEGORIES}
    data[field] = []
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=match) as raised:
        coco_source_images(str(path), str(tmp_path))
    assert str(path) in str(raised.value)
