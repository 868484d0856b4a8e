"""Time and peak memory of cluster_file on generated Keras-layout files.

For each size, a legacy ``.h5`` (model_weights / layer_names / weight_names)
and a Keras 3 ``.weights.h5`` store (layers/dense_N/vars/i) are written with
h5py in a temporary folder, holding Dense layers of float32 weights. The time
of ``weightshare.cluster_file`` is printed as a ratio to reading every tensor
of the same file with h5py in the same run (medians), and the peak memory
traced during clustering (tracemalloc; NumPy reports its buffers to it) as a
multiple of the largest tensor's bytes: tensors are processed one at a time.

Usage::

    python benchmarks/bench_files.py                  # 1e5, 1e6, 1e7 parameters
    python benchmarks/bench_files.py --sizes 1e8      # ~400 MB files (minutes)
"""

import argparse
import json
import os
import tempfile
import time
import tracemalloc

import h5py
import numpy as np

import weightshare


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
            g["0"] = rng.laplace(0, 0.05, (i, o)).astype(np.float32)
            g["1"] = np.zeros(o, np.float32)
        f.create_group("vars")


def read_all(path):
    with h5py.File(path, "r") as f:
        def visit(_, obj):
            if isinstance(obj, h5py.Dataset):
                obj[()]
        f.visititems(visit)


def median(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e5,1e6,1e7")
    p.add_argument("--k", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args(argv)
    rng = np.random.default_rng(0)
    print(f"{'file':<14}{'params':>10}{'tensors':>9}{'h5py read':>11}{'cluster_file':>14}{'ratio':>8}"
          f"{'peak / largest tensor':>24}")
    with tempfile.TemporaryDirectory() as tmp:
        for size in [int(float(s)) for s in args.sizes.split(",")]:
            sizes = layer_sizes(size)
            largest = max(i * o for i, o in sizes) * 4
            for kind, writer, suffix in (("legacy .h5", write_legacy, ".h5"),
                                         ("weights store", write_store, ".weights.h5")):
                src = os.path.join(tmp, f"m{size}{suffix}")
                dst = os.path.join(tmp, f"o{size}{suffix}")
                writer(src, sizes, rng)
                t_read = median(lambda: read_all(src), args.repeat)
                t_job = median(lambda: weightshare.cluster_file(src, dst, args.k), args.repeat)
                tracemalloc.start()
                weightshare.cluster_file(src, dst, args.k)
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                n = sum(i * o + o for i, o in sizes)
                print(f"{kind:<14}{n:>10.1e}{2 * len(sizes):>9}{t_read:>10.3f}s{t_job:>13.3f}s"
                      f"{t_job / t_read:>7.1f}x{peak / largest:>23.1f}x", flush=True)
                os.unlink(src)
                os.unlink(dst)


if __name__ == "__main__":
    main()
