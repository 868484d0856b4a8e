"""Calibrated, bias-corrected files load in real Keras 3 and compute what the NumPy forward
pass computes (marker ``keras``): the accuracies of benchmarks/bench_importance.py rest on it."""

import json
import pathlib
import subprocess

import numpy as np
import pytest

import weightshare
from keras_env import keras_python
from weightshare.compare import read_model
from weightshare.forward import forward

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
PREDICT = """
import json, sys, numpy as np, keras
out = {}
for path, inputs in json.loads(sys.argv[1]):
    m = keras.models.load_model(path, compile=False)
    out[path] = m.predict(np.load(inputs), verbose=0).astype("float64").tolist()
print(json.dumps(out))
"""


@pytest.mark.keras
def test_calibrated_files_compute_in_keras_what_numpy_computes(tmp_path):
    cases = [(weightshare.examples.path("digits.keras"),
              np.load(weightshare.examples.path("digits_test.npz"))["X_test"][:64]),
             (FIX / "k3_cnn.keras", np.load(FIX / "k3_cnn_io.npz")["x"])]
    jobs = []
    for i, (src, x) in enumerate(cases):
        out, inputs = tmp_path / f"c{i}.keras", tmp_path / f"x{i}.npy"
        rows = weightshare.cluster_file(src, out, 4, calibration=x)
        assert {r.bias_correction for r in rows} >= {"corrected"}
        np.save(inputs, x)
        jobs.append((str(out), str(inputs), x))
    proc = subprocess.run([keras_python("k3"), "-c", PREDICT,
                           json.dumps([[p, i] for p, i, _ in jobs])],
                          capture_output=True, text=True, timeout=600,
                          env={"KERAS_BACKEND": "jax", "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    for path, _, x in jobs:
        config, weights = read_model(path)
        np.testing.assert_allclose(np.array(got[path]), forward(config, weights, x),
                                   rtol=1e-4, atol=1e-5)
