"""The `--cma_*` flags a starter-code model was trained with, recorded in `train_dir` and
checked by the runner: the starter's `model_flags.json` does not hold them and the label
embeddings E are a graph constant outside the checkpoint, so `eval.py` with other values would
build and score another model (or die in a long reshape traceback); and the frame-level input
the models need. Runs the starter code's scripts (skips without `YT8M_STARTER_DIR`)."""

import hashlib
import json

import numpy as np

from cma_tf.data.records import write_shard
from cma_tf.data.yt8m.records import encode_video_level_example
from tests.yt8m_starter.conftest import CMA_FLAGS, folder_state, run_starter


def eval_args(folder, train_dir, *flags):
    return (f"--eval_data_pattern={folder / 'train*.tfrecord'}", f"--train_dir={train_dir}",
            "--batch_size=4", "--num_readers=1", "--run_once", *flags)


def one_error_line(proc):
    """The single stderr line of a refused command, after asserting exit status 2."""
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: ")
    return lines[0]


def test_training_records_the_cma_flags_and_the_embeddings_checksum(starter_run):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    record = json.loads((train_dir / "cma_flags.json").read_text())
    array = np.load(embeddings)
    assert record["model"] == "CmaSnetModel"
    assert record["cma_frames"] == 16 and record["cma_snet_filters"] == 4
    assert "cma_fc_units" not in record  # an SNet model does not use it
    assert record["cma_label_embeddings"]["shape"] == [3862, 4]
    assert record["cma_label_embeddings"]["sha256"] == hashlib.sha256(
        np.ascontiguousarray(array, np.float32).tobytes()).hexdigest()


def test_eval_with_another_frame_count_is_refused_in_one_line(starter_dir, starter_run):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = folder_state(train_dir)
    # --cma_frames left at its default, 300: SNet's weights fit any T, so eval.py would run.
    proc = run_starter(starter_dir, "eval", f"--cma_label_embeddings={embeddings}", "--cma_snet_filters=4",
                       *eval_args(folder, train_dir))
    line = one_error_line(proc)
    assert f"--cma_frames=300 but {train_dir} was trained with --cma_frames=16" in line
    assert folder_state(train_dir) == before


def test_eval_with_another_width_is_one_line_not_a_reshape_traceback(starter_dir, starter_run):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = folder_state(train_dir)
    proc = run_starter(starter_dir, "eval", f"--cma_label_embeddings={embeddings}", "--cma_frames=16",
                       "--cma_snet_filters=8", *eval_args(folder, train_dir))
    line = one_error_line(proc)
    assert f"--cma_snet_filters=8 but {train_dir} was trained with --cma_snet_filters=4" in line
    assert folder_state(train_dir) == before


def test_eval_with_permuted_label_embeddings_is_refused_in_one_line(starter_dir, starter_run, tmp_path):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    permuted = tmp_path / "permuted.npy"
    array = np.load(embeddings)
    np.save(permuted, array[np.random.default_rng(0).permutation(len(array))])
    before = folder_state(train_dir)
    proc = run_starter(starter_dir, "eval", f"--cma_label_embeddings={permuted}", *CMA_FLAGS,
                       *eval_args(folder, train_dir))
    line = one_error_line(proc)
    assert f"--cma_label_embeddings={permuted}" in line and embeddings in line
    assert folder_state(train_dir) == before


def test_resumed_training_with_other_flags_is_refused_in_one_line(starter_dir, starter_run):
    folder, embeddings, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = folder_state(train_dir)
    # train.py would restore the saved graph (T = 16) and keep training it, ignoring the flag.
    proc = run_starter(
        starter_dir, "train", "--model=CmaSnetModel", f"--cma_label_embeddings={embeddings}", "--cma_frames=20",
        "--cma_snet_filters=4", "--frame_features", "--feature_names=rgb", "--feature_sizes=1024",
        f"--train_data_pattern={folder / 'train*.tfrecord'}", f"--train_dir={train_dir}", "--batch_size=2",
        "--max_steps=12", "--num_readers=1")
    line = one_error_line(proc)
    assert f"--cma_frames=20 but {train_dir} was trained with --cma_frames=16" in line
    assert "--start_new_model" in line
    assert folder_state(train_dir) == before


def test_inference_with_another_explicit_flag_is_refused_in_one_line(starter_dir, starter_run, tmp_path):
    folder, _, train_dir, trained = starter_run
    assert trained.returncode == 0, trained.stderr[-3000:]
    before = folder_state(train_dir)
    proc = run_starter(starter_dir, "inference", f"--input_data_pattern={folder / 'train*.tfrecord'}",
                       "--segment_labels", f"--train_dir={train_dir}", "--cma_frames=300",
                       f"--output_file={tmp_path / 'submission.csv'}")
    line = one_error_line(proc)
    assert f"--cma_frames=300 but {train_dir} was trained with --cma_frames=16" in line
    assert folder_state(train_dir) == before
    assert not (tmp_path / "submission.csv").exists()


def test_cma_model_on_video_level_records_says_it_needs_frame_features(starter_dir, tmp_path):
    rng = np.random.default_rng(0)
    write_shard(str(tmp_path / "train0000.tfrecord"), [
        encode_video_level_example(f"v{i}", [i % 3], rng.normal(size=1024), rng.normal(size=128))
        for i in range(4)])
    embeddings = tmp_path / "label_embeddings.npy"
    np.save(embeddings, np.ones((3862, 4), np.float32))
    train_dir = tmp_path / "train_dir"
    proc = run_starter(starter_dir, "train", "--model=CmaSnetModel", f"--cma_label_embeddings={embeddings}",
                       *CMA_FLAGS, f"--train_data_pattern={tmp_path / 'train*.tfrecord'}",
                       f"--train_dir={train_dir}", "--batch_size=2", "--max_steps=1", "--num_readers=1")
    line = one_error_line(proc)
    assert "--model=CmaSnetModel needs frame-level input" in line and "--frame_features" in line
    assert not train_dir.exists()  # refused before train.py writes its model_flags.json


def test_a_moved_copy_of_the_embeddings_is_the_same_but_a_permutation_is_not(tmp_path):
    from cma_tf.yt8m_starter import flag_record

    array = np.random.default_rng(2).normal(size=(6, 3)).astype(np.float32)
    np.save(tmp_path / "a.npy", array)
    np.save(tmp_path / "copy.npy", array.astype(np.float64))  # the models read float32
    np.save(tmp_path / "permuted.npy", array[::-1])
    record = {"model": "CmaFcModel", "cma_frames": 8, "cma_fc_units": 4,
              "cma_label_embeddings": flag_record.embeddings_fingerprint(str(tmp_path / "a.npy"))}
    assert record["cma_label_embeddings"]["sha256"] == hashlib.sha256(array.tobytes()).hexdigest()
    moved = dict(record, cma_label_embeddings=flag_record.embeddings_fingerprint(str(tmp_path / "copy.npy")))
    assert flag_record.difference(record, moved, "run") is None
    permuted = dict(record, cma_label_embeddings=flag_record.embeddings_fingerprint(str(tmp_path / "permuted.npy")))
    message = flag_record.difference(record, permuted, "run")
    assert message.startswith(f"--cma_label_embeddings={tmp_path / 'permuted.npy'} holds other label embeddings")
    assert str(tmp_path / "a.npy") in message
    assert flag_record.difference(record, dict(record, cma_fc_units=5), "run").startswith(
        "--cma_fc_units=5 but run was trained with --cma_fc_units=4")
