"""The default solver: exact DP over atoms, Lloyd, then windowed exact sweeps.

1. Sorted points are grouped into contiguous *atoms*: the union of
   equal-count and equal-width cells, so that both the dense centre and the
   sparse tails of a heavy-tailed weight distribution get resolution; an
   atom wider than a few cells of equal p(x)^(1/3) mass (the measure in which
   optimal clusters have equal width) is cut into such cells.
2. The exact dynamic program (:mod:`weightshare._kmeans._optimal`) is solved over the
   atoms, each collapsed to its weighted mean (the within-atom variance is a
   constant, so the optimum over whole atoms is unchanged). This puts every
   cluster in the right basin, which Lloyd from a fixed init does not on
   heavy-tailed weights. For k >= 64 the atoms are cut into segments of about
   32 clusters each, solved together, with the clusters allocated exactly
   across segments (:mod:`weightshare._kmeans._segmented`): a few dozen DP rows instead
   of k.
3. Lloyd's algorithm moves the boundaries towards a fixed point at full
   resolution (for k >= 64 at most ``_START_ITER`` iterations here: from the
   segmented start it crawls for hundreds of them, and the sweeps with the
   Lloyd runs after them finish the job in less time).
4. A windowed sweep re-solves the problem exactly over a neighbourhood in which
   every boundary may move anywhere between its two neighbours (sampled at a
   grid of positions plus every position near where it is), a chain DP of k
   small dense steps; Lloyd again; repeat while the SSE drops by more than
   ``_SWEEP_TOL``. Once it settles, one *shift* sweep lets every boundary move
   up to its second neighbours, with fine positions around its neighbours:
   a whole run of boundaries can then move over by one cluster, which moves a
   cluster from one region of the data to another (what segment seams and
   coarse atoms get wrong). If that helps, the sweeps go on.
   Every step only ever lowers the SSE.

Limits: Lloyd never moves a centroid across a pinned zero, and the sweeps
rarely move a whole side's worth of boundaries, so with ``fixed_zero`` the
number of clusters on each side of zero is, in practice, the atom DP's. When
two allocations are within a few hundredths of a percent, that choice is a
coin toss at the atoms' resolution; off the benchmark grid gaps up to about
0.03 % were measured (mid-size inputs, k = 64..256).

Cost: O(m) to build atoms, O(R B log B) for the DP over B atoms (R = k - 1
rows, or about 36 with segments), O(k log m) per Lloyd iteration and
O(k W^2) per sweep with W window positions (the step costs are set up in
blocks of ``_BLOCK`` entries, so the extra memory stays fixed whatever k).
The gap to the exact optimum and the time against ``np.sort`` are measured
in ``benchmarks/bench_cluster.py``.
"""

import numpy as np

from ._lloyd import lloyd, runs_sse
from ._optimal import Prefix, optimal_partition, partition_centroids
from ._segmented import CLUSTERS_PER_SEGMENT, companded_mass, segmented_partition

__all__ = ["auto_centroids", "EXACT_LIMIT", "EXACT_LIMIT_FEW_K"]

#: Below this many distinct values the exact solver is fast enough to use as is.
EXACT_LIMIT = 4096
#: The same for k < 64 (few DP rows).
EXACT_LIMIT_FEW_K = 8192
_SWEEPS = 8
#: Up to this many tensor entries, finer atoms and wider shift windows: they
#: are cheap there, and with few samples the distribution is rough and the
#: problem harder.
_SMALL = 1 << 18
_ATOMS = (16384, 4096)           # minimum number of atoms, k >= 64: small, large inputs
#: The same for k < 64. On small inputs 1,024 atoms: the DP over 4,096 was most of the time
#: at 1e4 to 2.6e5 entries, and the sweeps after it close the larger gap it leaves (measured:
#: about 1.2-1.5x faster at 3e4-1e5, the worst gap to the optimum on a grid of 1e3-3e5
#: entries 0.0038 % instead of 0.0023 %; docs/clustering.md).
_FEW_K_ATOMS = (1024, 4096)
# (grid, near, shift) windows of the first sweep, the next ones, and the one
# tried once the sweeps have settled
_FIRST = (64, 16, False)
_LATER = (8, 24, False)
_SHIFT = ((32, 32, True), (32, 8, True))       # small, large inputs
_PER_K = 16        # and at least this many atoms per cluster
_START_ITER = 20   # Lloyd iterations before the first sweep, segmented start
#: An atom wider than this many companded cells is cut into such cells.
_WIDE = 4
_SWEEP_TOL = 1e-5   # stop once a sweep gains less than this fraction of the SSE


def _atom_edges(x, w, n_atoms):
    """Edges (indices into sorted x) of the atoms over sorted distinct points x.

    The union of equal-count and equal-width cells; then every atom that spans
    more than ``_WIDE`` cells of equal *companded mass* is cut at those cells.
    The companded mass (:func:`weightshare._kmeans._segmented.companded_mass`) is the
    measure in which the optimal clusters have about equal width: on very
    heavy tails (Student t with 1.5 degrees of freedom) an equal-count cell can
    span several clusters of the optimum, and the start lands in a poor basin.
    """
    m = x.size
    half = max(n_atoms // 2, 1)
    by_count = np.linspace(0, m, half + 1).round().astype(np.int64)
    by_width = np.searchsorted(x, np.linspace(x[0], x[-1], half + 1)[1:-1], side="right")
    zero = np.searchsorted(x, [0.0])  # atoms never straddle zero
    edges = np.unique(np.concatenate((by_count, by_width, zero, [0, m])))
    mass = companded_mass(x, w)
    step = mass[-1] / n_atoms
    wide = np.flatnonzero(np.diff(mass[edges]) > _WIDE * step)
    if not wide.size:
        return edges
    lo, hi = mass[edges[wide]], mass[edges[wide + 1]]
    cnt = np.floor((hi - lo) / step).astype(np.int64)
    rank = np.arange(int(cnt.sum())) - np.repeat(np.cumsum(cnt) - cnt, cnt) + 1
    cuts = np.searchsorted(mass, np.repeat(lo, cnt) + rank * step)
    return np.unique(np.concatenate((edges, cuts)))


def _sweep(P, bounds, n_grid, n_near, shift=False):
    """Exact best partition with each interior boundary in a window; returns bounds.

    A window holds `n_grid` positions spread between the boundary's
    neighbours and every position within `n_near` of it. The current bounds lie in the windows, so the result is never worse. With
    `shift`, a boundary may move anywhere between its second neighbours, with
    fine positions around its neighbours too: a whole run of boundaries can
    then move over by one cluster (what moves one cluster from one region of
    the data to another).
    """
    M = P.m
    b = bounds
    reach = 2 if shift else 1
    pad = np.concatenate((np.zeros(reach - 1, b.dtype), b, np.full(reach - 1, M, b.dtype)))
    lo = pad[:-2 * reach] + 1
    hi = pad[2 * reach:] - 1
    grid = lo[:, None] + ((hi - lo)[:, None] * np.linspace(0.0, 1.0, n_grid)[None, :]).round()
    steps = np.arange(-n_near, n_near + 1)[None, :]
    near = [b[1:-1, None] + steps]
    if shift:
        near += [b[:-2, None] + steps, b[2:, None] + steps]
    win = np.concatenate([grid.astype(np.int64)] + near, axis=1)
    small = hi - lo < win.shape[1]      # every position fits: take them all
    if small.any():
        win[small] = lo[small, None] + np.arange(win.shape[1])[None, :]
    win = np.clip(win, lo[:, None], hi[:, None])
    win.sort(axis=1)
    # cost(a, c) = Q[c] - Q[a] - gain(a, c), so with D~ = D - Q (the best cost
    # up to each window position, less Q there) a step is D~[c] = min_a D~[a] - gain(a, c)
    D = P.cost(np.zeros(win.shape[1], dtype=np.int64), win[0]) - P.Q[win[0]]
    cols = np.arange(win.shape[1])
    back = []
    block = max(1, _BLOCK // win.shape[1] ** 2)
    for j0 in range(1, win.shape[0], block):
        for step in _step_gains(P, win, j0, min(j0 + block, win.shape[0])):
            np.subtract(D, step, out=step)
            arg = np.argmin(step, axis=1)
            D = step[cols, arg]
            back.append(arg)
    last = D + P.Q[win[-1]] + P.cost(win[-1], np.full(win.shape[1], M))
    i = int(np.argmin(last))
    new = np.empty_like(b)
    new[0], new[-1] = 0, M
    for j in range(win.shape[0] - 1, -1, -1):
        new[j + 1] = win[j][i]
        if j:
            i = back[j - 1][i]
    return new


#: Sweep steps are set up in blocks of about this many matrix entries (they
#: stay in cache); memory O(_BLOCK) whatever k and the window.
_BLOCK = 1 << 18


def _outer_diff(a, b):
    """``a[:, :, None] - b[:, None, :]`` for (J, W) arrays, as a batched matrix product.

    ``[a, 1] @ [1, -b]`` rounds once, exactly like the subtraction, and runs
    as one BLAS call per matrix instead of a broadcast loop over W rows.
    """
    one = np.ones_like(a)
    return np.matmul(np.stack((a, one), axis=2), np.stack((one, -b), axis=1))


def _step_gains(P, win, j0, j1):
    """What the runs between window positions save over Q, for steps j0 <= j < j1.

    ``E[j - j0, c, i] = Q[c] - Q[a] - cost(a, c)`` for the run from
    ``a = win[j-1][i]`` to ``c = win[j][c]`` (``(S[c] - S[a])**2 / (W[c] - W[a])``
    for a run without the pinned zero); -inf where that run is empty or
    reversed, so the step never picks it.
    """
    a, c = win[j0 - 1:j1 - 1], win[j0:j1]
    dw = _outer_diff(P.W[c], P.W[a])
    E = _outer_diff(P.S[c], P.S[a])
    with np.errstate(divide="ignore", invalid="ignore"):
        E *= E
        E /= dw
    # reversed or empty runs pair a high a with a low c: only that corner
    rows = int(np.count_nonzero(c <= a[:, -1:], axis=1).max())
    first = int(np.count_nonzero(a < c[:, :1], axis=1).min())
    corner = E[:, :rows, first:]
    np.copyto(corner, -np.inf, where=dw[:, :rows, first:] <= 0)
    for t in np.flatnonzero((a[:, 0] <= P.z) & (P.z < c[:, -1])):
        # a run may hold the pinned zero: its cost is not the variance
        A, C = a[t][None, :], c[t][:, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            E[t] = P.Q[C] - P.Q[A] - P.cost(A, C)
        E[t][~(A < C) | np.isnan(E[t])] = -np.inf
    return E


def _run_means(P, bounds):
    """Weighted mean of each run from the prefix sums (0.0 for the pinned run)."""
    a, b = bounds[:-1], bounds[1:]
    # the pinned run (and a run of zero-weight points) weighs 0: its mean is NaN, not 0/0
    dw = P.W[b] - P.W[a]
    c = np.full(dw.shape, np.nan)
    np.divide(P.S[b] - P.S[a], dw, out=c, where=dw != 0)
    c += P.mu
    if P.z >= 0:
        c[int(np.searchsorted(bounds, P.z, side="right")) - 1] = 0.0
    return c


def auto_centroids(x, w, k_free, fixed_zero, max_iter, n_entries=None):
    """Centroids (float64, sorted; including 0.0 if fixed_zero) and Lloyd iterations.

    `n_entries` is the number of tensor entries behind the distinct values `x`
    (default: x.size); it picks the settings for small or large inputs.
    """
    k = k_free + int(fixed_zero)
    large = int((x.size if n_entries is None else n_entries) > _SMALL)
    segmented = k >= 2 * CLUSTERS_PER_SEGMENT
    # below k = 64, fewer atoms (the sweeps after the atom DP are cheap there, the DP is
    # not), and the exact solver directly up to EXACT_LIMIT_FEW_K points
    n_atoms = (_ATOMS if segmented else _FEW_K_ATOMS)[large]
    if x.size <= (EXACT_LIMIT if segmented else EXACT_LIMIT_FEW_K):
        bounds, z, xe, we = optimal_partition(x, w, k, fixed_zero)
        return partition_centroids(xe, we, bounds, z), 0
    # Prefix sums of the points, with the virtual zero inserted at index z
    # (so a run may be pinned to 0); Lloyd and the sweeps share them.
    z = int(np.searchsorted(x, 0.0)) if fixed_zero else -1
    P = Prefix(x, w, z, insert=fixed_zero)
    edges = _atom_edges(x, w, int(min(x.size, max(n_atoms, _PER_K * k))))
    if fixed_zero:              # atoms never straddle zero; in P's index space
        edges[edges > z] += 1   # the virtual point opens the first positive atom
    a_w = np.diff(P.W[edges])
    a_x = P.mu + np.diff(P.S[edges]) / a_w
    if segmented:
        za = int(np.searchsorted(a_x, 0.0)) if fixed_zero else -1
        ax, aw = (np.insert(a_x, za, 0.0), np.insert(a_w, za, 0.0)) if fixed_zero else (a_x, a_w)
        bounds = segmented_partition(Prefix(ax, aw, za), ax, aw, k, k // CLUSTERS_PER_SEGMENT)
    else:
        bounds, za, ax, aw = optimal_partition(a_x, a_w, k, fixed_zero)
    c = partition_centroids(ax, aw, bounds, za)
    fixed = np.zeros(k, dtype=bool)
    if fixed_zero:
        fixed[int(np.searchsorted(c, 0.0))] = True
    c, bounds, n_iter = lloyd(P, x, c, fixed, min(max_iter, _START_ITER) if segmented else max_iter,
                              virtual_zero=fixed_zero)
    if k < 3:
        return c, n_iter
    sse = runs_sse(P, bounds, c, fixed)
    windows = _FIRST
    for _ in range(_SWEEPS):
        if np.any(np.diff(bounds) < 1):
            break               # an empty run: nothing to sweep
        nb = _sweep(P, bounds, *windows)
        cn = _run_means(P, nb)
        fn = np.zeros(k, dtype=bool)
        if fixed_zero:          # the run that holds the virtual point
            fn[int(np.searchsorted(nb, z, side="right")) - 1] = True
        cn, nb, it = lloyd(P, x, cn, fn, max_iter, virtual_zero=fixed_zero)
        n_iter += it
        new_sse = runs_sse(P, nb, cn, fn)
        settled = not new_sse < sse * (1.0 - _SWEEP_TOL)
        if new_sse < sse * (1.0 - 1e-13):
            c, bounds, sse, fixed = cn, nb, new_sse, fn
        if not settled:
            windows = _LATER
        elif windows is _SHIFT[large]:
            break               # settled, and shifting found nothing more either
        else:
            windows = _SHIFT[large]     # settled: move whole runs of boundaries over
    return c, n_iter
