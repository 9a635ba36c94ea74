"""A video run end to end on synthetic YouTube-8M records: train, evaluate on rated segments.

The segment metrics of the run are re-derived here from the records with a plain
`tf.io.parse_single_sequence_example`, numpy dequantization and numpy frame resampling, and
the starter code's rule for segments (scores × label weights, `eval.py --segment_labels`)."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from cma_tf.config_base import get_paper_video_config
from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
from cma_tf.metrics.video import video_metrics
from cma_tf.training import workdir as files
from cma_tf.training.trainer import train_and_evaluate
from tests.helpers import slow_for

FRAMES = 16


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("yt8m"))
    write_synthetic_yt8m(out, num_classes=8, train_videos=96, validate_videos=24, test_videos=8,
                         num_shards=2, min_frames=10, max_frames=40, seed=3)
    return out


def tiny_config(variant, data_dir):
    config = get_paper_video_config(variant)
    config.data.data_dir = os.path.join(data_dir, "frame")
    config.data.frames = FRAMES
    config.data.feature_names = ("rgb", "audio")
    config.data.deterministic = True
    config.model.snet_filters = (8, 8, 8, 16)
    config.model.fc_units = (16, 16)
    config.asge.units = 8
    config.asge.steps = 20
    config.train.epochs = 2
    config.train.batch_size = 16
    config.train.eval_batch_size = 32
    config.train.learning_rate = 0.01
    return config


def reference_segments(files_, frames):
    """(inputs, labels, weights) of every rated segment, from first principles."""
    inputs, labels, weights = [], [], []
    for path in files_:
        for serialized in tf.data.TFRecordDataset(path):
            context, sequences = tf.io.parse_single_sequence_example(
                serialized,
                context_features={k: tf.io.VarLenFeature(d) for k, d in [
                    ("segment_start_times", tf.int64), ("segment_labels", tf.int64), ("segment_scores", tf.float32)]},
                sequence_features={k: tf.io.FixedLenSequenceFeature([], tf.string) for k in ("rgb", "audio")},
            )
            codes = np.concatenate(
                [np.stack([np.frombuffer(b, np.uint8) for b in sequences[k].numpy()]) for k in ("rgb", "audio")], axis=1
            )
            matrix = codes.astype(np.float32) * (4 / 255) + (4 / 512 - 2)
            starts = context["segment_start_times"].values.numpy()
            rated = list(zip(starts, context["segment_labels"].values.numpy(), context["segment_scores"].values.numpy()))
            for start in dict.fromkeys(starts):  # unique, in order of appearance (tf.unique)
                segment = matrix[start:start + 5]
                index = np.floor((np.arange(frames) + 0.5) * 5 / frames).astype(int)
                inputs.append(segment[index])
                label, weight = np.zeros(8), np.zeros(8)
                for s, k, score in rated:
                    if s == start:
                        label[k], weight[k] = score, 1.0
                labels.append(label)
                weights.append(weight)
    return np.stack(inputs), np.stack(labels), np.stack(weights)


@pytest.mark.parametrize("variant", slow_for(["cma_snet", "self_attention_fc"], ("cma_snet",)))
def test_video_run_reports_starter_segment_metrics(variant, video_data, tmp_path):
    config = tiny_config(variant, video_data)
    workdir = str(tmp_path / variant)
    metrics = train_and_evaluate(config, workdir)
    assert set(metrics) >= {"GAP", "Hit@1", "PERR", "mAP"}
    with open(os.path.join(workdir, files.METRICS)) as f:
        assert json.load(f)["GAP"] == pytest.approx(metrics["GAP"])
    with open(os.path.join(workdir, files.HISTORY)) as f:
        assert "val_GAP" in f.readline()

    model = keras.saving.load_model(os.path.join(workdir, files.FINAL_MODEL))
    validate = sorted(tf.io.gfile.glob(os.path.join(video_data, "frame", "validate*.tfrecord")))
    inputs, labels, weights = reference_segments(validate, FRAMES)
    scores = 1 / (1 + np.exp(-np.asarray(model.predict(inputs, verbose=0), np.float64)))
    expected = video_metrics(scores * weights, labels)
    for key in ("GAP", "Hit@1", "PERR", "mAP"):
        assert metrics[key] == pytest.approx(expected[key], abs=1e-5), key
