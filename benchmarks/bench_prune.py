"""Speed of weightshare.prune, prune_global and the structured modes, as a ratio to np.partition.

Pruning to an exact count is a selection, not a sort: one ``np.partition`` finds the threshold
and the tie rule only touches entries equal to it. Every time here is the median of
``--repeat`` runs, printed next to ``np.partition`` of the same array (same k-th index)
measured in the same run, and as their ratio. Target for the exact-count rows: ratio <= 3.

Usage::

    python benchmarks/bench_prune.py               # n = 1e7 float32, 7 repeats (about a minute)
    python benchmarks/bench_prune.py --quick       # n = 1e6, 3 repeats
    python benchmarks/bench_prune.py --n 3e7 --repeat 11 --json

Rows: exact counts at several sparsities (Laplace weights, like trained ones), a tensor that is
already 50 % zeros (baseline: the partition of its absolute values, see ``cases``), float16 (many ties at the threshold: up to 2^15 magnitudes), an all-ties
tensor (every magnitude equal: the worst case of the tie rule), per-channel (``axis``), global
pruning over 10 tensors (ratio to partitioning their concatenation), N:M 2:4 and 4x4 blocks.
"""

import argparse
import json

import numpy as np

import weightshare
from _timing import median_time


def laplace(n, seed, dtype=np.float32):
    return np.random.default_rng(seed).laplace(0, 0.05, n).astype(dtype)


def cases(n, seed):
    """(name, fn, baseline array, kth, target) for every row."""
    x = laplace(n, seed)
    rows = []
    for s in (0.5, 0.9, 0.99):
        keep = n - int(np.ceil(s * n))
        rows.append((f"keep {keep:,} (sparsity {s})", lambda k=keep: weightshare.prune(x, keep=k),
                     x, n - keep, 3.0))
    rows.append(("keep 200", lambda: weightshare.prune(x, keep=200), x, n - 200, 3.0))
    z = x.copy()
    z[np.random.default_rng(seed + 1).random(n) < 0.5] = 0.0
    # np.partition of a signed float array that is half zeros is pathologically slow (about
    # 1 s for 1e7 float32 with NumPy 2.4, against 0.07 s for its absolute values), which would
    # flatter the ratio: this row's baseline is the partition of |w|
    rows.append(("50 % zeros, sparsity 0.8 (baseline |w|)",
                 lambda: weightshare.prune(z, sparsity=0.8), np.abs(z), int(np.ceil(0.8 * n)), 3.0))
    h = x.astype(np.float16)
    rows.append(("float16, sparsity 0.5", lambda: weightshare.prune(h, sparsity=0.5), h, n // 2, 3.0))
    t = np.where(np.random.default_rng(seed + 2).random(n) < 0.5, -1.0, 1.0).astype(np.float32)
    rows.append(("all ties (|w| = 1), keep n/2", lambda: weightshare.prune(t, keep=n // 2), t,
                 n // 2, 3.0))
    channels = 1000
    w2 = x[: (n // channels) * channels].reshape(-1, channels)
    rows.append((f"per channel, {channels} columns, sparsity 0.8",
                 lambda: weightshare.prune(w2, sparsity=0.8, axis=1), w2.ravel(),
                 int(0.8 * w2.size), None))
    parts = np.array_split(x, 10)
    tensors = {f"layer{i}/kernel": p for i, p in enumerate(parts)}
    rows.append(("global, 10 tensors, sparsity 0.8",
                 lambda: weightshare.prune_global(tensors, sparsity=0.8), x, int(np.ceil(0.8 * n)),
                 3.0))
    k2 = x[: (n // 4000) * 4000].reshape(-1, 1000)       # rows and columns divisible by 4
    rows.append(("N:M 2:4 along axis 0", lambda: weightshare.prune(k2, n_m=(2, 4)), k2.ravel(),
                 k2.size // 2, None))
    b = k2
    rows.append(("blocks 4x4, sparsity 0.8",
                 lambda: weightshare.prune(b, sparsity=0.8, block=(4, 4)), b.ravel(),
                 int(0.8 * b.size), None))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=float, default=1e7, help="entries per tensor (default 1e7)")
    ap.add_argument("--repeat", type=int, default=7, help="runs per timing; the median is kept")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="n = 1e6, 3 repeats")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = ap.parse_args(argv)
    n, repeat = (int(1e6), 3) if args.quick else (int(args.n), args.repeat)

    results = []
    for name, fn, base, kth, target in cases(n, args.seed):
        fn()                                            # warm-up (page faults, caches)
        t_part = median_time(lambda: np.partition(base, kth), repeat)
        t_fn = median_time(fn, repeat)
        ratio = t_fn / t_part
        results.append({"case": name, "n": int(base.size), "dtype": str(base.dtype),
                        "prune_ms": 1e3 * t_fn, "partition_ms": 1e3 * t_part, "ratio": ratio,
                        "target": target, "ok": None if target is None else ratio <= target})
    if args.json:
        print(json.dumps({"n": n, "repeat": repeat, "numpy": np.__version__, "rows": results},
                         indent=2))
        return 0
    print(f"weightshare.prune vs np.partition, n = {n:,}, median of {repeat}, numpy {np.__version__}")
    head = f"{'case':<44} {'dtype':>8} {'prune ms':>10} {'partition ms':>13} {'ratio':>7}  target"
    print(head)
    print("-" * len(head))
    for r in results:
        tgt = "-" if r["target"] is None else f"<= {r['target']:g} {'ok' if r['ok'] else 'MISSED'}"
        print(f"{r['case']:<44} {r['dtype']:>8} {r['prune_ms']:>10.1f} {r['partition_ms']:>13.1f} "
              f"{r['ratio']:>7.2f}  {tgt}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
