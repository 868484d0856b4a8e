"""``weightshare cluster --importance / --calibration / --no-bias-correction``: the CLI passes
them to cluster_file, shows which importance each tensor used, and refuses bad input in one
line writing nothing."""

import json
import re

import numpy as np
import pytest

import weightshare
from weightshare.cli import main

DIGITS = weightshare.examples.path("digits.keras")
X = np.load(weightshare.examples.path("digits_test.npz"))["X_test"]


def values(path):
    return {r.name: r.value for r in weightshare.read_weights(path)}


def test_calibration_json_and_table(tmp_path, capsys):
    inputs = tmp_path / "x.npy"
    np.save(inputs, X)
    out = tmp_path / "c.keras"
    assert main(["cluster", DIGITS, "-o", str(out), "-k", "4", "--calibration", str(inputs),
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [(t["name"], t["importance"], t["bias_correction"]) for t in doc["tensors"]] == [
        ("fc1/kernel", "calibration", "corrected"), ("fc2/kernel", "calibration", "corrected"),
        ("out/kernel", "calibration", "corrected")]
    api = tmp_path / "api.keras"
    weightshare.cluster_file(DIGITS, api, 4, calibration=X)
    assert out.read_bytes() == api.read_bytes()
    assert main(["cluster", DIGITS, "-o", str(out), "-k", "4", "--calibration", str(inputs),
                 "--no-bias-correction"]) == 0
    text = capsys.readouterr().out
    assert "importance" in text.splitlines()[1] and "calibration" in text
    assert "bias corrected" not in text
    np.testing.assert_array_equal(values(out)["fc1/bias"], values(DIGITS)["fc1/bias"])


def test_importance_file(tmp_path, capsys):
    imp = tmp_path / "imp.npz"
    np.savez(imp, **{"out/kernel": np.linspace(0, 1, 32)[:, None]})
    assert main(["cluster", DIGITS, "-o", str(tmp_path / "c.keras"), "-k", "4",
                 "--importance", str(imp), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["importance"] for t in doc["tensors"]] == [None, None, "file"]
    assert [t["bias_correction"] for t in doc["tensors"]] == [None, None, None]


@pytest.mark.parametrize("flag, make, message", [
    ("--importance", lambda p: np.savez(p, **{"fc1/kernel": -np.ones((64, 1))}),
     r"imp\.npz: fc1/kernel: importance must be >= 0"),
    ("--importance", lambda p: np.savez(p, **{"fc1/kernel": np.ones(3)}),
     r"imp\.npz: fc1/kernel: has shape \(3,\)"),
    ("--calibration", lambda p: np.save(p, np.ones((5, 3))),
     r"digits\.keras: calibration \(.*x\.npy\): inputs must have shape \(batch, 64\)"),
    ("--calibration", lambda p: np.save(p, np.full((5, 64), np.inf)),
     r"x\.npy: the calibration inputs must be finite"),
])
def test_bad_input_is_one_line_naming_the_file_and_nothing_is_written(flag, make, message,
                                                                      tmp_path, capsys):
    path = tmp_path / ("imp.npz" if flag == "--importance" else "x.npy")
    make(path)
    out = tmp_path / "c.keras"
    assert main(["cluster", DIGITS, "-o", str(out), "-k", "4", flag, str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("weightshare cluster: error: "), err
    assert re.search(message, err[0]), err[0]
    assert not out.exists()


def test_help_describes_the_flags(capsys):
    with pytest.raises(SystemExit):
        main(["cluster", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in ("--importance IMP.npz", "--calibration INPUTS.npy", "--no-bias-correction"):
        assert flag in text
