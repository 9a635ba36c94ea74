"""Test set-up: quiet TensorFlow, deterministic seeds, the repo root importable (configs/)."""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import cma_tf  # noqa: E402,F401  (first: imports TensorFlow without its start-up log lines)
import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(1234)
