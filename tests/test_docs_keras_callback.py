"""docs/examples/keras_mask_callback.py (weightshare.keras callbacks), run in real Keras.

weightshare never imports Keras, so the example runs in a subprocess with the interpreter named
by an environment variable (with the repository root on PYTHONPATH so weightshare imports):

- ``WEIGHTSHARE_KERAS3_PYTHON``: Keras 3, jax backend;
- ``WEIGHTSHARE_TF_PYTHON``: Keras 3 on the tensorflow backend, and tf-keras 2
  (``TF_USE_LEGACY_KERAS=1``).

A test whose variable is unset is skipped, unless ``WEIGHTSHARE_REQUIRE_KERAS=1`` (CI), where it
fails.
"""

import json
import os
import pathlib
import subprocess

import pytest

from keras_env import keras_python

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "keras_mask_callback.py"


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("producer, backend, legacy", [   # k2 in the README's test command
    pytest.param("k3", "jax", "0", marks=pytest.mark.exhaustive), ("k3tf", "tensorflow", "0"),
    ("k2", "tensorflow", "1")])
def test_callback_keeps_exactly_200_nonzeros_while_training(producer, backend, legacy, tmp_path):
    python = keras_python(producer)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", TF_USE_LEGACY_KERAS=legacy)
    proc = subprocess.run([python, str(EXAMPLE), "--steps", "30", "--keep", "200"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend and out["legacy"] == (legacy == "1")
    assert out["keras_version"].startswith("2." if legacy == "1" else "3.")
    assert out["size"] == 1600 and out["nonzero_after_prune"] == 200
    # the problem: without the callback, training revives the zeros
    assert out["nonzero_without_callback"] > 200
    # the answer: exactly 200 non-zeros, at the positions pruning chose, and they did train
    assert out["nonzero_with_callback"] == 200
    assert out["same_positions"] and out["weights_trained"]
    # gradual pruning along a polynomial schedule ends at exactly 200 as well
    assert out["nonzero_gradual"] == 200
