"""Vector palettization: SSE and time of ``cluster(..., cluster_dim=4)`` against scikit-learn.

For each size n (vectors of 4 entries, Laplace(0, 0.05) entries in float32,
as kernel weights) and each k, weightshare's solver (greedy k-means++, then
Lloyd to its fixed point, ``method="lloyd"``, the default ``tol=0``; and with
``tol=1e-4``, scikit-learn's stopping rule) is run on the same vectors as
``sklearn.cluster.KMeans(n_clusters=k, n_init=1, init="k-means++",
random_state=seed)`` (its defaults: ``tol=1e-4``, ``max_iter=300``), for the
same seeds, in one run. Prints per size and k the median over the seeds of
SSE(weightshare) / SSE(scikit-learn) and time(weightshare) /
time(scikit-learn), and how many seeds had SSE <= scikit-learn's. Both SSEs
are measured the same way (float64, every vector against its codeword).

Usage::

    python benchmarks/bench_vector.py [--sizes 1000 10000 100000 1000000] [--k 16 256]
                                      [--seeds 0 1 2]

scikit-learn runs on as many threads as OpenMP gives it; weightshare on one
(plus what NumPy's BLAS uses for the matrix products).
"""

import argparse
import time

import numpy as np

import weightshare


def sse(X, C, labels):
    d = X.astype(np.float64) - C.astype(np.float64)[labels]
    return float(np.einsum("ij,ij->", d, d))


def main():
    from sklearn.cluster import KMeans

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    ap.add_argument("--k", type=int, nargs="+", default=[16, 256])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = ap.parse_args()
    print("n vectors x 4, k: SSE ratio (ws / sklearn), time ratio (ws / sklearn), "
          "seeds with SSE <= sklearn's; ws tol=0 | ws tol=1e-4")
    for n in args.sizes:
        X = np.random.default_rng(n).laplace(0, 0.05, size=(n, 4)).astype(np.float32)
        w = X.T                      # a (4, n) tensor: vectors are 4 consecutive entries of axis 0
        for k in args.k:
            if k >= n:
                continue
            rows = {0.0: [], 1e-4: []}
            for seed in args.seeds:
                t = time.perf_counter()
                km = KMeans(n_clusters=k, n_init=1, init="k-means++", random_state=seed).fit(X)
                t_sk = time.perf_counter() - t
                s_sk = sse(X, km.cluster_centers_, km.labels_)
                for tol in rows:
                    t = time.perf_counter()
                    res = weightshare.cluster(w, k, axis=0, cluster_dim=4, method="lloyd",
                                              keep_zeros=False, tol=tol, random_state=seed)
                    t_ws = time.perf_counter() - t
                    rows[tol].append((res.sse / s_sk, t_ws / t_sk, t_ws, t_sk))
            cells = []
            for tol, r in rows.items():
                r = np.array(r)
                cells.append(f"SSE {np.median(r[:, 0]):.4f}  time {np.median(r[:, 1]):5.2f}x "
                             f"({np.median(r[:, 2]):.2f} s vs {np.median(r[:, 3]):.2f} s)  "
                             f"{int((r[:, 0] <= 1).sum())}/{len(r)}")
            print(f"n={n:>8} k={k:>4}:  " + "  |  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
