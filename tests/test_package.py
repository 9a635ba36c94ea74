"""The package's shape (docs/design.md §4): no import from a lower layer to a higher one, the
registries list what the package holds, and `import cma_tf` alone loads every model it saves."""

import ast
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from cma_tf import factory
from cma_tf.config_base import get_base_config
from cma_tf.errors import ConfigError
from cma_tf.heads.registry import get_head, head_names
from cma_tf.kinds.registry import kind_names
from tests.helpers import TINY_IMAGE_SIZE, TINY_WIDTHS, slow_for

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import import_graph  # noqa: E402

PACKAGE = ROOT / "cma_tf"


def test_no_module_imports_a_higher_layer():
    assert import_graph.violations(import_graph.import_graph()) == []


def test_the_checker_finds_an_upward_import(tmp_path):
    """A copy of the package in which `data/records.py` imports the factory is reported."""
    import shutil

    copy = tmp_path / "cma_tf"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    records = copy / "data" / "records.py"
    records.write_text(records.read_text() + "\n\ndef _late():\n    from cma_tf import factory  # noqa\n")
    problems = import_graph.violations(import_graph.import_graph(str(copy)))
    assert problems == ["cma_tf.data.records (data, metrics, layers) imports cma_tf.factory (factory)"]


def test_every_module_has_a_layer():
    for name in import_graph.module_names():
        import_graph.layer_of(name)  # a KeyError names a module in no layer


def registered_class_names():
    """The classes decorated with `@register` in the package's source (read with ast)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and any(
                isinstance(d, ast.Name) and d.id == "register" for d in node.decorator_list
            ):
                names.add(node.name)
    return names


def run_fresh(code, cwd):
    """Runs `code` in a new Python process (nothing of cma_tf imported before it)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_import_cma_tf_registers_every_keras_class(tmp_path):
    expected = registered_class_names()
    assert {"MultiLabelClassifier", "CMAHead", "ASGEEncoder", "WeightedBinaryCrossentropy"} <= expected
    result = run_fresh(
        """
        import keras, cma_tf
        print(sorted(k.split(">", 1)[1] for k in keras.saving.get_custom_objects() if k.startswith("cma_tf>")))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert set(eval(result.stdout.strip().splitlines()[-1])) == expected


@pytest.mark.parametrize("head", slow_for(["plain", "self_attention", "cma", "ms_cma"], ("self_attention", "cma", "ms_cma")))
def test_a_saved_model_loads_after_import_cma_tf_alone(head, tmp_path):
    """As a new user would: `import keras, cma_tf; keras.saving.load_model(path)`, in a new process."""
    config = get_base_config()
    config.model.head, config.model.backbone = head, "small"
    config.model.backbone_widths, config.data.image_size = TINY_WIDTHS, TINY_IMAGE_SIZE
    config.model.feature_channels, config.model.extra_block_filters, config.asge.units = 8, 4, 8
    encoder = factory.build_label_encoder(config, 5) if get_head(head).label_embeddings else None
    model = factory.build_classifier(config, 5, encoder)
    images = np.random.default_rng(0).uniform(0, 255, (2, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3)).astype("float32")
    expected = np.asarray(model(images, training=False))
    model.save(tmp_path / "model.keras")
    np.save(tmp_path / "images.npy", images)
    result = run_fresh(
        """
        import keras, numpy as np, cma_tf
        model = keras.saving.load_model("model.keras")
        np.save("loaded.npy", np.asarray(model(np.load("images.npy"), training=False)))
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), expected, rtol=1e-5, atol=1e-6)


def test_the_registries_hold_the_package_heads_and_kinds():
    assert set(head_names()) >= {"plain", "self_attention", "cma", "ms_cma"}
    assert kind_names() == ("image", "tfds", "yt8m_frame", "yt8m_video")
    # Other heads may be registered besides (one file each), so check the paper's four by name.
    assert [get_head(name).label_embeddings for name in ("plain", "self_attention", "cma", "ms_cma")] == [
        False, False, True, True
    ]
    assert get_head("ms_cma").taps == 2


def test_unknown_names_list_the_registered_ones():
    config = get_base_config()
    config.model.head = "transformer"
    registered = ", ".join(head_names())  # every registered head, sorted
    with pytest.raises(ConfigError, match=rf"config.model.head: unknown head 'transformer' \({registered}\)"):
        factory.validate_config(config)
    config = get_base_config()
    config.data.format = "parquet"
    with pytest.raises(ConfigError, match=r"config.data.format: unknown format 'parquet' \(image, tfds, yt8m_frame, yt8m_video\)"):
        factory.validate_config(config)


def test_a_two_tap_head_on_a_one_tap_backbone_names_the_heads_that_fit():
    config = get_base_config()
    config.data.format, config.model.backbone, config.model.head = "yt8m_frame", "snet", "ms_cma"
    with pytest.raises(ConfigError, match=r"reads 2 backbone maps .* gives 1 \(heads that fit: cma, dbof, ml_decoder, mlgcn, netvlad, nextvlad, plain, q2l, self_attention\)"):
        factory.validate_config(config)


def test_a_head_registered_from_outside_the_package_is_built(monkeypatch):
    """A user's head: one registration, then `config.model.head` names it."""
    import keras

    from cma_tf.heads import registry

    class MeanHead(keras.layers.Layer):
        def __init__(self, num_classes, feature_channels=None, **kwargs):
            super().__init__(**kwargs)
            self.dense = keras.layers.Dense(num_classes)
            self.feature_channels = feature_channels

        def call(self, features):
            deepest = features[-1] if isinstance(features, (list, tuple)) else features
            return self.dense(keras.ops.mean(deepest, axis=(1, 2)))

    monkeypatch.setattr(registry.HEADS, "_entries", dict(registry.HEADS._entries))
    registry.register_head(registry.HeadSpec("mean", MeanHead, options=("feature_channels",)))
    config = get_base_config()
    config.model.head, config.model.backbone = "mean", "small"
    config.model.backbone_widths, config.data.image_size, config.model.feature_channels = TINY_WIDTHS, TINY_IMAGE_SIZE, 7
    model = factory.build_classifier(config, 3)
    assert model.head.feature_channels == 7
    assert model(np.zeros((1, TINY_IMAGE_SIZE, TINY_IMAGE_SIZE, 3), "float32")).shape == (1, 3)
