"""The tf.data input pipeline for image TFRecords (format in `records.py`).

`make_image_dataset` yields `(images, multi_hot)` batches:

    images     float32 [B, S, S, 3]  RGB in 0..255, NOT normalised (the model normalises)
    multi_hot  float32 [B, N]        1.0 for every label of the image

Training augmentation follows the paper: a random crop (area fraction in [0.3, 1], aspect ratio
in [3/4, 4/3]) resized to S x S, then a random horizontal flip. Evaluation only resizes.
Augmentation uses stateless random ops whose per-image seeds come from a seeded
`tf.data.Dataset.random`, so `deterministic=True, seed=s` reproduces the same batches.
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

from cma_tf.data import records

AUTOTUNE = tf.data.AUTOTUNE
DEFAULT_SHUFFLE_BUFFER = 2048
# Fixed (not AUTOTUNE) so that the deterministic record order does not depend on the core count.
MAX_INTERLEAVE_CYCLE = 8

CROP_AREA_RANGE = (0.3, 1.0)
CROP_ASPECT_RANGE = (3.0 / 4.0, 4.0 / 3.0)
CROP_MAX_ATTEMPTS = 100
# The whole image is the "object"; the area range alone constrains the crop.
CROP_MIN_OBJECT_COVERED = 0.0
WHOLE_IMAGE_BOX = [[[0.0, 0.0, 1.0, 1.0]]]

FilesArg = Union[str, Sequence[str]]


def resolve_files(file_pattern_or_files: FilesArg) -> list:
    """The sorted files of a glob pattern, or the given file list; a clear error if none."""
    if isinstance(file_pattern_or_files, (str, bytes)):
        pattern = file_pattern_or_files
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise FileNotFoundError(f"No TFRecord files match {pattern!r}")
        return files
    files = [str(f) for f in file_pattern_or_files]
    if not files:
        raise FileNotFoundError("The list of TFRecord files is empty")
    return files


def count_records(file_pattern_or_files: FilesArg) -> int:
    """Number of records in the files (reads them all)."""
    dataset = tf.data.TFRecordDataset(resolve_files(file_pattern_or_files))
    return int(dataset.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def labels_to_multi_hot(labels: tf.Tensor, num_classes: int) -> tf.Tensor:
    """float32 [..., N] multi-hot from int64 label ids [..., L]; -1 padding and repeats ignored.

    Raises InvalidArgumentError naming the label field if an id is >= num_classes.
    """
    check = tf.debugging.assert_less(
        labels,
        tf.constant(num_classes, labels.dtype),
        message=f"{records.LABELS} holds a label id >= num_classes ({num_classes}); "
        "the records do not match this vocabulary",
    )
    with tf.control_dependencies([check]):
        # one_hot of a negative id (the -1 padding) is all zeros.
        one_hot = tf.one_hot(labels, num_classes, dtype=tf.float32)
    return tf.minimum(tf.reduce_sum(one_hot, axis=-2), 1.0)


def decode_image(encoded: tf.Tensor) -> tf.Tensor:
    """uint8 [H, W, 3] from JPEG/PNG/GIF bytes: TensorFlow's decoders, whose conversions of gray,
    16-bit, palette, alpha and CMYK images `decode.py` writes out for every other format."""
    image = tf.io.decode_image(encoded, channels=3, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def resize(image: tf.Tensor, image_size: int) -> tf.Tensor:
    """float32 [S, S, 3] bilinear resize, values kept in 0..255."""
    resized = tf.image.resize(image, [image_size, image_size], method="bilinear")
    resized = tf.cast(resized, tf.float32)
    resized.set_shape([image_size, image_size, 3])
    return resized


def decode_and_resize(encoded: tf.Tensor, image_size: int) -> tf.Tensor:
    """The evaluation input of one encoded image: float32 [S, S, 3], RGB 0..255 (also what the
    exported `serving_default` signature does in its graph)."""
    return resize(decode_image(encoded), image_size)


def _crop_window(image_shape: tf.Tensor, seed: tf.Tensor):
    """`(begin, size)` of a random crop: area 30-100 %, aspect 3/4-4/3 (the paper's "random crop")."""
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_shape,
        bounding_boxes=tf.constant(WHOLE_IMAGE_BOX, tf.float32),
        seed=seed,
        min_object_covered=CROP_MIN_OBJECT_COVERED,
        aspect_ratio_range=CROP_ASPECT_RANGE,
        area_range=CROP_AREA_RANGE,
        max_attempts=CROP_MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True,
    )
    return begin, size


def decode_and_random_crop(encoded: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """uint8 random crop of an encoded image. A JPEG is decoded only inside the crop window
    (`decode_and_crop_jpeg` after reading the size from its header), which saves a third of
    the decoding work on average; other formats are decoded whole, then sliced."""

    def jpeg():
        begin, size = _crop_window(tf.io.extract_jpeg_shape(encoded), seed)
        window = tf.stack([begin[0], begin[1], size[0], size[1]])
        return tf.io.decode_and_crop_jpeg(encoded, window, channels=3)

    def other():
        image = decode_image(encoded)
        begin, size = _crop_window(tf.shape(image), seed)
        return tf.slice(image, begin, size)

    cropped = tf.cond(tf.io.is_jpeg(encoded), jpeg, other)
    cropped.set_shape([None, None, 3])
    return cropped


def random_crop_and_flip(encoded: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """The training augmentation with stateless ops: random-area crop, resize, random flip.

    `encoded` is JPEG/PNG bytes; `seed` an int [2] tensor: the same seed gives the same crop
    and flip.
    """
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, num=2))
    cropped = resize(decode_and_random_crop(encoded, crop_seed), image_size)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def parse_record(serialized: tf.Tensor):
    """(encoded image bytes, int64 [L] label ids) from one serialized example of our format."""
    parsed = records.parse_image_example(serialized)
    return parsed[records.ENCODED], parsed[records.LABELS]


def _parse(serialized: tf.Tensor, num_classes: int, parse=parse_record):
    """(encoded image bytes, float32 [N] multi-hot) from one serialized example."""
    encoded, labels = parse(serialized)
    return encoded, labels_to_multi_hot(labels, num_classes)


def _training_example(serialized, element_seed, num_classes: int, image_size: int, parse=parse_record):
    encoded, multi_hot = _parse(serialized, num_classes, parse)
    return random_crop_and_flip(encoded, image_size, element_seed), multi_hot


def _eval_example(serialized, num_classes: int, image_size: int, parse=parse_record):
    encoded, multi_hot = _parse(serialized, num_classes, parse)
    return decode_and_resize(encoded, image_size), multi_hot


def _file_dataset(files: list, training: bool, seed: Optional[int]) -> tf.data.Dataset:
    """The file names, shuffled only when training."""
    return tf.data.Dataset.list_files(files, shuffle=training, seed=seed)


def _read_records(files: list, training: bool, seed: Optional[int], deterministic: bool):
    return _file_dataset(files, training, seed).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), MAX_INTERLEAVE_CYCLE),
        block_length=1,
        num_parallel_calls=AUTOTUNE,
        deterministic=deterministic,
    )


def _augment_seeds(seed: Optional[int]) -> tf.data.Dataset:
    """An endless stream of int64 [2] per-image seeds, new every epoch, reproducible from `seed`."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def make_image_dataset(
    file_pattern_or_files: FilesArg,
    num_classes: int,
    image_size: int,
    batch_size: int,
    training: bool,
    seed: Optional[int] = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    deterministic: bool = False,
    drop_remainder: Optional[bool] = None,
    repeat: bool = False,
    input_context: Optional[tf.distribute.InputContext] = None,
    parse=parse_record,
) -> tf.data.Dataset:
    """Batches of (images float32 [B,S,S,3] in 0..255, multi_hot float32 [B,N]).

    Args:
      file_pattern_or_files: a glob pattern (e.g. `records.split_pattern(dir, "train")`) or a list
        of TFRecord files.
      num_classes: N, the vocabulary size; a label id >= N raises an error at iteration time.
      image_size: S, the side of the square output images.
      batch_size: B.
      training: shuffle files and records and augment (random crop + flip); else resize only.
      seed: makes shuffling and augmentation reproducible (with `deterministic=True`).
      shuffle_buffer: record shuffle buffer size (training only).
      deterministic: keep element order fixed across parallel reads and maps.
      drop_remainder: drop the last partial batch; defaults to `training`.
      repeat: repeat forever (reshuffled and re-augmented every epoch).
      input_context: for `strategy.distribute_datasets_from_function`: this pipeline reads
        every `num_input_pipelines`-th shard and makes per-replica batches. Without it (Keras
        `fit` under a strategy) tf.data's AUTO shard policy splits the shards across workers.
      parse: one serialized record → (encoded image bytes, int64 [L] label ids); default our
        format (`records.py`); `tfds_records.example_parser` reads TFDS-prepared shards.
    """
    files = resolve_files(file_pattern_or_files)
    if input_context is not None and input_context.num_input_pipelines > 1:
        pipelines = input_context.num_input_pipelines
        if len(files) < pipelines:
            raise ValueError(
                f"{len(files)} shards cannot feed {pipelines} input pipelines: write at least {pipelines} shards"
            )
        files = files[input_context.input_pipeline_id::pipelines]
    if input_context is not None:
        batch_size = input_context.get_per_replica_batch_size(batch_size)
    if drop_remainder is None:
        drop_remainder = training
    dataset = _read_records(files, training, seed, deterministic)
    if training:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if training:
        dataset = tf.data.Dataset.zip((dataset, _augment_seeds(seed))).map(
            lambda serialized, element_seed: _training_example(
                serialized, element_seed, num_classes, image_size, parse
            ),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    else:
        dataset = dataset.map(
            lambda serialized: _eval_example(serialized, num_classes, image_size, parse),
            num_parallel_calls=AUTOTUNE,
            deterministic=deterministic,
        )
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    options = tf.data.Options()
    options.experimental_deterministic = deterministic
    return dataset.with_options(options).prefetch(AUTOTUNE)
