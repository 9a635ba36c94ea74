"""Fixed-length frame sequences from variable-length videos.

Videos have 1 to 300 frames (segments 5); SNet and the attention heads take a fixed `T`. Each
video's own frames are resampled to `T` positions, so no position is padding and no mask is
needed: position `i` takes frame `⌊(i + o_i) · n / T⌋` of the `n` real frames, with `o_i = ½`
(the centre of each bin; evaluation) or `o_i ~ U[0, 1)` (training: a random frame of each
bin, like the starter code's `SampleRandomFrames` but keeping the order). Short videos repeat
frames, long ones skip frames.

Pure TensorFlow ops, so the starter-code model class (`cma_tf/yt8m_starter/models.py`) uses the
same function inside a TF1-style graph.
"""

import tensorflow as tf

# The keys of the 8-bit model input that the frame-level readers make (`resample_codes`) and the
# model dequantizes (`cma_tf.backbones.video.FrameDequantization`).
FRAME_CODES = "frame_codes"
NUM_FRAMES = "num_frames"


def resample_frames(video_matrix, num_frames, frames, offsets=None):
    """`[B, F, D]` padded frames + `[B]` counts → `[B, frames, D]`.

    Args:
        video_matrix: float `[B, F, D]`, each video's frames first, then padding.
        num_frames: int `[B]`, real frames per video (0 gives the padding row 0, i.e. zeros).
        frames: int, `T`.
        offsets: optional float `[B, T]` in [0, 1); default ½ (deterministic).
    """
    num_frames = tf.cast(num_frames, tf.float32)
    if offsets is None:
        offsets = tf.fill([tf.shape(video_matrix)[0], frames], 0.5)
    positions = (tf.range(frames, dtype=tf.float32)[tf.newaxis, :] + offsets) / float(frames)
    indices = tf.cast(tf.floor(positions * num_frames[:, tf.newaxis]), tf.int32)
    last = tf.maximum(tf.cast(num_frames, tf.int32) - 1, 0)[:, tf.newaxis]
    indices = tf.minimum(tf.maximum(indices, 0), last)
    return tf.gather(video_matrix, indices, batch_dims=1)


def random_offsets(batch_size, frames, seed):
    """`[B, T]` offsets in [0, 1) from a stateless seed (`[2]` int), for training."""
    return tf.random.stateless_uniform([batch_size, frames], seed=seed)


def resample_codes(codes, num_frames, frames, offsets=None):
    """uint8 codes `[B, F, D]` + counts `[B]` → the 8-bit model input `{FRAME_CODES: uint8
    [B, frames, D], NUM_FRAMES: int32 [B]}`: the frames resampled as `resample_frames` does,
    still codes, and `frames` real rows per video (0 for a video without frames, whose rows
    the model zeroes)."""
    picked = resample_frames(codes, num_frames, frames, offsets)
    return {FRAME_CODES: picked, NUM_FRAMES: tf.where(tf.cast(num_frames, tf.int32) > 0, frames, 0)}
