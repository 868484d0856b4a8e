"""Stripped and compressed files load in the Keras that wrote them (marker ``keras``).

tests/keras/load_check.py loads each file the default way (``load_model`` with compile left at
True; weights files with ``load_weights`` into the stripped model) and reports what Keras warned
and the sha256 of every variable. For each producer (Keras 3 on jax: .keras, .weights.h5, legacy
.h5; tf-keras: .keras, legacy .h5, .weights.h5):

- ``strip``, ``strip --compress`` and ``--compress`` of the trained fixture load, with the very
  weights of the original (bit for bit), and the stripped ones with no warning about optimizer
  variables, uncompiled;
- a clustered ``--compress`` output loads with the same weights, bit for bit, as the clustered
  uncompressed output.
"""

import json
import pathlib
import subprocess

import pytest

import weightshare
from keras_env import keras_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
CHECK = ROOT / "tests" / "keras" / "load_check.py"
SUFFIXES = {"k3": (".keras", ".weights.h5", ".h5"), "k2": (".keras", ".h5", ".weights.h5")}


def _load(producer, jobs, tmp_path):
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    out = subprocess.run([keras_python(producer), str(CHECK), "--producer", producer, str(path)],
                         capture_output=True, text=True, timeout=600)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert len(rows) == len(jobs), out.stderr[-2000:]
    return {row["file"]: row for row in rows}


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("producer", [pytest.param("k3", marks=pytest.mark.exhaustive), "k2"])
def test_stripped_and_compressed_files_load_with_the_same_weights(producer, tmp_path):
    arch = tmp_path / "arch.keras"                       # for the weights files
    weightshare.strip_file(FIX / f"{producer}_trained.keras", arch)
    jobs, expect_same, stripped = [{"file": str(FIX / f"{producer}_trained.keras")}], [], []
    for suffix in SUFFIXES[producer]:
        src = FIX / f"{producer}_trained{suffix}"
        extra = {"arch": str(arch)} if suffix == ".weights.h5" else {}
        # Keras 3 cannot compile its own legacy .h5 with loss="mse" (an unstripped one)
        unstripped = {"compile": False} if (producer, suffix) == ("k3", ".h5") else {}
        for tag, kw in (("s", {}), ("sc", {"compress": True})):
            out = tmp_path / f"{tag}{suffix}"
            assert weightshare.strip_file(src, out, **kw).stripped
            jobs.append({"file": str(out), **extra})
            stripped.append(str(out))
        comp = tmp_path / f"c{suffix}"
        weightshare.transform_file(src, comp, lambda r, v: None, compress=True)
        jobs.append({"file": str(comp), **extra, **unstripped})
        expect_same += stripped[-2:] + [str(comp)]
        plain, small = tmp_path / f"k4{suffix}", tmp_path / f"k4c{suffix}"
        weightshare.cluster_file(src, plain, 4, random_state=0)
        weightshare.cluster_file(src, small, 4, random_state=0, compress=True)
        jobs += [{"file": str(plain), **extra, **unstripped},
                 {"file": str(small), **extra, **unstripped}]
    rows = _load(producer, jobs, tmp_path)
    reference = rows[str(FIX / f"{producer}_trained.keras")]
    assert reference["ok"], reference["error"]
    for job in jobs:
        row = rows[job["file"]]
        assert row["ok"], (job["file"], row["error"])
    for path in expect_same:
        assert rows[path]["weights"] == reference["weights"], path
    for path in stripped:
        assert not [w for w in rows[path]["warnings"] if "optimizer" in w.lower()], \
            (path, rows[path]["warnings"])
        assert not rows[path]["compiled"], path
    for suffix in SUFFIXES[producer]:
        a, b = rows[str(tmp_path / f"k4{suffix}")], rows[str(tmp_path / f"k4c{suffix}")]
        assert a["weights"] == b["weights"] != reference["weights"], suffix
