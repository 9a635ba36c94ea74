"""DbofMoeModel, NetVladModel and NextVladModel trained by the starter code's own, unchanged `train.py`
(through `python -m cma_tf.yt8m_starter.run`), then scored by its `eval.py`: rgb and audio
pooled apart (audio with half the clusters and groups), the BatchNorm updates run, the
`--cma_*` flags recorded and checked. Each run takes ~20 s (two subprocesses): slow."""

import os

import numpy as np
import pytest
import tensorflow as tf

from tests.yt8m_starter.conftest import run_runner, run_starter, write_tiny_frame_records

SIZES = {
    "DbofMoeModel": ("--cma_clusters=16", "--cma_hidden_units=8"),
    "NetVladModel": ("--cma_clusters=4", "--cma_hidden_units=8"),
    "NextVladModel": ("--cma_clusters=4", "--cma_hidden_units=8", "--cma_nextvlad_groups=2",
                      "--cma_nextvlad_gating_reduction=2"),
}
# checkpoint variable → its shape for the sizes above (K = 4 rgb, 2 audio; λ = 2, G = 2 rgb, 1 audio)
EXPECTED = {
    "DbofMoeModel": {"tower/head/pooling/projection": (1152, 16), "tower/head/hidden/kernel": (16, 8),
                     "tower/head/classifier/experts/kernel": (8, 3862 * 2)},
    "NetVladModel": {"tower/head/netvlad_rgb/assignment": (1024, 4), "tower/head/netvlad_audio/assignment": (128, 2),
                     "tower/head/hidden/kernel": (1024 * 4 + 128 * 2, 8),
                     "tower/head/classifier/gates/kernel": (8, 3862 * 3)},
    "NextVladModel": {"tower/head/nextvlad_rgb/assignment": (2048, 2 * 4),
                      "tower/head/nextvlad_audio/assignment": (256, 1 * 2),
                      "tower/head/hidden/kernel": (4 * 1024 + 2 * 256, 8), "tower/head/classifier/kernel": (8, 3862)},
}
STREAMS = {"DbofMoeModel": ("--cma_frames=8",)}  # DBoF pools rgb and audio together


@pytest.mark.slow
def test_help_lists_the_pooling_models_and_their_flags():
    proc = run_runner("--help", env_updates={"YT8M_STARTER_DIR": None})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in ("DbofMoeModel", "NetVladModel", "NextVladModel", "--cma_feature_streams", "--cma_clusters",
                 "--cma_hidden_units", "--cma_nextvlad_groups", "--cma_nextvlad_gating_reduction"):
        assert text in proc.stdout


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(SIZES))
def test_starter_train_py_and_eval_py_run_the_pooling_model(starter_dir, tmp_path, model):
    write_tiny_frame_records(str(tmp_path / "train0000.tfrecord"))
    train_dir = tmp_path / "train_dir"
    flags = STREAMS.get(model, ("--cma_frames=8", "--cma_feature_streams=rgb:1024,audio:128")) + SIZES[model]
    trained = run_starter(
        starter_dir, "train", f"--model={model}", *flags, "--frame_features", "--feature_names=rgb,audio",
        "--feature_sizes=1024,128", f"--train_data_pattern={tmp_path / 'train*.tfrecord'}", f"--train_dir={train_dir}",
        "--batch_size=2", "--max_steps=10", "--num_readers=1",
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "training step 10 | Loss:" in trained.stderr
    reader = tf.train.load_checkpoint(str(train_dir / "model.ckpt-10"))
    for name, shape in EXPECTED[model].items():
        assert reader.get_tensor(name).shape == shape, name
    means = [name for name in reader.get_variable_to_shape_map() if name.endswith("moving_mean")]
    assert means and all(np.any(reader.get_tensor(name) != 0.0) for name in means)  # UPDATE_OPS ran

    evaluate = ("--script=eval", f"--starter_dir={starter_dir}", f"--eval_data_pattern={tmp_path / 'train*.tfrecord'}",
                f"--train_dir={train_dir}", "--batch_size=4", "--num_readers=1", "--run_once")
    evaluated = run_runner(*evaluate, *flags)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "epoch/eval number 10 | Avg_Hit@1:" in evaluated.stderr and "| GAP:" in evaluated.stderr
    assert os.path.isfile(train_dir / "inference_model" / "inference_model.meta")
    refused = run_runner(*evaluate, *(flag for flag in flags if "--cma_clusters" not in flag))
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines()[-1].startswith("error: --cma_clusters=None but ")
