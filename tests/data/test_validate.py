"""Data errors name the shard, the record and the field: directly and from a training run."""

import io
import os

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from cma_tf.data import images, records
from cma_tf.data.validate import first_bad_record
from cma_tf.errors import DataError


def png_bytes(seed):
    pixels = np.random.default_rng(seed).integers(0, 255, (16, 16, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_records(path, examples):
    records.write_shard(path, examples)
    return path


def good_examples(n, offset=0):
    return [records.encode_image_example(png_bytes(i), "png", 16, 16, f"img{offset + i}", [i % 3]) for i in range(n)]


def test_clean_shards_have_no_bad_record(tmp_path):
    path = write_records(str(tmp_path / "a.tfrecord"), good_examples(4))
    assert first_bad_record([path], 3) is None


def test_corrupt_bytes_name_the_shard_and_record(tmp_path):
    path = write_records(str(tmp_path / "a.tfrecord"), good_examples(5))
    data = bytearray(open(path, "rb").read())
    # Records are: 8-byte length, 4-byte crc, payload, 4-byte crc. Flip a byte inside record 3.
    offset = 0
    for _ in range(3):
        length = int.from_bytes(data[offset:offset + 8], "little")
        offset += 16 + length
    data[offset + 12 + 5] ^= 0xFF
    open(path, "wb").write(bytes(data))
    message = first_bad_record([path], 3)
    assert message.startswith(f"{path}: record 3 and on cannot be read")


def test_undecodable_image_names_the_source_id_and_field(tmp_path):
    examples = good_examples(2) + [records.encode_image_example(b"not an image", "jpeg", 1, 1, "broken-7", [0])]
    path = write_records(str(tmp_path / "a.tfrecord"), examples)
    message = first_bad_record([path], 3)
    assert message.startswith(f"{path}: record 2: source_id 'broken-7': field 'image/encoded' does not decode")


def test_label_out_of_range_names_the_field(tmp_path):
    path = write_records(str(tmp_path / "a.tfrecord"), good_examples(2) + [records.encode_image_example(png_bytes(9), "png", 16, 16, "x", [5])])
    assert "field 'image/class/label' has id 5 outside [0, 3)" in first_bad_record([path], 3)


def test_input_context_splits_shards_and_batches_per_replica(tmp_path):
    files = [write_records(str(tmp_path / f"s{i}.tfrecord"), good_examples(4, offset=4 * i)) for i in range(4)]
    seen = []
    for pipeline in range(2):
        context = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline, num_replicas_in_sync=2)
        dataset = images.make_image_dataset(files, 3, 16, batch_size=4, training=False, input_context=context)
        batches = list(dataset)
        assert all(batch[0].shape[0] == 2 for batch in batches)  # global 4 over 2 replicas
        seen.append(sum(int(batch[0].shape[0]) for batch in batches))
    assert seen == [8, 8]


def test_training_on_a_corrupt_shard_reports_it(tmp_path):
    from tests.test_cli import tiny_config

    from cma_tf.datasets.demo import generate_demo_dataset
    from cma_tf.training.trainer import train_and_evaluate

    data_dir = str(tmp_path / "data")
    generate_demo_dataset(data_dir, num_train=24, num_val=8, image_size=32, seed=0, num_shards=2, progress=False)
    bad = records.shard_path(data_dir, "train", 1, 2)
    data = bytearray(open(bad, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(bad, "wb").write(bytes(data))
    config = tiny_config("plain", data_dir)
    config.train.epochs = 1
    with pytest.raises(DataError, match=f"{os.path.basename(bad)}: record \\d+ and on cannot be read"):
        train_and_evaluate(config, str(tmp_path / "run"))
