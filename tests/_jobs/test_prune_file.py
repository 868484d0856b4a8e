"""weightshare.prune_file and ``weightshare prune`` on the real-Keras fixtures (no Keras needed).

Every pruned tensor must equal ``weightshare.prune`` of the tensor read from the input, every
other tensor must be untouched, the input must be byte-identical afterwards, and a refused
target must leave nothing behind. The loading side (Keras reads the zeros back) is in
tests/_jobs/test_prune_keras.py.
"""

import hashlib
import json
import math
import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import weightshare
from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = ROOT / "examples" / "digits.keras"

FILES = ["k3_mlp.keras", "k3_mlp.weights.h5", "k3_mlp.h5", "k2_mlp.keras", "k2_mlp.h5",
         "k2_mlp.weights_only.h5", "k3tf_cnn.keras", "k2_cnn.h5", "k3_bf16.keras",
         "k3_bf16.weights.h5", "k3_f16.h5", "k2_pruned.h5", "k3_emb.keras", "k3_nested.keras",
         "k3_rnn.h5", "k3_mha.keras", "k2_zoo.keras"]


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def records(path):
    return {r.name: r for r in weightshare.read_weights(path)}


def targeted(path, roles=("kernel",), layers=None):
    recs = weightshare.read_weights(path)
    chosen = weightshare.select_weights(recs, layers=layers, roles=roles)
    return [r for r in chosen if r.dtype in ("float16", "float32", "float64", "bfloat16")]


def assert_only_targets_changed(src, dst, names):
    before, after = records(src), records(dst)
    assert [(r.name, r.shape, r.dtype) for r in before.values()] == \
        [(r.name, r.shape, r.dtype) for r in after.values()]
    for name, r in before.items():
        if name not in names:
            np.testing.assert_array_equal(after[name].value, r.value, err_msg=name)


# =========================================================================== the API

@pytest.mark.parametrize("name", FILES)
def test_every_targeted_tensor_equals_prune_of_the_input(name, tmp_path):
    src, dst = FIX / name, tmp_path / name
    digest = sha(src)
    rows = weightshare.prune_file(src, dst, sparsity=0.8)
    assert sha(src) == digest
    want = targeted(src)
    assert [r.tensor for r in rows] == [r.name for r in want] and rows
    after = records(dst)
    for row, rec in zip(rows, want):
        expected = weightshare.prune(rec.value, sparsity=0.8)
        got = after[rec.name].value
        np.testing.assert_array_equal(got, expected.values, err_msg=rec.name)
        assert got.dtype == rec.value.dtype
        assert (row.size, row.nonzero_before, row.nonzero_after) == \
            (rec.value.size, int(np.count_nonzero(rec.value)), expected.n_kept)
        assert row.threshold == expected.threshold and row.dtype == rec.dtype
        assert row.nonzero_after == min(row.nonzero_before,
                                        row.size - math.ceil(0.8 * row.size - 1e-9))
    assert_only_targets_changed(src, dst, {r.tensor for r in rows})


def test_keep_200_in_the_embedding(tmp_path):
    dst = tmp_path / "emb.keras"
    rows = weightshare.prune_file(FIX / "k3_emb.keras", dst, keep=200, layers=["embed"])
    assert [(r.tensor, r.size, r.nonzero_after) for r in rows] == [("embed/embeddings", 400, 200)]
    emb = records(dst)["embed/embeddings"].value
    assert np.count_nonzero(emb) == 200
    np.testing.assert_array_equal(emb, weightshare.prune(records(FIX / "k3_emb.keras")
                                                         ["embed/embeddings"].value, keep=200).values)
    assert_only_targets_changed(FIX / "k3_emb.keras", dst, {"embed/embeddings"})


def test_existing_zeros_count_and_are_never_revived(tmp_path):
    src, dst = FIX / "k2_pruned.h5", tmp_path / "p.h5"
    rows = weightshare.prune_file(src, dst, sparsity=0.5)      # the kernels are 60 % zeros already
    assert rows and all(r.nonzero_after == r.nonzero_before for r in rows)
    rows = weightshare.prune_file(src, dst, sparsity=0.7)
    before = records(src)
    for row in rows:
        old, new = before[row.tensor].value, records(dst)[row.tensor].value
        assert not np.any((new != 0) & (old == 0))
        assert row.nonzero_after == row.size - math.ceil(0.7 * row.size - 1e-9)


def test_per_channel_uses_the_output_axis(tmp_path):
    src, dst = FIX / "k3_cnn.keras", tmp_path / "cnn.keras"
    rows = weightshare.prune_file(src, dst, keep=2, per_channel=True)
    before, after = records(src), records(dst)
    axes = {"conv1/kernel": -1, "dw/kernel": -2, "pw/kernel": -1, "head/kernel": -1}
    assert [r.tensor for r in rows] == list(axes)
    for row in rows:
        v = before[row.tensor].value
        expected = weightshare.prune(v, keep=2, axis=axes[row.tensor])
        np.testing.assert_array_equal(after[row.tensor].value, expected.values)
        assert row.threshold == float(np.min(expected.threshold))
        assert row.nonzero_after == 2 * v.shape[axes[row.tensor]]


def test_n_m_along_the_input_axis(tmp_path):
    src, dst = FIX / "k3_mlp.keras", tmp_path / "nm.keras"
    rows = weightshare.prune_file(src, dst, n_m=(2, 4))
    for row in rows:
        v = records(dst)[row.tensor].value                     # Dense (in, out): groups along in
        groups = (v.reshape(v.shape[0] // 4, 4, v.shape[1]) != 0).sum(axis=1)
        assert groups.max() <= 2 and row.nonzero_after == v.size // 2
        np.testing.assert_array_equal(v, weightshare.prune(records(src)[row.tensor].value,
                                                           n_m=(2, 4)).values)


def test_blocks(tmp_path):
    dst = tmp_path / "b.keras"
    rows = weightshare.prune_file(DIGITS, dst, sparsity=0.75, block=(2, 2))
    for row in rows:
        v = records(dst)[row.tensor].value
        nz = (v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2) != 0).any(axis=(1, 3))
        assert nz.sum() == nz.size - math.ceil(0.75 * nz.size)


def test_global_uses_one_threshold_across_tensors(tmp_path):
    src, dst = DIGITS, tmp_path / "g.keras"
    rows = weightshare.prune_file(src, dst, keep=1000, global_=True)
    assert sum(r.nonzero_after for r in rows) == 1000
    assert len({r.threshold for r in rows}) == 1
    want = weightshare.prune_global({r.name: r.value for r in targeted(src)}, keep=1000)
    after = records(dst)
    for name, res in want.items():
        np.testing.assert_array_equal(after[name].value, res.values)
    assert_only_targets_changed(src, dst, set(want))
    rows = weightshare.prune_file(src, dst, sparsity=0.9, global_=True, layers=["fc1", "out"])
    total = sum(r.size for r in rows)
    assert [r.tensor for r in rows] == ["fc1/kernel", "out/kernel"]
    assert sum(r.nonzero_after for r in rows) == total - math.ceil(0.9 * total)


def test_global_on_mixed_and_bfloat16_files(tmp_path):
    for name in ("k3_bf16.keras", "k3_f16.weights.h5", "k2_pruned.h5"):
        rows = weightshare.prune_file(FIX / name, tmp_path / name, sparsity=0.8, global_=True)
        total, before = sum(r.size for r in rows), sum(r.nonzero_before for r in rows)
        assert sum(r.nonzero_after for r in rows) == min(before, total - math.ceil(0.8 * total))


def test_prune_then_cluster_keeps_every_zero(tmp_path):
    pruned, clustered = tmp_path / "p.keras", tmp_path / "c.keras"
    weightshare.prune_file(DIGITS, pruned, sparsity=0.8)
    rows = weightshare.cluster_file(pruned, clustered, 8)
    p, c = records(pruned), records(clustered)
    for row in rows:
        zeros = p[row.tensor].value == 0
        assert (c[row.tensor].value[zeros] == 0).all()
        assert np.unique(c[row.tensor].value).size <= 8
        assert row.zeros_after >= row.zeros_before == int(zeros.sum())


def test_in_place_and_roles(tmp_path):
    dst = tmp_path / "m.h5"
    dst.write_bytes((FIX / "k2_mlp.h5").read_bytes())
    rows = weightshare.prune_file(dst, dst, keep=3, roles=["bias"], in_place=True)
    assert [r.tensor for r in rows] == ["hidden/bias", "logits/bias"]
    assert all(np.count_nonzero(records(dst)[r.tensor].value) == 3 for r in rows)
    assert_only_targets_changed(FIX / "k2_mlp.h5", dst, {r.tensor for r in rows})


def test_summary_to_dict_is_standard_json(tmp_path):
    rows = weightshare.prune_file(FIX / "k3_mlp.keras", tmp_path / "z.keras", keep=0)
    d = rows[0].to_dict()
    assert d["threshold"] is None and d["sparsity"] == 1.0 and d["shape"] == [8, 16]
    json.dumps(d, allow_nan=False)


BAD = [
    ({}, ValueError, "give exactly one of sparsity or keep; got neither"),
    ({"sparsity": 0.5, "keep": 3}, ValueError, "got both"),
    ({"sparsity": 1.0}, ValueError, "sparsity must be in [0, 1); got sparsity=1.0"),
    ({"keep": -1}, ValueError, "keep must be >= 0; got keep=-1"),
    ({"n_m": (2, 4)}, ValueError, "conv1/kernel (shape (3, 3, 3, 8)): n_m=(2, 4) needs the input "
                                  "axis (axis -2, size 3) to be a multiple of m=4"),
    ({"n_m": (2, 4), "keep": 2}, ValueError, "n_m=(2, 4) sets the sparsity itself"),
    ({"n_m": (5, 4)}, ValueError, "needs n <= m"),
    ({"sparsity": 0.5, "block": (2, 2)}, ValueError, "block=(2, 2) must divide the last two "
                                                     "dimensions (3, 8)"),
    ({"keep": 6, "block": (1, 4), "layers": ["head"]}, ValueError,
     "keep=6 must be a multiple of the block size 1x4=4"),
    ({"sparsity": 0.5, "global_": True, "per_channel": True}, ValueError,
     "global_=True ranks magnitudes across tensors; it does not combine with per_channel"),
    ({"sparsity": 0.5, "per_channel": True, "block": (1, 1)}, ValueError,
     "give at most one of per_channel, n_m and block"),
    ({"sparsity": 0.5, "layers": ["nosuch"]}, ValueError, "no layer named 'nosuch'"),
    ({"sparsity": 0.5, "global_": 1}, TypeError, "global_ must be True or False"),
    ({"sparsity": "0.5"}, TypeError, "sparsity must be a number in [0, 1)"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD)
def test_bad_targets_are_refused_and_nothing_is_written(kwargs, exc, match, tmp_path):
    src, dst = FIX / "k3_cnn.keras", tmp_path / "out.keras"
    digest = sha(src)
    with pytest.raises(exc, match=re.escape(match)):
        weightshare.prune_file(src, dst, **kwargs)
    assert not dst.exists() and list(tmp_path.iterdir()) == [] and sha(src) == digest


@pytest.mark.parametrize("kwargs, whole, head", [
    ({"keep": 100}, ["dw/kernel", "pw/kernel"], 100),                   # 72 and 64 entries
    ({"keep": 10, "per_channel": True}, ["dw/kernel", "pw/kernel"], 40),  # slices of 9 and 8
    ({"keep": 10 ** 6, "global_": True}, ["conv1/kernel", "dw/kernel", "pw/kernel"], 512),
    ({"keep": 1000, "block": (1, 4), "layers": ["head"]}, [], 512)])
def test_keep_larger_than_a_tensor_keeps_all_of_it(kwargs, whole, head, tmp_path, capsys):
    """--keep N "leaves exactly N non-zeros per tensor (fewer only if it had fewer)"."""
    src, dst = FIX / "k3_cnn.keras", tmp_path / "out.keras"
    rows = {r.tensor: r for r in weightshare.prune_file(src, dst, **kwargs)}
    assert all(rows[t].nonzero_after == rows[t].nonzero_before > 0 for t in whole)
    assert rows["head/kernel"].nonzero_after == head
    if kwargs == {"keep": 100}:
        assert main(["prune", str(src), "-o", str(dst), "--keep", "100", "--quiet"]) == 0
        assert "dw/kernel" in capsys.readouterr().out


def test_out_of_memory_in_global_pruning_names_the_file(tmp_path, monkeypatch):
    import weightshare._jobs._prune_file as module

    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(module, "prune_global", no_memory)
    src = FIX / "k3_cnn.keras"
    with pytest.raises(MemoryError, match=re.escape(f"{src}: out of memory ranking the 4 targeted "
                                                    "tensor(s) together (864 entries)")):
        weightshare.prune_file(src, tmp_path / "o.keras", keep=10, global_=True)
    assert list(tmp_path.iterdir()) == []


def test_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="bad.keras"):
        weightshare.prune_file(bad, tmp_path / "o.keras", sparsity=0.5)
    with pytest.raises(ValueError, match="bad.keras"):
        weightshare.prune_file(bad, tmp_path / "o.keras", sparsity=0.5, global_=True)
    with pytest.raises(ValueError):
        weightshare.prune_file(FIX / "k3_mlp.keras", FIX / "k3_mlp.keras", sparsity=0.5)


# =========================================================================== the command line

def run_cli(*args):
    return subprocess.run([sys.executable, "-W", "error", "-m", "weightshare", *map(str, args)],
                          capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_table(tmp_path, capsys):
    out = tmp_path / "e.keras"
    assert main(["prune", str(FIX / "k3_emb.keras"), "-o", str(out), "--keep", "200",
                 "--layers", "embed"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{FIX / 'k3_emb.keras'} -> {out}: 1 tensor pruned"
    assert lines[1].split() == ["tensor", "shape", "size", "non-zeros", "before", "->", "after",
                                "sparsity", "threshold"]
    assert lines[3].split()[:7] == ["embed/embeddings", "50x8", "400", "400", "->", "200", "50.0%"]
    assert lines[-1] == "total: 400 -> 200 non-zeros of 400 (sparsity 50.0%)"
    assert np.count_nonzero(records(out)["embed/embeddings"].value) == 200


def _json_row(r):
    """A PruneSummary as `weightshare prune --json` prints it (the keys of docs/cli.md)."""
    d = r.to_dict()
    return {"name": d["tensor"], "layer": d["layer"], "role": d["role"], "shape": d["shape"],
            "dtype": d["dtype"], "size": d["size"], "nonzeros_before": d["nonzero_before"],
            "nonzeros_after": d["nonzero_after"], "sparsity": d["sparsity"],
            "threshold": d["threshold"]}


def test_cli_json_equals_the_api_rows(tmp_path, capsys):
    out = tmp_path / "g.h5"
    assert main(["prune", str(FIX / "k2_cnn.h5"), "-o", str(out), "--sparsity", "0.8", "--global",
                 "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = weightshare.prune_file(FIX / "k2_cnn.h5", tmp_path / "api.h5", sparsity=0.8,
                                  global_=True)
    assert data["tensors"] == [_json_row(r) for r in rows]
    assert data["global"] is True and data["output"] == str(out)
    assert data["total"]["nonzeros_after"] == sum(r.nonzero_after for r in rows) == \
        data["total"]["size"] - math.ceil(0.8 * data["total"]["size"])


@pytest.mark.parametrize("args, kwargs", [
    (["--n-m", "2:4", "--layers", "fc1,fc2"], {"n_m": (2, 4), "layers": ["fc1", "fc2"]}),
    (["--sparsity", "0.5", "--per-channel"], {"sparsity": 0.5, "per_channel": True}),
    (["--keep", "64", "--block", "4x4", "--layers", "fc1,fc2"],
     {"keep": 64, "block": (4, 4), "layers": ["fc1", "fc2"]}),
    (["--keep", "7", "--roles", "bias"], {"keep": 7, "roles": ["bias"]}),
])
def test_cli_options_reach_the_api(args, kwargs, tmp_path, capsys):
    out = tmp_path / "x.keras"
    assert main(["prune", str(DIGITS), "-o", str(out), "--json", *args]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = weightshare.prune_file(DIGITS, tmp_path / "api.keras", **kwargs)
    assert data["tensors"] == [_json_row(r) for r in rows]
    api = records(tmp_path / "api.keras")
    for name, r in records(out).items():
        np.testing.assert_array_equal(r.value, api[name].value, err_msg=name)


def test_cli_in_place(tmp_path, capsys):
    model = tmp_path / "m.weights.h5"
    model.write_bytes((FIX / "k3_mlp.weights.h5").read_bytes())
    assert main(["prune", str(model), "--in-place", "--keep", "10", "--quiet"]) == 0
    assert all(np.count_nonzero(r.value) == 10 for r in targeted(model))


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "1"], "weightshare prune: error: sparsity must be in [0, 1); got sparsity=1.0"),
    (["--sparsity", "nan"], "weightshare prune: error: sparsity must be in [0, 1); got sparsity=nan"),
    (["--sparsity", "x"], "weightshare prune: error: argument --sparsity: expected a number or "
                          "LAYER=S,... ; got 'x'"),
    ([], "weightshare prune: error: give a target: --sparsity S, --keep N or --n-m N:M"),
    (["--sparsity", "0.5", "--keep", "3"], "weightshare prune: error: argument --keep: not allowed "
                                           "with argument --sparsity"),
    (["--n-m", "2-4"], "weightshare prune: error: argument --n-m: expected N:M such as 2:4; "
                       "got '2-4'"),
    (["--n-m", "2:4"], "weightshare prune: error: conv1/kernel (shape (3, 3, 3, 8)): n_m=(2, 4) "
                       "needs the input axis (axis -2, size 3) to be a multiple of m=4"),
    (["--sparsity", "0.5", "--global", "--per-channel"],
     "weightshare prune: error: --global ranks magnitudes across tensors; it does not combine "
     "with --per-channel"),
    (["--sparsity", "0.5", "--layers", "nosuch"], "weightshare prune: error: no layer named 'nosuch'"),
])
def test_cli_errors_are_one_line_exit_2_and_write_nothing(args, message, tmp_path):
    out = tmp_path / "o.keras"
    proc = run_cli("prune", FIX / "k3_cnn.keras", "-o", out, *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and proc.stderr.count("\n") == 1
    assert proc.stderr.startswith(message), proc.stderr
    assert not out.exists()


def test_cli_prune_then_cluster_keeps_the_zeros(tmp_path):
    pruned, small = tmp_path / "p.keras", tmp_path / "s.keras"
    assert run_cli("prune", DIGITS, "-o", pruned, "--sparsity", "0.9").returncode == 0
    proc = run_cli("cluster", pruned, "-o", small, "-k", "4", "--json")
    assert proc.returncode == 0, proc.stderr
    for row in json.loads(proc.stdout)["tensors"]:
        assert row["zeros_after"] >= row["zeros_before"] >= math.ceil(0.9 * np.prod(row["shape"]))
        assert row["distinct_after"] <= 4


def test_cli_help_lists_prune():
    proc = run_cli("--help")
    assert "prune" in proc.stdout
    proc = run_cli("prune", "--help")
    assert proc.returncode == 0 and "--n-m" in proc.stdout and "--global" in proc.stdout
