"""Issue 25: no warning leaks (README/docs examples, every CLI command over the fixtures under
-W error), a closed pipe ends a command quietly, help text wrapped and in workflow order."""

import os
import pathlib
import re
import subprocess
import sys
import warnings

import pytest

from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = ROOT / "examples" / "digits.keras"
TEST = ROOT / "examples" / "digits_test.npz"
ENV = dict(os.environ, PYTHONPATH=str(ROOT))


def _python(*args, **kw):
    return subprocess.run([sys.executable, "-W", "error", *args], capture_output=True, text=True,
                          env=ENV, timeout=120, **kw)


def test_readme_python_example_runs_without_a_warning(tmp_path):
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "weightshare.cluster(" in block
    proc = _python("-c", block, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


def test_pinned_zero_run_does_not_warn():
    # the README's pruned tensor: the auto solver's pinned zero run weighs 0 (was 0/0 -> warning)
    import numpy as np
    import weightshare
    w = np.random.default_rng(0).laplace(0, 0.05, (512, 256)).astype(np.float32)
    w[np.abs(w) < 0.03] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = weightshare.cluster(w, 16)
    assert np.all(res.values[w == 0] == 0) and np.unique(res.values).size == 16


def _one_file_per_model():
    """Every fixture model once, the formats in turn (.keras, .h5, .weights.h5, weights-only)."""
    suffixes = (".keras", ".h5", ".weights.h5", ".weights_only.h5")
    models = sorted({p.name.split(".")[0] for p in FIX.iterdir()
                     if p.suffix in (".keras", ".h5") and not p.name.endswith("_io.npz")})
    out = []
    for i, model in enumerate(models):
        for j in range(len(suffixes)):
            path = FIX / (model + suffixes[(i + j) % len(suffixes)])
            if path.exists():
                out.append(path)
                break
    return out


def _commands(path, tmp):
    out = tmp / ("c-" + path.name)
    yield ["info", str(path), "--json"]
    yield ["report", str(path)]
    yield ["cluster", str(path), "-o", str(out), "-k", "4", "--roles", "all"]
    yield ["prune", str(path), "-o", str(tmp / ("p-" + path.name)), "--sparsity", "0.5"]
    yield ["report", str(out), "--compare", str(path), "--json", "--no-disk"]   # disk: above
    io = FIX / (path.name.split(".")[0] + "_io.npz")
    if io.exists() and path.suffix in (".keras", ".h5") and "weights" not in path.name:
        yield ["compare", str(path), str(out), "--inputs", str(io)]


@pytest.mark.slow
@pytest.mark.parametrize("part", [0] + [pytest.param(i, marks=pytest.mark.exhaustive)
                                         for i in (1, 2)])
def test_every_command_over_the_fixtures_warns_nothing(part, tmp_path, capsys):
    """A third of the models (every third one, and digits) in the README's test command, the
    rest with --exhaustive."""
    every = _one_file_per_model()
    assert len(every) > 30 and {p.suffix for p in every} == {".keras", ".h5"}
    files = every[part::3] + ([DIGITS] if part == 0 else [])
    assert {p.suffix for p in files} == {".keras", ".h5"}
    ran = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")         # a warning raises: main() does not catch it
        for path in files:
            for argv in _commands(path, tmp_path):
                assert main(argv) == 0, (argv, capsys.readouterr().err)
                ran += 1
    # no warning; only the one note per run on what a job leaves out (PReLU alpha in the zoo)
    err = capsys.readouterr().err.splitlines()
    assert all(re.fullmatch(r"weightshare prune: note: left as they are: layer '\w+' \(PReLU\): "
                            r"alpha \(roles that are not kernel-like: target them with --roles "
                            r"alpha\)", line) for line in err), err
    assert ran > 45


def test_cli_subprocess_under_w_error_is_silent(tmp_path):
    proc = _python("-m", "weightshare", "cluster", str(FIX / "k3_pruned.keras"), "-o",
                   str(tmp_path / "o.keras"), "-k", "8", cwd=tmp_path)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("argv", [
    ["report", str(DIGITS), "--json"],
    ["info", str(DIGITS)],
    ["compare", str(DIGITS), str(DIGITS), "--inputs", str(TEST)],
])
def test_a_closed_pipe_ends_quietly(argv):
    # the reader closes the pipe before the command writes (it is still importing): a real EPIPE
    proc = subprocess.Popen([sys.executable, "-m", "weightshare", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) in (0, 141) and err == "", err


def test_head_one_of_a_pipe(tmp_path):
    proc = subprocess.run(f"{sys.executable} -m weightshare report '{DIGITS}' --json 2>err | head -1",
                          shell=True, capture_output=True, text=True, env=ENV, cwd=tmp_path,
                          timeout=60)
    assert proc.stdout == "{\n"
    assert (tmp_path / "err").read_text() == ""


def test_help_lists_commands_in_workflow_order_and_wraps(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    order = [m.group(1) for m in re.finditer(r"^    (\w+) ", text, re.M)]
    assert order == ["info", "cluster", "prune", "remove", "strip", "report", "compare", "pack",
                     "unpack"]
    for command in order:
        with pytest.raises(SystemExit):
            main([command, "--help"])
        lines = capsys.readouterr().out.splitlines()
        assert max(len(line) for line in lines) <= 90, command


def test_one_tensor_is_singular(tmp_path, capsys):
    import numpy as np
    src = tmp_path / "w.npy"
    np.save(src, np.linspace(-1, 1, 50, dtype=np.float32))
    assert main(["cluster", str(src), "-o", str(tmp_path / "o.npy"), "-k", "4"]) == 0
    assert capsys.readouterr().out.splitlines()[0].endswith(": 1 tensor clustered")


def test_report_checks_plot_tensors_before_printing(tmp_path, capsys):
    assert main(["report", str(DIGITS), "--tensors", "nope", "--plot",
                 str(tmp_path / "x.png")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "nope" in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_compare_checks_inputs_against_the_declared_shape(tmp_path, capsys):
    import numpy as np
    bad = tmp_path / "x.npy"
    np.save(bad, np.zeros((5, 7), np.float32))
    assert main(["compare", str(DIGITS), str(DIGITS), "--inputs", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "inputs must have shape (batch, 64) (the model's declared input shape" in err
    assert "got (5, 7)" in err and "matmul" not in err


def test_npy_tensor_named_by_one_rule_whatever_the_file_name(tmp_path):
    # issue 24: report("w.npy", compare=<byte copy under another name>) found no common tensor
    import numpy as np
    import weightshare
    np.save(tmp_path / "w.npy", np.linspace(-1, 1, 20, dtype=np.float32))
    (tmp_path / "w-copy.bin").write_bytes((tmp_path / "w.npy").read_bytes())
    names = {p: [r.name for r in weightshare.read_weights(tmp_path / p)]
             for p in ("w.npy", "w-copy.bin")}
    assert names["w.npy"] == names["w-copy.bin"] == list(weightshare.load_tensors(tmp_path / "w.npy"))
    rep = weightshare.report(tmp_path / "w.npy", compare=tmp_path / "w-copy.bin")
    assert [r.name for r in rep.rows] == names["w.npy"] and rep.rows[0].sse == 0.0


def test_plot_prefers_kernels_and_reads_plain_ticks():
    import numpy as np
    from weightshare.plot import _plain_log_ticks, choose_tensors
    tensors = {f"l{i}/bias": np.zeros(100) for i in range(6)}     # biases larger than kernels
    tensors.update({"fc/kernel": np.zeros((4, 4)), "out/kernel": np.zeros((2, 3))})
    chosen = choose_tensors(tensors, None)
    assert len(chosen) == 6 and {"fc/kernel", "out/kernel"} <= set(chosen)
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure
    ax = Figure().add_subplot()
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    fmt = ax.yaxis.get_major_formatter()
    assert [fmt(v) for v in (1, 4, 1000, 0.5)] == ["1", "4", "1,000", "0.5"]
    assert ax.yaxis.get_minor_formatter()(4) == ""


def test_bundled_examples_have_a_public_path(tmp_path, monkeypatch):
    import importlib.resources
    import weightshare
    monkeypatch.chdir(tmp_path)                 # any folder
    for name in weightshare.examples.NAMES:
        path = pathlib.Path(weightshare.examples.path(name))
        assert path.is_file() and path.read_bytes() == (ROOT / "examples" / name).read_bytes()
        assert (importlib.resources.files("weightshare.examples") / name).is_file()
    assert weightshare.file_format(weightshare.examples.path("digits.keras")) == "keras_zip"
    with pytest.raises(ValueError, match="digits.keras"):
        weightshare.examples.path("nope.keras")


def test_the_wheel_ships_the_examples():
    # setuptools' package data: the files are inside the weightshare.examples package
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert "examples/*" in cfg["options.package_data"]["weightshare"]
    assert "weightshare*" in cfg["options.packages.find"]["include"]
    assert (ROOT / "weightshare" / "examples" / "__init__.py").is_file()


def test_a_config_without_layers_is_a_value_error_not_a_key_error():
    import numpy as np
    from weightshare.forward import forward
    with pytest.raises(ValueError, match="config is not a Keras model config"):
        forward({"class_name": "Sequential", "config": {"name": "m"}}, {}, np.zeros((1, 2)))
