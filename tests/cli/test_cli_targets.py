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

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = ROOT / "examples" / "digits.keras"


def cli(argv):
    """The exit code of ``weightshare ARGV`` (argparse's usage errors included)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


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
    assert [(t["name"], t["k"]) for t in got["tensors"]] == [
        ("fc1/kernel", 16), ("fc2/kernel", 4), ("out/kernel", 8)]
    assert [(t["name"], t["k"], t["distinct_after"], t["zeros_after"], t["sse"])
            for t in got["tensors"]] == [(r.tensor, r.k, r.distinct_after, r.zeros_after, r.sse)
                                         for r in rows]
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


# --------------------------------------------------------------------------- B: prune per layer
def test_prune_per_layer_equals_one_run_per_layer(tmp_path):
    both = weightshare.prune_file(DIGITS, tmp_path / "b.keras", sparsity={"fc1": 0.9, "*": 0.5})
    one = weightshare.prune_file(DIGITS, tmp_path / "1.keras", sparsity=0.9, layers=["fc1"])
    rest = weightshare.prune_file(tmp_path / "1.keras", tmp_path / "2.keras", sparsity=0.5,
                                  layers=["fc2", "out"])
    assert [r.nonzero_after for r in both] == [one[0].nonzero_after] + [r.nonzero_after
                                                                          for r in rest]
    a, b = values(tmp_path / "b.keras"), values(tmp_path / "2.keras")
    assert all(np.array_equal(a[n], b[n]) for n in a)
    rows = weightshare.prune_file(DIGITS, None, keep={"out": 7}, dry_run=True)
    assert [(r.tensor, r.nonzero_after) for r in rows] == [("out/kernel", 7)]


def test_cli_prune_per_layer_matches_python(tmp_path, capsys):
    assert main(["prune", str(DIGITS), "-o", str(tmp_path / "c.keras"), "--keep",
                 "fc1=100,out=20", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    rows = weightshare.prune_file(DIGITS, tmp_path / "p.keras", keep={"fc1": 100, "out": 20})
    assert [(t["name"], t["nonzeros_before"], t["nonzeros_after"], t["threshold"])
            for t in got["tensors"]] == [(r.tensor, r.nonzero_before, r.nonzero_after,
                                          r.threshold) for r in rows]
    assert [t["nonzeros_after"] for t in got["tensors"]] == [100, 20]
    a, b = values(tmp_path / "c.keras"), values(tmp_path / "p.keras")
    assert all(np.array_equal(a[n], b[n]) for n in a)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"sparsity": {"fc9": 0.5}}, ValueError,
     r"^sparsity names layer 'fc9', which has no targeted weights; targeted layers: fc1, fc2, "
     r"out$"),
    ({"keep": {"fc1": -1}}, ValueError, r"^keep\['fc1'\] must be >= 0; got keep\['fc1'\]=-1$"),
    ({"keep": {"fc1": 2.5}}, TypeError, r"^keep\['fc1'\] must be an integer >= 0"),
    ({"sparsity": {"fc1": 1.0}}, ValueError, r"^sparsity\['fc1'\] must be in \[0, 1\)"),
    ({"sparsity": {"fc1": 0.5}, "keep": 3}, ValueError, r"exactly one of sparsity or keep"),
    ({"sparsity": {"fc1": 0.5}, "global_": True}, ValueError,
     r"global_=True ranks magnitudes across tensors with one sparsity; got a per-layer"),
])
def test_prune_file_per_layer_errors_name_the_parameter_and_key(kwargs, error, message, tmp_path):
    with pytest.raises(error, match=message):
        weightshare.prune_file(DIGITS, tmp_path / "o.keras", **kwargs)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--sparsity", "fc1=x"], "argument --sparsity: expected a number or LAYER=S,... ; got "
                              "'fc1=x'"),
    (["--keep", "fc1=1,fc1=2"], "argument --keep: expected an integer or LAYER=N,... ; got "
                                "'fc1=1,fc1=2'"),
    (["--keep", "fc9=3"], "keep names layer 'fc9', which has no targeted weights; targeted "
                          "layers: fc1, fc2, out"),
    (["--sparsity", "fc1=0.5", "--global"], "--global ranks magnitudes across tensors with one "
                                            "--sparsity"),
])
def test_cli_prune_per_layer_errors(args, message, tmp_path, capsys):
    assert cli(["prune", DIGITS, "-o", tmp_path / "o.keras", *args]) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_cluster_and_prune_parse_per_layer_values_alike(capsys):
    for argv in (["cluster", DIGITS, "--dry-run", "-k", "fc1=x"],
                 ["prune", DIGITS, "--dry-run", "--keep", "fc1=x"]):
        assert cli(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].endswith("argument -k: expected an integer or LAYER=K,... ; got 'fc1=x' "
                           "(see weightshare cluster --help)")
    assert err[1].endswith("argument --keep: expected an integer or LAYER=N,... ; got 'fc1=x' "
                           "(see weightshare prune --help)")


# --------------------------------------------------------------------------- B: remove several
def _datasets(path):
    """Every HDF5 dataset of a .keras (its weights member) or .h5 file: path -> array."""
    import io
    import zipfile

    import h5py
    out = {}
    if str(path).endswith(".keras"):
        with zipfile.ZipFile(path) as z:
            raw = io.BytesIO(z.read("model.weights.h5"))
        f = h5py.File(raw, "r")
    else:
        f = h5py.File(path, "r")
    with f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


@pytest.mark.parametrize("name", ["k3_digits.keras", "k2_digits.h5", "k3_rm_conv_pool_conv.keras"])
def test_removing_two_layers_in_one_plan_equals_two_runs(name, tmp_path):
    src = FIX / name
    a, b = ("conv1", "conv2") if "conv" in name else ("fc1", "fc2")
    units = {a: [0, 5, 6], b: [1, 3]}
    one = tmp_path / f"one{src.suffix}"
    first, two = tmp_path / f"first{src.suffix}", tmp_path / f"two{src.suffix}"
    res = weightshare.remove_units(src, one, units=units)
    weightshare.remove_units(src, first, layer=a, units=units[a])
    weightshare.remove_units(first, two, layer=b, units=units[b])
    x, y = _datasets(one), _datasets(two)
    assert x.keys() == y.keys()
    for key in x:
        assert x[key].shape == y[key].shape and np.array_equal(x[key], y[key]), key
    assert [(t.layer, t.removed, t.units_after) for t in res.targets] == [
        (a, (0, 5, 6), res.targets[0].units_before - 3),
        (b, (1, 3), res.targets[1].units_before - 2)]
    assert res.layer is None and res.path[:2] == (a, res.targets[0].path[1])
    if "digits" in name:
        assert res.optimizer == "sliced"
        assert any(t.layer == "optimizer" and f"{b}.kernel" in t.role and t.new_shape == (61, 30)
                   for t in res.tensors)


def test_cli_remove_several_layers_matches_python(tmp_path, capsys):
    src = FIX / "k3_digits.keras"
    assert main(["remove", str(src), "-o", str(tmp_path / "c.keras"), "--layer", "fc1",
                 "--units", "0,5", "--layer", "fc2", "--units", "1", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    res = weightshare.remove_units(src, tmp_path / "p.keras", units={"fc1": [0, 5], "fc2": [1]})
    assert got["targets"] == json.loads(json.dumps([t.to_dict() for t in res.targets]))
    assert [(t["layer"], t["role"], t["shape_before"], t["shape_after"]) for t in got["tensors"]] \
        == [(t.layer, t.role, list(t.old_shape), list(t.new_shape)) for t in res.tensors]
    assert (got["params_before"], got["params_after"], got["config"]) == (
        res.params_before, res.params_after, list(res.config))
    assert [t["layer"] for t in got["targets"]] == ["fc1", "fc2"]
    assert main(["remove", str(src), "--dry-run", "--layer", "fc1", "--layer", "fc2",
                 "--count", "2", "--by", "l2"]) == 0
    text = capsys.readouterr().out
    assert "layer fc1: 64 -> 62 units" in text and "layer fc2: 32 -> 30 units" in text
    assert text.count("why: the 2 smallest l2 norms: ") == 2


@pytest.mark.parametrize("args, message", [
    (["--layer", "fc1", "--units", "1", "--layer", "fc2"], "2 --layer but 1 --units: give one "
                                                             "--units per --layer"),
    (["--layer", "fc1", "--units", "1", "--layer", "fc1", "--units", "2"],
     "--layer fc1 is given twice"),
    (["--layer", "fc1", "--units", "1", "--layer", "nope", "--units", "2"],
     "units names layer 'nope', which is not a layer of "),
    (["--layer", "fc1", "--units", "1", "--layer", "fc2", "--units", "40"],
     "units [40] are out of range for layer 'fc2' with 32 units"),
])
def test_cli_remove_several_layers_errors_write_nothing(args, message, tmp_path, capsys):
    assert main(["remove", str(FIX / "k3_digits.keras"), "-o", str(tmp_path / "o.keras"),
                 *args]) == 2
    assert message in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_two_removals_cutting_one_tensor_along_one_axis_is_a_conflict_naming_both():
    from weightshare._remove._rules import Plan, Slice
    from weightshare.remove import _merge

    def plan(producer):
        keep = np.arange(3)
        return Plan(producer, 4, (3,), {(producer, 0): (Slice(1, keep),), ("head", 0): (
            Slice(0, keep),)}, {(producer, 0): "kernel", ("head", 0): "kernel"}, {}, (),
            (producer, "head"), ("head",))
    with pytest.raises(ValueError, match=r"removing units of 'a' and of 'b' both cut head.kernel "
                                         r"along axis 0; remove them in two runs"):
        _merge([plan("a"), plan("b")])


def test_remove_units_mapping_arguments_are_checked():
    src = FIX / "k3_digits.keras"
    with pytest.raises(TypeError, match=r"give layer= with one layer's units or count, or a "
                                        r"mapping"):
        weightshare.remove_units(src, layer="fc1", units={"fc1": [1]}, dry_run=True)
    with pytest.raises(ValueError, match=r"units names no layer"):
        weightshare.remove_units(src, units={}, dry_run=True)
    with pytest.raises(TypeError, match=r"dst is required"):
        weightshare.remove_units(src, layer="fc1", units=[1])


# --------------------------------------------------------------------------- C: dry runs
DRY = [
    ("cluster", DIGITS, ["-k", "4", "--k", "fc1=16", "--seed", "1"]),
    ("cluster", FIX / "k2_zoo.h5", ["-k", "3", "--per-channel"]),
    ("prune", DIGITS, ["--sparsity", "fc1=0.9,*=0.5"]),
    ("prune", FIX / "k2_mlp.h5", ["--keep", "30", "--global"]),
    ("remove", FIX / "k3_digits.keras", ["--layer", "fc1", "--units", "0,5", "--layer", "fc2",
                                         "--units", "3"]),
    ("remove", FIX / "k2_rm_conv_pool_conv.h5", ["--layer", "conv1", "--count", "2"]),
]


def _json_run(capsys, argv):
    assert cli(argv) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("command, src, args", DRY)
def test_dry_run_prints_what_the_real_run_does_and_writes_nothing(command, src, args, tmp_path,
                                                                  capsys):
    dry_dir, real_dir = tmp_path / "dry", tmp_path / "real"
    dry_dir.mkdir()
    real_dir.mkdir()
    out = f"out{pathlib.Path(src).suffix}"
    dry = _json_run(capsys, [command, src, "--dry-run", "--json", *args])
    dry_o = _json_run(capsys, [command, src, "--dry-run", "--json", "-o", dry_dir / out, *args])
    assert os.listdir(dry_dir) == []                        # no output, no temporary file
    real = _json_run(capsys, [command, src, "--json", "-o", real_dir / out, *args])
    assert os.listdir(real_dir) == [out]
    key = "output"
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert dry[key] is None and dry_o[key] is None and real[key] == str(real_dir / out)
    for d in (dry, dry_o, real):
        del d[key], d["dry_run"]
        for t in d["tensors"]:
            t.pop("seconds", None)          # cluster's wall time per tensor
    assert dry == real and dry_o == real
    # the text: the same table, under a first line that says nothing was written
    assert cli([command, src, "--dry-run", *args]) == 0
    dry_text = capsys.readouterr().out.splitlines()
    assert cli([command, src, "-o", tmp_path / out, *args]) == 0
    real_text = capsys.readouterr().out.splitlines()
    assert "nothing written" in dry_text[0] and "nothing" not in real_text[0]
    assert dry_text[1:] == real_text[1:] and len(real_text) > 3


def test_python_dry_runs_return_the_real_results(tmp_path):
    src = FIX / "k3_digits.keras"
    c = weightshare.cluster_file(src, None, 4, random_state=0, dry_run=True)
    p = weightshare.prune_file(src, None, keep={"fc1": 9}, dry_run=True)
    r = weightshare.remove_units(src, None, layer="fc2", count=3, dry_run=True)
    assert os.listdir(tmp_path) == []
    assert (c.dry_run, p.dry_run, r.dry_run, r.dst) == (True, True, True, None)
    assert c == weightshare.cluster_file(src, tmp_path / "c.keras", 4, random_state=0)
    assert p == weightshare.prune_file(src, tmp_path / "p.keras", keep={"fc1": 9})
    real = weightshare.remove_units(src, tmp_path / "r.keras", layer="fc2", count=3)
    assert r._replace(dst=real.dst, dry_run=False) == real
    with pytest.raises(TypeError, match="dry_run must be True or False; got 1"):
        weightshare.cluster_file(src, None, 4, dry_run=1)
    with pytest.raises(TypeError, match="dry_run must be True or False; got 'yes'"):
        weightshare.remove_units(src, layer="fc1", units=[1], dry_run="yes")


def test_dry_run_of_bfloat16_and_safetensors_rows_equal_the_real_ones(tmp_path):
    for src, out in ((FIX / "k3_bf16.keras", tmp_path / "b.keras"),
                     (ROOT / "tests" / "fixtures" / "safetensors" / "tiny_llama_bf16",
                      tmp_path / "llama")):
        dry = weightshare.cluster_file(src, None, 3, dry_run=True)
        assert dry == weightshare.cluster_file(src, out, 3) and len(dry) > 0
        rows = weightshare.transform_file(src, None, lambda r, v: v * 0, dry_run=True)
        assert rows and all(r.zeros_after == r.size and r.changed for r in rows)
    assert sorted(os.listdir(tmp_path)) == ["b.keras", "llama"]


@pytest.mark.parametrize("src", [FIX / "k3_bf16.keras", FIX / "k2_f16.h5", FIX / "k2_mlp_io.npz",
                                 ROOT / "tests" / "fixtures" / "safetensors" / "tiny_llama_bf16"])
def test_transform_file_dry_run_rows_equal_the_rewrite_rows(src, tmp_path):
    def fn(record, v):
        return np.round(v, 1) if record.kind == "kernel" else None
    dry = weightshare.transform_file(src, None, fn, dry_run=True)
    assert os.listdir(tmp_path) == []
    real = weightshare.transform_file(src, tmp_path / ("o" + "".join(pathlib.Path(src).suffixes)),
                                      fn)
    assert dry == real and any(r.values_changed for r in real)


# --------------------------------------------------------------------------- D: what is left out
SKIPS = ROOT / "tests" / "fixtures" / "skips"
NOTE = "note: left as they are: "
#: (file, the tensors a default job leaves out, the --roles the note suggests (None: dtype only))
SKIPPED = [
    (SKIPS / "k2_attention.h5", ["attention/attention_W", "attention/attention_b"],
     "attention_W,attention_b"),
    (SKIPS / "k3_attention.h5", ["attention/attention_W", "attention/attention_b"],
     "attention_W,attention_b"),
    (SKIPS / "k3_attention.keras", ["attention/var0", "attention/var1"], "var0,var1"),
    (SKIPS / "k3_attention.weights.h5", ["attention/var0", "attention/var1"], "var0,var1"),
    (ROOT / "tests" / "fixtures" / "safetensors" / "numpy_dtypes.safetensors",
     None, "position"),
    (SKIPS / "arrays.npz", ["ids"], None),
    (SKIPS / "ids.npy", ["array"], None),
]


def _run_text(capsys, argv):
    code = cli(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize("src, names, roles", SKIPPED, ids=lambda v: getattr(v, "name", None))
def test_every_format_names_what_it_leaves_out_once_and_how_to_target_it(src, names, roles,
                                                                         capsys):
    records = weightshare.read_weights(src, values=False)
    for command, target in (("cluster", ["-k", "2"]), ("prune", ["--sparsity", "0.5"])):
        code, out, err = _run_text(capsys, [command, src, "--dry-run", "--json", *target])
        assert code == 0, err
        got = json.loads(out)["skipped"]
        if names is not None:
            assert [s["name"] for s in got] == names
        assert got == [s.to_dict() for s in weightshare.skipped_weights(
            records, weightshare.select_weights(records))]
        # one note, on stderr, in the one wording, naming each tensor's role or dtype
        assert err.count("\n") == 1 and err.startswith(f"weightshare {command}: {NOTE}")
        for s in got:
            assert (s["role"] if s["reason"] == "role" else s["dtype"]) in err
        if roles is None:
            assert "--roles" not in err and "never changed" in err
            continue
        assert err.rstrip().endswith(f"target them with --roles {roles})") or \
            f"target them with --roles {roles});" in err
        # the option the note suggests targets them (and then nothing of that role is left out)
        code, out, err2 = _run_text(capsys, [command, src, "--dry-run", "--json", "--roles",
                                             roles, *target])
        assert code == 0, err2
        done = {t["name"] for t in json.loads(out)["tensors"]}
        want = {s["name"] for s in got if s["reason"] == "role"}
        assert want and want <= done
        assert "--roles" not in err2


def test_python_jobs_return_what_they_left_out():
    src = SKIPS / "k2_attention.h5"
    rows = weightshare.cluster_file(src, None, 2, dry_run=True)
    assert [(s.name, s.layer, s.role, s.reason) for s in rows.skipped] == [
        ("attention/attention_W", "attention", "attention_W", "role"),
        ("attention/attention_b", "attention", "attention_b", "role")]
    assert [r.tensor for r in rows] == ["fc/kernel", "out/kernel"]
    assert weightshare.prune_file(src, None, keep=3, dry_run=True).skipped == rows.skipped
    assert weightshare.cluster_file(src, None, 2, roles="all", dry_run=True).skipped == ()
    only = weightshare.cluster_file(src, None, 2, layers=["fc"], dry_run=True)
    assert only.skipped == ()        # the layers not targeted are not "left out"


def test_help_describes_the_new_flags(capsys):
    for command, flags in (("cluster", ["--dry-run", "fc1=16,*=8", "one note on stderr"]),
                           ("prune", ["--dry-run", "S|LAYER=S,...", "N|LAYER=N,...",
                                      "fc1=0.9,fc2=0.5", "one note on stderr"]),
                           ("remove", ["--dry-run", "repeat --layer", "one --count for every",
                                       "--layer fc2 --units 0"])):
        assert cli([command, "--help"]) == 0
        text = " ".join(capsys.readouterr().out.split())
        for flag in flags:
            assert flag in text, (command, flag)
