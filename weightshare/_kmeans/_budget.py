"""Rate-distortion curves of the exact solver, and k per tensor under a budget.

**One DP run, every k.** Row j of the exact dynamic program
(:mod:`weightshare._kmeans._optimal`) holds ``D[j][b]``, the least cost of
the first b sorted points in j runs; ``D[j][M]`` is the optimal SSE of the
whole tensor with j centroids. ``optimal_partition`` narrows each row to the
b a k-run backtrack can reach, so it only yields ``D[k][M]``; here every row
is solved over the full range ``b in [j, M]`` (with the same divide and
conquer :func:`~weightshare._kmeans._optimal.row_minima`, bounded below by the
previous row's arg-minima), so one run of K - 1 rows gives the optimal SSE
for every k = 1 .. K. With a pinned zero, the virtual zero point sits in
exactly one run of every partition, so ``D[j][M]`` is the optimum with j
centroids, 0.0 one of them.

**Allocation.** Each tensor t offers points ``(r_t(k), D_t(k))`` (rate,
error) for its candidate k; the total error is minimised subject to
``sum_t r_t(k_t) <= R``. For a multiplier lam >= 0 each tensor choosing
``argmin_k D_t(k) + lam r_t(k)`` is optimal for the total rate it reaches
(Everett 1963; Shoham & Gersho, "Efficient bit allocation for an arbitrary
set of quantizers", IEEE Trans. ASSP 36(9), 1988): those are the vertices of
each tensor's lower convex hull. :func:`allocate` starts every tensor at its
cheapest point and takes hull steps in order of decreasing slope
``-dD/dr`` (within a tensor the slopes decrease, so the order is
consistent) while they fit: each allocation reached this way is exactly
optimal for its own total rate. Then the leftover budget is filled greedily:
repeatedly the move of one tensor to any higher point (hull or not) that fits
and lowers the error most per unit of rate. Finally the result is compared
with every uniform allocation (the same k for all tensors, each capped at
its own largest useful k) that fits, and the smaller total error wins: the
uniform allocation is a feasible point, so the result never loses to it.

Hull steps are coarse where one tensor holds much of the budget (MobileNetV2's
classifier holds 37 % of its kernel weights): the greedy fill can then end well
short of the optimum. So :func:`knapsack` also solves the problem exactly as a
multiple-choice knapsack over integer rates (bits or bytes, in units of their
greatest common divisor; when the budget holds more than ``KNAPSACK_STATES``
of those, in units of ``budget / KNAPSACK_STATES`` with every rate rounded up,
which keeps the result within the budget and optimal up to that rounding), and
the better of the two is taken.
"""

import math
from typing import NamedTuple

import numpy as np

from ._optimal import Prefix, row_minima

__all__ = ["sse_curve", "allocate", "knapsack", "Allocation", "KNAPSACK_STATES"]


def sse_curve(xs, ws, has_zero, k_max):
    """Optimal SSE for every number of centroids 1 .. `k_max`.

    Parameters
    ----------
    xs, ws : sorted distinct points (zeros taken out when `has_zero`) and
        their positive weights, as :func:`weightshare._kmeans._points.reduce_points`
        gives them.
    has_zero : bool
        One centroid is pinned to 0.0 (and counts among the k).
    k_max : int >= 1

    Returns
    -------
    ndarray of float64, shape (k_max,)
        Entry ``k - 1`` is the least SSE with at most k centroids (0.0 once k
        reaches the number of distinct values, the zero included). With
        `has_zero`, entry 0 (k = 1: only the zero) is the SSE of mapping every
        point to 0.0.
    """
    out = np.zeros(k_max)
    if xs.size == 0:
        return out
    z = -1
    x, w = xs, ws
    if has_zero:
        z = int(np.searchsorted(xs, 0.0))
        x = np.insert(xs, z, 0.0)
        w = np.insert(np.asarray(ws, dtype=np.float64), z, 0.0)
    P = Prefix(x, np.asarray(w, dtype=np.float64), z)
    M = x.size
    D = np.full(M + 1, np.inf)
    D[1:] = P.cost(np.zeros(M, dtype=np.int64), np.arange(1, M + 1))
    out[0] = max(float(D[M]), 0.0)
    top = min(k_max, M)             # beyond M runs the SSE is 0
    prev = None
    for j in range(2, top + 1):
        lower = None
        if prev is not None:        # arg-minima of row j-1 for b in [j-1, M]
            lower = prev[1:]        # ... for b in [j, M]
        val, opt = row_minima(D, P, j, M, j - 1, lower)
        D = np.full(M + 1, np.inf)
        D[j:] = val
        prev = opt
        out[j - 1] = max(float(D[M]), 0.0)
    # centred prefix sums leave rounding noise: an optimum never rises with k
    np.minimum.accumulate(out, out=out)
    return out


class Allocation(NamedTuple):
    """Result of :func:`allocate`: the index chosen per tensor, its totals."""

    choice: tuple       # index into each tensor's points
    rate: float         # total rate used
    error: float        # total error
    uniform: int        # index (into the shared k list) of the best uniform allocation, or -1
    uniform_error: float  # its total error (inf if none fits)


def _hull(r, d):
    """Indices of the lower convex hull of points (r, d), r increasing, from the first point;
    only points that lower d."""
    idx = []
    for i in range(r.size):
        if idx and d[i] >= d[idx[-1]]:
            continue
        while len(idx) >= 2:
            a, b = idx[-2], idx[-1]
            # b lies on or above the segment a -> i: drop it
            if (d[b] - d[a]) * (r[i] - r[a]) >= (d[i] - d[a]) * (r[b] - r[a]):
                idx.pop()
            else:
                break
        idx.append(i)
    return idx


#: The knapsack DP runs over at most this many rate units (above, rates are rounded up
#: to coarser units: the result still fits, and is optimal up to that rounding).
KNAPSACK_STATES = 1 << 19


def knapsack(rates, errors, budget, max_states=KNAPSACK_STATES):
    """The exact multiple-choice knapsack over integer rates: one point per tensor, least
    total error with ``sum(rate) <= budget``, or None if none fits.

    Rates are counted in units of their greatest common divisor, or, when the budget
    holds more than `max_states` of those, in units of ``ceil(budget / max_states)``
    with every rate rounded up (so the result still fits: optimal up to that
    rounding). O(states * points) time, one byte (or two) per state and tensor.
    """
    ints = [np.rint(a).astype(np.int64) for a in rates]
    if any(np.any(a != r) for a, r in zip(ints, rates)):
        return None
    cap = int(budget)
    g = 0
    for a in ints:
        g = math.gcd(g, *a.tolist())
    unit = max(g, 1)
    if cap // unit > max_states:
        unit = -(-cap // max_states)
    q = [-(-a // unit) for a in ints]        # rates rounded up to whole units
    room = cap // unit - sum(int(a[0]) for a in q)
    if room < 0:
        return None
    dt = np.uint8 if max(a.size for a in q) <= 256 else np.uint16
    dp = np.zeros(room + 1)
    choice = []
    for a, d in zip(q, errors):
        new = np.full(room + 1, np.inf)
        arg = np.zeros(room + 1, dtype=dt)
        for i in range(a.size):
            step = int(a[i] - a[0])
            if step > room:
                break
            cand = dp[:room + 1 - step] + d[i]
            better = cand < new[step:]
            new[step:][better] = cand[better]
            arg[step:][better] = i
        dp = new
        choice.append(arg)
    c = int(np.argmin(dp))
    if not np.isfinite(dp[c]):
        return None
    out = [0] * len(q)
    for t in range(len(q) - 1, -1, -1):
        i = int(choice[t][c])
        out[t] = i
        c -= int(q[t][i] - q[t][0])
    return out


def allocate(rates, errors, budget, uniform=None):
    """Choose one point per tensor minimising the total error under ``sum(rate) <= budget``.

    Parameters
    ----------
    rates, errors : sequences of 1-D float arrays, one pair per tensor
        Each tensor's candidate points, rates strictly increasing.
    budget : float
    uniform : sequence of 1-D int arrays, optional
        ``uniform[t][u]``: the point of tensor t for the u-th uniform setting
        (the same k everywhere; -1: that setting does not fit); the best one
        that fits is a lower bar.

    Returns
    -------
    Allocation, or None when even the cheapest point of every tensor exceeds
    the budget.
    """
    T = len(rates)
    r = [np.asarray(a, dtype=np.float64) for a in rates]
    d = [np.asarray(a, dtype=np.float64) for a in errors]
    pos = [0] * T
    used = float(sum(a[0] for a in r))
    if used > budget:
        return None
    # hull steps of every tensor, in order of decreasing slope
    steps = []
    for t in range(T):
        h = _hull(r[t], d[t])
        for a, b in zip(h, h[1:]):
            slope = (d[t][a] - d[t][b]) / (r[t][b] - r[t][a])
            steps.append((-slope, t, a, b))
    steps.sort(key=lambda s: (s[0], s[1]))
    for _, t, a, b in steps:
        if pos[t] != a:     # an earlier step of this tensor did not fit: its hull stops here
            continue
        cost = r[t][b] - r[t][a]
        if used + cost > budget:
            break           # exact up to here; the rest is the greedy fill below
        used += cost
        pos[t] = b
    # fill: any move to a higher point that fits, best error drop per rate first
    while True:
        best = None
        for t in range(T):
            i = pos[t]
            extra = r[t][i + 1:] - r[t][i]
            gain = d[t][i] - d[t][i + 1:]
            ok = (extra <= budget - used) & (gain > 0)
            if not ok.any():
                continue
            ratio = np.where(ok, gain / extra, -np.inf)
            j = int(np.argmax(ratio))
            if best is None or ratio[j] > best[0]:
                best = (float(ratio[j]), t, i + 1 + j)
        if best is None:
            break
        _, t, j = best
        used += r[t][j] - r[t][pos[t]]
        pos[t] = j
    error = float(sum(d[t][pos[t]] for t in range(T)))
    # (one byte per state and tensor: at most 64 MB of back-pointers whatever T)
    exact = knapsack(r, d, budget, max(1024, min(KNAPSACK_STATES, (1 << 26) // max(T, 1))))
    if exact is not None:
        e_err = float(sum(d[t][exact[t]] for t in range(T)))
        e_rate = sum(float(r[t][exact[t]]) for t in range(T))
        if e_err < error and e_rate <= budget:
            pos, error, used = list(exact), e_err, e_rate
    u_best, u_err = -1, np.inf
    if uniform is not None:
        for u in range(len(uniform[0]) if T else 0):
            if any(uniform[t][u] < 0 for t in range(T)):
                continue        # beyond some tensor's candidates: does not fit
            ru = sum(float(r[t][uniform[t][u]]) for t in range(T))
            if ru <= budget:
                eu = float(sum(d[t][uniform[t][u]] for t in range(T)))
                if eu < u_err:
                    u_best, u_err = u, eu
    if u_best >= 0 and u_err < error:       # never worse than the best uniform k that fits
        pos = [int(uniform[t][u_best]) for t in range(T)]
        error = u_err
        used = sum(float(r[t][pos[t]]) for t in range(T))
    return Allocation(tuple(int(p) for p in pos), float(used), error, u_best, float(u_err))
