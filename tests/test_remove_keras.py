"""Structured removal, proven in real Keras (marker ``keras``).

For every supported pattern x format (.keras, legacy .h5) x producer (k3 = Keras 3 jax,
k3tf = Keras 3 tensorflow, k2 = tf-keras): weightshare writes the smaller model and,
as the reference, a same-shape copy of the ORIGINAL whose consumer weights for the
removed units are zero (``weightshare.remove._write_zeroed``). Both are loaded by
the Keras that wrote the input (``tests/keras/probe.py``, one batch per producer, once per
pytest run), and:

- the smaller model loads, reports the smaller variable shapes, the producer's smaller
  output shape and weightshare's parameter count;
- its predictions equal the zeroed original's, computed in the same Keras
  (max abs difference <= 1e-5; float16/bfloat16 models: see ``HALF_TOL``);
- optimizer state sliced by weightshare is restored by ``load_model(compile=True)`` and
  equals the original's restored state with the removed entries deleted; state that
  weightshare drops leaves a file that still loads compiled.

Interpreters: ``WEIGHTSHARE_KERAS3_PYTHON`` (k3) and ``WEIGHTSHARE_TF_PYTHON`` (k3tf, k2;
``WEIGHTSHARE_TFKERAS_PYTHON`` is accepted too). A producer whose variable is unset is
skipped, unless ``WEIGHTSHARE_REQUIRE_KERAS=1``, where it fails.
"""

import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

import weightshare
from keras_env import PRODUCERS, find_python, keras_python
from run_cache import once, run_folder
from weightshare.remove import _write_zeroed

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"
PROBE = ROOT / "tests" / "keras" / "probe.py"
MAKE_FUNCTIONAL = ROOT / "tests" / "keras" / "make_functional_removal.py"
FORMATS = (".keras", ".h5")
TOL = 1e-5
HALF_TOL = {"float16": 2e-2, "bfloat16": 1e-1}   # Keras computes these models in half precision

#: supported patterns: (model, producer layer, units to remove)
PATTERNS = [
    ("rm_dense_dense", "fc1", (1, 5, 9, 13)),
    ("rm_dense_dense", "fc2", (0, 15)),
    ("rm_dense_bn_dense", "fc1", (0, 3, 4)),
    ("rm_dense_dropout_act_dense", "fc1", (2, 7)),
    ("rm_conv_bn_relu_conv", "conv1", (1, 6)),
    ("rm_conv_pool_conv", "conv1", (0, 7)),
    ("rm_conv_pool_conv", "conv2", (3,)),
    ("rm_conv_dw_conv", "conv1", (3, 4, 5)),
    ("rm_conv_flatten_dense", "conv1", (2, 5)),
    ("rm_conv_gap_dense", "conv1", (1,)),
    ("cnn", "conv1", (2,)),
    ("cnn", "pw", (0, 5)),
    # Functional models made on the fly by tests/keras/make_functional_removal.py (fan-out, two outputs)
    ("fn_dense_fanout", "fc1", (1, 2, 9)),
    ("fn_conv_branches", "conv1", (0, 3)),
]
FUNCTIONAL = ("fn_dense_fanout", "fn_conv_branches")
#: several layers removed in one plan: (model, {layer: units}); the reference zeroes the
#: consumers of each layer's units in turn
SEVERAL = [("rm_dense_dense", {"fc1": (1, 5, 9, 13), "fc2": (0, 15)}),
           ("rm_conv_pool_conv", {"conv1": (0, 7), "conv2": (3,)}),
           ("digits", {"fc1": (0, 5, 6), "fc2": (2,)})]
#: files with optimizer state: removal of fc1 units, loaded compiled where Keras can
OPTIMIZER = [("trained", ".keras"), ("trained", ".h5"), ("mixed", ".keras"), ("mixed", ".h5"),
             ("digits", ".keras"), ("digits", ".h5")]
OPT_UNITS = (0, 5, 6)
HALF = [("f16", ".keras"), ("f16", ".h5"), ("bf16", ".keras")]


def _exists(producer, model, ext):
    return (FIX / f"{producer}_{model}{ext}").exists()


def _compiled_restore(producer, model, ext):
    """Does load_model(compile=True) restore this file's optimizer state (fixtures README)?"""
    if producer != "k2" and ext == ".h5":
        return False          # Keras 3 legacy h5 compiled with loss="mse" does not load compiled
    if producer != "k2" and model == "mixed":
        return False          # Keras 3 rebuilds a plain Adam and skips the LossScaleOptimizer state
    return not (producer == "k2" and model == "mixed" and ext == ".h5")


# =========================================================================== one batch per producer
def _prepare(producer, work, made, ext):
    """Write every file of format `ext` to probe for `producer`; return (jobs, cases).

    `made` is the folder holding the Functional models generated for this producer.
    """
    jobs, cases = [], {}

    def job(path, inputs=None, compile_=False):
        out = str(work / pathlib.Path(path).name) + (".compiled" if compile_ else "") + ".npz"
        entry = {"file": str(path), "out": out, "compile": compile_}
        if inputs:
            entry["inputs"] = str(inputs)
        jobs.append(entry)
        return out

    def removal(key, model, ext, layer, units, compile_=False):
        folder = made if model in FUNCTIONAL else FIX
        src = folder / f"{producer}_{model}{ext}"
        io = folder / f"{producer}_{model}_io.npz"
        small = work / f"{producer}_{model}_{layer}.small{ext}"
        ref = work / f"{producer}_{model}_{layer}.zeroed{ext}"
        res = weightshare.remove_units(src, small, layer=layer, units=list(units))
        _write_zeroed(src, ref, layer=layer, units=units)
        case = {"result": res, "small": job(small, io), "zeroed": job(ref, io),
                "io": str(io), "model": model}
        if model in FUNCTIONAL:   # made on the fly: no saved predictions, so probe the original too
            case["orig"] = job(src, io)
        if compile_:
            case["small_c"] = job(small, compile_=True)
            case["orig_c"] = job(src, compile_=True)   # result lands in `work`, not in FIX
        cases[key] = case

    for model, layer, units in PATTERNS:
        removal(("pattern", model, layer, ext), model, ext, layer, units)
    for model, targets in SEVERAL:
        if _exists(producer, model, ext):
            src, io = FIX / f"{producer}_{model}{ext}", FIX / f"{producer}_{model}_io.npz"
            small = work / f"{producer}_{model}_several.small{ext}"
            res = weightshare.remove_units(src, small, units={k: list(v) for k, v in
                                                              targets.items()})
            ref = src
            for i, (layer, units) in enumerate(targets.items()):
                ref_next = work / f"{producer}_{model}_several.zeroed{i}{ext}"
                _write_zeroed(ref, ref_next, layer=layer, units=units)
                ref = ref_next
            cases[("several", model, ext)] = {"result": res, "small": job(small, io),
                                              "zeroed": job(ref, io),
                                              "compiled": job(small, compile_=True)}
    for model, ext_ in OPTIMIZER:
        if ext_ == ext and _exists(producer, model, ext):
            removal(("optimizer", model, ext), model, ext, "fc1", OPT_UNITS,
                    compile_=_compiled_restore(producer, model, ext))
    for model, ext_ in HALF:
        if ext_ == ext and _exists(producer, model, ext):
            removal(("half", model, ext), model, ext, "fc1", (0, 7))
    # optimizer state that weightshare cannot identify is dropped; the file still loads compiled
    from weightshare._remove import _optimizer
    saved = _optimizer.match_slots
    _optimizer.match_slots = lambda *a: None
    try:
        if producer == "k2" or ext != ".h5":
            dst = work / f"{producer}_trained.dropped{ext}"
            res = weightshare.remove_units(FIX / f"{producer}_trained{ext}", dst, layer="fc1",
                                           units=[1])
            cases[("dropped", ext)] = {"result": res, "small_c": job(dst, compile_=True)}
    finally:
        _optimizer.match_slots = saved
    return jobs, cases


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """(producer, format) -> the probe's results, each computed once per pytest run
    (``run_cache.once``, by whichever worker asks first)."""
    shared = run_folder(tmp_path_factory)
    return lambda producer, ext: once(
        shared, f"remove-keras-probe-{producer}{ext}", lambda: _probe(shared, producer, ext))


def _functional(shared, producer):
    """The folder of the Functional models made for `producer` (once per run, both formats)."""
    def make():
        made = shared / "remove_keras" / f"{producer}-functional"
        if made.exists():
            shutil.rmtree(made)    # left by a computation that failed earlier in this run
        r = subprocess.run([find_python(producer), str(MAKE_FUNCTIONAL), "--producer", producer,
                            "--out", str(made)], cwd=str(ROOT), env=_env(), capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, \
            f"{MAKE_FUNCTIONAL.name} --producer {producer} failed: {r.stderr[-3000:]}"
        return made
    return once(shared, f"remove-keras-functional-{producer}", make)


def _env():
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")


def _probe(shared, producer, ext):
    """Write every file of `producer` in format `ext` and run its probe batch."""
    work = shared / "remove_keras" / f"{producer}{ext}"
    if work.exists():
        shutil.rmtree(work)    # left by a computation that failed earlier in this run
    work.mkdir(parents=True)
    fixtures_before = sorted(os.listdir(FIX))
    jobs, cases = _prepare(producer, work, _functional(shared, producer), ext)
    batch = work / "jobs.json"
    batch.write_text(json.dumps(jobs))
    proc = subprocess.run([find_python(producer), str(PROBE), "--producer", producer, "--batch",
                           str(batch)], cwd=str(ROOT), env=_env(), capture_output=True, text=True,
                          timeout=900)
    status = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert sorted(os.listdir(FIX)) == fixtures_before, "the proof wrote into the fixtures folder"
    return {"cases": cases, "status": {s["out"]: s for s in status},
            "stderr": proc.stderr[-3000:]}


def _load(run, out):
    st = run["status"].get(out)
    assert st is not None, f"the probe did not run {out}: {run['stderr']}"
    assert st["ok"], f"{st['file']} does not load: {st['error']}"
    return np.load(out)


def _outputs(result):
    """The predictions in a probe result: y, or y0, y1, ... for several outputs."""
    keys = ["y"] if "y" in result.files else sorted(k for k in result.files if k[:1] == "y" and k[1:].isdigit())
    assert keys, "no predictions in the probe result"
    return [result[k] for k in keys]


def _max_diff(a, b):
    ya, yb = _outputs(a), _outputs(b)
    assert len(ya) == len(yb)
    return max(float(np.max(np.abs(u - v))) for u, v in zip(ya, yb))


def _run(probed, producer, ext):
    keras_python(producer)
    return probed(producer, ext)


# =========================================================================== tests
@pytest.mark.keras
@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("model, layer, units", PATTERNS)
def test_smaller_model_loads_and_equals_the_zeroed_original(model, layer, units, ext, producer, probed):
    run = _run(probed, producer, ext)
    case = run["cases"][("pattern", model, layer, ext)]
    res = case["result"]
    small, zeroed = _load(run, case["small"]), _load(run, case["zeroed"])
    # smaller shapes, as weightshare reported them
    shapes = [tuple(s) for s in json.loads(str(small["var_shapes"]))]
    for t in res.tensors:
        assert t.new_shape in shapes, (t, shapes)
    assert int(small["n_params"]) == res.params_after < res.params_before == int(zeroed["n_params"])
    layers = {entry["name"]: entry for entry in json.loads(str(small["layers"]))}
    assert layers[layer]["output_shape"][0][-1] == res.units_after
    # the same function, computed in the same Keras
    diff = _max_diff(small, zeroed)
    assert diff <= TOL, f"max abs difference {diff}"


@pytest.mark.keras
@pytest.mark.parametrize("producer, model, targets, ext", [
    (p, m, t, e) for p in PRODUCERS for m, t in SEVERAL for e in FORMATS if _exists(p, m, e)])
def test_several_layers_in_one_plan_load_and_equal_the_zeroed_original(model, targets, ext,
                                                                       producer, probed):
    run = _run(probed, producer, ext)
    case = run["cases"][("several", model, ext)]
    res = case["result"]
    small, zeroed = _load(run, case["small"]), _load(run, case["zeroed"])
    shapes = [tuple(s) for s in json.loads(str(small["var_shapes"]))]
    assert all(t.new_shape in shapes for t in res.tensors if t.layer != "optimizer")
    assert int(small["n_params"]) == res.params_after < res.params_before == int(zeroed["n_params"])
    layers = {entry["name"]: entry for entry in json.loads(str(small["layers"]))}
    for t in res.targets:
        assert layers[t.layer]["output_shape"][0][-1] == t.units_after == \
            t.units_before - len(targets[t.layer])
    diff = _max_diff(small, zeroed)
    assert diff <= TOL, f"max abs difference {diff}"
    if _compiled_restore(producer, model, ext):
        _load(run, case["compiled"])       # loads compiled too


@pytest.mark.keras
@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("ext", FORMATS)
def test_the_zeroed_reference_is_not_the_original(producer, ext, probed):
    """The proof means something: zeroing the outgoing weights changes most predictions."""
    run = _run(probed, producer, ext)
    changed = 0
    cases = [c for k, c in run["cases"].items() if k[0] == "pattern"]
    for case in cases:
        zeroed = _load(run, case["zeroed"])
        if "orig" in case:
            changed += _max_diff(zeroed, _load(run, case["orig"])) > 1e-4
            continue
        with np.load(case["io"]) as io:
            changed += float(np.max(np.abs(zeroed["y"] - io["y"]))) > 1e-4
    assert changed >= 0.8 * len(cases)


@pytest.mark.keras
@pytest.mark.parametrize("producer, model, ext", [(p, m, e) for p in PRODUCERS for m, e in OPTIMIZER
                                                  if _exists(p, m, e)])
def test_optimizer_state_is_restored_sliced(model, ext, producer, probed):
    run = _run(probed, producer, ext)
    case = run["cases"][("optimizer", model, ext)]
    res = case["result"]
    assert res.optimizer == "sliced"
    small, zeroed = _load(run, case["small"]), _load(run, case["zeroed"])
    assert _max_diff(small, zeroed) <= TOL
    if "small_c" not in case:
        return  # Keras does not restore this file's optimizer state (fixtures README); loads above
    small_c, orig_c = _load(run, case["small_c"]), _load(run, case["orig_c"])
    n = len([k for k in orig_c.files if k.startswith("opt/")])
    assert n > 0 and n == len([k for k in small_c.files if k.startswith("opt/")])
    sliced = 0
    for i in range(n):
        a, b = orig_c[f"opt/{i}"], small_c[f"opt/{i}"]
        if a.shape == b.shape:
            assert np.array_equal(a, b), i
            continue
        axis, = [d for d in range(a.ndim) if a.shape[d] != b.shape[d]]
        assert np.array_equal(np.delete(a, list(OPT_UNITS), axis=axis), b), i
        sliced += 1
    assert sliced == 6     # m and v of fc1.kernel, fc1.bias and the consumer's kernel


@pytest.mark.keras
@pytest.mark.parametrize("producer, ext", [("k3", ".keras"), ("k3tf", ".keras"), ("k2", ".keras"),
                                          ("k2", ".h5")])   # Keras 3 legacy h5: loss='mse' bug
def test_dropped_optimizer_state_still_loads_compiled(ext, producer, probed):
    run = _run(probed, producer, ext)
    case = run["cases"][("dropped", ext)]
    assert case["result"].optimizer == "dropped"
    small = _load(run, case["small_c"])
    assert int(small["n_params"]) == case["result"].params_after


@pytest.mark.keras
@pytest.mark.parametrize("producer, model, ext", [(p, m, e) for p in PRODUCERS for m, e in HALF
                                                  if _exists(p, m, e)])
def test_half_precision_models(model, ext, producer, probed):
    run = _run(probed, producer, ext)
    case = run["cases"][("half", model, ext)]
    small, zeroed = _load(run, case["small"]), _load(run, case["zeroed"])
    dtypes = set(json.loads(str(small["var_dtypes"])))
    assert dtypes == set(json.loads(str(zeroed["var_dtypes"]))) and len(dtypes) == 1
    assert int(small["n_params"]) == case["result"].params_after
    scale = max(1.0, float(np.max(np.abs(zeroed["y"]))))
    diff = float(np.max(np.abs(small["y"] - zeroed["y"])))
    print(f"{producer}_{model}{ext}: max abs difference {diff} (scale {scale})")
    assert diff <= HALF_TOL[dtypes.pop()] * scale, f"max abs difference {diff}"
