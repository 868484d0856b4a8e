"""A start for many clusters: exact DP inside segments, exact allocation across them.

The exact dynamic program (:mod:`weightshare._kmeans._optimal`) needs one sequential
row per cluster, so for k = 256 it makes 255 passes however small the point
set. Here the (atom) points are cut into S contiguous segments that should
each hold about the same number of clusters, by the high-resolution rule that
the optimal centroid density grows like ``p(x) ** (1/3)`` (Panter & Dite,
"Quantization distortion in pulse-count modulation with nonuniform spacing
of levels", Proc. IRE 39(1), 1951). All segments are solved together, row by
row, up to a cap on clusters per segment; each row gives every segment's best
cost with that many clusters. A small DP over the segments then splits the k
clusters among them exactly. The result is optimal under the constraint that
every seam is a cluster boundary; the caller's Lloyd iterations and exact
windowed sweeps remove what the seams cost (measured in
``benchmarks/bench_cluster.py``).

Cost: O(R B log B) for B points and R <= k rows, in O(R log B) NumPy steps,
plus O(S k R) for the allocation.
"""

import numpy as np

from ._optimal import row_minima

__all__ = ["segmented_partition", "companded_mass", "CLUSTERS_PER_SEGMENT"]

#: Clusters a segment should hold; rows computed: 1.125 times this at first
#: (more only when a segment wants them).
CLUSTERS_PER_SEGMENT = 32


def companded_mass(x, w):
    """Running sum, from 0.0 (length m + 1), of ``(w * spacing**2) ** (1/3)``.

    The spacing of a sorted distinct point is half the gap between its
    neighbours (the gap to its one neighbour at either end), so each term is
    the integral of ``p(x) ** (1/3)`` over the point's share of the line: the
    measure in which the clusters of the optimum have about equal width.
    """
    mass = np.empty(x.size + 1)
    mass[0] = 0.0
    d = mass[1:]                # the terms, built in place
    np.subtract(x[2:], x[:-2], out=d[1:-1])
    d[1:-1] *= 0.5
    d[0] = x[1] - x[0]
    d[-1] = x[-1] - x[-2]
    d *= d
    d *= w
    np.cbrt(d, out=d)
    np.cumsum(d, out=d)
    return mass


def _seams(x, w, n_seg):
    """Edges of n_seg segments of about equal companded mass."""
    mass = companded_mass(x, w)
    cuts = np.searchsorted(mass, np.linspace(0.0, mass[-1], n_seg + 1)[1:-1])
    return np.unique(np.concatenate(([0], cuts, [x.size])))


def _allocate(C, k):
    """Clusters per segment (each >= 1) minimising sum C[s, m_s] with sum m_s = k.

    None when no allocation within the columns of C is feasible.
    """
    n_seg, width = C.shape
    F = np.full(k + 1, np.inf)
    F[0] = 0.0
    t = np.arange(k + 1)[:, None]
    m = np.arange(width)[None, :]
    src = t - m
    choices = []
    for s in range(n_seg):
        cand = np.where(src >= 0, F[np.clip(src, 0, k)], np.inf) + C[s]
        cand[:, 0] = np.inf
        arg = np.argmin(cand, axis=1)
        F = cand[np.arange(k + 1), arg]
        choices.append(arg)
    if not np.isfinite(F[k]):
        return None             # the rows computed so far cannot hold k clusters
    alloc = np.empty(n_seg, dtype=np.int64)
    left = k
    for s in range(n_seg - 1, -1, -1):
        alloc[s] = choices[s][left]
        left -= alloc[s]
    return alloc


def segmented_partition(P, x, w, k, n_seg):
    """Partition of the sorted points into k runs, optimal given the seams.

    Parameters
    ----------
    P : Prefix of the points (with the virtual zero, if any, included).
    x, w : ndarray of float64, the points and their weights (len P.m).
    k : int, number of runs, P.m >= k >= n_seg.
    n_seg : int, number of segments.

    Returns
    -------
    bounds : ndarray of int64, length k + 1.
    """
    M = P.m
    edges = _seams(x, w, n_seg)
    s0, s1 = edges[:-1], edges[1:]
    lens = s1 - s0
    cap = int(min(lens.max(), k, -(-9 * k // (8 * s0.size))))
    # row 1: one run from the start of each segment
    b = np.arange(1, M + 1)
    seg_of = np.repeat(np.arange(s0.size), lens)
    D = np.full(M + 1, np.inf)
    D[1:] = P.cost(s0[seg_of], b)
    C = [D[s1]]
    opts = [None, None]
    rows = 1
    while True:
        for j in range(rows + 1, cap + 1):
            ok = lens >= j
            first = int(s0[ok][0]) + j
            lower = None
            if j > 2:   # row j-1's arg-minima bound row j's from below
                p_first, p_opt = opts[j - 1]
                lower = p_opt[first - p_first:].astype(np.int64)
            val, opt = row_minima(D, P, s0[ok] + j, s1[ok], s0[ok] + j - 1, lower)
            D = np.full(M + 1, np.inf)
            D[first:first + val.size] = val
            C.append(np.where(ok, D[s1], np.inf))
            opts.append((first, opt.astype(np.int32)))
        rows = cap
        alloc = _allocate(np.column_stack([np.full(s0.size, np.inf)] + C), k)
        full = rows >= min(k, lens.max())
        if full or (alloc is not None and not np.any((alloc == rows) & (lens > rows))):
            break
        cap = int(min(-(-3 * rows // 2), k, lens.max()))    # a segment wanted more rows
    bounds = np.empty(k + 1, dtype=np.int64)
    bounds[0] = 0
    i = k
    for s in range(s0.size - 1, -1, -1):
        end = int(s1[s])
        bounds[i] = end
        for j in range(int(alloc[s]), 1, -1):
            first, opt = opts[j]
            end = int(opt[end - first])
            i -= 1
            bounds[i] = end
        i -= 1
    return bounds
