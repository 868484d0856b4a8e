"""File sizes of --compress and strip against gzip -9 of the same output (not a test).

Two models, each pruned (75 % of every kernel, ``prune_file(sparsity=0.75)``)
and not, clustered at k = 4, 8, 16, 32 (``cluster_file``, ``random_state=0``):

- the bundled digits model (a compiled Keras 3 ``.keras`` with Adam's state,
  104,487 bytes);
- MobileNetV2 (3.5 M parameters) built with real Keras 3,
  ``keras.applications.MobileNetV2(weights=None)`` (random initial weights,
  nothing downloaded, not compiled), saved by the benchmark as ``.keras`` and
  legacy ``.h5`` in a temporary folder; needs ``WEIGHTSHARE_KERAS3_PYTHON``
  (a Keras 3 interpreter, tests/keras/setup_venvs.sh), else it is left out.

For each it prints the bytes of the input, the plain clustered output,
``--compress`` of it (``transform_file(..., compress=True)`` of the plain
output: the very file ``cluster_file(..., compress=True)`` writes, without
clustering twice), ``strip --compress`` of it, ``gzip -9`` (Python's
``gzip.compress(data, 9)``) of the plain output, and the ratio ``--compress /
gzip -9`` (the goal: at most 1.10), and ``pack`` (``pack_file`` of the plain
output: the lossless .wsz container, byte-exact ``unpack``). It also prints what the shuffle filter does to one
clustered kernel, deflated alone, and, with ``WEIGHTSHARE_KERAS3_PYTHON``,
the time stock Keras 3 takes to load the compressed ``.keras`` against the
plain one (best of 3).

    WEIGHTSHARE_KERAS3_PYTHON=... PYTHONPATH=. python benchmarks/bench_compress.py
    PYTHONPATH=. python benchmarks/bench_compress.py --models digits      # no Keras needed
"""

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zlib

import numpy as np

import weightshare

KS = (4, 8, 16, 32)
SPARSITY = 0.75

_BUILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import keras
keras.utils.set_random_seed(0)
model = keras.applications.MobileNetV2(weights=None)
for suffix in sys.argv[2:]:
    model.save(os.path.join(sys.argv[1], "mobilenetv2" + suffix))
"""

_LOAD = """
import os, sys, time, json
os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("JAX_PLATFORMS", "cpu")
import keras
for path in sys.argv[1:]:
    keras.models.load_model(path, compile=False)        # warm up
times = {}
for path in sys.argv[1:]:
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        keras.models.load_model(path, compile=False)
        best = min(best, time.perf_counter() - t)
    times[path] = best
print(json.dumps(times))
"""


def _keras3():
    python = os.environ.get("WEIGHTSHARE_KERAS3_PYTHON")
    return python if python and os.path.exists(python) else None


def _mobilenet(tmp):
    """{suffix: path} of MobileNetV2 saved by Keras 3 (None without a Keras 3 interpreter)."""
    python = _keras3()
    if python is None:
        return None
    subprocess.run([python, "-c", _BUILD, tmp, ".keras", ".h5"], check=True,
                   capture_output=True, text=True)
    return {s: os.path.join(tmp, "mobilenetv2" + s) for s in (".keras", ".h5")}


def _row(tmp, src, base, k):
    """Sizes of one case: input, plain, --compress, strip --compress, gzip -9 of the plain."""
    suffix = ".keras" if src.endswith(".keras") else ".h5"
    paths = {n: os.path.join(tmp, f"{n}{suffix}") for n in ("plain", "compress", "strip")}
    weightshare.cluster_file(base, paths["plain"], k, random_state=0)
    weightshare.transform_file(paths["plain"], paths["compress"], lambda r, v: None,
                               select=lambda r: False, compress=True)
    # strip --compress; a file with nothing to strip (an uncompiled model) is the identity
    # under strip, so its strip --compress is the --compress file (not written twice: level 9
    # deflate of MobileNetV2 takes seconds)
    if weightshare.strip_file(paths["plain"], paths["strip"]).stripped:
        weightshare.strip_file(paths["plain"], paths["strip"], compress=True)
    else:
        os.replace(paths["compress"], paths["strip"])
        shutil.copyfile(paths["strip"], paths["compress"])
    with open(paths["plain"], "rb") as f:
        gz = len(gzip.compress(f.read(), 9))
    sizes = {n: os.path.getsize(p) for n, p in paths.items()}
    if k == 16 and suffix == ".keras":      # kept for the load time
        shutil.copyfile(paths["plain"], os.path.join(tmp, "load-plain.keras"))
        shutil.copyfile(paths["compress"], os.path.join(tmp, "load-c.keras"))
    sizes.update(input=os.path.getsize(src), gzip=gz,
                 pack=weightshare.pack_file(paths["plain"], dry_run=True).size_after)
    return sizes


def _table(name, src, tmp, results):
    print(f"\n{name}: {os.path.getsize(src):,} bytes")
    print(f"{'model':22} {'input':>11} {'output':>11} {'--compress':>11} "
          f"{'strip --compress':>17} {'pack':>11} {'gzip -9':>11} {'compress/gzip':>14}")
    pruned = os.path.join(tmp, "pruned" + (".keras" if src.endswith(".keras") else ".h5"))
    weightshare.prune_file(src, pruned, sparsity=SPARSITY)
    for base in (src, pruned):
        for k in KS:
            s = _row(tmp, src, base, k)
            ratio = s["compress"] / s["gzip"]
            tag = f"{'75 % pruned, ' if base == pruned else ''}k = {k}"
            results.append((name, tag, ratio))
            print(f"{tag:22} {s['input']:11,} {s['plain']:11,} {s['compress']:11,} "
                  f"{s['strip']:17,} {s['pack']:11,} {s['gzip']:11,} {ratio:14.3f}", flush=True)
    os.remove(pruned)


def _shuffle_trial(tmp, src):
    """Deflate (level 9) of one clustered kernel, with and without the byte shuffle."""
    out = os.path.join(tmp, "k16.keras")
    weightshare.cluster_file(src, out, 16, random_state=0)
    w = next(r for r in weightshare.read_weights(out) if r.name == "fc1/kernel").value
    raw = np.ascontiguousarray(w).tobytes()
    shuffled = np.frombuffer(raw, np.uint8).reshape(-1, 4).T.tobytes()
    return len(raw), len(zlib.compress(raw, 9)), len(zlib.compress(shuffled, 9))


def _load_times(tmp):
    """Keras 3 load_model of the plain and the --compress .keras at k = 16 (seconds)."""
    plain, comp = os.path.join(tmp, "load-plain.keras"), os.path.join(tmp, "load-c.keras")
    out = subprocess.run([_keras3(), "-c", _LOAD, plain, comp], capture_output=True, text=True,
                         check=True)
    t = json.loads(out.stdout.strip().splitlines()[-1])
    return t[plain], t[comp]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["digits", "mobilenetv2"],
                        choices=["digits", "mobilenetv2"])
    parser.add_argument("--suffixes", nargs="+", default=[".keras", ".h5"],
                        choices=[".keras", ".h5"], help="MobileNetV2's formats")
    args = parser.parse_args(argv)
    results, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        digits = weightshare.examples.path("digits.keras")
        if "digits" in args.models:
            _table("digits.keras (compiled, with Adam's state)", digits, tmp, results)
            if _keras3():
                loads.append(("digits.keras, k = 16", _load_times(tmp)))
            n, plain, shuf = _shuffle_trial(tmp, digits)
            print(f"fc1/kernel at k=16 ({n} bytes) deflated alone: no shuffle {plain} bytes, "
                  f"shuffle {shuf} bytes ({shuf / plain:.2f}x)")
        if "mobilenetv2" in args.models:
            built = _mobilenet(tmp)
            if built is None:
                print("\nMobileNetV2 left out: set WEIGHTSHARE_KERAS3_PYTHON to a Keras 3 "
                      "interpreter to build it")
            else:
                for suffix, src in built.items():
                    if suffix not in args.suffixes:
                        continue
                    _table(f"MobileNetV2 {suffix} (Keras 3, weights=None, not compiled)", src,
                           tmp, results)
                    if suffix == ".keras":
                        loads.append(("MobileNetV2 .keras, k = 16", _load_times(tmp)))
    print()
    for name in dict.fromkeys(r[0] for r in results):
        ratios = [r[2] for r in results if r[0] == name]
        met = sum(r <= 1.10 for r in ratios)
        print(f"{name}: --compress / gzip -9 from {min(ratios):.3f} to {max(ratios):.3f}; "
              f"goal <= 1.10 met in {met} of {len(ratios)} cases")
    for name, (a, b) in loads:
        print(f"Keras 3 load_model, {name}, best of 3: plain {a * 1e3:.0f} ms, --compress "
              f"{b * 1e3:.0f} ms ({b / a:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
