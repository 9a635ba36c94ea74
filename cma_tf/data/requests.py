"""What a served model reads: one request item (encoded image, serialized YouTube-8M record)
→ the model's input row, made exactly as evaluation makes it, and the per-item decoding that
lets one bad item fail alone.

Three request formats, one per kind of data (`cma_tf.factory.serving_request` picks it):

    images             JPEG/PNG/GIF bytes → float32 [S, S, 3]: decoded to RGB (as
                       `data/decode.py` says), bilinear resize to S × S, 0..255
                       (`data/images.py`, the evaluation path); other formats are sent as PNG
                       (`decode.for_serving`)
    sequence_examples  a frame-level `SequenceExample` → float32 [T, D]: the first
                       `max_frames` frames, resampled to T at bin centres, dequantized
                       (`data/yt8m/readers.py` + `frames.py`, the evaluation path)
    examples           a video-level `Example` → float32 [1, D] (`mean_rgb`, `mean_audio`)

Labels in a record are ignored. The graph holds plain TensorFlow ops only (no XLA, no
Python), so TF Serving runs it as it is.
"""

import dataclasses
from typing import Callable, Tuple

import tensorflow as tf

from cma_tf.data import images
from cma_tf.data.yt8m import readers


# The names of `serving_default`'s input, one per request format.
IMAGES = "images"
SEQUENCE_EXAMPLES = "sequence_examples"
EXAMPLES = "examples"
# The signature of frame-level models that takes the 8-bit frames as the readers hand them.
FRAME_CODES_SIGNATURE = "predict_frame_codes"


@dataclasses.dataclass(frozen=True)
class RequestFormat:
    """How a model's requests look.

    Attributes:
        bytes_input: the name of the `tf.string [None]` input of `serving_default`.
        tensor_input: the name of the float input of the tensor signature.
        tensor_signature: the name of that signature.
        item_shape: the model's input shape without the batch axis.
        decode_one: one request item (a scalar `tf.string`) → float32 `item_shape`.
        description: one line for `--help` texts and the README.
        codes_signature: for frame-level video models, the name of the signature of the
            8-bit input (`frame_codes` uint8 `item_shape`, `num_frames` int32); "" for none.
    """

    bytes_input: str
    tensor_input: str
    tensor_signature: str
    item_shape: Tuple[int, ...]
    decode_one: Callable[[tf.Tensor], tf.Tensor]
    description: str
    codes_signature: str = ""


def image_request(image_size: int) -> RequestFormat:
    def decode_one(encoded):
        return images.decode_and_resize(encoded, image_size)

    return RequestFormat(
        IMAGES, "pixels", "predict_pixels", (image_size, image_size, 3), decode_one,
        f"encoded images (JPEG/PNG/GIF; other formats as PNG), decoded and resized to {image_size}×{image_size} "
        "in the graph",
    )


def frame_request(frames: int, feature_names, max_frames: int, feature_sizes=None) -> RequestFormat:
    feature_names = tuple(feature_names)
    size = readers.feature_size(feature_names, feature_sizes)

    def decode_one(serialized):
        # A video without frames is an item that does not decode (valid=0), not a row of zeros.
        parsed = readers.parse_frame_examples(
            serialized[tf.newaxis], None, feature_names, max_frames, dequantize=False, check_frame_sizes=True,
            feature_sizes=feature_sizes, require_frames=True,
        )
        rows = readers.resample_and_dequantize(
            parsed["video_matrix"], parsed["num_frames"], frames, dequantize=readers.mask_and_dequantize
        )
        return tf.ensure_shape(rows[0], [frames, size])

    return RequestFormat(
        SEQUENCE_EXAMPLES, "frames", "predict_frames", (frames, size), decode_one,
        f"serialized YouTube-8M frame-level SequenceExamples ({', '.join(feature_names)}), "
        f"resampled to {frames} frames in the graph", codes_signature=FRAME_CODES_SIGNATURE,
    )


def video_level_request(feature_names, feature_sizes=None) -> RequestFormat:
    feature_names = tuple(feature_names)
    size = readers.feature_size(feature_names, feature_sizes)

    def decode_one(serialized):
        parsed = readers.parse_video_level_examples(serialized[tf.newaxis], None, feature_names, feature_sizes)
        return tf.ensure_shape(parsed["video_matrix"], [1, size])

    return RequestFormat(
        EXAMPLES, "frames", "predict_frames", (1, size), decode_one,
        f"serialized YouTube-8M video-level Examples ({', '.join(feature_names)})",
    )


def decode_each(items: tf.Tensor, request: RequestFormat):
    """`(indices int64 [G], rows float32 [G, *item_shape])` of the items that decode.

    Each item is decoded on its own inside a `tf.data` pipeline whose `ignore_errors` drops
    an item whose decoding fails (bad bytes, a truncated file, a malformed record), so one bad
    item never fails the batch; `indices` says which items made it. A sentinel row at the end
    keeps the batch non-empty when no item decodes, and is cut off.
    """
    count = tf.shape(items, out_type=tf.int64)[0]
    decoded = (
        tf.data.Dataset.from_tensor_slices((tf.range(count), items))
        .map(lambda index, item: (index, request.decode_one(item)),
             num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .ignore_errors()
    )
    sentinel = tf.data.Dataset.from_tensors((tf.constant(-1, tf.int64), tf.zeros(request.item_shape, tf.float32)))
    indices, rows = decoded.concatenate(sentinel).batch(count + 1).get_single_element()
    return indices[:-1], rows[:-1]
