"""`bench/heads.py --backbone_weights=PATH`: the pretrained regimes on a user's ImageNet weights
file (here a ResNet-101 weights file the test writes), end to end on a tiny demo dataset."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.slow
def test_the_frozen_regime_runs_on_a_resnet101_weights_file(tmp_path):
    import keras

    from cma_tf.selection import feature_cache

    weights = str(tmp_path / "resnet101_notop.weights.h5")
    keras.utils.set_random_seed(3)
    resnet = keras.applications.ResNet101(include_top=False, weights=None, input_shape=(64, 64, 3))
    resnet.save_weights(weights)
    work = tmp_path / "work"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    subprocess.run([sys.executable, "-m", "cma_tf.datasets.demo", f"--out_dir={work / 'demo' / 'data'}", "--num_train=48",
                    "--num_val=24", "--num_shards=1"], cwd=ROOT, env=env, check=True, capture_output=True)
    completed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "bench", "heads.py"), "--regimes=pretrained_frozen", "--heads=plain",
         "--datasets=demo", "--backbone=resnet101", f"--backbone_weights={weights}", "--image_size=64",
         "--frozen_epochs=1", "--seeds=0", "--more_seeds=", "--no_cost", f"--work_dir={work}",
         f"--json_out={tmp_path / 'heads.json'}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert completed.returncode == 0, completed.stderr[-3000:]
    last = json.loads(completed.stdout.strip().splitlines()[-1])
    plain = last["pretrained_frozen"]["plain"]
    assert plain["seeds"] == 1 and np.isfinite(plain["mAP"]) and plain["selected"] is not None
    # the maps were computed by the weights in the file, not by ImageNet's or random ones
    cache = work / "pretrained_frozen" / "cache-resnet101_notop.weights" / "demo" / "cache" / "train"
    with open(cache / feature_cache.MANIFEST) as f:
        key = json.load(f)["key"]
    assert key["backbone"] == "resnet101"
    from cma_tf.backbones.resnet import resnet101_backbone

    assert key["backbone_weights"] == feature_cache.weights_digest(resnet101_backbone(64, weights=weights))
    assert os.path.exists(work / "pretrained_frozen" / "resnet101_notop.weights" / "demo" / "plain" / "seeds" / "seed0")
