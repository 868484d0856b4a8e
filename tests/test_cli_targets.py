"""Per-layer targets, dry runs and the notes on what a job leaves out, through the CLI and the
Python API: the CLI passes its arguments on and reads the model only through the library."""

import json
import os
import pathlib

import numpy as np
import pytest

import weightshare
from weightshare._io import _reader
from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = ROOT / "examples" / "digits.keras"


def values(path):
    return {r.name: r.value for r in weightshare.read_weights(path)}


@pytest.fixture
def opens(monkeypatch):
    """Count the times a Keras/NumPy weights file is opened (every reader goes through here)."""
    count = []
    real = _reader.WeightsFile.__init__

    def counting(self, path):
        count.append(os.fspath(path))
        real(self, path)
    monkeypatch.setattr(_reader.WeightsFile, "__init__", counting)
    return count


# --------------------------------------------------------------------------- A: k per layer
def test_cli_cluster_reads_the_model_only_inside_cluster_file(tmp_path, opens, capsys):
    out = tmp_path / "o.keras"
    assert main(["cluster", str(DIGITS), "-o", str(out), "-k", "4", "--k", "fc1=16"]) == 0
    # cluster_file itself: once for the metadata, once to rewrite; the CLI reads nothing
    assert opens == [str(DIGITS)] * 2
    opens.clear()
    weightshare.cluster_file(DIGITS, tmp_path / "p.keras", {"fc1": 16, "*": 4})
    assert opens == [str(DIGITS)] * 2


def test_cli_and_python_give_the_same_file_for_per_layer_k(tmp_path, capsys):
    cli, py = tmp_path / "cli.keras", tmp_path / "py.keras"
    assert main(["cluster", str(DIGITS), "-o", str(cli), "-k", "4", "--k", "fc1=16,out=8",
                 "--seed", "3", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    rows = weightshare.cluster_file(DIGITS, py, {"fc1": 16, "out": 8, "*": 4}, random_state=3)
    assert [(t["tensor"], t["k"]) for t in got["tensors"]] == [
        ("fc1/kernel", 16), ("fc2/kernel", 4), ("out/kernel", 8)]
    assert [r.to_dict() for r in rows] == got["tensors"]
    a, b = values(cli), values(py)
    assert a.keys() == b.keys() and all(np.array_equal(a[n], b[n]) for n in a)
    assert len(np.unique(a["fc2/kernel"])) == 4 and len(np.unique(a["fc1/kernel"])) == 16


def test_k_patterns_exact_names_win_and_unknown_names_are_listed():
    rows = weightshare.cluster_file(DIGITS, None, {"f*": 3, "fc2": 5}, dry_run=True)
    assert [(r.tensor, r.k) for r in rows] == [("fc1/kernel", 3), ("fc2/kernel", 5)]
    with pytest.raises(ValueError, match=r"k names layer 'fc9', which has no targeted weights; "
                                         r"targeted layers: fc1, fc2, out"):
        weightshare.cluster_file(DIGITS, None, {"fc9": 4}, dry_run=True)
    with pytest.raises(ValueError, match=r"k names the pattern 'x\*', which matches no targeted "
                                         r"layer; targeted layers: fc1, fc2, out"):
        weightshare.cluster_file(DIGITS, None, {"x*": 4}, dry_run=True)
    with pytest.raises(ValueError, match=r"k\['fc1'\] must be >= 1"):
        weightshare.cluster_file(DIGITS, None, {"fc1": 0}, dry_run=True)
