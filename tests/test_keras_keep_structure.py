"""weightshare.keras.KeepStructure and PruneDuring, trained in real Keras (marker ``keras``).

tests/keras/keep_structure.py runs in each Keras interpreter with the repository root on
PYTHONPATH (weightshare itself never imports Keras; ``weightshare.keras`` does, when imported):
Keras 3 on jax (``WEIGHTSHARE_KERAS3_PYTHON``), Keras 3 on tensorflow and tf-keras 2
(``WEIGHTSHARE_TF_PYTHON``, the latter with ``TF_USE_LEGACY_KERAS=1``). Unset: skipped, unless
``WEIGHTSHARE_REQUIRE_KERAS=1``, where the test fails.
"""

import json
import math
import os
import pathlib
import subprocess

import pytest

from keras_env import keras_python

ROOT = pathlib.Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tests" / "keras" / "keep_structure.py"
#: k3 in the README's test command; k3tf and k2 with --exhaustive (tests/conftest.py, keras_env)
RUNS = [pytest.param("k3", "jax", "0", "3.", id="k3"),
        pytest.param("k3tf", "tensorflow", "0", "3.", id="k3tf"),
        pytest.param("k2", "tensorflow", "1", "2.", id="k2", marks=pytest.mark.exhaustive)]


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("producer, backend, legacy, version", RUNS)
def test_training_keeps_the_structure(producer, backend, legacy, version, tmp_path):
    python = keras_python(producer)
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3",
               CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu", TF_USE_LEGACY_KERAS=legacy)
    proc = subprocess.run([python, str(SCRIPT), "--epochs", "2", "-n", "256"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["keras_version"].startswith(version) and out["backend"] == backend
    # the seed: trained, prune(keep=200), two epochs: exactly 200 non-zeros at the same
    # positions, trained
    assert out["seed_nonzero"] == 200
    assert out["seed_same_positions"] and out["seed_trained"]
    # ... and fine-tuning the 200 recovers accuracy pruning lost (about 0.7 -> 1.0 on this data)
    assert out["seed_accuracy_finetuned"] > out["seed_accuracy_pruned"] + 0.1
    # a kernel pruned 50 % and clustered to k=8: <= 8 values, the same zeros, fixed assignment,
    # and the shared values did train
    assert out["clustered_distinct_before"] == 8 and out["clustered_distinct_after"] <= 8
    assert out["clustered_zeros_kept"]
    assert out["clustered_nonzero_after"] == out["clustered_nonzero_before"]
    assert out["clustered_assignment_fixed"] and out["clustered_values_trained"]
    # PruneDuring: every kernel at the schedule's final sparsity (ceil(0.9 * size) zeros)
    assert out["gradual_final"] == 0.9
    for layer, (size, nonzero) in out["gradual_kernels"].items():
        assert nonzero == size - math.ceil(0.9 * size), layer
