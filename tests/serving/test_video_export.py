"""Exported video models: serialized YouTube-8M records in, the Keras model's scores on the
evaluation pipeline out; a malformed record is flagged alone."""

import os

import numpy as np
import pytest
import tensorflow as tf

from cma_tf import factory
from cma_tf.config_base import get_paper_video_config
from cma_tf.data.yt8m import readers
from cma_tf.data.yt8m import records as yt8m_records
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.serving.saved_model import export_saved_model
from tests.helpers import keras_scores, numpy_frames, randomize_batch_norm

FRAMES = 16
NUM_CLASSES = 8
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m_serving"))
    write_synthetic_yt8m(out, num_classes=NUM_CLASSES, train_videos=8, validate_videos=12, test_videos=4,
                         num_shards=1, min_frames=5, max_frames=40, seed=5)
    return out


def video_config(data_format, data_dir, variant=None):
    variant = variant or ("cma_snet" if data_format == "yt8m_frame" else "self_attention_fc")
    config = get_paper_video_config(variant)
    config.data.format = data_format
    config.data.data_dir = os.path.join(data_dir, "frame" if data_format == "yt8m_frame" else "video")
    config.data.frames = FRAMES
    config.data.eval_segments = False  # whole videos, as a request holds
    config.data.feature_names = ("rgb", "audio") if data_format == "yt8m_frame" else ("mean_rgb", "mean_audio")
    config.model.snet_filters = (8, 8, 8, 16)
    config.model.fc_units = (16, 16)
    config.asge.units = 8
    config.model.feature_channels, config.model.transformer_heads = 8, 2  # ml_decoder_snet's d and heads
    return config


def exported(config, export_dir):
    """An untrained classifier with non-trivial BatchNorm statistics, exported; and the model."""
    model = factory.build_classifier(config, NUM_CLASSES)
    randomize_batch_norm(model, np.random.default_rng(0))
    vocabulary = [f"label {i}" for i in range(NUM_CLASSES)]
    export_saved_model(model, vocabulary, factory.serving_request(config), export_dir, top_k=4)
    return model, tf.saved_model.load(export_dir)


@pytest.mark.parametrize(
    "data_format, variant", [("yt8m_frame", "cma_snet"), ("yt8m_frame", "ml_decoder_snet"), ("yt8m_video", None)]
)
def test_serialized_records_give_the_keras_scores_of_evaluation(video_data, tmp_path, data_format, variant):
    config = video_config(data_format, video_data, variant)
    model, loaded = exported(config, str(tmp_path / "video" / "1"))
    (shard,) = factory.list_data_files(config, "validate")
    dataset = factory.build_dataset(config, NUM_CLASSES, "validate", training=False)
    batches = [tf.nest.map_structure(lambda t: t.numpy(), batch[0]) for batch in dataset]
    inputs = np.concatenate([numpy_frames(batch) for batch in batches])
    serialized = [record.numpy() for record in tf.data.TFRecordDataset(shard)]
    signature = loaded.signatures["serving_default"]
    name = "sequence_examples" if data_format == "yt8m_frame" else "examples"
    assert [spec.name for spec in tf.nest.flatten(signature.structured_input_signature)] == [name]
    outputs = signature(**{name: tf.constant(serialized)})
    assert outputs["valid"].numpy().all()
    expected = keras_scores(model, inputs)
    np.testing.assert_allclose(outputs["scores"].numpy(), expected, atol=TOLERANCE)
    tensor = loaded.signatures["predict_frames"](frames=tf.constant(inputs))
    np.testing.assert_allclose(tensor["scores"].numpy(), expected, atol=TOLERANCE)
    assert outputs["top_k_labels"].numpy()[0, 0].decode().startswith("label ")
    if data_format == "yt8m_frame":  # the 8-bit frames the reader hands the model: the same scores
        assert isinstance(batches[0], dict) and batches[0]["frame_codes"].dtype == np.uint8
        codes = loaded.signatures["predict_frame_codes"](
            frame_codes=tf.constant(np.concatenate([b["frame_codes"] for b in batches])),
            num_frames=tf.constant(np.concatenate([b["num_frames"] for b in batches])),
        )
        np.testing.assert_allclose(codes["scores"].numpy(), expected, atol=TOLERANCE)
    else:
        assert "predict_frame_codes" not in loaded.signatures


def test_frame_records_resample_as_an_independent_numpy_reading(video_data, tmp_path):
    """The frames the signature feeds the model: numpy dequantization of the record's bytes,
    frame ⌊(i + ½)·n/T⌋ of n (frames.py), scored by the Keras model."""
    config = video_config("yt8m_frame", video_data)
    model, loaded = exported(config, str(tmp_path / "frame" / "1"))
    (shard,) = factory.list_data_files(config, "validate")
    serialized = [record.numpy() for record in tf.data.TFRecordDataset(shard)][:4]
    expected_inputs = []
    for record in serialized:
        example = tf.train.SequenceExample.FromString(record)
        rgb, audio = (
            np.stack([np.frombuffer(f.bytes_list.value[0], np.uint8) for f in example.feature_lists.feature_list[k].feature])
            for k in ("rgb", "audio")
        )
        features = np.concatenate([rgb, audio], axis=1).astype(np.float32) * (4.0 / 255.0) + (4.0 / 512.0) - 2.0
        n = len(features)
        picked = np.minimum(np.floor((np.arange(FRAMES) + 0.5) * n / FRAMES).astype(int), n - 1)
        expected_inputs.append(features[picked])
    outputs = loaded.signatures["serving_default"](sequence_examples=tf.constant(serialized))
    np.testing.assert_allclose(
        outputs["scores"].numpy(), keras_scores(model, np.stack(expected_inputs)), atol=TOLERANCE
    )


def test_a_malformed_record_is_flagged_alone(video_data, tmp_path):
    config = video_config("yt8m_frame", video_data)
    _, loaded = exported(config, str(tmp_path / "frame" / "1"))
    (shard,) = factory.list_data_files(config, "validate")
    good = [record.numpy() for record in tf.data.TFRecordDataset(shard)][:2]
    example = tf.train.SequenceExample.FromString(yt8m_records.encode_frame_example(
        "bad", [1], np.zeros([3, 1024], np.uint8), np.zeros([3, 128], np.uint8)
    ))
    example.feature_lists.feature_list["rgb"].feature[1].bytes_list.value[0] = bytes(1000)  # not 1024
    short_rgb = example.SerializeToString()
    batch = [b"not a record", good[0], short_rgb, good[1]]
    signature = loaded.signatures["serving_default"]
    outputs = signature(sequence_examples=tf.constant(batch))
    np.testing.assert_array_equal(outputs["valid"].numpy(), [False, True, False, True])
    alone = signature(sequence_examples=tf.constant(good))
    np.testing.assert_allclose(outputs["scores"].numpy()[[1, 3]], alone["scores"].numpy(), atol=1e-6)
    assert (outputs["top_k_classes"].numpy()[[0, 2]] == -1).all()


def test_frame_signature_has_no_xla(video_data, tmp_path):
    """TF Serving need not run XLA: the exported graph holds no XLA-compiled function."""
    config = video_config("yt8m_frame", video_data)
    export_dir = str(tmp_path / "frame" / "1")
    exported(config, export_dir)
    from tensorflow.core.protobuf import saved_model_pb2

    model_proto = saved_model_pb2.SavedModel()
    with open(os.path.join(export_dir, "saved_model.pb"), "rb") as f:
        model_proto.ParseFromString(f.read())
    library = model_proto.meta_graphs[0].graph_def.library
    compiled = [f.signature.name for f in library.function if f.attr["_XlaMustCompile"].b]
    assert compiled == []
    assert readers.feature_size(("rgb", "audio")) == 1152


def test_requests_need_no_id_and_an_empty_frame_inside_a_video_is_flagged(video_data, tmp_path):
    """Clients building records from their own features need not send `id`; a frame of 0
    bytes inside a video is malformed (only the padding after a video's last frame is empty)."""
    config = video_config("yt8m_frame", video_data)
    _, loaded = exported(config, str(tmp_path / "frame" / "1"))
    (shard,) = factory.list_data_files(config, "validate")
    record = next(iter(tf.data.TFRecordDataset(shard))).numpy()
    no_id = tf.train.SequenceExample.FromString(record)
    del no_id.context.feature["id"]
    empty_frame = tf.train.SequenceExample.FromString(record)
    empty_frame.feature_lists.feature_list["rgb"].feature[1].bytes_list.value[0] = b""
    signature = loaded.signatures["serving_default"]
    outputs = signature(sequence_examples=tf.constant([record, no_id.SerializeToString(), empty_frame.SerializeToString()]))
    np.testing.assert_array_equal(outputs["valid"].numpy(), [True, True, False])
    np.testing.assert_allclose(outputs["scores"].numpy()[1], outputs["scores"].numpy()[0], atol=1e-6)
    video_level = video_config("yt8m_video", video_data)
    _, loaded = exported(video_level, str(tmp_path / "video" / "1"))
    (shard,) = factory.list_data_files(video_level, "validate")
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(shard))).numpy())
    del example.features.feature["id"]
    outputs = loaded.signatures["serving_default"](examples=tf.constant([example.SerializeToString()]))
    assert outputs["valid"].numpy().tolist() == [True]
