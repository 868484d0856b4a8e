"""Pruned files load in the Keras that wrote them, zeros included (marker ``keras``).

Every fixture of a producer is pruned by weightshare (sparsity 0.8 of every kernel-like
tensor; ``keep=200`` of the embeddings for ``emb``), and the ``.keras`` files are then clustered
(k=4, zeros kept) on top of the pruning. All outputs are loaded by the Keras generation that
wrote the input (tests/keras/probe.py, one batch per producer), and:

- Keras loads exactly the tensors weightshare wrote: the multisets of (sha256 of the bytes,
  shape, dtype) of Keras' variables and of ``read_weights(output)`` are equal;
- every pruned tensor is among them with its zeros: ``size - nonzero_after`` of them;
- after clustering, every pruned zero is still zero and each kernel holds at most 4 values;
- the loaded models still predict (finite outputs for the fixture inputs).

Interpreters: ``WEIGHTSHARE_KERAS3_PYTHON`` (k3), ``WEIGHTSHARE_TF_PYTHON`` (k3tf, k2;
``WEIGHTSHARE_TFKERAS_PYTHON`` is accepted too). Unset: skipped, unless
``WEIGHTSHARE_REQUIRE_KERAS=1``, where the test fails.
"""

import collections
import hashlib
import json
import math
import pathlib
import subprocess

import numpy as np
import pytest

import weightshare
from keras_env import FIXTURE_PARTS, in_part, keras_python, sweep_producers

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
PROBE = ROOT / "tests" / "keras" / "probe.py"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
#: Keras cannot load these even untouched (fixtures README: Keras-3 legacy h5 with bfloat16)
KERAS_CANNOT = {"k3_bf16.h5", "k3tf_bf16.h5"}
SPARSITY, K = 0.8, 4


def bf16_bits(a):
    """float32 values that are exact bfloat16 -> their uint16 patterns (the probe's encoding)."""
    return (np.asarray(a, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)


def digest(a, dtype):
    a = np.asarray(a)
    if dtype == "bfloat16" and a.dtype != np.uint16:
        a = bf16_bits(a)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def arch(producer, model):
    for ext in (".keras", ".h5"):
        p = FIX / f"{producer}_{model}{ext}"
        if p.exists():
            return p
    raise AssertionError(f"no architecture file for {producer}_{model}")


def prune(name, entry, out):
    if entry["model"] == "emb":
        return weightshare.prune_file(FIX / name, out, keep=200, roles=["embeddings"])
    return weightshare.prune_file(FIX / name, out, sparsity=SPARSITY)


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("part", FIXTURE_PARTS)
@pytest.mark.parametrize("producer", sweep_producers("k2"))
def test_pruned_fixtures_load_with_their_zeros_in_the_keras_that_wrote_them(producer, part, tmp_path):
    python = keras_python(producer)
    names = sorted(n for n, e in MANIFEST["files"].items()
                   if e["producer"] == producer and n not in KERAS_CANNOT
                   and in_part(e["model"], part))
    assert names, f"no {part} fixtures of {producer}"
    jobs, checks = [], []
    for name in names:
        entry = MANIFEST["files"][name]
        pruned = tmp_path / f"pruned_{name}"
        rows = prune(name, entry, pruned)
        assert rows, name
        outputs = [("pruned", pruned, rows)]
        if entry["format"] == "keras_zip":
            clustered = tmp_path / f"clustered_{name}"
            crows = weightshare.cluster_file(pruned, clustered, K)
            outputs.append(("clustered", clustered, crows))
        for kind, path, rows_ in outputs:
            job = {"file": str(path), "out": str(path) + ".probe.npz",
                   "inputs": str(FIX / entry["io"])}
            if entry["format"] in ("weights_store", "legacy_weights"):
                job["arch"] = str(arch(producer, entry["model"]))
            jobs.append(job)
            checks.append((name, kind, path, rows_, pruned))
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    run = subprocess.run([python, str(PROBE), "--producer", producer, "--batch",
                          str(tmp_path / "jobs.json")], capture_output=True, text=True,
                         timeout=1800, cwd=tmp_path)
    status = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    assert len(status) == len(jobs), run.stderr[-2000:]
    failed = [s for s in status if not s["ok"]]
    assert not failed, failed[:3]

    for job, (name, kind, path, rows, pruned) in zip(jobs, checks):
        written = {r.name: r for r in weightshare.read_weights(path)}
        with np.load(job["out"], allow_pickle=False) as res:
            dtypes = json.loads(str(res["var_dtypes"]))
            shapes = json.loads(str(res["var_shapes"]))
            loaded = collections.Counter((digest(res[f"var/{i}"], dtypes[i]), tuple(shapes[i]),
                                          dtypes[i]) for i in range(len(dtypes)))
            ys = [res[k] for k in res.files if k == "y" or (k[:1] == "y" and k[1:].isdigit())]
        ours = collections.Counter((digest(r.value, r.dtype), r.shape, r.dtype)
                                   for r in written.values())
        assert loaded == ours, f"{kind} {name}: Keras loaded other values than weightshare wrote"
        assert ys and all(np.isfinite(y).all() for y in ys), f"{kind} {name}: no usable predictions"
        if kind == "pruned":
            for row in rows:
                w = written[row.tensor]
                assert int(np.count_nonzero(w.value)) == row.nonzero_after, (name, row.tensor)
                if row.role != "embeddings":
                    assert row.size - row.nonzero_after >= math.ceil(SPARSITY * row.size - 1e-9)
                else:
                    assert row.nonzero_after == 200
                assert loaded[(digest(w.value, w.dtype), w.shape, w.dtype)] >= 1
        else:
            before = {r.name: r.value for r in weightshare.read_weights(pruned)}
            for row in rows:
                v = written[row.tensor].value
                assert (v[before[row.tensor] == 0] == 0).all(), (name, row.tensor)
                assert np.unique(v).size <= K, (name, row.tensor)
