"""Palettization modes against coremltools' own palettizer, per tensor, in one run (not a test).

coremltools' post-training palettizer (``coremltools.optimize.coreml.
palettize_weights``) computes its LUTs in NumPy, without a model, in the static
method ``palettize_weights.grouped_channelwise_compress(weight, "KMEANS",
nbits, channel_axis, channel_group_size, cluster_dim=...)`` (its k-means is
scikit-learn's ``KMeans(k, init="k-means++", n_init=1, tol=1e-2,
random_state=0)`` per LUT; ``kmeans1d`` only for float16 tensors), and
``palettize_weights.decompress`` gives the dense weights back. This benchmark
runs it in its own interpreter (``WEIGHTSHARE_COREMLTOOLS_PYTHON``; it is never
a dependency of weightshare or its tests) on the same tensors as weightshare,
mode by mode, at 2, 3, 4 and 6 bits:

- ``tensor``: one LUT per tensor (weightshare: ``cluster(w, k)``);
- ``group8`` / ``group16``: one LUT per 8 / 16 output channels
  (``group_size=8``; coremltools: ``channel_group_size=8``);
- ``scale``: each output channel divided by its ``max|w|``, one LUT
  (``per_channel_scale=True``; coremltools: the same scales, computed here,
  then its per-tensor k-means on the scaled weights, as its
  ``enable_per_channel_scale`` does);
- ``vector4``: k codebook vectors of 4 consecutive entries along the output
  channels (``cluster_dim=4``; coremltools: ``cluster_dim=4``).

The output-channel axis is the last one of a Dense/Conv kernel and axis -2 of a
depthwise kernel (weightshare's rule). A tensor whose channels a mode's block
does not divide is left out of that mode for both (coremltools refuses it).
weightshare runs with its defaults (``method="auto"``; vectors: greedy
k-means++ and Lloyd, seed 0). Tensors: the bundled digits model's 3 Dense
kernels, and MobileNetV2 built with real Keras 3 (``weights=None``: Keras's
own initialisation; nothing is downloaded; ``WEIGHTSHARE_KERAS3_PYTHON``), every
``--every``-th kernel (default every 4th, 17 of 66 from 864 to 1.28 M weights),
its kernels saved to a temporary .npz for coremltools.

Prints, per model, mode and bits: SSE(weightshare) / SSE(coremltools) summed
over the tensors, time(coremltools) / time(weightshare), the number of tensors
where weightshare's SSE is <= coremltools', and weightshare's SSE as a ratio to
its own one-LUT-per-tensor SSE on the same tensors (the docs table; needs ``tensor`` in
--modes). Usage::

    python -m venv /work/kvenvs/cml
    /work/kvenvs/cml/bin/pip install coremltools==9.0 scikit-learn==1.9.1 numpy==2.4.6
    WEIGHTSHARE_COREMLTOOLS_PYTHON=/work/kvenvs/cml/bin/python \\
    WEIGHTSHARE_KERAS3_PYTHON=/work/kvenvs/keras3/bin/python \\
        python benchmarks/bench_coremltools.py [--bits 2 3 4 6] [--every 4] [--modes ...]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import weightshare

MODES = ("tensor", "group8", "group16", "scale", "vector4")

_BUILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import keras
keras.utils.set_random_seed(0)
keras.applications.MobileNetV2(weights=None).save(sys.argv[1])
"""

#: Runs in the coremltools interpreter: reads tensors + jobs, writes the reconstructions + times.
_WORKER = r"""
import json, sys, time, logging, warnings
import numpy as np
logging.disable(logging.WARNING)
warnings.simplefilter("ignore")
from coremltools.optimize.coreml._quantization_passes import palettize_weights as P

src, jobs, dst = sys.argv[1], json.load(open(sys.argv[2])), sys.argv[3]
tensors = np.load(src)
out, times = {}, {}
for job in jobs:
    w = tensors[job["tensor"]]
    ax, nbits, mode = job["axis"], job["bits"], job["mode"]
    t = time.perf_counter()
    if mode == "scale":
        s = np.max(np.abs(w), axis=tuple(i for i in range(w.ndim) if i != ax % w.ndim),
                   keepdims=True)
        s[s == 0] = 1
        p = P.grouped_channelwise_compress(w / s, "KMEANS", nbits, ax, 0)
        v = P.decompress(p) * s
    else:
        group = {"tensor": 0, "group8": 8, "group16": 16, "vector4": 0}[mode]
        p = P.grouped_channelwise_compress(w, "KMEANS", nbits, ax, group,
                                           cluster_dim=4 if mode == "vector4" else 1)
        v = None if p is None else P.decompress(p)
    times[job["key"]] = time.perf_counter() - t
    if v is not None:
        out[job["key"]] = np.asarray(v, dtype=w.dtype).reshape(w.shape)
np.savez(dst, **out)
json.dump(times, open(dst + ".json", "w"))
"""


def kernels(path, every=1):
    recs = [r for r in weightshare.read_weights(path) if r.kind == "kernel" and r.value.ndim >= 2]
    recs = recs[::every]
    return {r.name: (r.value, r.value.ndim - 2 if (r.layer_class or "").startswith("Depthwise")
                     else r.value.ndim - 1) for r in recs}


def applies(mode, w, ax):
    c = w.shape[ax]
    return {"group8": c % 8 == 0, "group16": c % 16 == 0,
            "vector4": c % 4 == 0}.get(mode, True)


def ws_run(mode, w, ax, k):
    kw = {"tensor": {}, "group8": dict(axis=ax, group_size=8),
          "group16": dict(axis=ax, group_size=16), "scale": dict(axis=ax, per_channel_scale=True),
          "vector4": dict(axis=ax, cluster_dim=4, random_state=0)}[mode]
    t = time.perf_counter()
    res = weightshare.cluster(w, k, **kw)
    return res.values, time.perf_counter() - t


def sse(a, b):
    d = a.astype(np.float64) - b.astype(np.float64)
    return float(np.dot(d.ravel(), d.ravel()))


def compare(name, tensors, cml_python, bits, modes, tmp):
    jobs = [{"tensor": t, "axis": int(ax), "bits": b, "mode": m, "key": f"{m}|{b}|{t}"}
            for m in modes for b in bits for t, (w, ax) in tensors.items() if applies(m, w, ax)]
    src, spec, dst = (os.path.join(tmp, f"{name}.{x}") for x in ("npz", "json", "out.npz"))
    np.savez(src, **{t: w for t, (w, _) in tensors.items()})
    with open(spec, "w") as f:
        json.dump(jobs, f)
    subprocess.run([cml_python, "-c", _WORKER, src, spec, dst], check=True,
                   capture_output=True, text=True)
    cml, cml_t = np.load(dst), json.load(open(dst + ".json"))
    print(f"\n{name}: {len(tensors)} kernels, {sum(w.size for w, _ in tensors.values()):,} "
          "weights. Per mode and bits: SSE ws/cml, speed cml/ws time, tensors with ws SSE <= "
          "cml's, ws SSE / ws per-tensor SSE")
    table = {}
    for m in modes:
        cells = []
        for b in bits:
            s_ws = s_cml = t_ws = t_cml = 0.0
            wins = count = 0
            for t, (w, ax) in tensors.items():
                key = f"{m}|{b}|{t}"
                if key not in cml.files:
                    continue
                v, tw = ws_run(m, w, ax, 2 ** b)
                a, c = sse(w, v), sse(w, cml[key])
                if m == "tensor":
                    table["tensor", b, t] = a
                s_ws, s_cml, t_ws, t_cml = s_ws + a, s_cml + c, t_ws + tw, t_cml + cml_t[key]
                wins += a <= c * (1 + 1e-12)
                count += 1
            for t, (w, ax) in tensors.items():      # weightshare per tensor, same tensors
                if f"{m}|{b}|{t}" in cml.files:
                    table[m, b, t] = table.get(("tensor", b, t))
            ref = sum(table[m, b, t] or 0.0 for t in tensors if (m, b, t) in table)
            cells.append(f"{s_ws / s_cml:.4f} {t_cml / t_ws:6.1f}x {wins}/{count}"
                         + (f" [{s_ws / ref:.3f}]" if ref else ""))
        print(f"  {m:<8}" + "   ".join(f"{b}b: {c}" for b, c in zip(bits, cells)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 6])
    ap.add_argument("--every", type=int, default=4, help="every N-th MobileNetV2 kernel")
    ap.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    args = ap.parse_args()
    cml_python = os.environ.get("WEIGHTSHARE_COREMLTOOLS_PYTHON")
    if not cml_python or not os.path.exists(cml_python):
        sys.exit("set WEIGHTSHARE_COREMLTOOLS_PYTHON to an interpreter with coremltools "
                 "(see this file's docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        compare("digits", kernels(weightshare.examples.path("digits.keras")), cml_python,
                args.bits, args.modes, tmp)
        keras3 = os.environ.get("WEIGHTSHARE_KERAS3_PYTHON")
        if not keras3 or not os.path.exists(keras3):
            print("MobileNetV2 left out: set WEIGHTSHARE_KERAS3_PYTHON to a Keras 3 interpreter")
            return
        path = os.path.join(tmp, "mobilenetv2.keras")
        subprocess.run([keras3, "-c", _BUILD, path], check=True, capture_output=True)
        compare("MobileNetV2", kernels(path, args.every), cml_python, args.bits, args.modes, tmp)


if __name__ == "__main__":
    main()
