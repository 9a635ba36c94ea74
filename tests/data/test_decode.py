"""The one definition of an image file's pixels (cma_tf.data.decode), against the documented
conversion written out in numpy (tests/data/image_modes.py) and against `tf.io.decode_image`."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cma_tf.data import decode
from tests.data.image_modes import HEIGHT, WIDTH, encode, mode_cases

CASES = mode_cases()


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_each_mode_decodes_to_its_documented_conversion(case):
    pixels = decode.decode_rgb(case.data)
    assert pixels.dtype == np.uint8 and pixels.shape == (HEIGHT, WIDTH, 3)
    np.testing.assert_array_equal(pixels, case.expected)
    if case.tf_reads:  # the documented conversion is TensorFlow's own, which the serving graph runs
        tf_pixels = tf.io.decode_image(case.data, channels=3, expand_animations=False).numpy()
        np.testing.assert_array_equal(tf_pixels, case.expected)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_what_is_sent_to_the_serving_graph_decodes_there_to_the_same_pixels(case):
    sent = decode.for_serving(case.data)
    assert (sent == case.data) == case.tf_reads  # JPEG/PNG/GIF as they are, the rest as PNG
    served = tf.io.decode_image(sent, channels=3, expand_animations=False).numpy()
    np.testing.assert_array_equal(served, case.expected)


def test_the_same_16_bit_values_in_png_and_tiff_give_the_same_pixels():
    values = np.arange(HEIGHT * WIDTH, dtype=np.uint16).reshape(HEIGHT, WIDTH) * 257
    png, tiff = (decode.decode_rgb(encode(Image.fromarray(values), container)) for container in ("PNG", "TIFF"))
    np.testing.assert_array_equal(png, tiff)
    assert len(np.unique(png)) == HEIGHT * WIDTH  # 256 levels, not binarised


def jpeg_with_orientation(pixels, orientation):
    exif = Image.Exif()
    exif[0x0112] = orientation  # Orientation
    return encode(Image.fromarray(pixels), "JPEG", quality=95, exif=exif.tobytes())


def test_exif_orientation_is_not_applied_as_the_serving_graph_cannot_apply_it():
    """A JPEG tagged "rotate 90°" decodes to its stored pixels, unrotated: what TensorFlow's
    decoder (the serving graph's) gives, not what `ImageOps.exif_transpose` gives."""
    from PIL import ImageOps

    pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, 2 * WIDTH, 3)).astype(np.uint8)
    data = jpeg_with_orientation(pixels, 6)
    with Image.open(io.BytesIO(data)) as image:
        assert image.getexif()[0x0112] == 6
        rotated = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    decoded = decode.decode_rgb(data)
    assert decoded.shape == (HEIGHT, 2 * WIDTH, 3) and rotated.shape == (2 * WIDTH, HEIGHT, 3)
    np.testing.assert_array_equal(decoded, tf.io.decode_image(data, channels=3).numpy())
    assert decode.for_serving(data) == data


@pytest.mark.parametrize("data, reason", [
    (b"", "empty file (0 bytes)"),
    (b"<html>404 not found</html>\n", "not an image: no format TensorFlow or PIL reads starts with b'<html>40'"),
    (b"II*\x00 and nothing a TIFF needs", "TIFF header, but PIL cannot read the file"),
    (b"\xff\xd8\xff\xe0 and no JPEG after it", "JPEG data that TensorFlow cannot decode: "),
    (CASES[0].data[:60], "PNG data that TensorFlow cannot decode: "),
], ids=["empty", "text", "tiff_header_only", "jpeg_header_only", "truncated_png"])
def test_what_does_not_decode_is_refused_in_words(data, reason):
    with pytest.raises(decode.UndecodableImage) as error:
        decode.decode_rgb(data)
    assert str(error.value).startswith(reason), str(error.value)
    assert "BytesIO" not in str(error.value) and "{{" not in str(error.value) and "[Op:" not in str(error.value)
    assert decode.why_not_decoded(data) == str(error.value)
    assert decode.why_not_decoded(CASES[0].data) == ""
