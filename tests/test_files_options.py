"""cluster_file's options together: what each branch built alone must hold with the others.

jobs/executor (tensors in parallel) with importance, calibration, a budget, rate and vector
palettization; packed safetensors with cluster_dim; the pairs that exclude each other.
"""

import concurrent.futures as cf
import os
import pathlib

import numpy as np
import pytest

import weightshare

ROOT = pathlib.Path(__file__).resolve().parents[1]
ST = ROOT / "tests" / "fixtures" / "safetensors"
BERT = str(ST / "tiny_bert" / "model.safetensors")
LLAMA = str(ST / "tiny_llama_bf16")
DIGITS = weightshare.examples.path("digits.keras")
X = np.load(weightshare.examples.path("digits_test.npz"))["X_test"][:200]


def _rows(rows):
    return [r._replace(seconds=None) for r in rows]


def _importance():
    rng = np.random.default_rng(0)
    return {r.name: rng.random(r.shape) + 0.1 for r in weightshare.read_weights(DIGITS)
            if r.role == "kernel"}


CASES = {
    "importance": {"k": 4, "importance": _importance()},
    "calibration": {"k": 4, "calibration": X},
    "bits": {"bits": 2.5},
    "rate": {"k": 8, "rate": 0.01},
    "cluster_dim": {"k": 8, "cluster_dim": 2, "random_state": 1},
    "lloyd": {"k": 5, "method": "lloyd", "init": "kmeans++", "random_state": 7},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_an_executor_writes_the_bytes_of_one_process(tmp_path, case):
    """A thread pool runs the tensors: the file and the rows are those of jobs=1."""
    opts = dict(CASES[case])
    k = opts.pop("k", None)
    one, two = tmp_path / "one.keras", tmp_path / "two.keras"
    r1 = weightshare.cluster_file(DIGITS, one, k, jobs=1, **opts)
    with cf.ThreadPoolExecutor(2) as pool:
        r2 = weightshare.cluster_file(DIGITS, two, k, jobs=2, executor=pool, **opts)
    assert one.read_bytes() == two.read_bytes()
    assert _rows(r1) == _rows(r2)


@pytest.mark.parametrize("src", [BERT, LLAMA])
def test_packed_vector_palettization_loads_as_the_plain_output(tmp_path, src):
    ext = ".safetensors" if src.endswith(".safetensors") else ""
    plain, packed = str(tmp_path / f"plain{ext}"), str(tmp_path / f"packed{ext}")
    r1 = weightshare.cluster_file(src, plain, 4, cluster_dim=2, random_state=0)
    r2 = weightshare.cluster_file(src, packed, 4, cluster_dim=2, random_state=0, packed=True)
    assert _rows(r1) == _rows(r2) and r1
    want = {r.name: r.value for r in weightshare.read_weights(plain)}
    got = weightshare.load_packed(packed)
    assert list(got) == list(want)
    for name, v in want.items():
        assert np.array_equal(got[name].view(np.uint8), v.view(np.uint8)), name


@pytest.mark.parametrize("opts, named", [
    ({"k": 8, "rate": 0.1, "cluster_dim": 2}, "rate=0.1"),
    ({"bits": 3, "cluster_dim": 2}, "bits=3"),
    ({"k": 8, "packed": True}, "packed=True"),
])
def test_options_that_exclude_each_other_name_themselves_and_write_nothing(tmp_path, opts,
                                                                          named):
    opts = dict(opts)
    k = opts.pop("k", None)
    out = tmp_path / "out.keras"
    with pytest.raises((ValueError, weightshare.errors.FileFormatError), match=named):
        weightshare.cluster_file(DIGITS, out, k, **opts)
    assert not out.exists() and os.listdir(tmp_path) == []


def test_rate_and_cluster_dim_exclude_each_other_on_arrays():
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    with pytest.raises(ValueError, match="rate=0.5"):
        weightshare.cluster(w, 4, axis=0, cluster_dim=2, rate=0.5)
