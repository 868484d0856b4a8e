"""A large generated file, clustered by a fresh process: time, peak RSS, parameters per second.

Writes a Keras 3 ``.weights.h5`` store of ``--params`` float32 parameters (Dense
kernels of ``--width`` x ``--width`` at most, Laplace values; one tensor at a time,
so the generator itself stays small) into a temporary folder (``--tmp``, default
the system's), then runs, each in a fresh interpreter:

1. ``split``: ``import weightshare`` (timed), an h5py read of every dataset (the
   floor any tool pays), then ``cluster_file(k=16, jobs=J)``: its time, the sum of
   the per-tensor clustering times (``ClusterSummary.seconds``) and the rest (file
   work: reading, writing, fsync); the peak RSS of that process (VmHWM) and of its
   largest worker (RUSAGE_CHILDREN);
2. ``cli``: ``weightshare cluster SRC -o OUT -k 16 --jobs J --quiet``, import to exit,
   timed from outside, with its peak RSS (and its workers').

The bound checked: peak RSS <= 3 x the largest tensor + 200 MB. The files are
deleted at the end.

Usage::

    python benchmarks/bench_large_file.py                          # 1e8 parameters, jobs 1
    python benchmarks/bench_large_file.py --params 1e9 --jobs 2    # 4 GB; needs the disk and time
    python benchmarks/bench_large_file.py --params 1e8 --width 5000  # 100 MB tensors
"""

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np

K = 16

_SPLIT = r"""
import json, resource, sys, time
t0 = time.perf_counter()
import weightshare
t_import = time.perf_counter() - t0
import h5py
src, dst, jobs = sys.argv[1], sys.argv[2], int(sys.argv[3])
def visit(name, obj):
    if isinstance(obj, h5py.Dataset):
        obj[()]
t0 = time.perf_counter()
with h5py.File(src, "r") as f:
    f.visititems(visit)
t_read = time.perf_counter() - t0
t0 = time.perf_counter()
rows = weightshare.cluster_file(src, dst, %d, jobs=jobs)
t_job = time.perf_counter() - t0
with open("/proc/self/status") as f:
    hwm = int([l.split()[1] for l in f if l.startswith("VmHWM:")][0])
print(json.dumps({"import": t_import, "read": t_read, "job": t_job,
                  "cluster": sum(r.seconds for r in rows), "tensors": len(rows),
                  "rss_kb": hwm,
                  "worker_rss_kb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}))
""" % K


def write_store(path, n_params, width, seed=0):
    """Dense kernels (at most width x width) adding up to n_params; returns (n, largest)."""
    rng = np.random.default_rng(seed)
    total, largest, i = 0, 0, 0
    with h5py.File(path, "w") as f:
        while total < n_params:
            rows = int(min(width, max(1, (n_params - total) // width)))
            g = f.create_group(f"layers/dense{'' if i == 0 else f'_{i}'}/vars")
            g.attrs["name"] = f"dense_{i}"
            g["0"] = rng.laplace(0, 0.05, (rows, width)).astype(np.float32)
            g["1"] = np.zeros(width, np.float32)
            total += rows * width
            largest = max(largest, rows * width * 4)
            i += 1
        f.create_group("vars")
    return total, largest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--params", default="1e8", help="parameters (default 1e8)")
    p.add_argument("--width", type=int, default=1024, help="largest kernel side (default 1024)")
    p.add_argument("--jobs", type=int, default=1, help="cluster_file jobs (default 1)")
    p.add_argument("--tmp", default=None, help="folder for the files (default: the system's)")
    p.add_argument("--skip-cli", action="store_true", help="only the split run")
    args = p.parse_args(argv)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))]
        + [x for x in [os.environ.get("PYTHONPATH")] if x])}
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        src, dst = os.path.join(tmp, "big.weights.h5"), os.path.join(tmp, "out.weights.h5")
        t0 = time.perf_counter()
        n, largest = write_store(src, int(float(args.params)), args.width)
        print(f"wrote {n:.3g} float32 parameters ({os.path.getsize(src) / 1e6:.0f} MB, largest "
              f"tensor {largest / 1e6:.1f} MB) in {time.perf_counter() - t0:.1f} s; "
              f"jobs={args.jobs}; load average {os.getloadavg()[0]:.1f}", flush=True)
        bound = 3 * largest / 2 ** 20 + 200
        out = subprocess.run([sys.executable, "-c", _SPLIT, src, dst, str(args.jobs)],
                             capture_output=True, text=True, check=True, env=env)
        import json
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rss = r["rss_kb"] / 1024
        print(f"split: import {r['import']:.2f} s, h5py read {r['read']:.2f} s, cluster_file "
              f"{r['job']:.1f} s = clustering {r['cluster']:.1f} s (sum over {r['tensors']} "
              f"tensors) + the rest {r['job'] - r['cluster']:.1f} s; "
              f"{n / r['job'] / 1e6:.2f} M params/s; peak RSS {rss:.0f} MB (bound "
              f"{bound:.0f} MB: {'within' if rss <= bound else 'ABOVE'})"
              + (f", largest worker {r['worker_rss_kb'] / 1024:.0f} MB" if args.jobs > 1 else ""),
              flush=True)
        if not args.skip_cli:
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            t0 = time.perf_counter()
            subprocess.run([sys.executable, "-m", "weightshare", "cluster", src, "-o", dst,
                            "-k", str(K), "--jobs", str(args.jobs), "--quiet"], check=True,
                           stdout=subprocess.DEVNULL, env=env)
            wall = time.perf_counter() - t0
            peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            note = "" if peak > before else " (not above the split run's: the same or less)"
            print(f"cli: weightshare cluster -k {K} --jobs {args.jobs}: {wall:.1f} s import to "
                  f"exit, {n / wall / 1e6:.2f} M params/s; peak RSS of a process "
                  f"{max(peak, before) / 1024:.0f} MB{note}", flush=True)


if __name__ == "__main__":
    main()
