"""A tiny pretraining run (`cma_tf/training/pretrain_backbone.py`, the command `cma_tf/pretrain.py`)
writes a weights file the small backbone loads, and its provenance."""

import hashlib
import json
import os

import numpy as np
import pytest
from absl import flags

from cma_tf import pretrain
from cma_tf.backbones.small import small_backbone
from cma_tf.backbones.weights import resolve_small_weights
from cma_tf.datasets import pretrain_corpus
from cma_tf.errors import ConfigError
from cma_tf.training.pretrain_backbone import Recipe, classifier_over, provenance_path, run_pretraining

WIDTHS = (8, 16, 32, 64)
SIZE = 32


@pytest.mark.slow
def test_a_tiny_run_writes_a_loadable_weights_file_and_its_provenance(tmp_path):
    out = str(tmp_path / "presets" / "tiny.weights.h5")
    recipe = Recipe(epochs=2, batch_size=16, learning_rate=1e-3, warmup_epochs=0.5, seed=1)
    provenance = run_pretraining(out, num_train=48, num_heldout=16, corpus_seed=5, recipe=recipe, image_size=SIZE,
                                 widths=WIDTHS, command="python -m cma_tf.pretrain --out=x", progress=False)
    assert sorted(os.listdir(tmp_path / "presets")) == ["tiny.provenance.json", "tiny.weights.h5"]  # no temporaries
    with open(out, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    with open(provenance_path(out)) as f:
        written = json.load(f)
    assert written == provenance and written["sha256"] == digest
    assert written["corpus"] == pretrain_corpus.describe(48, 16, 5, SIZE)
    assert written["recipe"]["epochs"] == 2 and written["result"]["steps"] == 2 * 3
    assert len(written["result"]["train_loss_per_epoch"]) == 2 and 0 <= written["result"]["heldout_top1"] <= 1
    assert written["command"] == "python -m cma_tf.pretrain --out=x"
    assert {"platform", "cpu_count", "tensorflow"} <= set(written["machine"]) and written["wall_time_seconds"]["total"] > 0

    loaded = small_backbone(SIZE, WIDTHS, weights=resolve_small_weights(out, WIDTHS))
    fresh = small_backbone(SIZE, WIDTHS)
    assert len(loaded.get_weights()) == len(fresh.get_weights())
    assert any(np.abs(a - b).max() > 1e-3 for a, b in zip(loaded.get_weights(), fresh.get_weights()))
    # the file holds the statistics BatchNorm gathered in training (a fresh layer's moving mean is 0)
    assert np.abs(loaded.get_layer("stem_bn").moving_mean.numpy()).max() > 1e-3


def test_an_out_without_the_keras_suffix_is_refused_and_nothing_is_written(tmp_path):
    with pytest.raises(ConfigError, match=r"--out=.*tiny\.h5: a weights file must end in \.weights\.h5"):
        run_pretraining(str(tmp_path / "tiny.h5"), 4, 4, 0, Recipe(epochs=1), image_size=SIZE, widths=WIDTHS,
                        progress=False)
    assert os.listdir(tmp_path) == []


def test_every_flag_has_help():
    values = pretrain.define_flags(flags.FlagValues())
    names = {"out", "num_train", "num_heldout", "corpus_seed", "image_size", "widths", "epochs", "batch_size",
             "learning_rate", "weight_decay", "warmup_epochs", "seed", "progress"}
    assert names <= set(values)
    for name in names:
        assert len(values[name].help) > 20, name


def test_the_classifier_is_a_softmax_over_the_pooled_last_map():
    """numpy: mean over the stride-16 map, Dense, softmax."""
    backbone = small_backbone(SIZE, WIDTHS)
    model = classifier_over(backbone, 5)
    x = np.random.default_rng(0).uniform(0, 255, (3, SIZE, SIZE, 3)).astype("float32")
    kernel, bias = model.get_layer("classifier").get_weights()
    logits = np.asarray(backbone(x)[-1]).mean(axis=(1, 2)) @ kernel + bias
    expected = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(np.asarray(model(x)), expected / expected.sum(1, keepdims=True), rtol=1e-5, atol=1e-6)
