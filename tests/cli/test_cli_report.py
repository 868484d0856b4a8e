"""``weightshare report``: table, JSON, --compare, --plot, and one-line errors."""

import json
import os
import re
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


def _tensor_lines(out):
    """The per-tensor table of a report's text (after the file-on-disk lines and a blank line)."""
    lines = out.splitlines()
    return lines[lines.index("") + 2:] if "" in lines else lines


def test_table(files, capsys):
    assert main(["report", files[0]]) == 0
    lines = _tensor_lines(capsys.readouterr().out)
    assert lines[0].split()[0] == "tensor" and "sse" not in lines[0]
    assert lines[2].split()[:2] == ["fc/kernel", "8"] and lines[-1].startswith("total")


def test_json_equals_the_api(files, capsys):
    assert main(["report", files[0], "--compare", files[1], "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = weightshare.report(files[0], compare=files[1]).to_dict()
    size_key = {"n": "size"}     # the report's n is every command's size (docs/cli.md)
    want = {"command": "report", "input": files[0], "output": None, "original": files[1],
            "total": {size_key.get(k, k): v for k, v in want["total"].items()},
            "disk": weightshare.disk_usage(files[0]).to_dict(),
            "tensors": [{size_key.get(k, k): v for k, v in row.items()} for row in want["tensors"]]}
    assert got == json.loads(json.dumps(want))
    assert got["tensors"][0]["sse"] == pytest.approx(8 * 0.25)
    assert got["total"]["max_abs_error"] == 0.5


def test_json_writes_null_for_nan(tmp_path, capsys):
    path = tmp_path / "nan.npz"
    np.savez(path, w=np.array([np.nan, 1.0], np.float32))
    assert main(["report", str(path), "--compare", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tensors"][0]["sse"] is None


@pytest.mark.parametrize("argv, match", [
    (["report", "missing.npz"], "missing.npz: (?i:no such file)"),
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


def test_out_of_memory_names_the_file_and_the_tensor(files, monkeypatch, capsys):
    report_module = sys.modules["weightshare.report"]       # weightshare.report is the function

    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(report_module, "encoded_sizes", no_memory)
    assert main(["report", files[0]]) == 2
    assert capsys.readouterr().err == (f"weightshare report: error: {files[0]}: fc/kernel: out of "
                                       "memory for this tensor (shape (8,))\n")


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


def _keras_named(path):
    """A real Keras model under any name (weightshare detects files by content)."""
    import pathlib
    fix = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras" / "k3_mlp.keras"
    path.write_bytes(fix.read_bytes())
    return path


@pytest.mark.parametrize("plot", ["model.png", "link.png", "./model.png", "orig.png"])
def test_plot_never_replaces_an_input(plot, tmp_path, capsys, monkeypatch):
    """report model.png --plot model.png replaced the model (found by content) with a PNG."""
    pytest.importorskip("matplotlib")
    model, orig = _keras_named(tmp_path / "model.png"), _keras_named(tmp_path / "orig.png")
    os.symlink(model, tmp_path / "link.png")
    before = model.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert main(["report", str(model), "--compare", str(orig), "--plot", plot]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""                               # refused before any work
    assert captured.err.count("\n") == 1 and "is the input file" in captured.err
    assert model.read_bytes() == before and orig.read_bytes() == before
    assert os.path.islink(tmp_path / "link.png")
    assert sorted(os.listdir(tmp_path)) == ["link.png", "model.png", "orig.png"]


def test_plot_replaces_a_symlink_instead_of_writing_through_it(files, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    out = tmp_path / "r.png"
    os.symlink(victim, out)
    assert main(["report", files[0], "--plot", str(out), "--tensors", "fc/kernel"]) == 0
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(out) and out.read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {out} (1 histogram)" in capsys.readouterr().err


def test_plot_on_a_full_disk_keeps_the_previous_plot(files, tmp_path, capsys, monkeypatch):
    """A full disk left a 0-byte file, truncating the previous plot, and named no file."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    out = tmp_path / "r.png"
    out.write_bytes(b"previous plot")

    def full(self, fname, **kwargs):
        fname.write(b"\x89PNG partial")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(Figure, "savefig", full)
    assert main(["report", files[0], "--plot", str(out), "--tensors", "fc/kernel"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: No space left on device" in err
    assert out.read_bytes() == b"previous plot"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz", "original.npz", "r.png"]


@pytest.mark.parametrize("plot, match", [
    ("{tmp}", r"--plot: .*: is a folder"),                     # wrote DIR.png, printed DIR
    ("{tmp}/r", r"--plot: .*/r: the name has no image extension; give a name ending in \.png"),
    ("{tmp}/r.xyz", r"--plot: .*/r\.xyz: '\.xyz' is not an image format"),
    ("{tmp}/nodir/r.png", r"--plot: .*nodir: the output folder does not exist"),
])
def test_plot_output_errors_name_the_argument_before_any_work(plot, match, files, tmp_path,
                                                              capsys):
    pytest.importorskip("matplotlib")
    listing = sorted(os.listdir(tmp_path))
    assert main(["report", files[0], "--plot", plot.format(tmp=tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1
    assert re.search(match, captured.err), captured.err
    assert sorted(os.listdir(tmp_path)) == listing


def test_plot_repeated_tensors_are_drawn_once(files, tmp_path, capsys, monkeypatch):
    """--tensors with 500 repeats drew 500 histograms (minutes)."""
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    drawn = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, f, **kw: drawn.append(len(fig.axes)))
    out = tmp_path / "r.png"
    assert main(["report", files[0], "--plot", str(out), "--tensors"] +
                ["fc/kernel", "fc/bias"] * 250) == 0
    assert "(2 histograms)" in capsys.readouterr().err and drawn == [3]
    assert weightshare.plot_report(files[0], out, tensors=["fc/bias", "fc/kernel", "fc/bias"]) \
        == ["fc/bias", "fc/kernel"]
    assert main(["report", files[0], "--plot", str(out), "--tensors", "fc/kernel", "nope"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "'nope' not in the model" in captured.err


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
    digits = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                          "examples", "digits.keras")
    assert main(["report", digits]) == 0
    names = [line.split()[0] for line in _tensor_lines(capsys.readouterr().out)[2:-2]]
    assert names == ["fc1/kernel", "fc1/bias", "fc2/kernel", "fc2/bias", "out/kernel", "out/bias"]
