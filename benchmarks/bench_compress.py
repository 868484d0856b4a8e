"""File sizes of --compress and strip against gzip -9 of the same output (not a test).

For the bundled digits model (a compiled Keras 3 ``.keras`` with Adam's state),
clustered at k = 4, 8, 16, pruned to 50 % first or not, it prints the bytes of
the plain output, of ``--compress``, of ``--strip --compress``, and of
``gzip -9`` (Python's ``gzip.compress(data, 9)``) of the plain output, and the
ratio ``--compress / gzip -9`` (the goal: at most 1.10). It also prints what
the shuffle filter does to one clustered kernel, deflated alone, and the time
stock Keras takes to load the compressed file against the plain one when
``WEIGHTSHARE_KERAS3_PYTHON`` names a Keras 3 interpreter.

    PYTHONPATH=. python benchmarks/bench_compress.py
"""

import gzip
import json
import os
import subprocess
import sys
import tempfile
import zlib

import numpy as np

import weightshare

KS = (4, 8, 16)


def _row(tmp, src, k, pruned):
    base = src
    tag = f"k{k}{'-p50' if pruned else ''}"
    if pruned:
        base = os.path.join(tmp, f"p50-{k}.keras")
        weightshare.prune_file(src, base, sparsity=0.5)
    paths = {}
    for name, kw in (("plain", {}), ("compress", {"compress": True}),
                     ("strip+compress", {"compress": True, "strip": True})):
        paths[name] = os.path.join(tmp, f"{tag}-{name}.keras")
        weightshare.cluster_file(base, paths[name], k, random_state=0, **kw)
    with open(paths["plain"], "rb") as f:
        gz = len(gzip.compress(f.read(), 9))
    sizes = {n: os.path.getsize(p) for n, p in paths.items()}
    return tag, sizes, gz, paths


def _shuffle_trial(tmp, src):
    """Deflate (level 9) of one clustered kernel, with and without the byte shuffle."""
    out = os.path.join(tmp, "k16.keras")
    weightshare.cluster_file(src, out, 16, random_state=0)
    w = next(r for r in weightshare.read_weights(out) if r.name == "fc1/kernel").value
    raw = np.ascontiguousarray(w).tobytes()
    shuffled = np.frombuffer(raw, np.uint8).reshape(-1, 4).T.tobytes()
    return len(raw), len(zlib.compress(raw, 9)), len(zlib.compress(shuffled, 9))


_LOAD = """
import os, sys, time
os.environ["KERAS_BACKEND"] = "jax"
import keras
for path in sys.argv[1:]:
    keras.models.load_model(path, compile=False)        # warm up
times = {}
for path in sys.argv[1:]:
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        keras.models.load_model(path, compile=False)
        best = min(best, time.perf_counter() - t)
    times[path] = best
print(__import__("json").dumps(times))
"""


def main():
    src = weightshare.examples.path("digits.keras")
    with tempfile.TemporaryDirectory() as tmp:
        print(f"input: digits.keras, {os.path.getsize(src)} bytes (compiled, with Adam's state)")
        print(f"{'model':10} {'plain':>8} {'--compress':>11} {'--strip --compress':>19} "
              f"{'gzip -9':>8} {'compress/gzip':>14}")
        worst, last = 0.0, None
        for pruned in (False, True):
            for k in KS:
                tag, s, gz, paths = _row(tmp, src, k, pruned)
                ratio = s["compress"] / gz
                worst = max(worst, ratio)
                last = paths
                print(f"{tag:10} {s['plain']:8d} {s['compress']:11d} {s['strip+compress']:19d} "
                      f"{gz:8d} {ratio:14.3f}")
        print(f"worst --compress / gzip -9: {worst:.3f} (goal <= 1.10)")
        n, plain, shuf = _shuffle_trial(tmp, src)
        print(f"fc1/kernel at k=16 ({n} bytes) deflated alone: no shuffle {plain} bytes, "
              f"shuffle {shuf} bytes ({shuf / plain:.2f}x)")
        python = os.environ.get("WEIGHTSHARE_KERAS3_PYTHON")
        if python and os.path.exists(python):
            out = subprocess.run([python, "-c", _LOAD, last["plain"], last["compress"]],
                                 capture_output=True, text=True, check=True)
            t = json.loads(out.stdout.strip().splitlines()[-1])
            a, b = t[last["plain"]], t[last["compress"]]
            print(f"Keras 3 load_model, best of 5: plain {a * 1e3:.1f} ms, --compress "
                  f"{b * 1e3:.1f} ms ({b / a:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
