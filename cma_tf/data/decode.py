"""The pixels of an image file: one definition for the converter (what training reads) and for
`predict` (what the serving graph reads), so that a model is served the pixels it was trained on.

`decode_rgb(data)` → uint8 [H, W, 3] is that definition:

- JPEG, PNG and GIF are decoded by the op that the training pipeline and the exported
  `serving_default` signature run in their graphs (`images.decode_image`, TensorFlow's
  decoders), so all three agree by construction.
- Every other format PIL reads (TIFF, WebP, BMP, PPM, ICO, …) is decoded by PIL and converted by
  the same rules as TensorFlow's, written out below. The converter stores these images as PNG,
  and `predict` sends them as PNG (`for_serving`). BMP and WebP are read by PIL although
  TensorFlow has decoders for them: TensorFlow reads an 8-bit palette BMP as its palette
  indices, fails on 1-bit BMPs and on WebP with alpha.

The conversions (docs/design.md §3.1, "Pixels"; tests/data/image_modes.py writes them out):

    8-bit gray         the value in R, G and B
    16-bit gray        the high byte, v >> 8 (TensorFlow's PNG decoder; /257 rounding would
                       differ by one for some values, and TF Serving clients send PNGs as they
                       are); PIL's 32-bit integer mode "I" is clipped to 0..65535 first
    palette (P)        the palette's colour of each index; a GIF's transparent index is black
                       (TensorFlow's GIF decoder), a PNG's keeps its palette colour
    alpha (RGBA, LA)   dropped, not composited: a transparent pixel shows the colour stored
                       under it (TensorFlow's decoders do this, with no background to agree on)
    CMYK               R = ⌊(255 − C)(255 − K) / 255⌋, G and B likewise from M and Y, with C,
                       M, Y, K the ink amounts (TensorFlow's JPEG decoder, Adobe CMYK)
    anything else      PIL's conversion to RGB (1-bit, YCbCr, LAB, float)

EXIF orientation is not applied, anywhere: `serving_default` decodes the bytes a client sends
with TensorFlow's decoders, which ignore it, so applying it here would give training and
`predict` other pixels than TF Serving's clients get. The pixels are the ones stored, as every
TensorFlow and PyTorch reader of COCO, VOC and NUS-WIDE also sees them.
"""

import io
import re
import warnings

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp", ".tif", ".tiff")

# The formats whose bytes go to TensorFlow's decoder, by the magic bytes it classifies them by.
GRAPH_FORMATS = (("JPEG", b"\xff\xd8\xff"), ("PNG", b"\x89PNG\r\n\x1a\n"), ("GIF", b"GIF8"))
# Other formats, named in the reason when PIL cannot read a file that starts like one.
OTHER_MAGIC = (("TIFF", b"II*\x00"), ("TIFF", b"MM\x00*"), ("BMP", b"BM"), ("WebP", b"RIFF"))
SIXTEEN_BIT_GRAY_MODES = ("I;16", "I;16L", "I;16B", "I;16N")
INTEGER_MODE = "I"
SIXTEEN_BIT_MAX = 65535
CMYK_MODE = "CMYK"
SHOWN_LEADING_BYTES = 8


class UndecodableImage(ValueError):
    """The bytes are not an image this package decodes; the message says why, in words."""


def graph_format(data: bytes) -> str:
    """"JPEG", "PNG" or "GIF" when the serving graph decodes `data` itself; "" otherwise."""
    for name, magic in GRAPH_FORMATS:
        if data.startswith(magic):
            return name
    return ""


def decode_rgb(data: bytes) -> np.ndarray:
    """uint8 [H, W, 3]: the pixels of an encoded image, by the rules of this module's docstring.

    Raises:
        UndecodableImage: empty, not an image, or damaged (the message says which).
    """
    if not data:
        raise UndecodableImage("empty file (0 bytes)")
    name = graph_format(data)
    if name:
        return _decode_in_graph_op(data, name)
    return _decode_with_pil(data)


def for_serving(data: bytes) -> bytes:
    """The bytes to give `serving_default` for an image file: JPEG, PNG and GIF as they are (the
    graph decodes them as `decode_rgb` does), any other format as a PNG of `decode_rgb`'s pixels.

    Raises:
        UndecodableImage: `data` is not a decodable image of another format.
    """
    if graph_format(data):
        return data
    return png_bytes(decode_rgb(data))


def why_not_decoded(data: bytes) -> str:
    """Why `decode_rgb` refuses `data`, in words; "" if it decodes."""
    try:
        decode_rgb(data)
    except UndecodableImage as error:
        return str(error)
    return ""


def png_bytes(pixels: np.ndarray) -> bytes:
    """A lossless PNG of uint8 [H, W, 3] pixels (TensorFlow decodes it to exactly them)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    return buffer.getvalue()


def _decode_in_graph_op(data: bytes, name: str) -> np.ndarray:
    import tensorflow as tf

    from cma_tf.data.images import decode_image

    try:
        return decode_image(tf.constant(data)).numpy()
    except tf.errors.OpError as error:
        raise UndecodableImage(f"{name} data that TensorFlow cannot decode: {_tf_message(error)}") from None


def _tf_message(error) -> str:
    """TensorFlow's message without the op and device decorations around it."""
    text = error.message.strip().splitlines()[0] if error.message.strip() else type(error).__name__
    text = re.sub(r"^\{\{[^}]*\}\}\s*", "", text)
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text)


def _decode_with_pil(data: bytes) -> np.ndarray:
    # PIL warns about damaged metadata as it reads it: the image decodes or the reason says why,
    # and a warning per file would break the converter's and predict's progress bars.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _open_with_pil(data)


def _open_with_pil(data: bytes) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UndecodableImage(_unidentified(data)) from None
    except Exception as error:  # noqa: BLE001 - PIL's plugins raise many types for bad headers
        raise UndecodableImage(f"not an image PIL can open ({type(error).__name__}: {error})") from None
    with image:
        try:
            image.load()  # decodes fully: a truncated file fails here
            return _to_rgb(image)
        except Exception as error:  # noqa: BLE001
            raise UndecodableImage(f"{image.format} data that PIL cannot decode ({type(error).__name__}: "
                                   f"{error})") from None


def _unidentified(data: bytes) -> str:
    for name, magic in OTHER_MAGIC:
        if data.startswith(magic):
            return f"{name} header, but PIL cannot read the file (damaged, or a {name} variant it does not read)"
    return (f"not an image: no format TensorFlow or PIL reads starts with "
            f"{data[:SHOWN_LEADING_BYTES]!r}")


def _to_rgb(image) -> np.ndarray:
    """uint8 [H, W, 3] of an opened PIL image, converted as the module's docstring says."""
    if image.mode in SIXTEEN_BIT_GRAY_MODES or image.mode == INTEGER_MODE:
        values = np.clip(np.asarray(image).astype(np.int64), 0, SIXTEEN_BIT_MAX)
        return _gray_to_rgb((values >> 8).astype(np.uint8))
    if image.mode == CMYK_MODE:
        ink = np.asarray(image).astype(np.int64)
        return ((255 - ink[..., :3]) * (255 - ink[..., 3:4]) // 255).astype(np.uint8)
    # L, P (via the palette), RGBA / LA / PA (alpha dropped) and the rest: PIL's conversion.
    return np.asarray(image.convert("RGB"))


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[..., np.newaxis], 3, axis=-1)
