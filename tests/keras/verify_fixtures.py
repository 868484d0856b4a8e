"""Check every fixture in tests/fixtures/keras/ against real Keras and the manifest.

Needs only numpy in the interpreter that runs it; real Keras runs in the venvs, through probe.py
(one batch per producer):

    python tests/keras/verify_fixtures.py [--fixtures tests/fixtures/keras] [--venvs /work/venvs]
                                          [--producer k3 k3tf k2] [--markdown TABLE.md] [--json REPORT.json]

Interpreters: $WEIGHTSHARE_KERAS3_PYTHON (k3) and $WEIGHTSHARE_TFKERAS_PYTHON (k3tf, k2), else
<venvs>/keras3/bin/python and <venvs>/tf/bin/python.

For each file it loads the file with the producer that wrote it (weights-only files into the
architecture of the same model's .keras file) and checks:
  * vars: the loaded model.weights, in order, have the manifest's shapes, dtypes and value sha256;
  * y: model.predict(x of the *_io.npz) reproduces the saved y (max abs difference reported);
  * opt: for files with optimizer state, load_model(compile=True) restores optimizer variables whose
    values match the manifest (full-model files only).
Exit status 0 when every file either passes or fails to load in a way listed in KNOWN_LOAD_FAILURES.
"""

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_FIXTURES = os.path.join(HERE, "..", "fixtures", "keras")
PROBE = os.path.join(HERE, "probe.py")

# Files that Keras itself cannot load although it wrote them (see tests/fixtures/keras/README.md).
KNOWN_LOAD_FAILURES = {"k3_bf16.h5", "k3tf_bf16.h5"}
# load_model(compile=True) of these fails in Keras (legacy-h5 'mse' metric bug); compile=False works.
KNOWN_COMPILE_FAILURES = {"k3_trained.h5", "k3tf_trained.h5", "k3_mixed.h5", "k3tf_mixed.h5"}
# load_model(compile=True) works but Keras drops the saved optimizer state of these (mixed_float16):
# Keras 3 rebuilds a plain Adam ("Skipping variable loading for optimizer 'adam', because it has 10
# variables whereas the saved optimizer has 14 variables"); tf-keras warns "Error in loading the saved
# optimizer state. As a result, your model is starting with a freshly initialized optimizer."
KNOWN_OPTIMIZER_NOT_RESTORED = {"k3_mixed.keras", "k3tf_mixed.keras", "k2_mixed.h5"}


def _python_for(producer, venvs):
    if producer == "k3":
        return os.environ.get("WEIGHTSHARE_KERAS3_PYTHON") or os.path.join(venvs, "keras3", "bin", "python")
    return os.environ.get("WEIGHTSHARE_TFKERAS_PYTHON") or os.path.join(venvs, "tf", "bin", "python")


def _sha(a):
    a = np.array(a, order="C")
    return hashlib.sha256(a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()).hexdigest()


def _arch_for(name, rec, manifest):
    if rec["format"] not in ("weights_store", "legacy_weights"):
        return None
    base = f"{rec['producer']}_{rec['model']}"
    for ext in (".keras", ".h5"):
        if base + ext in manifest["files"]:
            return base + ext
    raise SystemExit(f"no architecture file for {name}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fixtures", default=DEFAULT_FIXTURES)
    ap.add_argument("--venvs", default="/work/venvs")
    ap.add_argument("--producer", nargs="*", default=["k3", "k3tf", "k2"])
    ap.add_argument("--markdown", help="write the result table here")
    ap.add_argument("--json", help="write the full report here")
    args = ap.parse_args(argv)
    fx = os.path.abspath(args.fixtures)
    with open(os.path.join(fx, "manifest.json")) as f:
        manifest = json.load(f)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for producer in args.producer:
            names = [n for n, r in manifest["files"].items() if r["producer"] == producer]
            jobs = []
            for n in names:
                rec = manifest["files"][n]
                arch = _arch_for(n, rec, manifest)
                job = {
                    "file": os.path.join(fx, n),
                    "out": os.path.join(tmp, n + ".npz"),
                    "inputs": os.path.join(fx, rec["io"]),
                }
                if arch:
                    job["arch"] = os.path.join(fx, arch)
                jobs.append(job)
                if rec["optimizer_in_file"] and rec["format"] in ("keras_zip", "legacy_full"):
                    jobs.append({"file": os.path.join(fx, n), "out": os.path.join(tmp, n + ".compiled.npz"),
                                 "compile": True})
            jobs_path = os.path.join(tmp, f"jobs_{producer}.json")
            with open(jobs_path, "w") as f:
                json.dump(jobs, f)
            py = _python_for(producer, args.venvs)
            proc = subprocess.run([py, PROBE, "--producer", producer, "--batch", jobs_path],
                                  capture_output=True, text=True)
            if proc.returncode not in (0, 3):
                sys.stderr.write(proc.stderr[-3000:])
                raise SystemExit(f"probe for {producer} crashed with exit status {proc.returncode}")
            for n in names:
                rows.append(_check(n, manifest["files"][n], fx, tmp))

    bad = [r for r in rows if not r["ok"] and not r["known"]]
    table = _markdown(rows)
    print(table)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(table + "\n")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    n_load = sum(r["loads"] for r in rows)
    print(f"\n{len(rows)} files: {n_load} load, {len(rows) - n_load} do not; "
          f"{len(bad)} unexpected problems", file=sys.stderr)
    return 1 if bad else 0


def _check(name, rec, fx, tmp):
    row = {"file": name, "producer": rec["producer"], "format": rec["format"], "loads": False,
           "vars": "-", "y_max_abs_diff": None, "opt": "-", "error": None,
           "known": name in KNOWN_LOAD_FAILURES}
    with np.load(os.path.join(tmp, name + ".npz")) as z:
        if "error" in z.files:
            row["error"] = str(z["error"])
            row["ok"] = False
            return row
        row["loads"] = True
        want = [w for layer in rec["layers"] for w in layer["weights"]]
        n = int(z["n_vars"])
        dtypes = json.loads(str(z["var_dtypes"]))
        shapes = json.loads(str(z["var_shapes"]))
        problems = []
        if n != len(want):
            problems.append(f"{n} variables loaded, manifest lists {len(want)}")
        for i, w in enumerate(want[:n]):
            got = z[f"var/{i}"]
            if shapes[i] != w["shape"] or dtypes[i] != w["dtype"] or _sha(got) != w["sha256"]:
                problems.append(f"var {i} ({w['name']}) differs")
        row["vars"] = "ok" if not problems else "; ".join(problems[:3])
        with np.load(os.path.join(fx, rec["io"])) as io:
            y_ref = io["y"]
        y = z["y"]
        row["y_max_abs_diff"] = float(np.max(np.abs(y.astype(np.float64) - y_ref))) if y.shape == y_ref.shape \
            else float("inf")
    row["ok"] = row["vars"] == "ok" and row["y_max_abs_diff"] <= 1e-6
    cpath = os.path.join(tmp, name + ".compiled.npz")
    if os.path.exists(cpath):
        with np.load(cpath) as c:
            if "error" in c.files:
                row["opt"] = "compile=True fails: " + str(c["error"])[:160]
                if name not in KNOWN_COMPILE_FAILURES:
                    row["ok"] = False
            else:
                names = json.loads(str(c["opt_names"])) if "opt_names" in c.files else []
                want = {o["sha256"] for o in rec["optimizer"]}
                got = [_sha(c[f"opt/{i}"]) for i in range(len(names))]
                missing = [names[i] for i, s in enumerate(got) if s not in want]
                row["opt"] = (f"{len(got)} vars ok" if got and not missing
                              else f"{len(got)} vars, {len(missing)} not in manifest")
                if name in KNOWN_OPTIMIZER_NOT_RESTORED:
                    row["opt"] += " (Keras does not restore it)"
                else:
                    row["ok"] = row["ok"] and bool(got) and not missing
    return row


def _markdown(rows):
    out = ["| file | format | loads | variables vs manifest | max abs diff y | optimizer (compile=True) |",
           "|---|---|---|---|---|---|"]
    for r in rows:
        if r["loads"]:
            d = r["y_max_abs_diff"]
            out.append(f"| {r['file']} | {r['format']} | yes | {r['vars']} | {d:.1e} | {r['opt']} |"
                       .replace("0.0e+00", "0 (exact)"))
        else:
            out.append(f"| {r['file']} | {r['format']} | **no**: `{r['error'][:150]}` | - | - | - |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
