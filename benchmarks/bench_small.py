"""Speed of weightshare.cluster on small and mid-size tensors, against np.sort and Ckmeans.

Real models are made mostly of tensors of 1e3 to 1e5 entries, where a fixed
cost per call dominates. For each n and k this prints, measured in one run on
the same float32 array (medians of ``--repeat`` calls, interleaved):

- ``auto/sort``: ``cluster(x, k)`` (method 'auto') as a multiple of ``np.sort(x)``,
  and ``auto ms`` next to the budget ``10 x sort + 0.2 ms`` of issue 19;
- ``auto/ck``, ``opt/ck``: 'auto' and 'optimal' as multiples of Ckmeans
  (``pip install ckmeans``, the exact C++ solver of Wang & Song's Ckmeans.1d.dp;
  it takes k <= 255, so k = 256 is compared with Ckmeans at k = 255);
- ``gap %``: the SSE of 'auto' above the exact optimum ('optimal'), and
  ``ck gap %``: Ckmeans' SSE against the same optimum (a check of both solvers).

Usage::

    python benchmarks/bench_small.py --ckmeans              # the grid (a few minutes)
    python benchmarks/bench_small.py --ckmeans --quick      # a smoke run (seconds)
    python benchmarks/bench_small.py --sizes 1e6 --ks 16    # without Ckmeans
    python benchmarks/bench_small.py --memory 1e6,1e7       # peak memory of 'optimal', k=16

``--memory`` measures, for each size, the peak of what ``cluster(x, 16,
method='optimal')`` allocates (tracemalloc; NumPy's arrays are traced) as a
multiple of the float32 input's bytes (minutes at 1e7).

Ckmeans is an optional benchmark extra (``pip install weightshare[bench]``),
never a dependency of the package or its tests. The machine the README's table
comes from was shared and loaded: only ratios measured in the same run mean
anything, and they move by tens of percent from run to run.
"""

import argparse
import json
import time
import tracemalloc

import numpy as np

import weightshare


def make(dist, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.laplace(0, 0.05, n) if dist == "laplace" else rng.normal(0, 0.05, n)
    return x.astype(np.float32)


def medians(fns, repeat):
    """Median seconds of each callable, the calls interleaved (the load on a shared machine
    then weighs on all of them alike); and what each returned last."""
    times = [[] for _ in fns]
    out = [None] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            if fn is None:
                continue
            t = time.perf_counter()
            out[i] = fn()
            times[i].append(time.perf_counter() - t)
    return [float(np.median(t)) if t else None for t in times], out


def ckmeans_sse(clusters):
    return float(sum(((c.astype(np.float64) - c.astype(np.float64).mean()) ** 2).sum()
                     for c in clusters))


def run_case(dist, n, k, args, ck, rows):
    x = make(dist, n, seed=n + k)
    fns = [lambda: np.sort(x),
           lambda: weightshare.cluster(x, k, keep_zeros=False),
           lambda: weightshare.cluster(x, k, method="optimal", keep_zeros=False)]
    if ck is not None:
        fns.append(lambda: ck.ckmeans(x, min(k, 255)))
    # the sort is quick and noisy: more calls of it
    (t_sort,), _ = medians([fns[0]], 5 * args.repeat)
    (_, t_auto, t_opt, *t_ck), (_, auto, opt, *ck_out) = medians([None] + fns[1:], args.repeat)
    row = {"dist": dist, "n": n, "k": k, "sort_s": t_sort, "auto_s": t_auto, "optimal_s": t_opt,
           "auto_sort": t_auto / t_sort, "budget_s": 10 * t_sort + 2e-4,
           "auto_gap_pct": (auto.sse - opt.sse) / opt.sse * 100 if opt.sse > 0 else 0.0}
    if t_ck:
        row["ckmeans_s"] = t_ck[0]
        row["auto_ck"], row["optimal_ck"] = t_auto / t_ck[0], t_opt / t_ck[0]
        if k <= 255:
            s = ckmeans_sse(ck_out[0])
            row["ck_gap_pct"] = (s - opt.sse) / opt.sse * 100 if opt.sse > 0 else 0.0
    rows.append(row)
    print(format_row(row), flush=True)


HEADER = (f"{'dist':<8}{'n':>8}{'k':>5} | {'sort us':>8}{'auto ms':>9}{'budget':>8}"
          f"{'auto/sort':>10} | {'ck ms':>8}{'auto/ck':>8}{'opt/ck':>8} | {'gap %':>8}{'ck gap %':>9}")


def format_row(r):
    def f(key, fmt):
        return format(r[key], fmt) if key in r else "-"

    return (f"{r['dist']:<8}{r['n']:>8.0e}{r['k']:>5} | {r['sort_s'] * 1e6:>8.1f}"
            f"{r['auto_s'] * 1e3:>9.2f}{r['budget_s'] * 1e3:>8.2f}{r['auto_sort']:>9.0f}x | "
            f"{format(r['ckmeans_s'] * 1e3, '.2f') if 'ckmeans_s' in r else '-':>8}"
            f"{f('auto_ck', '.2f'):>8}{f('optimal_ck', '.2f'):>8} | "
            f"{f('auto_gap_pct', '.5f'):>8}{f('ck_gap_pct', '.1e'):>9}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e3,3e3,1e4,3e4,1e5")
    p.add_argument("--ks", default="4,8,16,32,256")
    p.add_argument("--dists", default="laplace,gaussian")
    p.add_argument("--repeat", type=int, default=5, help="calls per method (median; default 5)")
    p.add_argument("--ckmeans", action="store_true",
                   help="compare with Ckmeans (pip install ckmeans; the 'bench' extra)")
    p.add_argument("--memory", metavar="SIZES",
                   help="only measure the peak memory of method='optimal' (k=16) at these sizes")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.ks, args.repeat = "1e3,1e4", "4,16", 1
    if args.memory:
        for n in (int(float(v)) for v in args.memory.split(",")):
            x = make("laplace", n, seed=n)
            tracemalloc.start()
            t = time.perf_counter()
            weightshare.cluster(x, 16, method="optimal", keep_zeros=False)
            t = time.perf_counter() - t
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
            print(f"n={n:.0e} k=16 optimal: peak {peak / 1e6:.0f} MB = {peak / x.nbytes:.1f}x "
                  f"the input's bytes ({t:.1f} s)", flush=True)
        return
    ck = None
    if args.ckmeans:
        try:
            import ckmeans as ck
        except ImportError:
            p.error("--ckmeans needs the ckmeans package: pip install ckmeans")
    print(f"numpy {np.__version__}; medians of {args.repeat} interleaved calls; ratios within "
          "one run; budget = 10 x sort + 0.2 ms")
    print(HEADER)
    rows = []
    for n in (int(float(s)) for s in args.sizes.split(",")):
        for dist in args.dists.split(","):
            for k in (int(s) for s in args.ks.split(",")):
                run_case(dist, n, k, args, ck, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
