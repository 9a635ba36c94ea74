"""The YouTube-8M record formats as published (docs/design.md §3.2), and their quantization.

Video-level `tf.train.Example` (one per video):

    id          bytes       the video id
    labels      int64[]     label ids into the 3,862-class vocabulary
    mean_rgb    float[1024] mean of the frames' RGB features
    mean_audio  float[128]  mean of the frames' audio features

Frame-level `tf.train.SequenceExample` (one per video, one feature-list entry per second):

    context   id                    bytes
    context   labels                int64[]     video-level labels
    context   segment_start_times   int64[]     2019 segment-rated records only: one entry per
    context   segment_end_times     int64[]       rated (segment, label) pair; start/end in
    context   segment_labels        int64[]       frames (= seconds), segments 5 frames long
    context   segment_scores        float[]       1.0 (label present) or 0.0 (absent)
    features  rgb                   bytes per frame: 1024 uint8 (quantized)
    features  audio                 bytes per frame: 128 uint8 (quantized)

Published shards are named like `train0000.tfrecord`, `validate0123.tfrecord`.

Quantization maps [-2, 2] to 0..255 as the starter code's `utils.Dequantize` inverts it:
`x = q · (4/255) + 4/512 − 2`.
"""

from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

ID = "id"
LABELS = "labels"
MEAN_RGB = "mean_rgb"
MEAN_AUDIO = "mean_audio"
RGB = "rgb"
AUDIO = "audio"
SEGMENT_START_TIMES = "segment_start_times"
SEGMENT_END_TIMES = "segment_end_times"
SEGMENT_LABELS = "segment_labels"
SEGMENT_SCORES = "segment_scores"

FEATURE_SIZES = {RGB: 1024, AUDIO: 128, MEAN_RGB: 1024, MEAN_AUDIO: 128}
NUM_CLASSES = 3862  # the YouTube-8M vocabulary
NUM_SEGMENT_CLASSES = 1000  # the classes rated in the 2019 segment records
MAX_FRAMES = 300
SEGMENT_SIZE = 5
MAX_QUANTIZED_VALUE = 2.0
MIN_QUANTIZED_VALUE = -2.0


def dequantize(quantized, max_value=MAX_QUANTIZED_VALUE, min_value=MIN_QUANTIZED_VALUE):
    """uint8 codes (numpy or tensor, any shape) → floats, exactly as the starter code."""
    value_range = max_value - min_value
    scalar = value_range / 255.0
    bias = value_range / 512.0 + min_value
    if isinstance(quantized, np.ndarray):
        return quantized.astype(np.float32) * np.float32(scalar) + np.float32(bias)
    return tf.cast(quantized, tf.float32) * scalar + bias


def quantize(features, max_value=MAX_QUANTIZED_VALUE, min_value=MIN_QUANTIZED_VALUE) -> np.ndarray:
    """floats → the nearest uint8 code of `dequantize` (values outside the range are clipped)."""
    value_range = max_value - min_value
    scalar = value_range / 255.0
    bias = value_range / 512.0 + min_value
    codes = np.rint((np.asarray(features, np.float64) - bias) / scalar)
    return np.clip(codes, 0, 255).astype(np.uint8)


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _floats(values):
    return tf.train.Feature(float_list=tf.train.FloatList(value=[float(v) for v in values]))


def encode_video_level_example(video_id: str, labels: Sequence[int], mean_rgb, mean_audio) -> bytes:
    """One serialized video-level `tf.train.Example`."""
    feature = {
        ID: _bytes([video_id.encode()]),
        LABELS: _ints(labels),
        MEAN_RGB: _floats(np.asarray(mean_rgb, np.float32).reshape(-1)),
        MEAN_AUDIO: _floats(np.asarray(mean_audio, np.float32).reshape(-1)),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString(deterministic=True)


def encode_frame_example(
    video_id: str,
    labels: Sequence[int],
    rgb: np.ndarray,
    audio: np.ndarray,
    segments: Optional[dict] = None,
) -> bytes:
    """One serialized frame-level `tf.train.SequenceExample`.

    Args:
        rgb, audio: uint8 arrays `[frames, 1024]` and `[frames, 128]` (already quantized).
        segments: for segment-rated records, a dict with the four `segment_*` lists.
    """
    rgb, audio = np.asarray(rgb), np.asarray(audio)
    if rgb.dtype != np.uint8 or audio.dtype != np.uint8:
        raise ValueError("rgb and audio must be quantized uint8 arrays (see quantize)")
    if len(rgb) != len(audio):
        raise ValueError(f"rgb has {len(rgb)} frames but audio has {len(audio)}")
    context = {ID: _bytes([video_id.encode()]), LABELS: _ints(labels)}
    if segments is not None:
        context[SEGMENT_START_TIMES] = _ints(segments[SEGMENT_START_TIMES])
        context[SEGMENT_END_TIMES] = _ints(segments[SEGMENT_END_TIMES])
        context[SEGMENT_LABELS] = _ints(segments[SEGMENT_LABELS])
        context[SEGMENT_SCORES] = _floats(segments[SEGMENT_SCORES])
    feature_lists = {
        RGB: tf.train.FeatureList(feature=[_bytes([frame.tobytes()]) for frame in rgb]),
        AUDIO: tf.train.FeatureList(feature=[_bytes([frame.tobytes()]) for frame in audio]),
    }
    return tf.train.SequenceExample(
        context=tf.train.Features(feature=context),
        feature_lists=tf.train.FeatureLists(feature_list=feature_lists),
    ).SerializeToString(deterministic=True)


def shard_name(split: str, index: int) -> str:
    """The published naming: `train0000.tfrecord`."""
    return f"{split}{index:04d}.tfrecord"


def split_pattern(data_dir: str, split: str) -> str:
    """Matches the published names (`train0000.tfrecord`) and ours (`train-00000-of-00004.tfrecord`)."""
    return tf.io.gfile.join(data_dir, f"{split}*.tfrecord")
