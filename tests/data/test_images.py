"""Tests for the image TFRecord input pipeline (cma_tf.data.images)."""

import io

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cma_tf.data import images
from cma_tf.data import records
from cma_tf.datasets import demo

NUM_TRAIN = 40
NUM_VAL = 16
STORED_SIZE = 48
NUM_CLASSES = len(demo.DEMO_LABELS)
BATCH = 8
SEED = 7

REFERENCE_SPEC = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "image/class/label": tf.io.VarLenFeature(tf.int64),
}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    out_dir = str(tmp_path_factory.mktemp("demo"))
    demo.generate_demo_dataset(out_dir, num_train=NUM_TRAIN, num_val=NUM_VAL,
                               image_size=STORED_SIZE, seed=0, num_shards=2, progress=False)
    return out_dir


def _reference(files):
    """{pixel bytes: numpy multi-hot} from plain parse_single_example + PIL decoding."""
    out = {}
    for serialized in tf.data.TFRecordDataset(files):
        example = tf.io.parse_single_example(serialized, REFERENCE_SPEC)
        pixels = np.asarray(Image.open(io.BytesIO(example["image/encoded"].numpy())).convert("RGB"))
        multi_hot = np.zeros([NUM_CLASSES], np.float32)
        multi_hot[example["image/class/label"].values.numpy()] = 1.0
        out[pixels.tobytes()] = multi_hot
    return out


def _collect(dataset):
    return [(x.numpy(), y.numpy()) for x, y in dataset]


def _assert_same_batches(first, second):
    assert len(first) == len(second)
    for (x1, y1), (x2, y2) in zip(first, second):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def _train(data_dir, **overrides):
    kwargs = dict(num_classes=NUM_CLASSES, image_size=32, batch_size=BATCH, training=True,
                  seed=SEED, deterministic=True)
    kwargs.update(overrides)
    return images.make_image_dataset(records.split_pattern(data_dir, "train"), **kwargs)


def _eval(data_dir, **overrides):
    kwargs = dict(num_classes=NUM_CLASSES, image_size=STORED_SIZE, batch_size=BATCH - 2,
                  training=False, deterministic=True)
    kwargs.update(overrides)
    return images.make_image_dataset(records.list_shards(data_dir, "val"), **kwargs)


def _write_records(path, examples):
    records.write_shard(str(path), examples)
    return [str(path)]


def _png(pixels):
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def test_shapes_and_dtypes(data_dir):
    for dataset, size in ((_train(data_dir), 32), (_eval(data_dir), STORED_SIZE)):
        x, y = next(iter(dataset))
        assert x.dtype == tf.float32 and y.dtype == tf.float32
        assert x.shape[1:] == (size, size, 3) and y.shape[1:] == (NUM_CLASSES,)
        assert float(tf.reduce_min(x)) >= 0.0 and float(tf.reduce_max(x)) <= 255.0
        assert float(tf.reduce_max(x)) > 1.0  # not normalised
        assert set(np.unique(y.numpy())) <= {0.0, 1.0}


def test_element_spec_is_static(data_dir):
    x_spec, y_spec = _train(data_dir).element_spec
    assert x_spec.shape.as_list() == [BATCH, 32, 32, 3]
    assert y_spec.shape.as_list() == [BATCH, NUM_CLASSES]


def test_batch_counts_and_drop_remainder(data_dir):
    assert len(_collect(_train(data_dir))) == NUM_TRAIN // BATCH
    eval_batches = _collect(_eval(data_dir, batch_size=6))
    assert [len(x) for x, _ in eval_batches] == [6, 6, 4]
    assert len(_collect(_train(data_dir, batch_size=16, drop_remainder=False))) == 3


def test_eval_images_and_multi_hot_match_reference(data_dir):
    reference = _reference(records.list_shards(data_dir, "val"))
    seen = 0
    for x, y in _collect(_eval(data_dir)):
        for image, multi_hot in zip(x, y):
            # Same-size resize keeps the pixel values exactly.
            key = image.astype(np.uint8).tobytes()
            assert np.array_equal(image, image.astype(np.uint8))
            np.testing.assert_array_equal(multi_hot, reference[key])
            seen += 1
    assert seen == NUM_VAL


def test_training_labels_match_reference(data_dir):
    reference = sorted(map(tuple, _reference(records.list_shards(data_dir, "train")).values()))
    batches = _collect(_train(data_dir, batch_size=NUM_TRAIN))
    assert sorted(map(tuple, batches[0][1])) == reference


def test_deterministic_training_reproduces_batches(data_dir):
    _assert_same_batches(_collect(_train(data_dir)), _collect(_train(data_dir)))


def test_other_seed_changes_training_batches(data_dir):
    first, second = _collect(_train(data_dir)), _collect(_train(data_dir, seed=SEED + 1))
    assert not np.array_equal(first[0][0], second[0][0])


def test_training_augments(data_dir):
    """With the stored size, crops/flips must change most images relative to plain decoding."""
    reference = _reference(records.list_shards(data_dir, "train"))
    batches = _collect(_train(data_dir, image_size=STORED_SIZE))
    unchanged = sum(np.array_equal(x, x.astype(np.uint8)) and x.astype(np.uint8).tobytes()
                    in reference for batch, _ in batches for x in batch)
    assert unchanged < NUM_TRAIN // 4


def test_epochs_are_reshuffled_and_reaugmented(data_dir):
    dataset = _train(data_dir)
    first, second = _collect(dataset), _collect(dataset)
    assert not np.array_equal(first[0][0], second[0][0])


def test_repeat(data_dir):
    batches = _collect(_train(data_dir, repeat=True).take(NUM_TRAIN // BATCH * 2 + 1))
    assert len(batches) == NUM_TRAIN // BATCH * 2 + 1


def test_eval_has_no_randomness(data_dir):
    dataset = _eval(data_dir)
    _assert_same_batches(_collect(dataset), _collect(dataset))
    _assert_same_batches(_collect(dataset), _collect(_eval(data_dir, seed=123)))


def test_eval_resize(data_dir):
    x, _ = next(iter(_eval(data_dir, image_size=24)))
    assert x.shape[1:] == (24, 24, 3)


def test_out_of_range_label_names_the_field(tmp_path):
    pixels = np.zeros([8, 8, 3], np.uint8)
    files = _write_records(tmp_path / "bad.tfrecord", [
        records.encode_image_example(_png(pixels), "png", 8, 8, "bad", [1, NUM_CLASSES + 3]),
    ])
    for training in (False, True):
        dataset = images.make_image_dataset(files, NUM_CLASSES, 8, 1, training=training, seed=1)
        with pytest.raises(tf.errors.InvalidArgumentError, match="image/class/label"):
            _collect(dataset)


def test_padding_repeats_and_grayscale(tmp_path):
    gray = np.full([10, 12], 200, np.uint8)
    files = _write_records(tmp_path / "gray.tfrecord", [
        records.encode_image_example(_png(gray), "png", 10, 12, "gray", [2, 2, 5]),
        records.encode_image_example(_png(gray), "png", 10, 12, "none", []),
    ])
    x, y = next(iter(images.make_image_dataset(files, NUM_CLASSES, 16, 2, training=False)))
    assert x.shape == (2, 16, 16, 3)
    np.testing.assert_allclose(x.numpy(), 200.0)
    expected = np.zeros([NUM_CLASSES], np.float32)
    expected[[2, 5]] = 1.0  # label 2 given twice counts once
    np.testing.assert_array_equal(y.numpy()[0], expected)
    np.testing.assert_array_equal(y.numpy()[1], np.zeros([NUM_CLASSES], np.float32))


def test_labels_to_multi_hot_batched():
    labels = tf.constant([[0, 3, 3], [1, -1, -1]], tf.int64)
    expected = np.zeros([2, 4], np.float32)
    expected[0, [0, 3]] = 1.0
    expected[1, 1] = 1.0
    np.testing.assert_array_equal(images.labels_to_multi_hot(labels, 4).numpy(), expected)


def test_count_records_and_missing_files(data_dir, tmp_path):
    assert images.count_records(records.split_pattern(data_dir, "train")) == NUM_TRAIN
    assert images.count_records(records.list_shards(data_dir, "val")) == NUM_VAL
    with pytest.raises(FileNotFoundError, match="nothing-"):
        images.make_image_dataset(str(tmp_path / "nothing-*"), NUM_CLASSES, 8, 1, training=False)


def test_jpeg_crop_decodes_only_the_window_but_equals_decode_then_slice():
    import io

    from PIL import Image

    rng = np.random.default_rng(5)
    pixels = rng.integers(0, 255, (64, 80, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    # 4:4:4 chroma: with subsampled chroma, libjpeg's upsampling at the window's edge differs
    # by design between a cropped and a full decode (one edge row/column).
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, subsampling=0)
    encoded = tf.constant(buffer.getvalue())
    for seed in range(5):
        crop_seed = tf.constant([seed, 7], tf.int64)
        cropped = images.decode_and_random_crop(encoded, crop_seed).numpy()
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            [64, 80, 3], bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=crop_seed,
            min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.3, 1.0),
            max_attempts=100, use_image_if_no_bounding_boxes=True,
        )
        full = tf.io.decode_jpeg(encoded, channels=3).numpy()
        expected = full[begin[0]:begin[0] + size[0], begin[1]:begin[1] + size[1]]
        assert cropped.shape == expected.shape
        assert np.abs(cropped.astype(int) - expected.astype(int)).max() <= 1
