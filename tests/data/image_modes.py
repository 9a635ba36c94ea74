"""Image files of every pixel mode the decoder converts, built with PIL, and the RGB pixels the
documented conversion (docs/design.md §3.1 "Pixels") gives for each, written out in numpy here
so that a test compares the decoder with this page, not with itself.

    8-bit gray        the value in R, G and B
    16-bit gray       the high byte: v >> 8 (what TensorFlow's PNG decoder does)
    palette (P)       the palette's colour of each index
    RGBA, LA          alpha dropped (not composited): the colour stored under it
    CMYK              R = ⌊(255 − C)(255 − K) / 255⌋, likewise G from M and B from Y, with C, M,
                      Y, K the ink amounts PIL reports (what TensorFlow's JPEG decoder does)
"""

import dataclasses
import io
import os

import numpy as np
from PIL import Image

HEIGHT, WIDTH = 16, 16  # two 8 × 8 JPEG blocks each way


@dataclasses.dataclass(frozen=True)
class ModeCase:
    name: str  # e.g. "gray16_png"; the file name is `{name}.{extension}`
    extension: str
    data: bytes
    expected: np.ndarray  # uint8 [H, W, 3]
    tf_reads: bool  # tf.io.decode_image reads the format (JPEG, PNG, GIF)


def encode(image, image_format, **options):
    buffer = io.BytesIO()
    image.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def gray_to_rgb(gray):
    return np.repeat(gray[..., np.newaxis], 3, axis=-1)


def gray16_values(rng):
    """uint16 [H, W] spread over the whole range, with the edge cases of the high byte."""
    values = rng.integers(0, 65536, (HEIGHT, WIDTH)).astype(np.uint16)
    values.flat[:8] = [0, 255, 256, 257, 32767, 32768, 65280, 65535]
    return values


def flat_blocks(rng, channels):
    """uint8 [H, W, channels] constant over each 8 × 8 block: a JPEG at quality 100 stores it
    exactly, so the decoder's colour conversion is all that changes it."""
    blocks = rng.integers(0, 256, (HEIGHT // 8, WIDTH // 8, channels)).astype(np.uint8)
    return np.repeat(np.repeat(blocks, 8, axis=0), 8, axis=1)


def cmyk_to_rgb(cmyk):
    ink = cmyk.astype(np.int64)
    white = 255 - ink[..., 3:4]
    return ((255 - ink[..., :3]) * white // 255).astype(np.uint8)


def palette_image(rng):
    """`(P image, expected RGB)`: 8 random colours, random indices."""
    colours = rng.integers(0, 256, (8, 3)).astype(np.uint8)
    indices = rng.integers(0, 8, (HEIGHT, WIDTH)).astype(np.uint8)
    image = Image.fromarray(indices, "P")
    image.putpalette(colours.flatten().tolist())
    return image, colours[indices]


def mode_cases(seed=0):
    """Every case, in the formats TensorFlow reads (PNG, JPEG, GIF) and in TIFF (PIL only)."""
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, extension, data, expected, tf_reads):
        cases.append(ModeCase(name, extension, data, expected, tf_reads))

    for container, extension, tf_reads in (("PNG", "png", True), ("TIFF", "tiff", False)):
        suffix = extension
        rgb = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
        add(f"rgb_{suffix}", extension, encode(Image.fromarray(rgb, "RGB"), container), rgb, tf_reads)
        gray = rng.integers(0, 256, (HEIGHT, WIDTH)).astype(np.uint8)
        add(f"gray8_{suffix}", extension, encode(Image.fromarray(gray, "L"), container), gray_to_rgb(gray), tf_reads)
        gray16 = gray16_values(rng)
        image16 = Image.fromarray(gray16)
        assert image16.mode == "I;16", image16.mode
        add(f"gray16_{suffix}", extension, encode(image16, container), gray_to_rgb((gray16 >> 8).astype(np.uint8)),
            tf_reads)
        palette, palette_rgb = palette_image(rng)
        add(f"palette_{suffix}", extension, encode(palette, container), palette_rgb, tf_reads)
        rgba = rng.integers(0, 256, (HEIGHT, WIDTH, 4)).astype(np.uint8)
        add(f"rgba_{suffix}", extension, encode(Image.fromarray(rgba, "RGBA"), container), rgba[..., :3], tf_reads)
        gray_alpha = rng.integers(0, 256, (HEIGHT, WIDTH, 2)).astype(np.uint8)
        add(f"gray_alpha_{suffix}", extension, encode(Image.fromarray(gray_alpha, "LA"), container),
            gray_to_rgb(gray_alpha[..., 0]), tf_reads)
    cmyk_tiff = rng.integers(0, 256, (HEIGHT, WIDTH, 4)).astype(np.uint8)
    add("cmyk_tiff", "tiff", encode(Image.fromarray(cmyk_tiff, "CMYK"), "TIFF"), cmyk_to_rgb(cmyk_tiff), False)
    cmyk_jpeg = flat_blocks(rng, 4)
    add("cmyk_jpeg", "jpg", encode(Image.fromarray(cmyk_jpeg, "CMYK"), "JPEG", quality=100), cmyk_to_rgb(cmyk_jpeg),
        True)
    gray_jpeg = flat_blocks(rng, 1)[..., 0]
    add("gray8_jpeg", "jpg", encode(Image.fromarray(gray_jpeg, "L"), "JPEG", quality=100), gray_to_rgb(gray_jpeg),
        True)
    gif, gif_rgb = palette_image(rng)
    add("palette_gif", "gif", encode(gif, "GIF"), gif_rgb, True)
    webp = rng.integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    add("rgb_webp", "webp", encode(Image.fromarray(webp, "RGB"), "WEBP", lossless=True), webp, False)
    bmp, bmp_rgb = palette_image(rng)  # 8-bit palette BMP: TensorFlow's decoder reads the indices
    add("palette_bmp", "bmp", encode(bmp, "BMP"), bmp_rgb, False)
    return cases


def write_cases(folder, cases):
    """Writes each case as `folder/{name}.{extension}`; returns {path: case}."""
    os.makedirs(folder, exist_ok=True)
    paths = {}
    for case in cases:
        path = os.path.join(folder, f"{case.name}.{case.extension}")
        with open(path, "wb") as f:
            f.write(case.data)
        paths[path] = case
    return paths
