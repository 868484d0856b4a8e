"""``weightshare report``: table, JSON, --compare, --plot, and one-line errors."""

import json
import sys

import numpy as np
import pytest

import weightshare
from weightshare.cli import main

TOY = np.array([0.0, 0.0, 0.5, 0.5, 0.0, -1.0, 0.0, 0.0], dtype=np.float32)


@pytest.fixture
def files(tmp_path):
    model, original = tmp_path / "model.npz", tmp_path / "original.npz"
    np.savez(model, **{"fc/kernel": TOY, "fc/bias": np.ones(3, np.float32)})
    np.savez(original, **{"fc/kernel": TOY + np.float32(0.5), "fc/bias": np.ones(3, np.float32)})
    return str(model), str(original)


def test_table(files, capsys):
    assert main(["report", files[0]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "tensor" and "sse" not in lines[0]
    assert lines[2].split()[:2] == ["fc/kernel", "8"] and lines[-1].startswith("total")


def test_json_equals_the_api(files, capsys):
    assert main(["report", files[0], "--compare", files[1], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = weightshare.report(files[0], compare=files[1]).to_dict()
    assert got == json.loads(json.dumps(want))
    assert got["tensors"][0]["sse"] == pytest.approx(8 * 0.25)
    assert got["total"]["max_abs_error"] == 0.5


def test_json_writes_null_for_nan(tmp_path, capsys):
    path = tmp_path / "nan.npz"
    np.savez(path, w=np.array([np.nan, 1.0], np.float32))
    assert main(["report", str(path), "--compare", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tensors"][0]["sse"] is None


@pytest.mark.parametrize("argv, match", [
    (["report", "missing.npz"], "No such file"),
    (["report", "{model}", "--compare", "{bad}"], "not in the original"),
])
def test_errors_are_one_line_and_exit_2(argv, match, files, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, other=TOY)
    argv = [a.format(model=files[0], bad=bad) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("weightshare report: error:") and \
        __import__("re").search(match, err)


def test_plot_writes_a_png(files, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "r.png"
    assert main(["report", files[0], "--compare", files[1], "--plot", str(out),
                 "--tensors", "fc/kernel"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "1 histogram" in capsys.readouterr().err


def test_plot_unknown_tensor_is_named(files, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    assert main(["report", files[0], "--plot", str(tmp_path / "r.png"), "--tensors", "nope"]) == 2
    assert "'nope' not in the model" in capsys.readouterr().err


def test_plot_without_matplotlib_says_how_to_install(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # import matplotlib -> ImportError
    assert main(["report", files[0], "--plot", str(tmp_path / "r.png")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                                 # checked before any work
    assert captured.err.strip() == ("weightshare report: error: plotting needs matplotlib, which "
                                    "is not installed; install it with: pip install "
                                    "'weightshare[plot]'")


def test_plot_report_api_without_matplotlib(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install 'weightshare\[plot\]'"):
        weightshare.plot_report({"w": TOY}, tmp_path / "x.png")


def test_keras_file_table(capsys):
    import os
    digits = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "examples", "digits.keras")
    assert main(["report", digits]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()[2:-2]]
    assert names == ["fc1/kernel", "fc1/bias", "fc2/kernel", "fc2/bias", "out/kernel", "out/bias"]
