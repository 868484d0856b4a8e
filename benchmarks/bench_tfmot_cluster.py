"""Whole-file clustering against TFMOT: MobileNetV2, k = 16, each tool in its own process.

Issue 19's side-by-side. A tf-keras 2 MobileNetV2 (``tf_keras.applications.MobileNetV2(
weights=None)``, 3.5 M parameters, random initial weights; nothing is downloaded) is saved as a
legacy ``.h5`` once. Then, timed from process start to exit (medians of ``--repeat`` runs, all in
this one benchmark run, alternating):

- ``weightshare cluster mobilenetv2.h5 -o out.h5 -k 16`` (``--jobs 1`` and ``--jobs 2``), in
  the interpreter running this script;
- TFMOT in its own interpreter: ``load_model``, ``cluster_weights(number_of_clusters=16,
  cluster_centroids_init=KMEANS_PLUS_PLUS)``, ``strip_clustering``, ``save`` to ``.h5``: the
  TFMOT way to get a clustered file, with no fine-tuning.

Each TFMOT run also prints its own split (import, load, cluster, strip, save), and the
weightshare runs' split comes from ``--json`` (per-tensor ``seconds``) and an import-only run.
Printed too: how many kernel-like tensors each output holds with at most 16 values (TFMOT
0.8.1 leaves the 17 depthwise kernels of MobileNetV2 as they are; weightshare clusters all 53),
and whether ``--jobs 1`` and ``--jobs 2`` wrote the same bytes.

TFMOT needs tf-keras and ``tensorflow-model-optimization``, which the test venvs do not hold;
one way to get them without touching the ``tf`` venv (tests/keras/setup_venvs.sh)::

    python -m venv /tmp/tfmot && echo $TF_VENV/lib/python3.11/site-packages \\
        > /tmp/tfmot/lib/python3.11/site-packages/tf.pth
    /tmp/tfmot/bin/pip install --no-deps tensorflow-model-optimization dm-tree

Usage (repository root, dev venv)::

    WEIGHTSHARE_TFMOT_PYTHON=/tmp/tfmot/bin/python python benchmarks/bench_tfmot_cluster.py \\
        [--repeat 3] [--json]

Not a test: numbers are printed, nothing is asserted.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
K = 16

_ENV = {"TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
        "TF_ENABLE_ONEDNN_OPTS": "0"}

_MAKE = """
import sys, numpy as np, tf_keras
tf_keras.utils.set_random_seed(0)
model = tf_keras.applications.MobileNetV2(weights=None, input_shape=(224, 224, 3))
model.save(sys.argv[1])
print(model.count_params())
"""

_TFMOT = """
import sys, time, json
t0 = time.perf_counter()
import tf_keras
import tensorflow_model_optimization as tfmot
t1 = time.perf_counter()
model = tf_keras.models.load_model(sys.argv[1], compile=False)
t2 = time.perf_counter()
c = tfmot.clustering.keras
clustered = c.cluster_weights(model, number_of_clusters=%d,
                              cluster_centroids_init=c.CentroidInitialization.KMEANS_PLUS_PLUS)
t3 = time.perf_counter()
stripped = tfmot.clustering.keras.strip_clustering(clustered)
t4 = time.perf_counter()
stripped.save(sys.argv[2])
t5 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "load": t2 - t1, "cluster": t3 - t2, "strip": t4 - t3,
                  "save": t5 - t4, "tfmot": tfmot.__version__}))
""" % K


def _wall(argv, env=None):
    start = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - start
    if r.returncode:
        raise SystemExit(f"{' '.join(map(str, argv[:3]))} failed: {r.stderr[-2000:]}")
    return seconds, r.stdout


def _clustered(path):
    """(kernel-like tensors holding at most K values, kernel-like tensors in all)."""
    import numpy as np
    import weightshare
    counts = [np.unique(r.value).size for r in weightshare.read_weights(path)
              if r.role in ("kernel", "depthwise_kernel")]
    return sum(c <= K for c in counts), len(counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    tfmot_py = os.environ.get("WEIGHTSHARE_TFMOT_PYTHON")
    if not tfmot_py:
        raise SystemExit("set WEIGHTSHARE_TFMOT_PYTHON (see the module docstring)")
    env = {**os.environ, **_ENV}
    ws_env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "mobilenetv2.h5")
        _, out = _wall([tfmot_py, "-c", _MAKE, src], env)
        params = int(out.split()[-1])
        times = {"weightshare --jobs 1": [], "weightshare --jobs 2": [], "TFMOT": []}
        splits, ws_tensors = [], []
        imports = []
        for i in range(args.repeat):
            for jobs in (1, 2):
                dst = os.path.join(tmp, f"ws{jobs}.h5")
                sec, out = _wall([sys.executable, "-m", "weightshare", "cluster", src, "-o", dst,
                                  "-k", str(K), "--jobs", str(jobs), "--json", "--quiet"], ws_env)
                times[f"weightshare --jobs {jobs}"].append(sec)
                if jobs == 1:
                    doc = json.loads(out)
                    ws_tensors.append(sum(row.get("seconds") or 0 for row in doc["tensors"]))
            sec, out = _wall([tfmot_py, "-c", _TFMOT, src, os.path.join(tmp, "tfmot.h5")], env)
            times["TFMOT"].append(sec)
            splits.append(json.loads(out.strip().splitlines()[-1]))
            imports.append(_wall([sys.executable, "-c", "import weightshare.cli, h5py"],
                                 ws_env)[0])
        clustered = {"weightshare": _clustered(os.path.join(tmp, "ws1.h5")),
                     "TFMOT": _clustered(os.path.join(tmp, "tfmot.h5"))}
        same = open(os.path.join(tmp, "ws1.h5"), "rb").read() == \
            open(os.path.join(tmp, "ws2.h5"), "rb").read()
    med = {name: statistics.median(v) for name, v in times.items()}
    split = {key: statistics.median(s[key] for s in splits)
             for key in ("import", "load", "cluster", "strip", "save")}
    result = {"params": params, "k": K, "repeat": args.repeat, "seconds": med,
              "tfmot_split": split, "tfmot_version": splits[0]["tfmot"],
              "weightshare_import": statistics.median(imports),
              "weightshare_cluster_seconds": statistics.median(ws_tensors),
              "clustered_of_kernels": clustered, "jobs_outputs_identical": same}
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"MobileNetV2 (tf-keras 2 legacy .h5, {params:,} parameters), k = {K}; whole process, "
          f"median of {args.repeat}")
    for name, sec in med.items():
        print(f"  {name:22} {sec:7.2f} s   TFMOT / this: {med['TFMOT'] / sec:5.2f}x")
    print("  TFMOT split (s): " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()) +
          f"  (tensorflow-model-optimization {splits[0]['tfmot']})")
    print(f"  weightshare split (s): import {result['weightshare_import']:.2f}, clustering "
          f"(sum of per-tensor seconds, --jobs 1) {result['weightshare_cluster_seconds']:.2f}")
    print("  kernels (Conv, Dense, depthwise) left with at most 16 values, of all: " +
          ", ".join(f"{name} {a} of {b}" for name, (a, b) in clustered.items()) +
          f"; --jobs 1 and 2 outputs identical: {same}")


if __name__ == "__main__":
    main()
