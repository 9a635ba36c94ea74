"""Per-label thresholds end to end: `evaluate --calibrate` on a split other than the reported
one, F1 at the thresholds ≥ F1 at 0.5 there, the SavedModel's `predicted` equals thresholding its
`scores` with the stored thresholds, and `predict` writes the predicted names."""

import csv
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from sklearn.metrics import f1_score

from cma_tf import factory
from cma_tf.errors import ConfigError
from cma_tf.evaluate import evaluate_workdirs
from cma_tf.serving.saved_model import export_workdir
from cma_tf.serving.batch_predict import predict
from cma_tf.training import workdir as files
from cma_tf.training.callbacks import predict_scores


@pytest.fixture(scope="module")
def calibrated(image_workdir, tmp_path_factory):
    """A copy of the tiny run (the session's own stays uncalibrated), calibrated on 'train'."""
    workdir = str(tmp_path_factory.mktemp("calibrated") / "run")
    shutil.copytree(image_workdir, workdir)
    rows, keys, _ = evaluate_workdirs([workdir], ["run"], calibrate_split="train")
    return workdir, rows["run"], keys


def test_thresholds_are_chosen_on_the_calibration_split_and_beat_one_half_there(calibrated):
    import keras

    workdir, metrics, keys = calibrated
    stored = files.read_json(files.thresholds_path(workdir))
    assert stored["split"] == "train" and stored["checkpoint"] == "final"
    assert "CF1_calibrated" in keys and "OF1_calibrated" in metrics
    config = files.read_config(workdir)
    vocabulary = stored["labels"]
    model = keras.saving.load_model(files.trained_model_path(workdir))
    scores, targets = predict_scores(model, factory.build_dataset(config, len(vocabulary), "train", training=False))
    thresholds = np.asarray(stored["thresholds"])
    for k in range(len(vocabulary)):
        if targets[:, k].any():
            assert f1_score(targets[:, k], scores[:, k] >= thresholds[k]) >= f1_score(targets[:, k], scores[:, k] >= 0.5)
        else:
            assert thresholds[k] == 0.5


def test_calibrating_on_the_reported_split_is_refused(image_workdir):
    with pytest.raises(ConfigError, match="--calibrate=val is the split .* is evaluated on"):
        evaluate_workdirs([image_workdir], ["run"], calibrate_split="val")


@pytest.mark.slow
def test_the_export_decides_with_the_stored_thresholds_and_predict_names_the_labels(calibrated, image_data, tmp_path):
    workdir, _, _ = calibrated
    thresholds = np.asarray(files.read_json(files.thresholds_path(workdir))["thresholds"], np.float32)
    export_dir = str(tmp_path / "model" / "1")
    info = export_workdir(workdir, export_dir)
    np.testing.assert_allclose(info["thresholds"], thresholds)
    signature = tf.saved_model.load(export_dir).signatures["serving_default"]
    records = [r.numpy() for r in tf.data.TFRecordDataset(sorted(tf.io.gfile.glob(os.path.join(image_data, "val-*.tfrecord"))))]
    images = [tf.train.Example.FromString(r).features.feature["image/encoded"].bytes_list.value[0] for r in records]
    outputs = signature(images=tf.constant(images + [b"not an image"]))
    scores, predicted = outputs["scores"].numpy(), outputs["predicted"].numpy()
    np.testing.assert_array_equal(predicted[:-1], scores[:-1] >= thresholds[None, :])
    assert not predicted[-1].any() and outputs["predicted_labels"].numpy()[-1] == b""
    vocabulary = [line.strip() for line in open(os.path.join(export_dir, "assets", "labels.txt"))]
    for row, joined in zip(predicted, outputs["predicted_labels"].numpy()):
        assert joined.decode() == ";".join(name for name, on in zip(vocabulary, row) if on)
    assert np.any(predicted != (scores >= 0.5)), "the calibrated thresholds change some decisions"

    output = str(tmp_path / "out.csv")
    predict(workdir, [os.path.join(image_data, "val-00000-of-00002.tfrecord")], output, 8, 3, progress=False)
    with open(output) as f:
        rows = list(csv.DictReader(f))
    assert [row["predicted"] for row in rows] == [joined.decode() for joined in outputs["predicted_labels"].numpy()[:len(rows)]]


def test_thresholds_of_a_model_trained_again_are_refused(calibrated, tmp_path):
    """The stored thresholds belong to one final.keras: after it changes they are not used silently."""
    import keras

    from cma_tf.errors import DataError

    workdir = str(tmp_path / "retrained")
    shutil.copytree(calibrated[0], workdir)
    model = keras.saving.load_model(files.trained_model_path(workdir))
    model.head.trainable_weights[0].assign(model.head.trainable_weights[0] * 1.01)
    model.save(files.trained_model_path(workdir))
    vocabulary = files.read_json(files.thresholds_path(workdir))["labels"]
    with pytest.raises(DataError, match="was chosen for another final.keras .*calibrate again"):
        files.read_thresholds(workdir, "final", vocabulary)
