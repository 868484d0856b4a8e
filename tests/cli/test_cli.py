"""The ``info`` and ``cluster`` subcommands: output for people and programs, exit codes, one-line
errors, progress. In-process through ``weightshare.cli.main``, and as a real process where the exit
code and stderr matter."""

import hashlib
import io
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import weightshare
from weightshare.cli import main
from weightshare.cli._common import Progress

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = ROOT / "examples" / "digits.keras"


def run_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-W", "error", "-m", "weightshare", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def values(path):
    return {r.name: r.value for r in weightshare.read_weights(path)}


# --------------------------------------------------------------------------- info

def test_info_table(capsys):
    assert main(["info", str(FIX / "k3_cnn.keras")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("k3_cnn.keras: keras_zip, 15 tensors, 948 values")
    assert lines[1].split() == ["tensor", "class", "role", "shape", "dtype", "location"]
    rows = [line.split() for line in lines[3:]]
    assert rows[0] == ["conv1/kernel", "Conv2D", "kernel", "3x3x3x8", "float32",
                       "model.weights.h5:/layers/conv2d/vars/0"]
    assert ["bn1/moving_variance", "BatchNormalization", "moving_variance", "8", "float32",
            "model.weights.h5:/layers/batch_normalization/vars/3"] in rows
    assert len(rows) == 15


def test_info_json_matches_read_weights(capsys):
    assert main(["info", str(FIX / "k2_cnn.h5"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["format"] == "legacy_full" and data["input"] == str(FIX / "k2_cnn.h5")
    records = weightshare.read_weights(FIX / "k2_cnn.h5", values=False)
    assert [t["name"] for t in data["tensors"]] == [r.name for r in records]
    dw = [t for t in data["tensors"] if t["name"] == "dw/depthwise_kernel"][0]
    assert dw == {"name": "dw/depthwise_kernel", "layer": "dw", "path": "dw",
                  "layer_class": "DepthwiseConv2D", "role": "depthwise_kernel", "kind": "kernel",
                  "shape": [3, 3, 8, 1], "dtype": "float32", "size": 72,
                  "location": "/model_weights/dw/dw/depthwise_kernel:0"}


def test_info_shows_bfloat16_and_npz(tmp_path, capsys):
    assert main(["info", str(FIX / "k3_bf16.keras")]) == 0
    assert "bfloat16" in capsys.readouterr().out
    np.savez(tmp_path / "a.npz", w=np.ones((2, 3), np.float32))
    assert main(["info", str(tmp_path / "a.npz")]) == 0
    out = capsys.readouterr().out
    assert "npz, 1 tensors, 6 values" in out and "2x3" in out


def test_info_stops_quietly_when_the_reader_closes_the_pipe():
    p = subprocess.Popen([sys.executable, "-m", "weightshare", "info", str(FIX / "k3_rnn.keras")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    p.stdout.readline()
    p.stdout.close()            # like `| head -1`
    err = p.stderr.read().decode()
    p.stderr.close()
    assert p.wait() == 0 and err == ""


# --------------------------------------------------------------------------- cluster

def test_cluster_prints_the_per_layer_table(tmp_path, capsys):
    out = tmp_path / "d.keras"
    assert main(["cluster", str(DIGITS), "-o", str(out), "-k", "8"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"{DIGITS} -> {out}: 3 tensors clustered"
    assert re.split(r"\s{2,}", lines[1]) == ["tensor", "shape", "k", "distinct before -> after",
                                             "zeros before -> after", "SSE"]
    table = [re.split(r"\s{2,}", line) for line in lines[3:6]]
    rows = weightshare.cluster_file(DIGITS, tmp_path / "again.keras", 8)
    assert table == [[r.tensor, "x".join(map(str, r.shape)), "8",
                      f"{r.distinct_before} -> {r.distinct_after}",
                      f"{r.zeros_before} -> {r.zeros_after}", f"{r.sse:.6g}"] for r in rows]
    assert table[0][:4] == ["fc1/kernel", "64x64", "8", "4096 -> 8"]
    assert lines[6] == f"total SSE {sum(r.sse for r in rows):.6g}"
    assert out.read_bytes() == (tmp_path / "again.keras").read_bytes()


def test_cluster_json_rows_are_the_api_rows(tmp_path, capsys):
    out = tmp_path / "o.h5"
    assert main(["cluster", str(FIX / "k2_digits.h5"), "-o", str(out), "-k", "5", "--method",
                 "optimal", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"] == str(FIX / "k2_digits.h5") and data["output"] == str(out)
    rows = weightshare.cluster_file(FIX / "k2_digits.h5", tmp_path / "p.h5", 5, method="optimal")
    assert all(t.pop("seconds") >= 0 for t in data["tensors"])      # a wall time
    assert data["tensors"] == [
        {"name": r.tensor, "layer": r.layer, "role": r.role, "shape": list(r.shape),
         "dtype": r.dtype, "size": int(np.prod(r.shape)), "k": r.k,
         "distinct_before": r.distinct_before, "distinct_after": r.distinct_after,
         "zeros_before": r.zeros_before, "zeros_after": r.zeros_after, "sse": r.sse,
         "importance": r.importance, "bias_correction": r.bias_correction,
         "method": "optimal"}
        for r in rows]


@pytest.mark.parametrize("args, expected", [
    (["-k", "8"], {"fc1/kernel": 8, "fc2/kernel": 8, "out/kernel": 8}),
    (["-k", "8", "--k", "fc1=16,out=4"], {"fc1/kernel": 16, "fc2/kernel": 8, "out/kernel": 4}),
    (["--k", "fc1=16,out=4"], {"fc1/kernel": 16, "out/kernel": 4}),
    (["-k", "fc1=16,out=4"], {"fc1/kernel": 16, "out/kernel": 4}),
    (["-k", "3", "--layers", "fc2,out", "--k", "out=5"], {"fc2/kernel": 3, "out/kernel": 5}),
    (["-k", "3", "--roles", "kernel,bias", "--k", "out=5"],
     {"fc1/kernel": 3, "fc1/bias": 3, "fc2/kernel": 3, "fc2/bias": 3, "out/kernel": 5,
      "out/bias": 5}),
])
def test_k_and_per_layer_k(args, expected, tmp_path, capsys):
    out = tmp_path / "o.h5"
    assert main(["cluster", str(FIX / "k2_digits.h5"), "-o", str(out), "--json", *args]) == 0
    rows = json.loads(capsys.readouterr().out)["tensors"]
    assert {r["name"]: r["k"] for r in rows} == expected
    after, before = values(out), values(FIX / "k2_digits.h5")
    for name in before:
        if name in expected:
            assert np.unique(after[name]).size <= expected[name]
        else:
            np.testing.assert_array_equal(after[name], before[name])


def test_nested_path_in_per_layer_k(tmp_path, capsys):
    assert main(["cluster", str(FIX / "k3_nested.keras"), "-o", str(tmp_path / "n.keras"),
                 "-k", "8", "--k", "inner/dense=2", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["tensors"]
    assert [(r["name"], r["k"]) for r in rows] == [
        ("inner/dense/kernel", 2), ("inner/dense_1/kernel", 8), ("shared/kernel", 8),
        ("head/kernel", 8)]


def test_options_reach_the_api(tmp_path, capsys):
    src = FIX / "k2_digits.h5"
    assert main(["cluster", str(src), "-o", str(tmp_path / "a.h5"), "-k", "3", "--layers", "out",
                 "--per-channel", "--method", "lloyd", "--init", "kmeans++", "--seed", "1",
                 "--quiet"]) == 0
    weightshare.cluster_file(src, tmp_path / "b.h5", 3, layers=["out"], per_channel=True,
                             method="lloyd", init="kmeans++", random_state=1)
    assert (tmp_path / "a.h5").read_bytes() == (tmp_path / "b.h5").read_bytes()
    out = values(tmp_path / "a.h5")["out/kernel"]
    assert all(np.unique(out[:, j]).size <= 3 for j in range(out.shape[1]))


def test_pruned_zeros_survive_clustering_unless_asked(tmp_path, capsys):
    src = FIX / "k3_pruned.keras"
    assert main(["cluster", str(src), "-o", str(tmp_path / "a.keras"), "-k", "2", "--json"]) == 0
    kept = json.loads(capsys.readouterr().out)["tensors"]
    assert all(r["zeros_after"] >= r["zeros_before"] > 0 for r in kept)   # zero is one of the k
    before = values(src)
    for name, v in values(tmp_path / "a.keras").items():
        assert np.all(v[before[name] == 0] == 0)
    assert main(["cluster", str(src), "-o", str(tmp_path / "b.keras"), "-k", "2", "--no-keep-zeros",
                 "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["tensors"]
    assert all(r["zeros_after"] < r["zeros_before"] for r in moved)


def test_in_place(tmp_path):
    src = tmp_path / "m.weights.h5"
    shutil.copy(FIX / "k3_mlp.weights.h5", src)
    before = sha(src)
    r = run_cli("cluster", src, "-k", "2", "--in-place")
    assert r.returncode == 0, r.stderr
    assert sha(src) != before
    assert [p.name for p in tmp_path.iterdir()] == ["m.weights.h5"]
    assert np.unique(values(src)["hidden/kernel"]).size == 2


# --------------------------------------------------------------------------- progress

class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("tty, quiet, shown", [(True, False, True), (True, True, False),
                                                (False, False, False)])
def test_progress_bar_only_on_a_terminal_and_not_quiet(tty, quiet, shown, monkeypatch, tmp_path,
                                                       capsys):
    err = _Terminal() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    args = ["cluster", str(FIX / "k3_rnn.keras"), "-o", str(tmp_path / "o.keras"), "-k", "2",
            "--roles", "all"] + (["--quiet"] if quiet else [])
    assert main(args) == 0
    text = err.getvalue()
    n = len(weightshare.read_weights(FIX / "k3_rnn.keras", values=False))
    assert ("clustering [" in text and f"{n}/{n}" in text) == shown
    if shown:
        assert text.endswith("\r")                    # the bar is erased at the end
    assert "clustering" not in capsys.readouterr().out


def test_progress_is_silent_for_few_tensors(monkeypatch):
    err = _Terminal()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress("x", minimum=8)
    record = weightshare.read_weights(DIGITS, values=False)[0]
    for i in range(3):
        bar(i + 1, 3, record)
    bar.close()
    assert err.getvalue() == ""


# --------------------------------------------------------------------------- errors

@pytest.mark.parametrize("args, message", [
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "0"], r"k must be >= 1; got k=0"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "8", "--layers", "fc9"],
     r"no layer named 'fc9'; the layers with weights are: fc1, fc2, out"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "--k", "fc9=3"],
     r"k names layer 'fc9', which has no targeted weights"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "8", "--roles", "kern"],
     r"roles \['kern'\] do not exist"),
    (["cluster", "{digits}", "-o", "{tmp}/x.h5", "-k", "8"], r"must keep the input's suffix"),
    (["cluster", "{digits}", "-o", "{digits}", "-k", "8"], r"is the input file; pass in_place=True"),
    (["cluster", "{digits}", "-k", "8"], r"give -o OUT, or --in-place"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras"], r"give -k K \(e\.g\. -k 8\) and/or --k"),
    (["cluster", "{tmp}/missing.keras", "-o", "{tmp}/x.keras", "-k", "8"],
     r"missing\.keras: no such file"),
    (["cluster", "{digits}", "-o", "{tmp}/nodir/x.keras", "-k", "8"],
     r"the output folder does not exist"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "eight"],
     r"argument -k: expected an integer or LAYER=K"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "--k", "8"], r"argument --k: expected LAYER=K"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "--k", "a=1,a=2"],
     r"argument --k: expected an integer or LAYER=K"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "8", "--method", "fast"],
     r"argument --method: invalid choice: 'fast'"),
    (["cluster", "{digits}", "-o", "{tmp}/x.keras", "-k", "8", "--seed", "-1"],
     r"argument --seed: expected an integer >= 0; got '-1'"),
    (["info", "README.md"], r"README\.md: is not a Keras weights file"),
    (["info", "{truncated}"], r"cut\.keras: "),
    (["info", "{plain}"], r"plain\.h5: is an HDF5 file but not a Keras weights file"),
])
def test_bad_input_exits_2_with_one_line(args, message, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    digits = inputs / "digits.keras"
    shutil.copy(DIGITS, digits)
    (inputs / "cut.keras").write_bytes(DIGITS.read_bytes()[:50000])
    import h5py
    with h5py.File(inputs / "plain.h5", "w") as f:
        f["x"] = np.ones(3)
    out = tmp_path / "out"
    out.mkdir()
    before = {p.name: sha(p) for p in inputs.iterdir()}
    subs = {"{digits}": str(digits), "{tmp}": str(out), "{truncated}": str(inputs / "cut.keras"),
            "{plain}": str(inputs / "plain.h5")}
    argv = []
    for a in args:
        for key, value in subs.items():
            a = a.replace(key, value)
        argv.append(a)
    r = run_cli(*argv)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""
    assert lines[0].startswith(("weightshare " + args[0] + ": error: ",
                                "weightshare " + args[0] + ": error: argument"))
    assert re.search(message, lines[0]), lines[0]
    assert {p.name: sha(p) for p in inputs.iterdir()} == before
    assert list(out.iterdir()) == []


def test_help_texts():
    r = run_cli("--help")
    assert r.returncode == 0 and "info" in r.stdout and "cluster" in r.stdout
    r = run_cli("cluster", "--help")
    for flag in ("-o OUT", "-k K", "--k LAYER=K,...", "--init", "--method", "--layers", "--roles",
                 "--per-channel", "--no-keep-zeros", "--seed", "--in-place", "--quiet", "--json",
                 "examples:"):
        assert flag in r.stdout, flag
    r = run_cli("info", "--help")
    assert "--json" in r.stdout and "only read" in r.stdout


def test_the_cli_uses_only_the_public_api():
    for module in ("_info.py", "_cluster.py"):
        text = (ROOT / "weightshare" / "cli" / module).read_text()
        assert "_io" not in text and "h5py" not in text and "from weightshare." not in text


def test_layers_of_unknown_classes_are_named_on_stderr(tmp_path, capsys):
    from edits import edit_keras, layer_cfg

    def rename_class(cfg):
        e = layer_cfg(cfg, "hidden")
        e["class_name"], e["registered_name"] = "MyDense", "Custom>MyDense"

    def rename_groups(f):
        f.move("layers/dense", "layers/my_dense")
        f.move("layers/dense_1", "layers/dense")
    src = edit_keras(FIX / "k3_mlp.keras", tmp_path / "c.keras", config=rename_class,
                     h5=rename_groups)
    assert main(["cluster", str(src), "-o", str(tmp_path / "o.keras"), "-k", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == ("weightshare cluster: note: left as they are: layer 'hidden' "
                                    "(MyDense): var0, var1 (roles that are not kernel-like: "
                                    "target them with --roles var0,var1)")
    assert "logits/kernel" in captured.out and "hidden" not in captured.out
    assert main(["cluster", str(src), "-o", str(tmp_path / "o.keras"), "-k", "2", "--roles",
                 "var0"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == ("weightshare cluster: note: left as they are: layer 'hidden' "
                                    "(MyDense): var1 (roles that are not kernel-like: target "
                                    "them with --roles var1)")
    assert "hidden/var0" in captured.out
    assert main(["cluster", str(src), "-o", str(tmp_path / "o.keras"), "-k", "2", "--roles",
                 "all"]) == 0
    assert capsys.readouterr().err == ""


# --------------------------------------------------------------------------- hostile paths, signals

def test_in_place_follows_a_symlink_to_the_real_file(tmp_path, capsys):
    """--in-place on a symlink replaced the link by a file and left the model unchanged."""
    real = tmp_path / "store" / "m.weights.h5"
    real.parent.mkdir()
    shutil.copy(FIX / "k3_mlp.weights.h5", real)
    link = tmp_path / "m.weights.h5"
    os.symlink(real, link)
    for command in (["cluster", "-k", "2"], ["prune", "--keep", "3"]):
        assert main([command[0], str(link), "--in-place", *command[1:], "--quiet"]) == 0
        assert capsys.readouterr().out.startswith(f"{link} -> {real}: ")    # the file written
        assert os.path.islink(link) and os.path.realpath(link) == str(real)
    assert np.unique(values(real)["hidden/kernel"]).size == 2          # clustered, then pruned
    assert np.count_nonzero(values(real)["hidden/kernel"]) == 3
    assert sorted(os.listdir(real.parent)) == ["m.weights.h5"]


def test_in_place_refuses_a_file_with_several_hard_links(tmp_path, capsys):
    src = tmp_path / "m.weights.h5"
    shutil.copy(FIX / "k3_mlp.weights.h5", src)
    os.link(src, tmp_path / "backup.weights.h5")
    before = sha(src)
    assert main(["cluster", str(src), "--in-place", "-k", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{src}: has 2 hard links: replacing it in place would " \
        "leave the other 1 name(s) with the old file" in err
    assert sha(src) == before and sorted(os.listdir(tmp_path)) == ["backup.weights.h5",
                                                                  "m.weights.h5"]


def _default_signals():
    """The child starts with the default SIGTERM/SIGHUP handling: under ``nohup`` (SIGHUP
    ignored, inherited) the command rightly leaves an ignored signal ignored."""
    import signal
    for name in ("SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)


@pytest.mark.parametrize("signame, code, word", [("SIGTERM", 143, "terminated"),
                                                 ("SIGHUP", 129, "hung up")])
def test_sigterm_and_sighup_remove_the_temporary_output(signame, code, word, tmp_path):
    """Only Ctrl-C cleaned up: SIGTERM (timeout, schedulers) and SIGHUP left the temporary file."""
    import signal
    import time
    rng = np.random.default_rng(0)
    big, out = tmp_path / "big.npz", tmp_path / "out.npz"
    np.savez(big, **{f"w{i}": rng.standard_normal(500_000).astype(np.float32) for i in range(4)})
    out.write_bytes(b"previous output")
    proc = subprocess.Popen([sys.executable, "-m", "weightshare", "cluster", str(big), "-o",
                             str(out), "-k", "256", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=_default_signals)
    try:
        deadline = time.monotonic() + 30
        while not any(n.startswith(".out.npz.") for n in os.listdir(tmp_path)):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
            time.sleep(0.005)
        proc.send_signal(getattr(signal, signame))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == code
    assert err == f"weightshare cluster: {word} ({signame})\n"
    assert sorted(os.listdir(tmp_path)) == ["big.npz", "out.npz"]
    assert out.read_bytes() == b"previous output"


def test_a_non_ascii_name_prints_on_an_ascii_stdout(tmp_path, monkeypatch):
    """With PYTHONIOENCODING=ascii, printing 'modèle.npy' failed after the output was written."""
    src, dst = tmp_path / "modèle.npy", tmp_path / "sortie.npy"
    np.save(src, np.linspace(-1, 1, 50, dtype=np.float32))
    raw = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(raw, encoding="ascii"))
    assert main(["cluster", str(src), "-o", str(dst), "-k", "2"]) == 0
    sys.stdout.flush()
    assert sys.stdout.errors == "strict"                      # restored after main
    assert f"{tmp_path}/mod\\xe8le.npy -> {dst}: 1 tensor".encode() in raw.getvalue()
    assert np.unique(np.load(dst)).size == 2


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_summary_that_cannot_be_printed_says_the_output_was_written(tmp_path, monkeypatch,
                                                                      capsys):
    """A failure after the rename must not look like a failed run with nothing written."""
    src, dst = tmp_path / "m.npy", tmp_path / "out.npy"
    np.save(src, np.linspace(-1, 1, 50, dtype=np.float32))
    with open("/dev/full", "w") as full:
        monkeypatch.setattr(sys, "stdout", full)
        assert main(["cluster", str(src), "-o", str(dst), "-k", "2"]) == 2
        monkeypatch.undo()
    err = capsys.readouterr().err
    assert err == (f"weightshare cluster: error: {dst} was written (complete), but its summary "
                   "could not be printed: No space left on device\n")
    assert np.unique(np.load(dst)).size == 2


def test_a_full_disk_names_the_output_not_the_input(tmp_path, monkeypatch, capsys):
    """shutil.copyfile blames its source for ENOSPC: the error named the input model."""
    from weightshare._io import _writer
    dst = tmp_path / "o.weights.h5"
    dst.write_bytes(b"previous output")

    def full(src, tmp):
        with open(tmp, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device", src)
    monkeypatch.setattr(_writer.shutil, "copyfile", full)
    assert main(["cluster", str(FIX / "k3_mlp.weights.h5"), "-o", str(dst), "-k", "2"]) == 2
    assert capsys.readouterr().err == (f"weightshare cluster: error: {dst}: No space left on "
                                       "device: the output was not written\n")
    assert os.listdir(tmp_path) == [dst.name] and dst.read_bytes() == b"previous output"


def test_out_of_memory_names_the_file_and_the_tensor(tmp_path, monkeypatch, capsys):
    import weightshare.files

    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(weightshare.files, "cluster", no_memory)
    src = FIX / "k3_mlp.keras"
    assert main(["cluster", str(src), "-o", str(tmp_path / "o.keras"), "-k", "2"]) == 2
    assert capsys.readouterr().err == (
        f"weightshare cluster: error: {src}: model.weights.h5:/layers/dense/vars/0: out of memory "
        "for tensor 'hidden/kernel' (shape (8, 16), float32)\n")
    assert os.listdir(tmp_path) == []


def test_a_bare_memory_error_names_the_input(monkeypatch, capsys):
    def no_memory(*args, **kwargs):
        raise MemoryError
    monkeypatch.setattr(weightshare, "read_weights", no_memory)
    assert main(["info", str(DIGITS)]) == 2
    assert capsys.readouterr().err == f"weightshare info: error: {DIGITS}: out of memory\n"


def test_an_output_name_of_255_bytes_is_written(tmp_path, capsys):
    """The temporary name .{name}.XXXXXXXX.tmp made names of 242-255 characters fail."""
    dst = tmp_path / ("m" * 249 + ".keras")
    assert main(["cluster", str(FIX / "k3_mlp.keras"), "-o", str(dst), "-k", "2"]) == 0
    assert os.listdir(tmp_path) == [dst.name]
    assert np.unique(values(dst)["hidden/kernel"]).size == 2
