"""Hostile files (issue 17, items 4, 7 and 8c): text, depth, size.

- Text from a file (layer, tensor and dataset names, config strings) reaches
  the terminal with its control characters escaped: tables, progress bar,
  notes, warnings and error lines, for every command; JSON keeps it exact.
- A config nested deeper than ``weightshare._base._json.MAX_DEPTH`` is refused in
  one line wherever a config is parsed; a chain of thousands of layers is
  walked without recursion (``remove``, ``compare``); finite float64 weights
  of any magnitude cluster (scaled by a power of two: exact) instead of
  overflowing.
- ``remove`` allocates nothing a forged shape inflates: a kernel declared
  (0, 2**30) is refused before any index array is made.

Every test runs with warnings as errors and through ``weightshare.cli.main``
and/or the Python API; the cases are built by ``tests/hardening/corpus.py``.
"""

import contextlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import textwrap
import types
import zipfile

import numpy as np
import pytest

import weightshare
from weightshare._base import _json
from weightshare import cluster, remove_units
from weightshare._keras import _graph
from weightshare._remove import _rules
from weightshare.errors import printable
from weightshare.cli import main
from weightshare.cli._common import Progress
from weightshare.errors import FileFormatError
from weightshare.forward import forward

from hardening import corpus

pytestmark = pytest.mark.filterwarnings("error")

#: the folder holding the weightshare under test (for the subprocess)
PACKAGE_ROOT = str(pathlib.Path(weightshare.__file__).resolve().parents[1])
FIX = corpus.FIXTURES
EVIL = corpus.EVIL
SHOWN = printable(EVIL)          # how the name must appear
#: what must never reach the terminal raw (a newline only between lines of our own)
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def run(*argv):
    """(exit code, stdout, stderr) of ``main(argv)`` in-process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main([str(a) for a in argv])
        except SystemExit as exc:       # argparse
            rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def fixture(name, edit=None, *args, **kwargs):
    data = (FIX / name).read_bytes()
    return data if edit is None else edit(name, data, *args, **kwargs)


def write(tmp_path, name, data):
    path = tmp_path / ("input" + corpus.suffix(name))
    path.write_bytes(data)
    return path


def out_of(path):
    return path.with_name("out" + corpus.suffix(path.name))


def argv_of(command, path, layer="hidden"):
    if command == "info":
        return ["info", path]
    if command == "report":
        return ["report", path]
    if command == "cluster":
        return ["cluster", path, "-o", out_of(path), "-k", "4"]
    if command == "prune":
        return ["prune", path, "-o", out_of(path), "--sparsity", "0.5"]
    if command == "remove":
        return ["remove", path, "-o", out_of(path), "--layer", layer, "--count", "2"]
    return ["compare", FIX / "k3_mlp.keras", path, "--inputs", FIX / "k3_mlp_io.npz"]


# =========================================================================== 4: escaped text
def test_printable_escapes_controls_and_bidi_and_keeps_the_rest():
    assert printable("dense_1/kernel:0") == "dense_1/kernel:0"
    assert printable("a\\x1b") == "a\\x1b"                       # backslashes stay
    assert printable("é漢字 ok") == "é漢字 ok"
    assert printable("\x1b[2K\r\n\t\x07\x00\x7f\x9b\x85") == \
        "\\x1b[2K\\r\\n\\t\\x07\\x00\\x7f\\x9b\\x85"
    assert printable("\u202eabc\u2066\u2069\u2028\udc80") == "\\u202eabc\\u2066\\u2069\\u2028\\udc80"
    assert not RAW.search(printable("".join(map(chr, range(0x2100)))))
    assert printable(12) == "12"


TEXT_CASES = [(name, command) for name in ("k3_mlp.keras", "k2_mlp.h5", "k3_mlp.h5",
                                          "k3_mlp.weights.h5")
              for command in ("info", "cluster", "prune", "remove", "report")
              if not (command == "remove" and "weights" in name)]     # no architecture


@pytest.mark.parametrize("name, command", TEXT_CASES)
def test_names_from_the_file_are_escaped_in_every_table(tmp_path, name, command):
    path = write(tmp_path, name, fixture(name, corpus.rename_layer, "hidden", EVIL))
    rc, out, err = run(*argv_of(command, path, layer=EVIL))
    assert not RAW.search(out + err), (out + err)[:2000]
    assert rc == 0, err
    assert SHOWN in out         # whole: its newline and carriage return shown as \n and \r


@pytest.mark.parametrize("name", ["k3_mlp.h5", "k2_mlp.h5"])
@pytest.mark.parametrize("command", ["info", "cluster", "prune", "remove", "report", "compare"])
def test_error_lines_of_legacy_h5_escape_the_names(tmp_path, name, command):
    # the refusal names the dataset, whose path holds the layer's name twice
    path = write(tmp_path, name, corpus.units_mismatch(name, fixture(name), EVIL))
    rc, out, err = run(*argv_of(command, path, layer=EVIL))
    assert rc == 2 and out == ""
    assert not RAW.search(err) and err.count("\n") == 1, err
    assert str(path) in err and f"/{SHOWN}/" in err and "units=3" in err


def test_error_lines_are_escaped_and_the_api_keeps_the_name(tmp_path):
    # the exception carries the file's text as it is; the CLI prints it escaped
    path = write(tmp_path, "k3_mlp.weights.h5",
                 fixture("k3_mlp.weights.h5", corpus.rename_layer, "hidden", EVIL))
    x = np.load(FIX / "k3_mlp_io.npz")["x"]
    with pytest.raises(ValueError) as info:
        weightshare.compare_models(FIX / "k3_mlp.keras", path, x)
    assert EVIL in str(info.value)
    rc, out, err = run(*argv_of("compare", path))
    assert rc == 2 and err.count("\n") == 1 and not RAW.search(err) and SHOWN in err
    path = write(tmp_path, "k2_mlp.h5", fixture("k2_mlp.h5", corpus.rename_layer, "hidden", EVIL))
    rc, _, err = run("cluster", path, "-o", out_of(path), "--k", f"{EVIL}x=4")
    assert rc == 2 and err.count("\n") == 1 and not RAW.search(err)
    assert printable(EVIL + "x") in err


def test_json_output_keeps_the_names_exactly(tmp_path):
    path = write(tmp_path, "k3_mlp.keras", fixture("k3_mlp.keras", corpus.rename_layer,
                                                   "hidden", EVIL))
    rc, out, err = run("info", path, "--json")
    assert rc == 0 and not RAW.search(out)
    assert {t["layer"] for t in json.loads(out)["tensors"]} == {EVIL, "logits"}
    rc, out, err = run(*argv_of("remove", path, layer=EVIL), "--json")
    assert rc == 0 and json.loads(out)["layer"] == EVIL and not RAW.search(out)


def test_report_table_escapes_names():
    table = weightshare.report({EVIL: np.ones((3, 3), np.float32)}).table()
    assert SHOWN in table and not RAW.search(table.replace("\n", " "))


def test_progress_bar_escapes_names(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    bar = Progress("clustering")
    bar.on = True                       # as on a terminal
    bar(1, 10, types.SimpleNamespace(name="\x1b]0;x\x07" + EVIL))
    shown = err.getvalue().replace("\r", "", 1)     # the bar's own carriage return
    assert "\\x1b]0;x\\x07" in shown and not RAW.search(shown)


def test_usage_errors_escape_the_arguments():
    rc, out, err = run("info", "model.keras", "\x1b[2Kextra")
    assert rc == 2 and "\\x1b[2Kextra" in err and not RAW.search(err)


# =========================================================================== 7: deep configs
def test_json_depth_limit_is_exact_and_never_recursion():
    assert _json.MAX_DEPTH == corpus.CONFIG_DEPTH
    ok = "[" * _json.MAX_DEPTH + "]" * _json.MAX_DEPTH
    assert _json.loads(ok) == json.loads(ok)
    for depth in (_json.MAX_DEPTH + 1, 2000, 200_000):
        with pytest.raises(_json.NestingError, match="nested more than 100 levels"):
            _json.loads("[" * depth + "]" * depth, "config.json")
    deep = []
    for _ in range(100_000):            # built without recursion; checked without recursion
        deep = [deep]
    with pytest.raises(_json.NestingError):
        _json.check_depth(deep)
    with pytest.raises(_json.NestingError):
        _json.copy(deep)
    cfg = json.loads(zipfile.ZipFile(FIX / "k3_zoo.keras").read("config.json"))
    assert _json.loads(json.dumps(cfg)) == cfg
    copied = _json.copy(cfg)
    assert copied == cfg and json.dumps(copied) == json.dumps(cfg)
    copied["config"]["layers"][1]["config"]["name"] = "changed"
    assert cfg["config"]["layers"][1]["config"]["name"] != "changed"


@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5"])
@pytest.mark.parametrize("depth", [_json.MAX_DEPTH + 1, 500, 5000, 100_000])
def test_remove_on_a_deep_config_is_one_line(tmp_path, name, depth):
    path = write(tmp_path, name, fixture(name, corpus.deep_config, depth))
    rc, out, err = run(*argv_of("remove", path))
    assert rc == 2 and err.count("\n") == 1, err
    assert str(path) in err and "nested more than 100 levels" in err
    assert ("config.json" if name.endswith(".keras") else "model_config") in err
    with pytest.raises(FileFormatError, match="nested more than 100"):
        remove_units(path, out_of(path), layer="hidden", count=1)
    assert not out_of(path).exists()


@pytest.mark.parametrize("command", ["info", "cluster", "prune", "report", "compare"])
def test_every_command_refuses_a_deep_config(tmp_path, command):
    path = write(tmp_path, "k3_mlp.keras", fixture("k3_mlp.keras", corpus.deep_config, 5000))
    rc, out, err = run(*argv_of(command, path))
    assert rc == 2 and err.count("\n") == 1 and "config.json" in err and "nested more" in err


@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5"])
def test_a_config_at_the_depth_limit_works_everywhere(tmp_path, name):
    path = write(tmp_path, name, fixture(name, corpus.deep_config, _json.MAX_DEPTH))
    for command in ("info", "cluster", "prune", "remove", "report"):
        rc, out, err = run(*argv_of(command, path))
        assert rc == 0, (command, err)
    model = name.split(".")[0]
    rc, out, err = run("compare", FIX / name, path, "--inputs", FIX / f"{model}_io.npz")
    assert rc == 0, err


def test_forward_refuses_a_deep_config_text_and_dict():
    with pytest.raises(ValueError, match="nested more than"):
        forward("[" * 5000 + "]" * 5000, {}, np.zeros((1, 1)))
    deep = {"class_name": "Sequential", "config": {"layers": []}}
    inner = deep["config"]
    for _ in range(2000):
        inner["x"] = {}
        inner = inner["x"]
    with pytest.raises(ValueError, match="nested more than"):
        forward(deep, {}, np.zeros((1, 1)))


# =========================================================================== 7: long chains
@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5"])
@pytest.mark.parametrize("functional", [False, True])
def test_remove_through_1200_layers(tmp_path, name, functional):
    path = write(tmp_path, name, fixture(name, corpus.long_chain, 1200, functional=functional))
    res = remove_units(path, out_of(path), layer="hidden", units=[0, 3])
    assert len(res.path) == 1202 and res.path[-1] == "logits" and res.units_after == 14
    rc, out, err = run(*argv_of("remove", path))
    assert rc == 0, err


@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5"])
def test_compare_through_a_functional_chain_of_1200_layers(tmp_path, name):
    path = write(tmp_path, name, fixture(name, corpus.long_chain, 1200, functional=True))
    model = name.split(".")[0]
    rc, out, err = run("compare", FIX / name, path, "--inputs", FIX / f"{model}_io.npz", "--json")
    assert rc == 0, err
    assert json.loads(out)["max_abs_diff"] < 1e-5      # linear activations: the same function
    r = weightshare.compare_models(FIX / name, path, np.load(FIX / f"{model}_io.npz")["x"])
    assert r.top1_agreement == 1.0


def _chain_config(n):
    layers = [{"class_name": "InputLayer", "name": "in",
               "config": {"name": "in", "batch_shape": [None, 2]}, "inbound_nodes": []}]
    for i in range(n):
        src = "in" if i == 0 else f"a{i - 1}"
        layers.append({"class_name": "Activation", "name": f"a{i}",
                       "config": {"name": f"a{i}", "activation": "linear"},
                       "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {
                           "keras_history": [src, 0, 0]}}], "kwargs": {}}]})
    return {"class_name": "Functional", "config": {
        "name": "m", "layers": layers, "input_layers": [["in", 0, 0]],
        "output_layers": [[f"a{n - 1}", 0, 0]]}}


def test_forward_runs_a_long_chain_and_refuses_a_cycle():
    x = np.arange(6.0).reshape(3, 2)
    assert np.array_equal(forward(_chain_config(3000), {}, x), x)
    cfg = _chain_config(3)
    cfg["config"]["layers"][1]["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0] = "a2"
    with pytest.raises(ValueError, match="cycle"):
        forward(cfg, {}, x)


def test_the_removal_walk_refuses_a_cycle_instead_of_looping():
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 4]}},
        {"class_name": "Dense", "config": {"name": "fc", "units": 3}},
        {"class_name": "Activation", "config": {"name": "a", "activation": "relu"}},
        {"class_name": "Activation", "config": {"name": "b", "activation": "relu"}}]}}
    graph = _graph.build_graph(cfg)
    # a graph no config parses to (a consumer list that loops): the walk must end
    forged = graph._replace(consumers={**graph.consumers, "b": ("a",)}, outputs=frozenset())
    with pytest.raises(_rules.Blocked, match="reached twice"):
        _rules.plan_removal(forged, {"fc": ((4, 3), (3,))}, "fc", [1])


# =========================================================================== 7: huge values
HUGE = {"1e160": 1e160, "1e300": 1e300, "1.7e308": 1.7e308}


@pytest.mark.parametrize("method", ["optimal", "auto", "lloyd"])
@pytest.mark.parametrize("scale", HUGE)
@pytest.mark.parametrize("keep_zeros", [True, False])
def test_cluster_finite_huge_float64(method, scale, keep_zeros):
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, 600) * HUGE[scale]
    x[::5] = 0.0
    # the same fit as on the data scaled down by 2**1000 (exact), scaled back
    res = cluster(x, 6, method=method, keep_zeros=keep_zeros)
    small = cluster(np.ldexp(x, -1000), 6, method=method, keep_zeros=keep_zeros)
    assert np.array_equal(np.ldexp(small.values, 1000), res.values)
    assert np.array_equal(small.labels, res.labels)
    assert res.sse == np.inf or res.sse == np.ldexp(small.sse, 2000)
    # with tiny values beside the huge ones (they underflow when scaled): still a valid result
    x[::7] = 1e-300
    res = cluster(x, 6, method=method, keep_zeros=keep_zeros)
    c = res.centroids
    assert np.all(np.isfinite(c)) and np.all(np.diff(c) > 0) and c.size <= 6
    assert np.array_equal(res.values, c[res.labels])
    assert np.array_equal(res.labels, weightshare.assign(x, c))        # nearest, exactly
    if keep_zeros:
        assert np.all(res.values[x == 0] == 0)


@pytest.mark.parametrize("method", ["optimal", "auto", "lloyd"])
def test_scaled_solve_is_bit_identical_to_the_unscaled_one(method):
    # 2**400 * x takes the scaled path, x does not: every output is exactly the
    # unscaled one times a power of two, so scaling cannot change a result
    rng = np.random.default_rng(3)
    x = rng.laplace(size=5000)
    x[rng.random(x.size) < 0.3] = 0
    a = cluster(x, 8, method=method)
    b = cluster(np.ldexp(x, 400), 8, method=method)
    assert np.array_equal(np.ldexp(a.values, 400), b.values)
    assert np.array_equal(a.labels, b.labels) and b.sse == np.ldexp(a.sse, 800)
    assert _exponent_of(x) == 0 and _exponent_of(b.values) > 0


def _exponent_of(x):
    from weightshare.cluster import _exponent
    return _exponent(np.asarray(x))


def test_inputs_within_2_256_are_never_scaled():
    for x in (np.array([2.0 ** 256, -2.0 ** 256]), np.array([np.finfo(np.float32).max], np.float32),
              np.array([65504.0], np.float16), np.array([1e-300, 5e-324])):
        assert _exponent_of(x) == 0
    assert _exponent_of(np.array([2.0 ** 257])) > 0


def test_cluster_huge_with_the_lookup_table_per_channel_and_sample_weights():
    rng = np.random.default_rng(1)
    x = rng.normal(size=70_000) * 1e300             # past the 65,536 entries of the LUT path
    res = cluster(x, 5, method="lloyd")
    assert np.array_equal(res.labels, weightshare.assign(x, res.centroids))
    res = cluster(x.reshape(70, 1000), 4, axis=0, method="auto")
    assert np.isfinite(res.centroids[~np.isnan(res.centroids)]).all()
    sw = rng.uniform(0, 1e308, x.size)
    res = cluster(x[:3000], 4, sample_weight=sw[:3000], method="optimal")
    same = cluster(x[:3000], 4, sample_weight=np.ldexp(sw[:3000], -900), method="optimal")
    assert np.array_equal(res.values, same.values)
    assert np.array_equal(weightshare.init_centroids(x, 4, init="kmeans++", random_state=0),
                          np.ldexp(weightshare.init_centroids(np.ldexp(x, -700), 4, init="kmeans++",
                                                              random_state=0), 700))


@pytest.mark.parametrize("name", ["k2_mlp.h5", "k3_mlp.keras", "k3_mlp.weights.h5"])
def test_cluster_cli_on_a_file_of_huge_weights(tmp_path, name):
    w = np.random.default_rng(2).normal(size=(8, 16)) * 1e200
    path = write(tmp_path, name, fixture(name, corpus.set_kernel, w))
    rc, out, err = run("cluster", path, "-o", out_of(path), "-k", "4", "--json")
    assert rc == 0 and err == "", err
    row = next(t for t in json.loads(out)["tensors"] if t["shape"] == [8, 16])
    assert row["sse"] is None and row["distinct_after"] <= 4      # beyond float64: null
    rc, out, err = run("report", out_of(path), "--compare", path)
    assert rc == 0 and "inf" in out


# =========================================================================== 8c: forged sizes
def test_remove_allocates_nothing_for_a_kernel_declared_0_by_2_30(tmp_path):
    # under a 1.5 GiB address-space limit: the old code asked for 8 GiB of norms
    # (and 8 GiB of indices with --units) and failed with MemoryError
    def units(cfg):
        for entry in cfg["config"]["layers"]:
            if entry["config"].get("name") == "hidden":
                entry["config"]["units"] = 1 << 30
        return cfg
    files = []
    for name in ("k2_mlp.h5", "k3_mlp.keras"):
        zero = corpus.set_kernel(name, fixture(name), shape=(0, 1 << 30), dtype="f4")
        files.append(tmp_path / ("zero" + corpus.suffix(name)))
        files[-1].write_bytes(corpus.edit_any(name, zero, config=units))
    script = textwrap.dedent("""
        import contextlib, io, resource, sys
        resource.setrlimit(resource.RLIMIT_AS, (3 << 29, 3 << 29))
        import numpy as np
        from weightshare import remove_units
        from weightshare._keras import _graph
        from weightshare._remove import _rules
        from weightshare.cli import main
        from weightshare.errors import FileFormatError
        for path in sys.argv[1:]:
            out = path + ".out" + path[path.rindex("."):]
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                assert main(["remove", path, "-o", out, "--layer", "hidden", "--count", "1"]) == 2
            assert "holds no values" in err.getvalue() and err.getvalue().count("\\n") == 1
            for kw in ({"count": 3}, {"units": [1, 2]}):
                try:
                    remove_units(path, out, layer="hidden", **kw)
                except FileFormatError as exc:
                    assert "(0, 1073741824) and holds no values" in str(exc), exc
                else:
                    raise AssertionError("no refusal")
        # the planner itself: a producer, a depthwise multiplier and a Flatten that
        # forged shapes inflate
        def cfg(*layers):
            return _graph.build_graph({"class_name": "Sequential", "config": {"layers": [
                {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 6, 6, 2]}}]
                + [{"class_name": c, "config": dict(name=n, **k)} for c, n, k in layers]}})
        cases = [
            (cfg(("Conv2D", "c1", {"filters": 1 << 30, "use_bias": False}),
                 ("Conv2D", "c2", {"filters": 2, "use_bias": False})),
             {"c1": ((0, 3, 2, 1 << 30),), "c2": ((0, 1, 1 << 30, 2),)}),
            (cfg(("Conv2D", "c1", {"filters": 3}), ("DepthwiseConv2D", "dw", {"use_bias": False}),
                 ("Conv2D", "c2", {"filters": 2, "use_bias": False})),
             {"c1": ((3, 3, 2, 3), (3,)), "dw": ((0, 3, 3, 1 << 30),), "c2": ((1, 1, 6, 2),)}),
            (cfg(("Conv2D", "c1", {"filters": 4}), ("Flatten", "f", {}),
                 ("Dense", "d", {"units": 2, "use_bias": False})),
             {"c1": ((3, 3, 2, 4), (4,)), "d": ((1 << 32, 0),)}),
        ]
        for graph, shapes in cases:
            try:
                _rules.plan_removal(graph, shapes, "c1", [0])
            except _rules.Blocked as exc:
                assert "forged shape" in str(exc), exc
            else:
                raise AssertionError("no refusal")
        print("ok")
    """)
    p = subprocess.run([sys.executable, "-W", "error", "-c", script, *map(str, files)],
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": PACKAGE_ROOT})
    assert p.returncode == 0 and p.stdout == "ok\n", p.stdout + p.stderr

