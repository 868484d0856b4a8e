"""Time and peak memory of cluster_file on generated Keras-layout files, 1e5 to 1e8 parameters.

For each size, a legacy ``.h5`` (``model_weights`` / ``layer_names`` /
``weight_names``, a Sequential ``model_config``) and a Keras 3
``.weights.h5`` store (``layers/dense_N/vars/i``) are written with h5py in a
temporary folder: Dense layers of Laplace float32 weights, at most 1024 x
1024 each, so that a larger file has more tensors, not larger ones.

Printed per file (medians of ``--repeat`` runs, all in the same process):

- ``read``: reading every tensor with h5py (the floor any tool pays);
- ``cluster``: ``weightshare.cluster`` on the same tensors already in memory
  (the clustering core alone);
- ``jobs=2``: ``cluster_file`` on 2 worker processes, and its speedup over ``jobs=1``
  (the same output, byte for byte);
- ``cluster_file`` and ``transform``: ``weightshare.cluster_file`` (k=16, ``jobs=1``) and
  ``weightshare.transform_file`` halving every kernel (the file machinery
  alone), each also as a ratio to ``read``;
- peak memory traced by tracemalloc (NumPy reports its buffers to it) during
  cluster_file and transform_file, as a multiple of the largest tensor's
  bytes: tensors are processed one at a time, so it does not grow with the file;
- with ``--rss``: the peak resident memory of a fresh process that runs
  cluster_file, minus that of one that only reads the tensors with h5py
  (includes HDF5's own buffers), in MB.

Usage::

    python benchmarks/bench_files.py                 # 1e5, 1e6, 1e7 parameters (about a minute)
    python benchmarks/bench_files.py --big           # adds 1e8 (two ~400 MB files; minutes)
    python benchmarks/bench_files.py --sizes 1e6 --repeat 5 --rss
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import tracemalloc

import h5py
import numpy as np

import weightshare
from _timing import median_time

K = 16


def layer_sizes(n_params, width=1024):
    """Dense layers (in, out) adding up to about n_params weights."""
    sizes, total = [], 0
    while total < n_params:
        rows = min(width, max(1, (n_params - total) // width))
        sizes.append((rows, width))
        total += rows * width + width
    return sizes


def write_legacy(path, sizes, rng):
    with h5py.File(path, "w") as f:
        mw = f.create_group("model_weights")
        names = [f"dense_{i}" for i in range(len(sizes))]
        mw.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name, (i, o) in zip(names, sizes):
            g = mw.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode(), f"{name}/bias:0".encode()])
            g[f"{name}/kernel:0"] = rng.laplace(0, 0.05, (i, o)).astype(np.float32)
            g[f"{name}/bias:0"] = np.zeros(o, np.float32)
        layers = [{"class_name": "Dense", "config": {"name": n, "units": o}}
                  for n, (_, o) in zip(names, sizes)]
        f.attrs["model_config"] = json.dumps({"class_name": "Sequential",
                                              "config": {"name": "bench", "layers": layers}})


def write_store(path, sizes, rng):
    with h5py.File(path, "w") as f:
        for n, (i, o) in enumerate(sizes):
            g = f.create_group(f"layers/dense{'' if n == 0 else f'_{n}'}/vars")
            g.attrs["name"] = f"dense_{n}"
            g["0"] = rng.laplace(0, 0.05, (i, o)).astype(np.float32)
            g["1"] = np.zeros(o, np.float32)
        f.create_group("vars")


def read_all(path):
    """Every dataset of the file as an array, one at a time (what any reader must do)."""
    with h5py.File(path, "r") as f:
        def visit(_, obj):
            if isinstance(obj, h5py.Dataset):
                obj[()]
        f.visititems(visit)


def cluster_arrays(path):
    """The clustering core alone, on the kernels of the file (read beforehand, not timed)."""
    kernels = [r.value for r in weightshare.read_weights(path) if r.kind == "kernel"]

    def run():
        for a in kernels:
            weightshare.cluster(a, K)
    return run


def halve(record, values):
    return values * np.float32(0.5)


def traced_peak(fn):
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# VmHWM (Linux) is the peak RSS of this process image; ru_maxrss would include the parent's
# peak from before the fork
_RSS_CODE = """
import resource, sys, h5py, numpy as np, weightshare
src, dst, job = sys.argv[1:4]
if job == "cluster_file":
    weightshare.cluster_file(src, dst, {k}, jobs=1)
else:
    def visit(name, obj):       # returns None: a value would stop visititems after one dataset
        if isinstance(obj, h5py.Dataset):
            obj[()]
    with h5py.File(src, "r") as f:
        f.visititems(visit)
try:
    with open("/proc/self/status") as f:
        print([line.split()[1] for line in f if line.startswith("VmHWM:")][0])
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(src, dst, job):
    """Peak resident set (MB) of a fresh interpreter running `job` on `src`."""
    out = subprocess.run([sys.executable, "-c", _RSS_CODE.format(k=K), src, dst, job],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e5,1e6,1e7", help="parameter counts (default 1e5,1e6,1e7)")
    p.add_argument("--big", action="store_true", help="add 1e8 parameters (~400 MB files)")
    p.add_argument("--repeat", type=int, default=3, help="runs per median (default 3)")
    p.add_argument("--rss", action="store_true", help="also measure peak RSS in fresh processes")
    args = p.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")] + ([int(1e8)] if args.big else [])
    rng = np.random.default_rng(0)
    head = (f"{'file':<14}{'params':>9}{'tensors':>8}{'read':>9}{'cluster':>9}{'cluster_file':>13}"
            f"{'ratio':>7}{'transform':>10}{'ratio':>7}{'peak/largest':>13}{'(transform)':>12}"
            f"{'jobs=2':>8}{'speedup':>8}")
    if args.rss:
        head += f"{'RSS MB':>8}"
    print(f"k = {K}; times in s (medians of {args.repeat}); ratios to the h5py read of the same file")
    print(head)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            shapes = layer_sizes(size)
            largest = max(i * o for i, o in shapes) * 4
            n = sum(i * o + o for i, o in shapes)
            for kind, writer, suffix in (("legacy .h5", write_legacy, ".h5"),
                                         ("weights store", write_store, ".weights.h5")):
                src = os.path.join(tmp, f"m{size}{suffix}")
                dst = os.path.join(tmp, f"o{size}{suffix}")
                writer(src, shapes, rng)
                t_read = median_time(lambda: read_all(src), args.repeat)
                t_core = median_time(cluster_arrays(src), args.repeat)
                t_job = median_time(lambda: weightshare.cluster_file(src, dst, K, jobs=1),
                                    args.repeat)
                t_par = median_time(lambda: weightshare.cluster_file(src, dst, K, jobs=2),
                                    args.repeat)
                t_tr = median_time(lambda: weightshare.transform_file(
                    src, dst, halve, select=lambda r: r.kind == "kernel"), args.repeat)
                peak = traced_peak(lambda: weightshare.cluster_file(src, dst, K, jobs=1))
                peak_tr = traced_peak(lambda: weightshare.transform_file(
                    src, dst, halve, select=lambda r: r.kind == "kernel"))
                line = (f"{kind:<14}{n:>9.1e}{2 * len(shapes):>8}{t_read:>9.3f}{t_core:>9.3f}"
                        f"{t_job:>13.3f}{t_job / t_read:>6.0f}x{t_tr:>10.3f}{t_tr / t_read:>6.1f}x"
                        f"{peak / largest:>12.1f}x{peak_tr / largest:>11.1f}x"
                        f"{t_par:>8.3f}{t_job / t_par:>7.2f}x")
                if args.rss:
                    rss = peak_rss_mb(src, dst, "cluster_file") - peak_rss_mb(src, dst, "read")
                    line += f"{rss:>8.0f}"
                print(line, flush=True)
                os.unlink(src)
                os.unlink(dst)


if __name__ == "__main__":
    main()
