"""The ``info`` and ``cluster`` subcommands: output for people and programs, exit codes, one-line errors."""

import hashlib
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest

import weightshare
from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-W", "error", "-m", "weightshare", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_info_table_and_json(capsys):
    assert main(["info", str(FIX / "k3_cnn.keras")]) == 0
    out = capsys.readouterr().out
    assert "keras_zip" in out and "conv1/kernel" in out and "bn1/moving_variance" in out
    assert main(["info", str(FIX / "k2_cnn.h5"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "legacy_full"
    roles = {t["name"]: t["role"] for t in data["tensors"]}
    assert roles["dw/depthwise_kernel"] == "depthwise_kernel" and roles["bn2/gamma"] == "gamma"


def test_cluster_prints_the_per_layer_table(tmp_path, capsys):
    out = tmp_path / "d.keras"
    assert main(["cluster", "examples/digits.keras", "-o", str(out), "-k", "8"]) == 0
    text = capsys.readouterr().out
    assert "fc1/kernel" in text and "4096 -> 8" in text and "distinct before -> after" in text
    assert all(np.unique(r.value).size <= 8 for r in weightshare.read_weights(out) if r.kind == "kernel")


def test_cluster_json_with_layers_k_map_and_options(tmp_path, capsys):
    out = tmp_path / "o.h5"
    assert main(["cluster", str(FIX / "k2_digits.h5"), "-o", str(out), "-k", "fc1=16,out=4",
                 "--method", "optimal", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tensors"]
    assert [(r["tensor"], r["k"], r["distinct_after"]) for r in rows] == [
        ("fc1/kernel", 16, 16), ("out/kernel", 4, 4)]
    assert main(["cluster", str(FIX / "k2_digits.h5"), "-o", str(out), "-k", "3", "--layers", "out",
                 "--per-channel", "--method", "lloyd", "--init", "kmeans++", "--seed", "1",
                 "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tensors"]
    assert [r["tensor"] for r in rows] == ["out/kernel"]


def test_pruned_zeros_survive_clustering_unless_asked(tmp_path, capsys):
    src = FIX / "k3_pruned.keras"
    assert main(["cluster", str(src), "-o", str(tmp_path / "a.keras"), "-k", "2", "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)["tensors"]
    assert all(r["zeros_after"] >= r["zeros_before"] > 0 for r in kept)
    before = {r.name: r.value for r in weightshare.read_weights(src)}
    for r in weightshare.read_weights(tmp_path / "a.keras"):
        assert np.all(r.value[before[r.name] == 0] == 0)
    assert main(["cluster", str(src), "-o", str(tmp_path / "b.keras"), "-k", "2", "--no-keep-zeros",
                 "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["tensors"]
    assert all(r["zeros_after"] < r["zeros_before"] for r in moved)


def test_in_place(tmp_path):
    src = tmp_path / "m.weights.h5"
    shutil.copy(FIX / "k3_mlp.weights.h5", src)
    r = run_cli("cluster", src, "-k", "2", "--in-place")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["m.weights.h5"]


@pytest.mark.parametrize("args, message", [
    (["cluster", "examples/digits.keras", "-o", "{tmp}/x.keras", "-k", "0"], r"k must be >= 1; got k=0"),
    (["cluster", "examples/digits.keras", "-o", "{tmp}/x.keras", "-k", "8", "--layers", "fc9"],
     r"no layer named 'fc9'; the layers with weights are: fc1, fc2, out"),
    (["cluster", "examples/digits.keras", "-o", "{tmp}/x.h5", "-k", "8"], r"must keep the input's suffix"),
    (["cluster", "examples/digits.keras", "-o", "examples/digits.keras", "-k", "8"],
     r"is the input file; pass in_place=True"),
    (["cluster", "examples/digits.keras", "-k", "8"], r"give -o OUT, or --in-place"),
    (["cluster", "{tmp}/missing.keras", "-o", "{tmp}/x.keras", "-k", "8"], r"missing.keras: no such file"),
    (["cluster", "examples/digits.keras", "-o", "{tmp}/nodir/x.keras", "-k", "8"],
     r"the output folder does not exist"),
    (["cluster", "examples/digits.keras", "-o", "{tmp}/x.keras", "-k", "eight"],
     r"argument -k/--k: expected an integer or LAYER=K"),
    (["info", "README.md"], r"README.md: is not a Keras weights file"),
    (["cluster", "examples/digits.keras", "-o", "{tmp}/x.keras", "-k", "8", "--method", "fast"],
     r"argument --method: invalid choice: 'fast'"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    before = hashlib.sha256((ROOT / "examples" / "digits.keras").read_bytes()).hexdigest()
    r = run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    import re
    assert re.search(message, lines[0]), lines[0]
    assert hashlib.sha256((ROOT / "examples" / "digits.keras").read_bytes()).hexdigest() == before
    assert [p for p in tmp_path.iterdir()] == []


def test_help_lists_every_option():
    r = run_cli("cluster", "--help")
    for flag in ("--init", "--method", "--layers", "--roles", "--per-channel", "--no-keep-zeros",
                 "--seed", "--in-place", "--quiet", "--json"):
        assert flag in r.stdout
