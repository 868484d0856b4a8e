"""Clustered files load in the Keras that wrote them (marker ``keras``).

Every fixture is clustered (k=4, zeros kept) by weightshare; the output is
loaded by the same Keras generation that wrote the input
(tests/keras/probe.py, one interpreter per producer, all files in one batch),
and:

- Keras loads exactly the tensors weightshare wrote: the multisets of
  (sha256 of the bytes, shape, dtype) of Keras' variables and of
  ``read_weights(output)`` are equal, and every kernel-like variable has at
  most 4 distinct values;
- where Keras restores optimizer state (fixtures README), it restores the
  original state byte for byte (the rewrite left it alone);
- Keras' predictions equal a NumPy forward pass of the written weights: an
  independent Dense-stack forward for mlp/pruned/digits/trained/rm_dense_dense
  (float64, rtol 1e-5), and ``weightshare.forward`` for every other model.

Quantized Keras layers, written by real Keras 3, are refused in every format.

Interpreters: ``WEIGHTSHARE_KERAS3_PYTHON`` (k3), ``WEIGHTSHARE_TF_PYTHON`` (k3tf, k2;
``WEIGHTSHARE_TFKERAS_PYTHON`` is accepted too). Unset: skipped, unless
``WEIGHTSHARE_REQUIRE_KERAS=1``, where the test fails.
"""

import collections
import hashlib
import json
import pathlib
import subprocess
import zipfile

import numpy as np
import pytest

import weightshare
from keras_env import FIXTURE_PARTS, in_part, keras_python, sweep_producers
from weightshare.errors import FileFormatError
from weightshare._codec._bf16 import float32_to_bf16_bits

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"
PROBE = ROOT / "tests" / "keras" / "probe.py"
MAKE_QUANTIZED = ROOT / "tests" / "keras" / "make_quantized.py"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
#: Keras cannot load these even untouched (fixtures README: Keras-3 legacy h5 with bfloat16)
KERAS_CANNOT = {"k3_bf16.h5", "k3tf_bf16.h5"}
#: files whose optimizer state Keras restores with compile=True (fixtures README)
OPTIMIZER_RESTORED = {"k3_trained.keras", "k3tf_trained.keras", "k3_digits.keras",
                      "k2_trained.keras", "k2_trained.h5", "k2_mixed.keras", "k2_digits.h5"}
DENSE_STACKS = ("mlp", "pruned", "digits", "trained", "rm_dense_dense")
TOLERANCE = {"float32": 1e-5, "float16": 3e-3, "bfloat16": 2e-2}
K = 4


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


def _config(path):
    import h5py
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["model_config"])


def _dense_forward(records, config, x):
    """Dense layers in config order, float64; weights by layer name, or in file order when the
    file records no names (a tf-keras weights store)."""
    layers = [e for e in config["config"]["layers"] if e["class_name"] == "Dense"]
    by_name = {r.name: r.value.astype(np.float64) for r in records}
    kernels = [r.value.astype(np.float64) for r in records if r.role == "kernel"]
    biases = [r.value.astype(np.float64) for r in records if r.role == "bias"]
    h = np.asarray(x, dtype=np.float64)
    for i, e in enumerate(layers):
        name, act = e["config"]["name"], e["config"].get("activation", "linear")
        kernel = by_name.get(f"{name}/kernel", kernels[i] if i < len(kernels) else None)
        bias = by_name.get(f"{name}/bias", biases[i] if i < len(biases) else 0.0)
        h = h @ kernel + bias
        if act == "relu":
            h = np.maximum(h, 0)
        elif act == "softmax":
            h = np.exp(h - h.max(axis=1, keepdims=True))
            h /= h.sum(axis=1, keepdims=True)
    return h


def _compute_dtype(entry):
    dtypes = {w["dtype"] for layer in entry["layers"] for w in layer["weights"]}
    if entry["model"] == "mixed":
        return "float16"
    return "bfloat16" if "bfloat16" in dtypes else "float16" if "float16" in dtypes else "float32"


def _run_probe(python, producer, jobs, folder):
    (folder / "jobs.json").write_text(json.dumps(jobs))
    run = subprocess.run([python, str(PROBE), "--producer", producer, "--batch",
                          str(folder / "jobs.json")], capture_output=True, text=True, timeout=900)
    status = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(status) == len(jobs), run.stderr[-2000:]
    return status


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("part", FIXTURE_PARTS)
@pytest.mark.parametrize("producer", sweep_producers("k3"))
def test_clustered_fixtures_load_in_the_keras_that_wrote_them(producer, part, tmp_path):
    python = keras_python(producer)
    names = sorted(n for n, e in MANIFEST["files"].items()
                   if e["producer"] == producer and n not in KERAS_CANNOT
                   and in_part(e["model"], part))
    assert names, f"no {part} fixtures of {producer}"
    jobs, written = [], {}
    for name in names:
        entry = MANIFEST["files"][name]
        out = tmp_path / name
        rows = weightshare.cluster_file(FIX / name, out, K)
        assert rows and all(r.distinct_after <= K for r in rows), name
        written[name] = weightshare.read_weights(out)
        job = {"file": str(out), "out": str(tmp_path / f"{name}.probe.npz"),
               "inputs": str(FIX / entry["io"]), "compile": name in OPTIMIZER_RESTORED}
        if entry["format"] in ("weights_store", "legacy_weights"):
            job["arch"] = str(_arch(producer, entry["model"]))
        jobs.append(job)
    status = _run_probe(python, producer, jobs, tmp_path)
    failed = [s for s in status if not s.get("ok")]
    assert not failed, failed[:3]
    predictions = 0
    for name, job in zip(names, jobs):
        entry = MANIFEST["files"][name]
        with np.load(job["out"], allow_pickle=False) as res:
            dtypes = json.loads(str(res["var_dtypes"]))
            shapes = json.loads(str(res["var_shapes"]))
            roles = json.loads(str(res["var_roles"]))
            loaded = collections.Counter(
                (_digest(res[f"var/{i}"], dtypes[i]), tuple(shapes[i]), dtypes[i])
                for i in range(len(dtypes)))
            ours = collections.Counter((_digest(r.value, r.dtype), r.shape, r.dtype)
                                       for r in written[name])
            assert loaded == ours, f"{name}: Keras loaded other values than weightshare wrote"
            for i, role in enumerate(roles):
                if role in ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel",
                            "embeddings"):
                    assert np.unique(res[f"var/{i}"]).size <= K, (name, i)
            if job["compile"]:
                opt = [_digest(res[f"opt/{i}"], d)
                       for i, d in enumerate(json.loads(str(res["opt_dtypes"])))]
                assert opt == [w["sha256"] for w in entry["optimizer"]], name
            with np.load(FIX / entry["io"]) as io_:
                x = io_["x"]
            source = FIX / name if entry["format"] in ("keras_zip", "legacy_full") \
                else _arch(producer, entry["model"])
            if entry["model"] in DENSE_STACKS:
                expected = _dense_forward(written[name], _config(source), x)
                np.testing.assert_allclose(res["y"], expected, rtol=1e-5, atol=1e-6, err_msg=name)
                predictions += 1
            elif "y" in res.files and not (entry["format"] == "weights_store"
                                           and producer == "k2"):
                from weightshare.compare import read_model
                from weightshare.forward import forward
                config, weights = read_model(tmp_path / name, architecture=source)
                y = forward(config, weights, x)
                rel = np.max(np.abs(y - res["y"])) / np.max(np.abs(res["y"]))
                assert rel <= TOLERANCE[_compute_dtype(entry)], f"{name}: relative error {rel:.1e}"
                predictions += 1
    assert predictions >= len(names) * 2 // 3


@pytest.mark.keras
@pytest.mark.slow
def test_quantized_keras_layers_are_refused_in_every_format(tmp_path):
    python = keras_python("k3")
    run = subprocess.run([python, str(MAKE_QUANTIZED), str(tmp_path)], capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    made = sorted(p for p in tmp_path.iterdir() if p.suffix in (".keras", ".h5"))
    assert len(made) == 8, [p.name for p in made]
    out = tmp_path / "out"
    out.mkdir()
    for path in made:
        before = path.read_bytes()
        with pytest.raises(FileFormatError, match=r"quantized") as info:
            weightshare.cluster_file(path, out / path.name, K)
        assert info.value.path == str(path) and info.value.dataset, path.name
        assert path.read_bytes() == before
    assert list(out.iterdir()) == []
