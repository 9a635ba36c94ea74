"""`tf.data` readers of the published YouTube-8M records (`records.py`), local or `gs://`.

Three record readers give what the starter code's readers give, as dicts of batches:

- `frame_records`: frame-level `SequenceExample`s → `video_ids` `[B]`, `video_matrix`
  `[B, max_frames, D]` (dequantized, zero after the last frame; or, with `dequantize=False`,
  the uint8 codes, code 0 after the last frame), `num_frames` `[B]`, `labels`
  `[B, N]` (multi-hot); `D` = the sizes of `feature_names` concatenated (rgb 1024, audio 128 as
  published; other extractors' sizes are given as `feature_sizes`, `config.data.feature_sizes`).
- `video_level_records`: video-level `Example`s → the same keys, `video_matrix` `[B, D]`.
- `segment_records`: segment-rated `SequenceExample`s → one element per rated 5-frame segment:
  `video_ids`, `segment_start_times`, `video_matrix` `[B, 5, D]`, `num_frames`, `labels` (the
  rated scores) and `label_weights` (1 where rated), like the starter code with
  `segment_labels=True`.

Records are parsed a batch at a time (`tf.io.parse_sequence_example`); frames are decoded,
concatenated and padded as uint8 codes and dequantized in one fused (XLA) pass, because the
float work, not the parsing, is most of a reader's cost (`bench/yt8m_reader.py` compares with
the starter code's reader).

`make_frame_dataset` and `make_video_level_dataset` turn them into the `(features, multi_hot)`
pairs that training and evaluation consume: frames resampled to a fixed `T` (`frames.py`). The
frame-level features stay uint8 codes up to the model, which dequantizes them itself
(`cma_tf.backbones.video.FrameDequantization`): the host copies, and the accelerator
receives, a byte per feature instead of four.
"""

from typing import Mapping, Optional, Sequence

import tensorflow as tf

from cma_tf.data.yt8m import records
from cma_tf.data.records import list_matching_files
from cma_tf.data.yt8m.frames import FRAME_CODES, NUM_FRAMES, random_offsets, resample_codes, resample_frames
from cma_tf.errors import ConfigError

DEFAULT_FRAME_FEATURES = (records.RGB, records.AUDIO)
DEFAULT_VIDEO_FEATURES = (records.MEAN_RGB, records.MEAN_AUDIO)


def feature_sizes_of(feature_sizes: Optional[Mapping[str, int]] = None) -> dict:
    """Each feature's size (values per frame): the published ones (`records.FEATURE_SIZES`)
    with `feature_sizes` (`config.data.feature_sizes`, for features of other extractors) over them."""
    return {**records.FEATURE_SIZES, **dict(feature_sizes or {})}


def feature_size(feature_names: Sequence[str], feature_sizes: Optional[Mapping[str, int]] = None) -> int:
    """`D`: the width of the concatenated features (`feature_sizes`: see `feature_sizes_of`)."""
    sizes = feature_sizes_of(feature_sizes)
    unknown = [name for name in feature_names if name not in sizes]
    if unknown:
        raise ConfigError(f"unknown YouTube-8M features {unknown} (known: {', '.join(sizes)})")
    return sum(sizes[name] for name in feature_names)


def label_range_check(labels, num_classes, video_ids, field=records.LABELS):
    """An op that fails when a label id of `labels` (`[B, L]`, −1 = none) is ≥ `num_classes`,
    its message naming the first such record's `id` (`video_ids` `[B]`), the field, the label id
    and the vocabulary size."""
    outside = tf.reshape(labels >= tf.cast(num_classes, labels.dtype), [-1])
    first = tf.argmax(tf.cast(outside, tf.int32), output_type=tf.int32)
    width = tf.maximum(tf.shape(labels)[-1], 1)
    message = tf.strings.join([
        "YouTube-8M record with id ", tf.gather(video_ids, first // width),
        f": field '{field}' has label id ", tf.strings.as_string(tf.gather(tf.reshape(labels, [-1]), first)),
        f", outside the {num_classes}-class vocabulary (ids 0..{num_classes - 1})",
    ])
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(outside)), [message], summarize=1)


def multi_hot(labels, num_classes, video_ids=None):
    """Dense padded label ids `[B, L]` (−1 = none) → float32 `[B, N]`; ids ≥ N are an error
    naming the record's id (`video_ids` `[B]`, when given)."""
    if video_ids is None:
        video_ids = tf.fill(tf.shape(labels)[:1], "?")
    with tf.control_dependencies([label_range_check(labels, num_classes, video_ids)]):
        return tf.reduce_max(tf.one_hot(labels, num_classes, dtype=tf.float32), axis=1)


def _dense_labels(sparse):
    # A batch whose records all have no label gives a [B, 0] matrix; one_hot of it is [B, 0, N].
    dense = tf.sparse.to_dense(sparse, default_value=-1)
    return tf.pad(dense, [[0, 0], [0, 1]], constant_values=-1)


def _frame_codes(sequences, feature_names, max_frames, lengths=None, check_sizes=True, feature_sizes=None):
    """Parsed frame feature lists (`[..., frames]` bytes) → uint8 codes `[..., ≤ max_frames, D]`,
    the features concatenated in `feature_names` order. `lengths` (per feature, `[B]`) are the
    videos' frame counts of a padded batch: the positions after them are padding ("").

    `check_sizes`: fail on a frame that is not the feature's size (`fixed_length` would zero-pad
    or cut it silently). It costs the batched training reader ~20 % of its frames/s (measured
    on 512 synthetic videos), so that reader, which reads the published data, skips it;
    serving requests and the per-video segment reader check; the checks before training
    (`validate.check_records`) read the first records of every shard."""
    codes, checks, sizes = [], [], feature_sizes_of(feature_sizes)
    for name in feature_names:
        frames, size = sequences[name][..., :max_frames], sizes[name]
        if check_sizes:
            right_size = tf.strings.length(frames) == size
            if lengths is not None:
                right_size |= ~tf.sequence_mask(lengths[name], tf.shape(frames)[-1])
            checks.append(tf.debugging.assert_equal(
                tf.reduce_all(right_size), True,
                message=f"YouTube-8M field '{name}' holds a frame that is not {size} bytes",
            ))
        codes.append(tf.io.decode_raw(frames, tf.uint8, fixed_length=size))
    # The checks run beside the decoding (a dependency of the result, not of the decoding).
    with tf.control_dependencies(checks):
        return tf.concat(codes, axis=-1) if len(codes) > 1 else tf.identity(codes[0])


def parse_frame_examples(
    serialized, num_classes, feature_names=DEFAULT_FRAME_FEATURES, max_frames=records.MAX_FRAMES, dequantize=True,
    check_frame_sizes=False, feature_sizes=None, require_frames=False,
):
    """A batch `[B]` of serialized frame-level `SequenceExample`s → the `frame_records` dict.

    With `dequantize=False`, `video_matrix` holds the uint8 codes (zero codes after the last
    frame), for callers that pick frames before dequantizing (`make_frame_dataset`).
    `num_classes=None` skips the labels (serving requests need none): no `labels` key.
    `check_frame_sizes`: fail on a frame of the wrong byte size (see `_frame_codes`).
    `require_frames` (training, evaluation): fail on a video without frames, naming its id, which
    would otherwise be scored as if it were one (serving requests flag it per item)."""
    # Serving requests (`num_classes=None`) need not carry an id.
    context_features = {records.ID: tf.io.FixedLenFeature([], tf.string, default_value="" if num_classes is None else None)}
    if num_classes is not None:
        context_features[records.LABELS] = tf.io.VarLenFeature(tf.int64)
    context, sequences, lengths = tf.io.parse_sequence_example(
        serialized,
        context_features=context_features,
        sequence_features={name: tf.io.FixedLenSequenceFeature([], tf.string) for name in feature_names},
    )
    num_frames = tf.minimum(tf.cast(lengths[feature_names[0]], tf.int32), max_frames)
    checks = [] if not require_frames else [frames_present_check(num_frames, context[records.ID], feature_names[0])]
    # Concatenating and padding the 1-byte codes costs a quarter of doing it on floats.
    codes = _frame_codes(sequences, feature_names, max_frames, lengths, check_frame_sizes, feature_sizes)
    codes = tf.pad(codes, [[0, 0], [0, max_frames - tf.shape(codes)[1]], [0, 0]])
    with tf.control_dependencies(checks):
        codes = tf.ensure_shape(codes, [None, max_frames, feature_size(feature_names, feature_sizes)])
    parsed = {
        "video_ids": context[records.ID],
        "video_matrix": dequantize_frames(codes, num_frames) if dequantize else codes,
        "num_frames": num_frames,
    }
    if num_classes is not None:
        parsed["labels"] = multi_hot(_dense_labels(context[records.LABELS]), num_classes, context[records.ID])
    return parsed


def frames_present_check(num_frames, video_ids, field):
    """An op that fails when a video of the batch (`num_frames` `[B]`) has no frames, naming the
    first such record's id: an empty video would be scored as if it were one."""
    empty = num_frames <= 0
    first = tf.argmax(tf.cast(empty, tf.int32), output_type=tf.int32)
    message = tf.strings.join([
        "YouTube-8M record with id ", tf.gather(video_ids, first),
        f" has no frames (field '{field}' is empty): remove it from the records",
    ])
    return tf.debugging.Assert(tf.logical_not(tf.reduce_any(empty)), [message], summarize=1)


def mask_and_dequantize(codes, num_frames):
    """uint8 codes `[B, F, D]` → floats, zero from each video's `num_frames` on (plain ops:
    serving graphs use this one, as TF Serving need not run XLA)."""
    present = tf.sequence_mask(num_frames, tf.shape(codes)[1])
    return tf.where(present[:, :, tf.newaxis], records.dequantize(codes), 0.0)


# XLA fuses the cast, scale, shift and mask into one pass (the floats are most of the reader's work).
dequantize_frames = tf.function(mask_and_dequantize, jit_compile=True)


def parse_video_level_examples(serialized, num_classes, feature_names=DEFAULT_VIDEO_FEATURES, feature_sizes=None):
    """A batch `[B]` of serialized video-level `Example`s → the `video_level_records` dict
    (`num_classes=None`: no `labels`, as `parse_frame_examples`)."""
    spec = {records.ID: tf.io.FixedLenFeature([], tf.string, default_value="" if num_classes is None else None)}
    if num_classes is not None:
        spec[records.LABELS] = tf.io.VarLenFeature(tf.int64)
    sizes = feature_sizes_of(feature_sizes)
    for name in feature_names:
        spec[name] = tf.io.FixedLenFeature([sizes[name]], tf.float32)
    parsed = tf.io.parse_example(serialized, spec)
    matrix = tf.concat([parsed[name] for name in feature_names], axis=-1)
    result = {
        "video_ids": parsed[records.ID],
        "video_matrix": matrix,
        "num_frames": tf.ones_like(parsed[records.ID], dtype=tf.int32),
    }
    if num_classes is not None:
        result["labels"] = multi_hot(_dense_labels(parsed[records.LABELS]), num_classes, parsed[records.ID])
    return result


def parse_labels(serialized, frame_level=True):
    """Only the video-level label ids of a batch of records (sparse), for the label graph."""
    spec = {records.LABELS: tf.io.VarLenFeature(tf.int64)}
    if frame_level:
        context, _, _ = tf.io.parse_sequence_example(serialized, context_features=spec)
        return context[records.LABELS]
    return tf.io.parse_example(serialized, spec)[records.LABELS]


def _record_dataset(files, shuffle, seed, deterministic, input_context=None, cycle_length=None):
    files = list(files)
    if not files:
        raise ValueError("no YouTube-8M record files given")
    dataset = tf.data.Dataset.from_tensor_slices(files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=False)
    return dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=cycle_length or min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=deterministic,
    )


def _parsed_batches(files, parse, batch_size, shuffle_buffer, seed, deterministic, repeat, input_context, drop_remainder):
    """Records of `files` (shuffled when `shuffle_buffer`), batched, then `parse`d a batch at a time."""
    dataset = _record_dataset(files, shuffle_buffer > 0, seed, deterministic, input_context)
    if shuffle_buffer:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=False)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    dataset = dataset.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return _with_options(dataset, deterministic)


def frame_records(
    files, num_classes, batch_size, feature_names=DEFAULT_FRAME_FEATURES, max_frames=records.MAX_FRAMES,
    shuffle_buffer=0, seed=0, deterministic=True, repeat=False, input_context=None, drop_remainder=False,
    dequantize=True, feature_sizes=None, require_frames=False,
):
    """Batches of frame-level records as dicts (see the module docstring; `require_frames`: see
    `parse_frame_examples`)."""
    feature_size(feature_names, feature_sizes)
    return _parsed_batches(
        files,
        lambda serialized: parse_frame_examples(
            serialized, num_classes, tuple(feature_names), max_frames, dequantize, feature_sizes=feature_sizes,
            require_frames=require_frames,
        ),
        batch_size, shuffle_buffer, seed, deterministic, repeat, input_context, drop_remainder,
    )


def video_level_records(
    files, num_classes, batch_size, feature_names=DEFAULT_VIDEO_FEATURES,
    shuffle_buffer=0, seed=0, deterministic=True, repeat=False, input_context=None, drop_remainder=False,
    feature_sizes=None,
):
    """Batches of video-level records as dicts (see the module docstring)."""
    feature_size(feature_names, feature_sizes)
    return _parsed_batches(
        files,
        lambda serialized: parse_video_level_examples(serialized, num_classes, tuple(feature_names), feature_sizes),
        batch_size, shuffle_buffer, seed, deterministic, repeat, input_context, drop_remainder,
    )


def _segments_of_one_video(serialized, num_classes, feature_names, segment_size, max_frames, feature_sizes=None):
    context, sequences = tf.io.parse_single_sequence_example(
        serialized,
        context_features={
            records.ID: tf.io.FixedLenFeature([], tf.string),
            records.SEGMENT_START_TIMES: tf.io.VarLenFeature(tf.int64),
            records.SEGMENT_LABELS: tf.io.VarLenFeature(tf.int64),
            records.SEGMENT_SCORES: tf.io.VarLenFeature(tf.float32),
        },
        sequence_features={name: tf.io.FixedLenSequenceFeature([], tf.string) for name in feature_names},
    )
    codes = _frame_codes(sequences, feature_names, max_frames, feature_sizes=feature_sizes)
    num_frames = tf.shape(codes)[0]
    # As the starter code: the video's first `max_frames` frames, zeros after its last frame.
    codes = tf.pad(codes, [[0, max_frames - num_frames], [0, 0]])
    matrix = dequantize_frames(codes[tf.newaxis], num_frames[tf.newaxis])[0]
    starts = context[records.SEGMENT_START_TIMES].values
    unique_starts, segment_index = tf.unique(starts, out_idx=tf.int64)
    frame_index = unique_starts[:, tf.newaxis] + tf.range(segment_size, dtype=tf.int64)[tf.newaxis, :]
    checks = [
        tf.debugging.assert_less(
            frame_index, tf.cast(max_frames, tf.int64),
            message=f"YouTube-8M field '{records.SEGMENT_START_TIMES}': a segment runs past frame {max_frames}",
        ),
        # A segment with no frame of the video in it would be scored on zeros as if it were real.
        tf.debugging.Assert(
            tf.reduce_all(unique_starts < tf.cast(num_frames, tf.int64)),
            [tf.strings.join([
                "YouTube-8M record with id ", context[records.ID],
                f": field '{records.SEGMENT_START_TIMES}' has a segment after the video's last frame",
            ])], summarize=1,
        ),
    ]
    with tf.control_dependencies(checks):
        segments = tf.gather(matrix, frame_index)
    count = tf.shape(unique_starts, out_type=tf.int64)[0]
    label_ids = context[records.SEGMENT_LABELS].values
    check = label_range_check(label_ids[tf.newaxis], num_classes, context[records.ID][tf.newaxis], records.SEGMENT_LABELS)
    with tf.control_dependencies([check]):
        indices = tf.stack([segment_index, label_ids], axis=-1)
    shape = tf.stack([count, tf.cast(num_classes, tf.int64)])
    scores = context[records.SEGMENT_SCORES].values
    labels = tf.scatter_nd(indices, scores, shape)
    weights = tf.scatter_nd(indices, tf.ones_like(scores), shape)
    return {
        "video_ids": tf.fill([count], context[records.ID]),
        "segment_start_times": unique_starts,
        "video_matrix": segments,
        "num_frames": tf.fill([count], segment_size),
        "labels": tf.minimum(labels, 1.0),
        "label_weights": tf.minimum(weights, 1.0),
    }


def segment_records(
    files, num_classes, batch_size, feature_names=DEFAULT_FRAME_FEATURES,
    segment_size=records.SEGMENT_SIZE, deterministic=True, max_frames=records.MAX_FRAMES, feature_sizes=None,
):
    """Batches of the rated segments of segment-rated records (see the module docstring). A
    segment that runs past the video's last frame gets zero rows there, as in the starter code;
    one that starts after it (no frame of the video in it) is an error naming the record."""
    feature_size(feature_names, feature_sizes)
    dataset = _record_dataset(files, False, 0, deterministic)
    dataset = dataset.map(
        lambda serialized: _segments_of_one_video(
            serialized, num_classes, tuple(feature_names), segment_size, max_frames, feature_sizes
        ),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic,
    )
    dataset = dataset.unbatch().batch(batch_size)
    return _with_options(dataset, deterministic)


def _with_options(dataset, deterministic):
    options = tf.data.Options()
    options.deterministic = deterministic
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def resample_and_dequantize(codes, num_frames, frames, offsets=None, dequantize=dequantize_frames):
    """uint8 codes `[B, F, D]` + counts `[B]` → float `[B, frames, D]`: each video's frames
    resampled (`frames.py`) from the codes and only the picked ones dequantized; zeros for a
    video without frames. The serving graph passes `dequantize=mask_and_dequantize` (no XLA)."""
    picked = resample_codes(codes, num_frames, frames, offsets)
    return dequantize(picked[FRAME_CODES], picked[NUM_FRAMES])


def make_frame_dataset(
    files, num_classes, frames, batch_size, training, feature_names=DEFAULT_FRAME_FEATURES,
    max_frames=records.MAX_FRAMES, seed=0, shuffle_buffer=1024, deterministic=False, repeat=False,
    input_context=None, codes=True, feature_sizes=None,
):
    """`(inputs, multi_hot [B, N])` for `fit` / evaluation: each video's frames resampled to
    `frames` positions (a random frame of each bin when training, the centre one otherwise;
    `frames.py`). `inputs` is the 8-bit model input `{"frame_codes": uint8 [B, frames, D],
    "num_frames": int32 [B]}` (`frames.resample_codes`), which the model dequantizes, or with
    `codes=False` the float features `[B, frames, D]` dequantized here (the same values).
    `batch_size` is global; under `input_context` each pipeline yields its replica's share."""
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    dataset = frame_records(
        files, num_classes, batch_size, feature_names, max_frames,
        shuffle_buffer=shuffle_buffer if training else 0, seed=seed, deterministic=deterministic,
        repeat=repeat, input_context=input_context, drop_remainder=training, dequantize=False,
        feature_sizes=feature_sizes, require_frames=True,
    )
    resample = resample_codes if codes else resample_and_dequantize

    def resampled(batch, offsets=None):
        return resample(batch["video_matrix"], batch["num_frames"], frames, offsets), batch["labels"]

    if training:
        dataset = dataset.enumerate().map(
            lambda step, batch: resampled(
                batch,
                random_offsets(tf.shape(batch["video_matrix"])[0], frames, tf.stack([tf.cast(seed, tf.int64), step])),
            ),
            num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic,
        )
    else:
        dataset = dataset.map(resampled, num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    return dataset.prefetch(tf.data.AUTOTUNE)


def make_video_level_dataset(
    files, num_classes, batch_size, training, feature_names=DEFAULT_VIDEO_FEATURES, seed=0,
    shuffle_buffer=1024, deterministic=False, repeat=False, input_context=None, feature_sizes=None,
):
    """`(features [B, 1, D], multi_hot [B, N])`: a video-level record is a one-frame sequence."""
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    dataset = video_level_records(
        files, num_classes, batch_size, feature_names, shuffle_buffer=shuffle_buffer if training else 0,
        seed=seed, deterministic=deterministic, repeat=repeat, input_context=input_context,
        drop_remainder=training, feature_sizes=feature_sizes,
    )
    return dataset.map(lambda batch: (batch["video_matrix"][:, tf.newaxis, :], batch["labels"]))


def segment_inputs(batch, frames):
    """A `segment_records` batch → model inputs `[B, frames, D]` (each 5-frame segment resampled)."""
    return resample_frames(batch["video_matrix"], batch["num_frames"], frames)


def list_record_files(data_dir: str, split: str) -> list:
    """The sorted record files of one split (`<split>*.tfrecord`), with an error naming the pattern."""
    return list_matching_files(records.split_pattern(data_dir, split), f"YouTube-8M records for split '{split}'")
