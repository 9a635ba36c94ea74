"""What `predict` reads from image files, and that it decodes them to the pixels the converter
stored for training (docs/design.md §3.1 "Pixels")."""

import os

import numpy as np
import pytest
import tensorflow as tf

from cma_tf.data import records
from cma_tf.data.convert.common import SourceImage, convert_split
from cma_tf.data.requests import IMAGES, decode_each, image_request
from cma_tf.serving import sources
from tests.data.image_modes import HEIGHT, WIDTH, mode_cases, write_cases


def served_pixels(items):
    """What `serving_default` hands the model for each item (None: the item is flagged), at the
    images' own size, where the bilinear resize is the identity."""
    assert HEIGHT == WIDTH  # square images: the resize to S × S keeps every pixel
    indices, rows = decode_each(tf.constant(items), image_request(HEIGHT))
    rows = dict(zip(indices.numpy().tolist(), rows.numpy()))
    return [rows.get(index) for index in range(len(items))]


def test_a_folder_lists_every_format_the_converter_reads(tmp_path):
    paths = write_cases(str(tmp_path / "photos"), mode_cases())
    (tmp_path / "photos" / "extra.TIF").write_bytes(mode_cases()[0].data)
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    listed = sources.expand_inputs([str(tmp_path / "photos")])
    assert listed == sorted(list(paths) + [str(tmp_path / "photos" / "extra.TIF")])
    assert {os.path.splitext(path)[1].lower() for path in listed} >= {".webp", ".tiff", ".tif"}


def test_each_image_file_is_sent_as_bytes_the_serving_graph_decodes_to_its_documented_pixels(tmp_path):
    paths = write_cases(str(tmp_path), mode_cases())
    ids, items = zip(*sources.read_items(list(paths), IMAGES))
    assert list(ids) == list(paths)
    for path, pixels in zip(ids, served_pixels(list(items))):
        assert pixels is not None, f"{path} was flagged"
        np.testing.assert_array_equal(pixels, paths[path].expected.astype(np.float32), err_msg=path)


def record_pixels(out_dir):
    """{source_id: float32 [S, S, 3]} as evaluation decodes the converted records."""
    from cma_tf.data import images

    pixels = {}
    for path in sorted(tf.io.gfile.glob(records.split_pattern(out_dir, "train"))):
        for serialized in tf.data.TFRecordDataset(path):
            parsed = records.parse_image_example(serialized)
            source_id = parsed[records.SOURCE_ID].numpy().decode()
            pixels[source_id] = images.decode_and_resize(parsed[records.ENCODED], HEIGHT).numpy()
    return pixels


def test_the_converter_stores_the_pixels_predict_decodes(tmp_path):
    """The end-to-end check: one file of each mode converted into records and given to predict;
    training's pixels and serving's pixels are the same, and both the documented ones."""
    paths = write_cases(str(tmp_path / "src"), mode_cases(seed=3))
    out_dir = str(tmp_path / "records")
    summary = convert_split(
        [SourceImage(path, os.path.basename(path), ("a",)) for path in paths], ["a"], out_dir, "train",
        num_shards=1, num_workers=1, progress=False,
    )
    assert summary["images_written"] == len(paths), summary["problems"]
    trained_on = record_pixels(out_dir)
    ids, items = zip(*sources.read_items(list(paths), IMAGES))
    for path, served in zip(ids, served_pixels(list(items))):
        name = os.path.basename(path)
        assert served is not None, f"predict flags {name}"
        np.testing.assert_array_equal(trained_on[name], served, err_msg=f"{name}: records vs predict")
        np.testing.assert_array_equal(served, paths[path].expected.astype(np.float32), err_msg=name)


@pytest.mark.parametrize("name, data, reason", [
    ("empty.png", b"", "empty file (0 bytes)"),
    ("broken.tiff", b"II*\x00 then nothing a TIFF needs", "TIFF"),
    ("text.jpg", b"<html>404 not found</html>\n", "not an image"),
    ("cut.png", mode_cases()[0].data[:60], "PNG"),
], ids=["empty", "broken_tiff", "text", "truncated_png"])
def test_an_image_file_that_does_not_decode_is_flagged_with_a_reason_in_words(tmp_path, name, data, reason):
    path = tmp_path / name
    path.write_bytes(data)
    ((item_id, item),) = sources.read_items([str(path)], IMAGES)
    assert served_pixels([item]) == [None]
    why = sources.why_not_decoded(item, IMAGES)
    assert reason in why and "BytesIO" not in why and "function_node" not in why, why
