"""`python -m cma_tf.yt8m_starter.run` itself: its `--help` (with and without a copy of the
starter code), its own errors, one line with exit status 2, and its TF1 shims."""

import os
import subprocess
import sys

import numpy as np
import pytest

from cma_tf.errors import ConfigError
from cma_tf.yt8m_starter import run as runner
from tests.yt8m_starter.conftest import run_runner


def test_help_without_a_starter_dir_lists_the_runner_and_model_flags():
    proc = run_runner("--help", env_updates={"YT8M_STARTER_DIR": None})
    assert proc.returncode == 0, proc.stderr[-3000:]
    for flag in ("--starter_dir", "--script", "segment_eval_inference", "--cma_label_embeddings", "--cma_frames",
                 "--cma_snet_filters", "--cma_fc_units"):
        assert flag in proc.stdout
    assert "--starter_dir=/path/to/youtube-8m --script=eval --help" in proc.stdout  # how to see a script's flags


def test_help_with_a_starter_dir_adds_the_scripts_own_flags(starter_dir):
    proc = run_runner(f"--starter_dir={starter_dir}", "--script=eval", "--help")
    assert proc.returncode == 0, proc.stderr[-3000:]
    for flag in ("--starter_dir", "--script", "--cma_frames", "--cma_label_embeddings",
                 "--eval_data_pattern", "run_once"):  # the last two: eval.py's own (--[no]run_once)
        assert flag in proc.stdout


def test_runner_errors_are_one_line_with_exit_status_2(tmp_path, monkeypatch, capsys):
    proc = run_runner("--starter_dir=/nowhere", "--script=export")
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert proc.stderr.strip().splitlines() == [
        "error: --script=export: not one of train, eval, inference, segment_eval_inference "
        "(the starter code's train.py, eval.py, inference.py, segment_eval_inference.py)"]
    monkeypatch.delenv("YT8M_STARTER_DIR", raising=False)
    for args, expected in ((["--script=eval"], "--starter_dir=/path/to/youtube-8m"),
                           ([f"--starter_dir={tmp_path}"], f"--starter_dir={tmp_path} has no train.py")):
        with pytest.raises(SystemExit) as exited:
            runner.main(args)
        assert exited.value.code == 2
        lines = capsys.readouterr().err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0]


def test_split_runner_args_refuses_an_unknown_script():
    with pytest.raises(ConfigError, match=r"--script=export: not one of train, eval"):
        runner.split_runner_args(["--starter_dir=/nowhere", "--script=export"])


SLIM_BATCH_NORM = """
import numpy as np
from cma_tf.yt8m_starter.run import install_tf1_shims
tf = install_tf1_shims()
import tensorflow.contrib.slim as slim
x = tf.placeholder(tf.float32, [None, 3])
y = slim.batch_norm(x, center=True, scale=True, is_training=False, epsilon=1e-3)
with tf.Session() as session:
    session.run(tf.global_variables_initializer())
    print(repr(session.run(y, {x: [[1.0, -2.0, 4.0]]}).tolist()))
"""


def test_shimmed_slim_batch_norm_builds_and_normalizes():
    """The starter's DBoF calls `slim.batch_norm`, which tf_slim 1.1 cannot build on TF 2.21
    without the runner's `ops.Tensor` shim; in inference with fresh statistics (mean 0,
    variance 1, γ 1, β 0) it is x / sqrt(1 + ε)."""
    proc = subprocess.run([sys.executable, "-c", SLIM_BATCH_NORM], capture_output=True, text=True,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES=""), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = np.array(eval(proc.stdout.strip().splitlines()[-1]))
    np.testing.assert_allclose(out, np.array([[1.0, -2.0, 4.0]]) / np.sqrt(1.0 + 1e-3), rtol=1e-6)
