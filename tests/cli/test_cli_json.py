"""Every command's ``--json`` has the one shape of ``weightshare/cli/_schema.py`` (docs/cli.md).

Each subcommand runs with ``--json`` over the fixtures of every format it
takes (Keras 3 ``.keras`` and ``.weights.h5``, legacy ``.h5`` full and
weights-only, ``.npy``, ``.npz``, safetensors single and sharded) and its
output is validated by the small validator below: the keys in order
(``command``, ``input``, ``output``, the command's fields, ``tensors``), no
unknown key at the top level, in a total or in a row, every row keyed
``name`` first, every value of its JSON type, standard JSON only (no NaN or
Infinity). The examples of docs/cli.md are validated the same way. A command
added to the CLI without a schema, a key renamed, added or dropped in one
command only: a test here fails.
"""

import json
import math
import os
import pathlib
import re
import shutil

import numpy as np
import pytest

import weightshare
from weightshare.cli import build_parser, main
from weightshare.cli._schema import COMMON, SCHEMA

ROOT = next(p for p in pathlib.Path(__file__).resolve().parents if (p / "weightshare").is_dir())
FIX = ROOT / "tests" / "fixtures" / "keras"
ST = ROOT / "tests" / "fixtures" / "safetensors"
DIGITS = weightshare.examples.path("digits.keras")
DIGITS_TEST = weightshare.examples.path("digits_test.npz")


# --------------------------------------------------------------------------- the validator

def _type_name(spec):
    if isinstance(spec, tuple):
        return " or ".join(_type_name(s) for s in spec)
    if isinstance(spec, list):
        return f"list of {_type_name(spec[0])}"
    if isinstance(spec, dict):
        return "object"
    return {str: "string", int: "integer", float: "number", bool: "true/false",
            None: "null"}[spec]


def _fits(value, spec):
    """Problems of `value` against `spec` (a type of _schema's vocabulary); [] when it fits."""
    if isinstance(spec, tuple):
        return [] if any(not _fits(value, s) for s in spec) else [
            f"{value!r} is not {_type_name(spec)}"]
    if isinstance(spec, list):
        if not isinstance(value, list):
            return [f"{value!r} is not a list"]
        return [f"[{i}]: {p}" for i, v in enumerate(value) for p in _fits(v, spec[0])]
    if isinstance(spec, dict):
        return _object(value, spec)
    if spec is None:
        ok = value is None
    elif spec is float:     # any JSON number, finite (json.loads gives int or float)
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and \
            math.isfinite(value)
    elif spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, spec)
    return [] if ok else [f"{value!r} is not {_type_name(spec)}"]


def _object(value, spec, first=None):
    """An object with exactly the keys of `spec`, in its order (`first` leading)."""
    if not isinstance(value, dict):
        return [f"{value!r} is not an object"]
    problems = []
    if list(value) != list(spec):
        missing = [k for k in spec if k not in value]
        unknown = [k for k in value if k not in spec]
        problems.append(f"keys {list(value)}: missing {missing}, unknown {unknown}"
                        if missing or unknown else f"keys out of order: {list(value)}")
    if first is not None and next(iter(value), None) != first:
        problems.append(f"the first key is not {first!r}")
    for key in spec:
        if key in value:
            problems += [f"{key}: {p}" for p in _fits(value[key], spec[key])]
    return problems


def validate(doc):
    """Problems of one command's JSON document (a parsed object); [] when it fits its schema."""
    if not isinstance(doc, dict) or doc.get("command") not in SCHEMA:
        return [f"not a document of a known command: {str(doc)[:200]}"]
    schema = SCHEMA[doc["command"]]
    top = {**COMMON, **schema["fields"], "tensors": [dict]}
    problems = _object(doc, {k: (v if k != "tensors" else list) for k, v in top.items()})
    for i, row in enumerate(doc.get("tensors", ())):
        problems += [f"tensors[{i}]: {p}" for p in _object(row, schema["tensor"], first="name")]
    return problems


def run_json(capsys, *argv):
    """main(argv + --json) -> the parsed document (standard JSON only), validated."""
    assert main([*map(str, argv), "--json"]) == 0
    text = capsys.readouterr().out

    def no_constant(name):
        raise AssertionError(f"{name} in the JSON of {argv}")
    doc = json.loads(text, parse_constant=no_constant)
    problems = validate(doc)
    assert not problems, f"{' '.join(map(str, argv))}:\n" + "\n".join(problems)
    assert doc["command"] == argv[0]
    return doc


def test_the_validator_catches_drift():
    good = {"command": "compare", "input": "n.keras", "output": None, "original": "o.keras",
            "inputs": "x.npy", "labels": None, "samples": 3, "output_shape": [3, 10],
            "top1_agreement": 1.0, "accuracy_original": None, "accuracy_new": None,
            "max_abs_diff": 0.0, "mean_abs_diff": 0, "tensors": []}
    assert validate(good) == []
    renamed = {("n" if k == "samples" else k): v for k, v in good.items()}
    extra = {**good, "tensors": [], "note": "x"}
    assert validate(renamed) and validate(extra)
    assert validate({**good, "samples": True}) and validate({**good, "max_abs_diff": math.nan})
    assert validate({**good, "output_shape": [3.5]}) and validate({**good, "command": "strip"})
    assert validate({**good, "tensors": [{"tensor": "a"}]})
    reordered = dict(reversed(list(good.items())))
    assert validate(reordered)
    row = {"name": "a", "layer": "a", "role": "kernel", "location": "/x", "shape_before": [2],
           "shape_after": [1]}
    target = {"layer": "a", "removed": [1], "units_before": 2, "units_after": 1, "by": None,
              "norms": [], "path": ["a"]}
    doc = {"command": "remove", "input": "m.keras", "output": "o.keras", "dry_run": False,
           "targets": [target], "layer": "a",
           "removed": [1], "units_before": 2, "units_after": 1, "by": None, "norms": [],
           "crossed": ["a"], "config": [], "params_before": 2, "params_after": 1,
           "optimizer": "none", "warnings": [], "tensors": [row]}
    assert validate(doc) == []
    assert validate({**doc, "tensors": [dict(reversed(list(row.items())))]})   # name not first


def test_every_subcommand_has_a_schema_and_a_run_here():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    assert set(sub.choices) == set(SCHEMA) == set(RUNS)


# --------------------------------------------------------------------------- every command, every format

@pytest.fixture
def npy_npz(tmp_path):
    w = np.random.default_rng(0).normal(size=(16, 8)).astype(np.float32)
    np.save(tmp_path / "w.npy", w)
    np.savez(tmp_path / "w.npz", **{"fc/kernel": w, "fc/bias": np.zeros(8, np.float32)})
    return tmp_path / "w.npy", tmp_path / "w.npz"


def _models(npy_npz):
    """One file of every format the file commands take."""
    return [DIGITS, FIX / "k3_cnn.keras", FIX / "k3_mlp.weights.h5", FIX / "k2_mlp.h5",
            FIX / "k2_mlp.weights_only.h5", FIX / "k3_bf16.keras", *npy_npz,
            ST / "tiny_bert" / "model.safetensors", ST / "tiny_bert_sharded"]


def _names(path):
    return {r.name: r.location for r in weightshare.read_weights(path, values=False)}


def _out(tmp_path, model, tag):
    model = pathlib.Path(model)
    if model.is_dir():
        return tmp_path / f"{tag}-{model.name}"
    suffix = ".weights.h5" if model.name.endswith(".weights.h5") else model.suffix
    return tmp_path / f"{tag}-{model.stem}{suffix}"


def run_info(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz):
        doc = run_json(capsys, "info", model)
        assert doc["input"] == str(model) and doc["output"] is None
        names = _names(model)
        assert [t["name"] for t in doc["tensors"]] == list(names)
        assert all(t["location"] == names[t["name"]] and t["size"] == math.prod(t["shape"])
                   for t in doc["tensors"])


def run_cluster(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz):
        out = _out(tmp_path, model, "k4")
        doc = run_json(capsys, "cluster", model, "-o", out, "-k", "4", "--quiet")
        assert doc["output"] == str(out) and doc["tensors"], model
        assert set(t["name"] for t in doc["tensors"]) <= set(_names(model))
        assert doc["total"]["size"] == sum(t["size"] for t in doc["tensors"])
    doc = run_json(capsys, "cluster", DIGITS, "-o", tmp_path / "p.keras", "-k", "4",
                   "--layers", "out", "--per-channel", "--no-keep-zeros")
    assert [t["name"] for t in doc["tensors"]] == ["out/kernel"]


def run_prune(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz):
        out = _out(tmp_path, model, "s5")
        doc = run_json(capsys, "prune", model, "-o", out, "--sparsity", "0.5", "--quiet")
        assert doc["output"] == str(out) and doc["tensors"] and doc["global"] is False
        assert set(t["name"] for t in doc["tensors"]) <= set(_names(model))
        total = doc["total"]
        assert total["nonzeros_after"] == sum(t["nonzeros_after"] for t in doc["tensors"])
    doc = run_json(capsys, "prune", DIGITS, "-o", tmp_path / "g.keras", "--keep", "0",
                   "--global", "--roles", "all")      # nothing kept: thresholds are null
    assert doc["global"] is True and all(t["threshold"] is None for t in doc["tensors"])
    assert doc["total"]["sparsity"] == 1.0


def run_remove(tmp_path, capsys, npy_npz):
    for model, layer in [(DIGITS, "fc1"), (FIX / "k3_trained.keras", "fc1"),
                         (FIX / "k2_trained.h5", "fc1"), (FIX / "k3tf_trained.h5", "fc1"),
                         (FIX / "k3_rm_conv_bn_relu_conv.keras", "conv1")]:
        out = _out(tmp_path, model, "rm")
        doc = run_json(capsys, "remove", model, "-o", out, "--layer", layer, "--count", "1")
        assert doc["output"] == str(out) and doc["layer"] == layer and len(doc["norms"]) == 1
        names = _names(model)
        variables = [t for t in doc["tensors"] if t["layer"] != "optimizer"]
        slots = [t for t in doc["tensors"] if t["layer"] == "optimizer"]
        # a model variable is named and located exactly as `info` shows it
        assert variables and all(names.get(t["name"]) == t["location"] for t in variables)
        # an optimizer slot is named by its dataset, located as the variables are
        assert all(t["location"].endswith("/" + t["name"]) for t in slots)
        assert len({t["name"] for t in doc["tensors"]}) == len(doc["tensors"])
        if "trained" in str(model) or model == DIGITS:
            assert slots, model
    copy = tmp_path / "inplace.keras"
    shutil.copy(DIGITS, copy)
    doc = run_json(capsys, "remove", copy, "--in-place", "--layer", "fc2", "--units", "0,3")
    assert doc["output"] == str(copy) and doc["by"] is None and doc["removed"] == [0, 3]


def run_report(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz):
        doc = run_json(capsys, "report", model)
        assert doc["output"] is None and doc["original"] is None and doc["tensors"]
        assert doc["total"]["size"] == sum(t["size"] for t in doc["tensors"])
        assert all(t["sse"] is None for t in doc["tensors"])
    clustered = tmp_path / "c.keras"
    weightshare.cluster_file(DIGITS, clustered, 4)
    doc = run_json(capsys, "report", clustered, "--compare", DIGITS)
    assert doc["original"] == DIGITS and doc["total"]["sse"] > 0


@pytest.mark.slow      # matplotlib draws (about 2 s)
def test_report_plot_names_its_output(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    doc = run_json(capsys, "report", DIGITS, "--plot", tmp_path / "r.png", "--tensors",
                   "fc1/kernel")
    assert doc["output"] == str(tmp_path / "r.png") and (tmp_path / "r.png").is_file()


def run_compare(tmp_path, capsys, npy_npz):
    clustered = tmp_path / "c.keras"
    weightshare.cluster_file(DIGITS, clustered, 4)
    doc = run_json(capsys, "compare", DIGITS, clustered, "--inputs", DIGITS_TEST, "--labels",
                   DIGITS_TEST)
    assert (doc["input"], doc["original"], doc["inputs"], doc["labels"]) == (
        str(clustered), DIGITS, DIGITS_TEST, DIGITS_TEST)
    assert doc["output"] is None and doc["tensors"] == [] and doc["samples"] == 360
    for original, new in [(FIX / "k2_mlp.h5", FIX / "k2_mlp.h5"),
                          (FIX / "k3_cnn.keras", FIX / "k3_cnn.weights.h5")]:
        io = FIX / (original.name.split(".")[0] + "_io.npz")
        doc = run_json(capsys, "compare", original, new, "--inputs", io)
        assert doc["labels"] is None and doc["accuracy_new"] is None
        assert doc["max_abs_diff"] == 0.0


def run_strip(tmp_path, capsys, npy_npz):
    for model in (DIGITS, FIX / "k3_trained.keras", FIX / "k2_trained.h5",
                  FIX / "k3_trained.weights.h5", FIX / "k2_mlp.h5"):
        out = _out(tmp_path, model, "st")
        doc = run_json(capsys, "strip", model, "-o", out)
        assert doc["output"] == str(out) and doc["tensors"] == []
        assert doc["size_after"] == os.path.getsize(out) <= doc["size_before"]
        doc = run_json(capsys, "strip", model, "-o", out, "--compress")
        assert doc["compressed"] is True


def run_pack(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz)[:-1]:         # a sharded checkpoint is packed shard by shard
        out = _out(tmp_path, model, "pk").with_suffix(".wsz")
        doc = run_json(capsys, "pack", model, "-o", out)
        assert doc["output"] == str(out) and doc["tensors"] == [] and doc["dry_run"] is False
        assert doc["size_after"] == os.path.getsize(out)
        assert doc["tensor_bytes"] + doc["skeleton_bytes"] == doc["size_before"]


def run_unpack(tmp_path, capsys, npy_npz):
    for model in _models(npy_npz)[:-1]:
        packed = tmp_path / "p.wsz"
        weightshare.pack_file(model, packed)
        out = _out(tmp_path, model, "up")
        doc = run_json(capsys, "unpack", packed, "-o", out)
        assert doc["output"] == str(out) and doc["tensors"] == []
        assert out.read_bytes() == pathlib.Path(model).read_bytes()
        doc = run_json(capsys, "unpack", packed, "--dry-run")
        assert doc["output"] is None and doc["dry_run"] is True


RUNS = {"info": run_info, "cluster": run_cluster, "prune": run_prune, "remove": run_remove,
        "report": run_report, "compare": run_compare, "strip": run_strip, "pack": run_pack,
        "unpack": run_unpack}


@pytest.mark.filterwarnings("error")       # a warning fails the command (issue 25)
@pytest.mark.parametrize("command", sorted(RUNS))
def test_every_command_prints_the_one_shape(command, tmp_path, capsys, npy_npz):
    RUNS[command](tmp_path, capsys, npy_npz)


def test_the_json_is_standard_when_numbers_overflow(tmp_path, capsys):
    path = tmp_path / "nan.npz"
    np.savez(path, w=np.array([np.nan, 1.0], np.float32))
    doc = run_json(capsys, "report", path, "--compare", path)
    assert doc["tensors"][0]["sse"] is None and doc["total"]["sse"] is None
    huge = tmp_path / "huge.npz"
    np.savez(huge, w=np.random.default_rng(2).normal(size=(8, 16)) * 1e200)
    doc = run_json(capsys, "cluster", huge, "-o", tmp_path / "o.npz", "-k", "4")
    assert doc["tensors"][0]["sse"] is None and doc["total"]["sse"] is None


# --------------------------------------------------------------------------- docs/cli.md

DOC = (ROOT / "docs" / "cli.md").read_text()
EXAMPLES = re.findall(r"```json\n(.*?)```", DOC, flags=re.S)
#: (command line, printed JSON) of each example, in the page's order
RUNS_SHOWN = re.findall(r"```console\n\$ weightshare ([^\n]*)\n```\n```json\n(.*?)```", DOC,
                        flags=re.S)


def test_docs_show_an_example_of_every_command():
    assert {json.loads(block)["command"] for block in EXAMPLES} == set(SCHEMA)


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda b: json.loads(b)["command"])
def test_docs_examples_fit_the_schema(block):
    assert validate(json.loads(block)) == []


def test_docs_name_every_key_of_the_schema():
    """The reference tables of docs/cli.md list every key (and no key the schema lacks)."""
    for command, schema in SCHEMA.items():
        section = DOC.split(f"\n## `{command}`", 1)[1].split("\n## ", 1)[0]
        listed = set(re.findall(r"^\| `([a-z_0-9.\[\]]+)`", section, flags=re.M))
        keys = set(schema["fields"]) | {f"tensors[].{k}" for k in schema["tensor"]}
        keys |= set(_nested_keys(schema["fields"]))
        assert keys == listed, (command, sorted(keys - listed), sorted(listed - keys))


def _nested_keys(fields, prefix=""):
    """``parent.key`` of every key of an object field (an object or null too), at any depth."""
    for name, spec in fields.items():
        obj = spec if isinstance(spec, dict) else next(
            (s for s in spec if isinstance(s, dict)), None) if isinstance(spec, tuple) else None
        if obj is not None:
            for key in obj:
                yield f"{prefix}{name}.{key}"
            yield from _nested_keys(obj, f"{prefix}{name}.")


def _close(got, want):
    """The same JSON, numbers to 1e-9 relative (the platform's last bits may differ);
    ``seconds`` (a wall time) any number >= 0."""
    if isinstance(want, dict):
        return isinstance(got, dict) and list(got) == list(want) and all(
            _close(got[k], want[k]) if k != "seconds" else
            isinstance(got[k], (int, float)) and got[k] >= 0 for k in want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            _close(g, w) for g, w in zip(got, want))
    if isinstance(want, float):
        return isinstance(got, (int, float)) and got == pytest.approx(want, rel=1e-9)
    return type(got) is type(want) and got == want


@pytest.mark.filterwarnings("error")
def test_docs_examples_are_what_the_commands_print(tmp_path, monkeypatch, capsys):
    """Each example, run in order in a folder holding the bundled files, prints its JSON."""
    assert len(RUNS_SHOWN) == len(EXAMPLES) == len(SCHEMA)
    for name in weightshare.examples.NAMES:
        shutil.copy(weightshare.examples.path(name), tmp_path)
    monkeypatch.chdir(tmp_path)
    for line, shown in RUNS_SHOWN:
        argv = line.split()
        assert argv[-1] == "--json"
        got = run_json(capsys, *argv[:-1])
        assert _close(got, json.loads(shown)), f"weightshare {line}: prints\n{json.dumps(got)}"


def test_the_page_is_linked_where_the_other_docs_are():
    assert "[cli.md](cli.md)" in (ROOT / "docs" / "index.md").read_text()
    assert "[docs/cli.md](docs/cli.md)" in (ROOT / "README.md").read_text()
