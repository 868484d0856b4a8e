"""Clustered files load in the Keras that wrote them (marker ``keras``).

Every fixture is clustered (k=4, zeros kept) by weightshare; the output is
loaded by the same Keras generation that wrote the input (tests/keras/probe.py,
one batch per producer) and:

- every variable Keras loads equals, bit for bit, a tensor weightshare wrote
  (the multisets of value hashes are equal);
- for the Dense stacks, Keras' predictions equal a NumPy forward pass of the
  written weights.

Interpreters: ``WEIGHTSHARE_KERAS3_PYTHON`` (k3), ``WEIGHTSHARE_TF_PYTHON`` (k3tf, k2).
Unset: skipped, unless ``WEIGHTSHARE_REQUIRE_KERAS=1``, where it fails.
"""

import collections
import hashlib
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import weightshare
from weightshare._io._bf16 import float32_to_bf16_bits

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"
PROBE = ROOT / "tests" / "keras" / "probe.py"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
ENV = {"k3": ("WEIGHTSHARE_KERAS3_PYTHON",),
       "k3tf": ("WEIGHTSHARE_TF_PYTHON", "WEIGHTSHARE_TFKERAS_PYTHON"),
       "k2": ("WEIGHTSHARE_TF_PYTHON", "WEIGHTSHARE_TFKERAS_PYTHON")}
#: Keras cannot load these even untouched (fixtures README: Keras-3 legacy h5 with bfloat16)
KERAS_CANNOT = {"k3_bf16.h5", "k3tf_bf16.h5"}
DENSE_STACKS = ("mlp", "pruned", "digits", "trained", "rm_dense_dense")


def _python(producer):
    for var in ENV[producer]:
        if os.environ.get(var):
            return os.environ[var]
    names = " or ".join(ENV[producer])
    if os.environ.get("WEIGHTSHARE_REQUIRE_KERAS") == "1":
        pytest.fail(f"{names} is not set but WEIGHTSHARE_REQUIRE_KERAS=1")
    pytest.skip(f"{names} is not set (a Keras interpreter; see tests/keras/setup_venvs.sh)")


def _digest(a, dtype):
    a = np.asarray(a)
    if dtype == "bfloat16" and a.dtype != np.uint16:
        a = float32_to_bf16_bits(a)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _arch(producer, model):
    for ext in (".keras", ".h5"):
        p = FIX / f"{producer}_{model}{ext}"
        if p.exists():
            return p
    return None


def _dense_forward(records, config, x):
    layers = [e for e in config["config"]["layers"] if e["class_name"] == "Dense"]
    values = {r.name: r.value.astype(np.float64) for r in records}
    h = np.asarray(x, dtype=np.float64)
    for e in layers:
        name, act = e["config"]["name"], e["config"].get("activation", "linear")
        h = h @ values[f"{name}/kernel"] + values.get(f"{name}/bias", 0.0)
        if act == "relu":
            h = np.maximum(h, 0)
        elif act == "softmax":
            h = np.exp(h - h.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
    return h


def _config(path):
    import h5py
    import zipfile
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["model_config"])


@pytest.mark.keras
@pytest.mark.parametrize("producer", list(ENV))
def test_clustered_fixtures_load_in_the_keras_that_wrote_them(producer, tmp_path):
    python = _python(producer)
    names = sorted(n for n, e in MANIFEST["files"].items()
                   if e["producer"] == producer and n not in KERAS_CANNOT)
    jobs, written = [], {}
    for name in names:
        entry = MANIFEST["files"][name]
        out = tmp_path / name
        weightshare.cluster_file(FIX / name, out, 4)
        written[name] = weightshare.read_weights(out)
        job = {"file": str(out), "out": str(tmp_path / f"{name}.probe.npz"),
               "inputs": str(FIX / entry["io"])}
        if entry["format"] in ("weights_store", "legacy_weights"):
            job["arch"] = str(_arch(producer, entry["model"]))
        jobs.append(job)
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    run = subprocess.run([python, str(PROBE), "--producer", producer, "--batch",
                          str(tmp_path / "jobs.json")], capture_output=True, text=True, timeout=900)
    status = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    failed = [s for s in status if not s.get("ok")]
    assert not failed, failed[:3]
    assert len(status) == len(jobs)
    for name, job in zip(names, jobs):
        with np.load(job["out"], allow_pickle=False) as res:
            dtypes = json.loads(str(res["var_dtypes"]))
            loaded = collections.Counter(_digest(res[f"var/{i}"], dtypes[i])
                                         for i in range(len(dtypes)))
            ours = collections.Counter(_digest(r.value, r.dtype) for r in written[name])
            assert loaded == ours, f"{name}: Keras loaded other values than weightshare wrote"
            entry = MANIFEST["files"][name]
            if entry["model"] in DENSE_STACKS and entry["format"] in ("keras_zip", "legacy_full"):
                with np.load(FIX / entry["io"]) as io_:
                    x = io_["x"]
                expected = _dense_forward(written[name], _config(FIX / name), x)
                np.testing.assert_allclose(res["y"], expected, rtol=1e-5, atol=1e-5,
                                           err_msg=name)
