"""Clustering a safetensors checkpoint against reading it: time and peak memory, 1e7 to 1e9 parameters.

For each size, a float32 ``.safetensors`` file of transformer-like matrices
(at most 4096 x 4096 each, so a larger file has more tensors, not larger
ones; Laplace weights) is written with ``safetensors.numpy.save_file`` in a
temporary folder. Each measurement runs in a fresh process, after one
untimed read that brings the file into the page cache:

- ``read``: ``safetensors.numpy.load_file`` (every tensor in memory: the
  reference the issue states the goal against);
- ``cluster``: ``weightshare.cluster_file(src, dst, 16)`` (every matrix
  clustered, the file written), as a time and as a ratio to ``read``;
- peak resident memory of each process above a process that only does its
  imports (``safetensors.numpy``; ``weightshare`` and its file adapters) (``ru_maxrss``), in MB and, for
  ``cluster``, as a multiple of the largest tensor's bytes. Imports are done
  before the clock starts.

The goal (issue "safetensors"): at 1.2e8 parameters, ``cluster`` within 15x
``read`` and a peak within 3x the largest tensor + 200 MB. Medians of
``--repeat`` runs. Needs ``pip install safetensors`` (a benchmark-only
dependency: weightshare reads the format itself).

Usage::

    python benchmarks/bench_safetensors.py                     # 1e7 and 1.2e8 parameters
    python benchmarks/bench_safetensors.py --sizes 1e9         # 4 GB; minutes
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

K = 16
SIDE = 4096

_CHILD = r"""
import json, resource, sys, time
what, src, dst = sys.argv[1:4]
import numpy
if what in ("read", "import_read"):
    from safetensors.numpy import load_file
else:
    import weightshare
    weightshare.cluster_file        # the file adapters imported before the clock starts
t = time.perf_counter()
if what == "read":
    tensors = load_file(src)
    n = sum(a.size for a in tensors.values())
elif what == "cluster":
    n = len(weightshare.cluster_file(src, dst, int(sys.argv[4])))
else:
    n = 0
seconds = time.perf_counter() - t
print(json.dumps({"seconds": seconds, "peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "n": int(n)}))
"""


def shapes(n_params):
    """Matrices (rows, 4096) adding up to about n_params entries, none above 4096 x 4096."""
    out, left = [], int(n_params)
    while left > 0:
        rows = min(SIDE, max(1, left // SIDE))
        out.append((rows, SIDE))
        left -= rows * SIDE
    return out


def write_checkpoint(path, n_params, seed=0):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(seed)
    tensors = {f"model.layers.{i}.mlp.weight": rng.laplace(0, 0.02, s).astype(np.float32)
               for i, s in enumerate(shapes(n_params))}
    save_file(tensors, path)
    return max(a.nbytes for a in tensors.values())


def child(what, src, dst=""):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path))
    res = subprocess.run([sys.executable, "-c", _CHILD, what, src, dst, str(K)],
                         capture_output=True, text=True, env=env, check=True)
    return json.loads(res.stdout)


def measure(n_params, folder, repeat):
    src = os.path.join(folder, "model.safetensors")
    dst = os.path.join(folder, "out.safetensors")
    largest = write_checkpoint(src, n_params)
    child("read", src)                          # page cache warm
    base = child("import", src)["peak_kb"]
    base_read = child("import_read", src)["peak_kb"]
    reads = [child("read", src) for _ in range(repeat)]
    runs = [child("cluster", src, dst) for _ in range(repeat)]
    read_s = float(np.median([r["seconds"] for r in reads]))
    clus_s = float(np.median([r["seconds"] for r in runs]))
    read_mb = (max(r["peak_kb"] for r in reads) - base_read) / 1024
    clus_mb = (max(r["peak_kb"] for r in runs) - base) / 1024
    os.remove(src)
    os.remove(dst)
    return {"params": int(sum(r * c for r, c in shapes(n_params))), "tensors": len(shapes(n_params)),
            "largest_MB": largest / 2**20, "read_s": read_s, "cluster_s": clus_s,
            "ratio": clus_s / read_s, "read_peak_MB": read_mb, "cluster_peak_MB": clus_mb,
            "peak_over_largest": clus_mb / (largest / 2**20)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=float, nargs="+", default=[1e7, 1.2e8])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for n in args.sizes:
            rows.append(measure(n, folder, args.repeat))
            if not args.json:
                r = rows[-1]
                if len(rows) == 1:
                    print(f"{'params':>12} {'tensors':>7} {'largest':>9} {'read':>8} {'cluster':>9} "
                          f"{'ratio':>6} {'read peak':>10} {'cluster peak':>13} {'/largest':>8}")
                print(f"{r['params']:>12,} {r['tensors']:>7} {r['largest_MB']:>7.0f}MB "
                      f"{r['read_s']:>7.2f}s {r['cluster_s']:>8.2f}s {r['ratio']:>5.1f}x "
                      f"{r['read_peak_MB']:>8.0f}MB {r['cluster_peak_MB']:>11.0f}MB "
                      f"{r['peak_over_largest']:>7.1f}x", flush=True)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
