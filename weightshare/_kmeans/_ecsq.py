"""Entropy-constrained scalar quantisation (ECSQ) of a tensor, in 1-D.

Minimise ``SSE + lam * sum_j n_j * log2(n / n_j)`` over partitions into at
most k cells (Chou, Lookabaugh & Gray, "Entropy-constrained vector
quantization", IEEE Trans. ASSP 37(1), 1989): n_j entries in cell j, n in
all; the second term is n times the entropy of the indices in bits, what an
ideal entropy coder (Huffman, within a bit per symbol) spends on them.

**Cells are intervals.** By Gibbs' inequality ``sum_j n_j log2(n / n_j) =
min_q sum_j n_j log2(1 / q_j)`` over distributions q, so the objective is the
minimum over (partition, centroids c, q) of ``sum_i d(x_i, j(i))`` with
``d(x, j) = (x - c_j)**2 + lam * log2(1 / q_j)``. For fixed (c, q) the best
partition sends every x to ``argmin_j d(x, j)``; ``d(x, j) - d(x, j')`` is
affine in x, so each such cell is an interval of the line. Some optimum is
therefore a partition of the sorted points into runs, and the dynamic program
over runs (``D[j][b] = min_a D[j-1][a] + cost(a, b)``, cost = the run's SSE
about its mean plus ``lam * c log2(n / c)`` for its count c) is exact. (The
same structure for continuous sources: György & Linder, "On the structure of
optimal entropy-constrained scalar quantizers", IEEE Trans. IT 48(2), 2002.)
Conditions: squared error with the same weight on every entry. With unequal
sample weights the affine argument fails (each point's penalty is divided by
its own weight) and the DP is the optimum over interval partitions only; with
a pinned zero (keep_zeros), it is the optimum over interval partitions whose
zero cell is the run around 0, the structure :func:`weightshare.cluster` uses.
The entropy term makes the cost matrix *inverse* Monge (``c log(n / c)`` is
concave), so the divide-and-conquer of the k-means solver does not apply: the
DP here is the plain O(k m^2) one over m points.

**Size limit.** Up to ``EXACT_POINTS`` distinct values the DP runs over them
(exact). Above, it runs over ``EXACT_POINTS`` contiguous atoms (exact over
partitions into whole atoms: the SSE within atoms is a constant), and a
Lloyd-style ECSQ iteration at full resolution follows: assign every point to
``argmin_j w (x - c_j)**2 + lam * count * log2(n / n_j)``, move each centroid
to its cell's mean, recompute the n_j. Each step minimises the (partition, c,
q) form over one of its arguments, so the objective never increases; the
iteration stops when it no longer decreases. It also runs after the exact DP
(with sample weights or a pinned zero it can still improve on the interval
optimum; otherwise it leaves it as it is).
"""

import numpy as np

from ._dot import dot
from ._auto import _atom_edges

__all__ = ["ecsq_fit", "ecsq_dp", "EXACT_POINTS"]

#: The exact DP runs over at most this many points (O(k m^2) time, O(m^2) memory).
EXACT_POINTS = 1024
_MAX_ITER = 50
_TOL = 1e-6     # stop once an iteration lowers the objective by less than this fraction


def _plogp(c, n):
    """``c * log2(n / c)`` (0 for c = 0), elementwise."""
    c = np.asarray(c, dtype=np.float64)
    out = np.zeros(c.shape)
    pos = c > 0
    out[pos] = c[pos] * np.log2(n / c[pos])
    return out


def ecsq_dp(x, w, cnt, k, lam, n, z=-1):
    """Exact DP over runs of sorted points: (bounds, objective).

    Parameters
    ----------
    x, w, cnt : sorted points, their SSE weights (> 0, or 0 for the virtual
        zero) and their entry counts.
    k : int, at most this many runs.
    lam : float >= 0.
    n : total entry count (the n of the entropy).
    z : index of the virtual zero point (its run is pinned to 0.0), or -1.

    Returns
    -------
    bounds : ndarray of int64, runs ``bounds[j] .. bounds[j+1]-1``
    objective : float
    """
    m = x.size
    W = np.concatenate(([0.0], np.cumsum(w)))
    S = np.concatenate(([0.0], np.cumsum(w * x)))
    Q = np.concatenate(([0.0], np.cumsum(w * x * x)))
    C = np.concatenate(([0.0], np.cumsum(cnt)))
    a = np.arange(m + 1)[:, None]
    b = np.arange(m + 1)[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        dw = W[b] - W[a]
        ds = S[b] - S[a]
        cost = np.maximum(Q[b] - Q[a] - ds * ds / dw, 0.0)
        if z >= 0:
            pinned = (a <= z) & (b > z)
            cost = np.where(pinned, Q[b] - Q[a], cost)
        cost = np.where(dw > 0, cost, 0.0)
    cost += lam * _plogp(np.maximum(C[b] - C[a], 0.0), n)
    cost[b <= a] = np.inf
    top = min(k, m)
    D = cost[0].copy()                 # one run over points 0 .. b-1
    rows = []
    best_j, best = 1, D[m]
    for j in range(2, top + 1):
        tot = D[:, None] + cost
        arg = np.argmin(tot, axis=0)
        D = tot[arg, np.arange(m + 1)]
        rows.append(arg)
        if D[m] < best:
            best_j, best = j, D[m]
    bounds = np.empty(best_j + 1, dtype=np.int64)
    bounds[0], bounds[-1] = 0, m
    e = m
    for j in range(best_j, 1, -1):
        e = int(rows[j - 2][e])
        bounds[j - 1] = e
    return bounds, float(best)


def _objective(x, w, cnt, labels, c, lam, n, n_zero, zero_label):
    """SSE + lam * n * entropy of a labelling (the zeros counted in the zero cell)."""
    sse = dot(w, (x - c[labels]) ** 2)
    counts = np.bincount(labels, weights=cnt, minlength=c.size)
    if zero_label >= 0:
        counts[zero_label] += n_zero
    return sse + lam * float(_plogp(counts, n).sum())


def ecsq_fit(xs, ws, cs, k, lam, has_zero, n_zero, exact_points=EXACT_POINTS):
    """ECSQ of the distinct points `xs` (zeros taken out when `has_zero`).

    `ws`: SSE weights, `cs`: entry counts of each point, `n_zero`: the exact
    zeros (kept at 0.0, counted in the zero cell). Returns (centroids, labels
    of xs, objective): centroids float64 sorted (0.0 among them with
    `has_zero`), every point's label into them.
    """
    n = float(np.sum(cs)) + n_zero
    m = xs.size
    k_free = k - int(has_zero)
    if m <= exact_points:
        ax, aw, ac, edges = xs, ws, cs, None
    else:
        edges = _atom_edges(xs, ws, exact_points)
        aw = np.add.reduceat(ws, edges[:-1])
        ac = np.add.reduceat(cs, edges[:-1])
        plain = np.add.reduceat(xs, edges[:-1]) / np.diff(edges)    # atoms of weight 0
        ax = np.where(aw > 0, np.add.reduceat(ws * xs, edges[:-1]) / np.where(aw > 0, aw, 1.0),
                      plain)
    z = -1
    if has_zero:
        z = int(np.searchsorted(ax, 0.0))
        ax, aw, ac = np.insert(ax, z, 0.0), np.insert(aw, z, 0.0), np.insert(ac, z, n_zero)
    bounds, _ = ecsq_dp(ax, aw, ac, k_free + int(has_zero), lam, n, z)
    # centroids of the runs, and each point's label
    sw = np.add.reduceat(aw, bounds[:-1])
    sx = np.add.reduceat(aw * ax, bounds[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        c = np.where(sw > 0, sx / np.where(sw > 0, sw, 1.0), 0.0)
    zero_label = -1
    if has_zero:
        zero_label = int(np.searchsorted(bounds, z, side="right")) - 1
        c[zero_label] = 0.0
    run_of_atom = np.searchsorted(bounds, np.arange(ax.size), side="right") - 1
    if has_zero:
        run_of_atom = np.delete(run_of_atom, z)
    if edges is None:
        labels = run_of_atom
    else:
        labels = np.repeat(run_of_atom, np.diff(edges))
    labels, c, obj = _refine(xs, ws, cs, labels, c, lam, n, n_zero, zero_label)
    # sorted, used centroids only (the zero cell stays even if only zeros are in it)
    counts = np.bincount(labels, minlength=c.size)
    used = counts > 0
    if zero_label >= 0:
        used[zero_label] = True
    order = np.argsort(c[used], kind="stable")
    remap = np.full(c.size, -1)
    remap[np.flatnonzero(used)[order]] = np.arange(order.size)
    return c[used][order], remap[labels], obj


def _envelope_labels(x, c, pen):
    """``argmin_j (x - c_j)**2 + pen_j`` for sorted x, in O(m log k): the lower envelope
    of the lines ``-2 c_j x + c_j**2 + pen_j`` (the x**2 is common), whose pieces are
    intervals in order of c."""
    idx = np.flatnonzero(np.isfinite(pen))
    idx = idx[np.lexsort((pen[idx], c[idx]))]
    hull = []
    for j in idx.tolist():
        if hull and c[hull[-1]] == c[j]:
            continue                    # same centroid, larger penalty: never better
        while len(hull) >= 2 and _cross(c, pen, hull[-2], j) <= _cross(c, pen, hull[-2],
                                                                       hull[-1]):
            hull.pop()
        hull.append(j)
    bp = np.array([_cross(c, pen, a, b) for a, b in zip(hull, hull[1:])])
    return np.asarray(hull)[np.searchsorted(bp, x, side="right")]


def _cross(c, pen, i, j):
    """The x where line j (larger c) starts to beat line i."""
    return ((c[j] ** 2 + pen[j]) - (c[i] ** 2 + pen[i])) / (2.0 * (c[j] - c[i]))


def _refine(x, w, cnt, labels, c, lam, n, n_zero, zero_label):
    """Lloyd-style ECSQ iterations from a labelling; the objective never increases."""
    k = c.size
    obj = _objective(x, w, cnt, labels, c, lam, n, n_zero, zero_label)
    chunk = max(1, (1 << 22) // max(k, 1))
    same = np.array_equal(w, cnt)       # one weight per entry: the cells are intervals
    for _ in range(_MAX_ITER):
        counts = np.bincount(labels, weights=cnt, minlength=k)
        if zero_label >= 0:
            counts[zero_label] += n_zero
        pen = np.full(k, np.inf)        # an empty cell takes no point
        pos = counts > 0
        pen[pos] = lam * np.log2(n / counts[pos])
        if same:
            new = _envelope_labels(x, c, pen)
        else:
            new = np.empty_like(labels)
            for s in range(0, x.size, chunk):
                xx, ww, cc = x[s:s + chunk, None], w[s:s + chunk, None], cnt[s:s + chunk, None]
                d = ww * (xx - c[None, :]) ** 2 + cc * pen[None, :]
                new[s:s + chunk] = np.argmin(d, axis=1)
        sw = np.bincount(new, weights=w, minlength=k)
        sx = np.bincount(new, weights=w * x, minlength=k)
        cn = np.where(sw > 0, sx / np.where(sw > 0, sw, 1.0), c)
        if zero_label >= 0:
            cn[zero_label] = 0.0
        new_obj = _objective(x, w, cnt, new, cn, lam, n, n_zero, zero_label)
        if not new_obj < obj * (1 - _TOL):
            break
        labels, c, obj = new, cn, new_obj
    return labels, c, obj
