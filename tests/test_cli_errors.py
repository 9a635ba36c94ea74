"""User mistakes every command line shares, each one line and exit 2 (Ctrl-C: 130), and no
TensorFlow start-up chatter on a machine without a GPU."""

import os
import signal
import subprocess
import sys

import pytest

from cma_tf.backbones.resnet import resnet101_backbone
from cma_tf.backbones.weights import resolve_weights
from cma_tf.errors import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(*args, env_update=None, drop_log_level=False):
    env = dict(os.environ, **(env_update or {}))
    if drop_log_level:
        env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_a_misspelt_config_field_is_one_line_with_the_suggestion():
    proc = run_module("cma_tf.train", "--config=configs/demo.py:cma", "--workdir=/nonexistent/run", "--config.train.epoch=3")
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: --config.train.epoch=3: no such field train.epoch.")
    assert 'Did you mean "epochs"' in lines[0] and "cma_tf/config_base.py" in lines[0]


@pytest.mark.skipif(os.path.exists("/proc/driver/nvidia"), reason="a machine with an NVIDIA driver keeps level 2")
def test_no_tensorflow_startup_lines_on_a_cpu_machine(tmp_path):
    """The user's error is the only line: no oneDNN, cudart or 'cuInit … CUDA error (303)' lines."""
    proc = run_module(
        "cma_tf.train", "--config=configs/demo.py:cma", f"--workdir={tmp_path}/run",
        f"--config.data.data_dir={tmp_path}/missing", drop_log_level=True,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "cuInit" not in proc.stderr and "oneDNN" not in proc.stderr


def test_ctrl_c_is_one_line_saying_the_same_command_resumes(tmp_path):
    """SIGINT while the command works: no traceback, exit 130, the resume hint."""
    script = (
        "import time\nfrom cma_tf import cli\n"
        "def main(argv):\n    print('working', flush=True)\n    time.sleep(60)\n"
        "cli.run(main, interrupted_hint='run the same command again to resume')\n"
    )
    # A test run started in the background (nohup, `cmd &`) ignores SIGINT, and a child inherits
    # that; a terminal's Ctrl-C reaches a process whose SIGINT is at its default.
    # The script stands for a command: like `python -m cma_tf.<command>`, it asks for quiet logs.
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stdout.readline().strip() == "working"
    proc.send_signal(signal.SIGINT)
    try:
        _, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines() == ["interrupted: run the same command again to resume"]


def test_train_names_its_resume_hint():
    source = open(os.path.join(ROOT, "cma_tf", "train.py")).read()
    assert "resumes from the last finished epoch" in source


@pytest.mark.parametrize("written", [None, "None", "none", "", "null"])
def test_backbone_weights_none_as_typed_on_a_command_line(written):
    assert resolve_weights(written) is None


def test_backbone_weights_none_string_builds_a_random_resnet101():
    backbone = resnet101_backbone(image_size=32, weights="None")
    assert [tuple(t.shape) for t in backbone.outputs] == [(None, 2, 2, 1024), (None, 1, 1, 2048)]


def test_a_missing_weights_file_names_it(tmp_path):
    with pytest.raises(ConfigError, match=r"no such weights file '.*nope\.h5'"):
        resolve_weights(str(tmp_path / "nope.h5"))


def test_no_network_for_imagenet_weights_says_how_to_pass_a_local_file(monkeypatch):
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise Exception("URL fetch failure on https://example/resnet101.h5: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(file_utils, "get_file", no_network)
    with pytest.raises(ConfigError) as error:
        resnet101_backbone(image_size=32, weights="imagenet")
    message = str(error.value)
    assert "cannot download the ImageNet weights" in message and "\n" not in message
    assert "--config.model.backbone_weights=/path/to/it.h5" in message
    assert "resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
