"""The default solver: exact DP over atoms, Lloyd, then windowed exact sweeps.

1. Sorted points are grouped into contiguous *atoms*: the union of
   equal-count and equal-width cells, so that both the dense centre and the
   sparse tails of a heavy-tailed weight distribution get resolution.
2. The exact dynamic program (:mod:`weightshare._optimal`) is solved over the
   atoms, each collapsed to its weighted mean (the within-atom variance is a
   constant, so the optimum over whole atoms is unchanged). This puts every
   cluster in the right basin, which Lloyd from a fixed init does not on
   heavy-tailed weights.
3. Lloyd's algorithm moves the boundaries to a fixed point at full resolution.
4. A windowed sweep re-solves the problem exactly over a neighbourhood in which
   every boundary may move anywhere between its two neighbours (sampled at
   ``_GRID`` positions plus every position within ``_NEAR`` of where it is), a
   chain DP of k small dense steps; Lloyd again; repeat while the SSE drops.
   Every step only ever lowers the SSE.

Cost: O(m) to build atoms, O(k B log B) for the DP over B atoms, O(k log m)
per Lloyd iteration and O(k (G + 2N)^2) per sweep. The gap to the exact
optimum is measured in ``benchmarks/bench_cluster.py``.
"""

import numpy as np

from ._lloyd import lloyd, runs_sse
from ._optimal import Prefix, optimal_partition, partition_centroids

__all__ = ["auto_centroids", "EXACT_LIMIT"]

#: Below this many distinct values the exact solver is fast enough to use as is.
EXACT_LIMIT = 4096
_GRID = 64      # window positions spread between a boundary's neighbours
_NEAR = 32      # window positions on either side of a boundary
_SWEEPS = 6


def _atom_edges(x, n_atoms):
    """Edges (indices into sorted x) of the union of equal-count and equal-width cells."""
    m = x.size
    half = max(n_atoms // 2, 1)
    by_count = np.linspace(0, m, half + 1).round().astype(np.int64)
    by_width = np.searchsorted(x, np.linspace(x[0], x[-1], half + 1)[1:-1], side="right")
    zero = np.searchsorted(x, [0.0])  # atoms never straddle zero
    return np.unique(np.concatenate((by_count, by_width, zero, [0, m])))


def _sweep(P, bounds):
    """Exact best partition with each interior boundary in a window; returns bounds.

    The current bounds lie in the windows, so the result is never worse.
    """
    M = P.m
    b = bounds
    lo = b[:-2] + 1
    hi = b[2:] - 1
    grid = lo[:, None] + ((hi - lo)[:, None] * np.linspace(0.0, 1.0, _GRID)[None, :]).round()
    near = b[1:-1, None] + np.arange(-_NEAR, _NEAR + 1)[None, :]
    win = np.concatenate((grid.astype(np.int64), near), axis=1)
    win = np.clip(win, lo[:, None], hi[:, None])
    win.sort(axis=1)
    zeros = np.zeros(win.shape[1], dtype=np.int64)
    D = P.cost(zeros, win[0])
    back = []
    for j in range(1, win.shape[0]):
        a, c = win[j - 1][:, None], win[j][None, :]
        with np.errstate(divide="ignore", invalid="ignore"):
            step = D[:, None] + P.cost(a, c)
        step[~(a < c) | np.isnan(step)] = np.inf
        arg = np.argmin(step, axis=0)
        D = step[arg, np.arange(win.shape[1])]
        back.append(arg)
    last = D + P.cost(win[-1], np.full(win.shape[1], M))
    i = int(np.argmin(last))
    new = np.empty_like(b)
    new[0], new[-1] = 0, M
    for j in range(win.shape[0] - 1, -1, -1):
        new[j + 1] = win[j][i]
        if j:
            i = back[j - 1][i]
    return new


def auto_centroids(x, w, k_free, fixed_zero, max_iter):
    """Centroids (float64, sorted; including 0.0 if fixed_zero) and Lloyd iterations."""
    k = k_free + int(fixed_zero)
    if x.size <= EXACT_LIMIT:
        bounds, z, xe, we = optimal_partition(x, w, k, fixed_zero)
        return partition_centroids(xe, we, bounds, z), 0
    edges = _atom_edges(x, int(min(x.size, max(4096, 16 * k))))
    a_w = np.add.reduceat(w, edges[:-1])
    a_x = np.add.reduceat(w * x, edges[:-1]) / a_w
    bounds, za, ax, aw = optimal_partition(a_x, a_w, k, fixed_zero)
    c = partition_centroids(ax, aw, bounds, za)
    # From here on: Lloyd on the points themselves; sweeps on the points with
    # the virtual zero inserted at index z (so a run may be pinned to 0).
    z = int(np.searchsorted(x, 0.0)) if fixed_zero else -1
    fixed = np.zeros(k, dtype=bool)
    if fixed_zero:
        fixed[int(np.searchsorted(c, 0.0))] = True
    P = Prefix(x, w)
    c, bounds, n_iter = lloyd(P, x, c, fixed, max_iter)
    if k < 3:
        return c, n_iter
    if fixed_zero:
        xe, we = np.insert(x, z, 0.0), np.insert(w, z, 0.0)
        Pe = Prefix(xe, we, z)
    else:
        xe, we, Pe = x, w, P
    sse = runs_sse(P, bounds, c, fixed)
    for _ in range(_SWEEPS):
        eb = bounds.copy()
        if fixed_zero:          # the pinned run [b_i, b_i+1) owns the virtual point
            eb[int(np.flatnonzero(fixed)[0]) + 1:] += 1
        if np.any(np.diff(eb) < 1):
            break               # an empty run: nothing to sweep
        nb = _sweep(Pe, eb)
        cn = partition_centroids(xe, we, nb, z)
        fn = np.zeros(k, dtype=bool)
        if fixed_zero:
            fn[int(np.searchsorted(nb, z, side="right")) - 1] = True
        cn, nb, it = lloyd(P, x, cn, fn, max_iter)
        n_iter += it
        new_sse = runs_sse(P, nb, cn, fn)
        if not new_sse < sse * (1.0 - 1e-13):
            break
        c, bounds, sse, fixed = cn, nb, new_sse, fn
    return c, n_iter
