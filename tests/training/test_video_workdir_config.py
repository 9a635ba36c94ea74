"""`evaluate` and `segment_inference` use a video workdir's own config.json (its frames T), not
the config file given on the command line."""

import json
import os

import pytest

from tests.test_cli import ROOT, run_cli

FRAMES = 8


@pytest.fixture(scope="module")
def video_run(tmp_path_factory):
    """A CMA-FC run at T = 8 (configs/yt8m.py says 300) on synthetic records: (data, workdir)."""
    from cma_tf.config_base import get_paper_video_config
    from cma_tf.datasets.yt8m_synthetic import write_synthetic_yt8m
    from cma_tf.training.trainer import train_and_evaluate

    data = str(tmp_path_factory.mktemp("yt8m"))
    write_synthetic_yt8m(data, num_classes=8, train_videos=32, validate_videos=8, test_videos=4,
                         num_shards=1, min_frames=10, max_frames=23, seed=5)
    config = get_paper_video_config("cma_fc")
    config.data.data_dir = os.path.join(data, "frame")
    config.data.frames = FRAMES
    config.model.fc_units = (8, 8)
    config.asge.units = 8
    config.asge.steps = 5
    config.train.epochs = 1
    config.train.batch_size = 8
    config.train.eval_batch_size = 8
    workdir = str(tmp_path_factory.mktemp("cma_fc"))
    train_and_evaluate(config, workdir)
    return data, workdir


@pytest.mark.slow
def test_evaluate_uses_the_runs_frames(video_run):
    data, workdir = video_run
    config = f"--config={ROOT}/configs/yt8m.py:cma_fc"
    result = run_cli("cma_tf.evaluate", config, f"--config.data.data_dir={data}/frame", f"--workdirs={workdir}")
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(workdir, "eval_metrics_final.json")) as f, open(os.path.join(workdir, "metrics.json")) as g:
        assert json.load(f)["GAP"] == pytest.approx(json.load(g)["GAP"], abs=1e-6)


@pytest.mark.slow
def test_segment_inference_uses_the_runs_frames(video_run, tmp_path):
    data, workdir = video_run
    config = f"--config={ROOT}/configs/yt8m.py:cma_fc"
    output = str(tmp_path / "submission.csv")
    result = run_cli(
        "cma_tf.segment_inference", config, f"--config.data.data_dir={data}/frame", f"--workdir={workdir}",
        f"--input={data}/frame/test*.tfrecord", f"--output={output}",
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.exists(output) and "scored" in result.stdout
    refused = run_cli(
        "cma_tf.segment_inference", config, "--config.data.frames=300", f"--workdir={workdir}",
        f"--input={data}/frame/test*.tfrecord", f"--output={output}",
    )
    assert refused.returncode == 2
    assert f"error: --config.data.frames=300, but {workdir} was trained with {FRAMES}" in refused.stderr
