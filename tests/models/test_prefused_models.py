"""`.keras` files saved before the fused Eq. 9-10 path (`tests/fixtures/prefused/`, written by
`tests/fixtures/make_prefused_models.py` at commit 2c9b8ec) load and answer the same now."""

import os

import keras
import numpy as np
import pytest

from cma_tf import factory  # noqa: F401  (imports, so registers, every layer of the package)
from tests.fixtures.make_prefused_models import as_inputs
from tests.helpers import FIXTURES_DIR

PREFUSED = os.path.join(FIXTURES_DIR, "prefused")
MODELS = ("self_attention", "cma", "ms_cma", "self_attention_snet", "cma_snet")


@pytest.fixture(scope="module")
def answers():
    with np.load(os.path.join(PREFUSED, "answers.npz")) as data:
        return dict(data)


@pytest.mark.parametrize("name", MODELS)
def test_a_model_saved_before_answers_the_same(name, answers):
    model = keras.models.load_model(os.path.join(PREFUSED, f"{name}.keras"), compile=False)
    outputs = model.predict(as_inputs(answers[f"{name}_inputs"]), verbose=0)
    assert np.abs(answers[f"{name}_outputs"]).max() > 0.01  # not a degenerate fixture
    np.testing.assert_allclose(outputs, answers[f"{name}_outputs"], rtol=1e-5, atol=1e-5)
