"""examples/tinylm/step.py: the key/value-cached step model computes the full model's function (float)."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from test_cli import ROOT

EXAMPLE = ROOT / "examples" / "tinylm"


def _step():
    spec = importlib.util.spec_from_file_location("tinylm_step", EXAMPLE / "step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_step_logits_equal_the_full_models_in_float():
    """Each step, with the caches holding the full model's keys and values of the positions before it,
    gives the full model's logits at its position (float tolerance)."""
    keras = pytest.importorskip("keras")
    s = _step()
    full = keras.saving.load_model(EXAMPLE / "tinylm.keras", compile=False)
    step = s.build_step(keras, full)
    x = np.load(EXAMPLE / "tinylm_heldout.npz")["x"][:2].astype(np.int32)
    kv = s.full_keys_values(keras, full, x)
    expected = np.asarray(full.predict(x, verbose=0))
    for w in range(len(x)):
        for p in (0, 1, 31, s.CONTEXT - 1):
            got = np.asarray(step(s.step_inputs(x, kv, w, p))[0])[0]
            np.testing.assert_allclose(got, expected[w, p], atol=1e-3, rtol=0)
