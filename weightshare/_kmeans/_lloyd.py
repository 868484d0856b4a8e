"""Lloyd's algorithm on sorted points with prefix sums.

Lloyd, "Least squares quantization in PCM", IEEE Trans. Inf. Theory 28(2),
1982. In one dimension the nearest-centroid cells are intervals bounded by the
midpoints of consecutive centroids, so on sorted points an assignment step is
one ``searchsorted`` of k - 1 midpoints (O(k log m)) and an update step is a
difference of prefix sums (O(k)). After an O(m) set-up each iteration costs
O(k log m), independent of the number of points.
"""

import numpy as np

__all__ = ["lloyd", "run_bounds", "runs_sse"]


def run_bounds(x, centroids, virtual_zero=False):
    """Index bounds of the nearest-centroid runs of sorted `x`.

    A point exactly on a midpoint goes to the lower centroid. With
    `virtual_zero`, the bounds index `x` with a point 0.0 inserted in order
    (``Prefix(..., insert=True)``); `x` itself holds no zero.
    """
    mids = 0.5 * (centroids[:-1] + centroids[1:])
    b = np.empty(centroids.size + 1, dtype=np.int64)
    b[0] = 0
    b[-1] = x.size + int(virtual_zero)
    b[1:-1] = np.searchsorted(x, mids, side="right")
    if virtual_zero:
        b[1:-1] += mids >= 0
    return b


def runs_sse(P, bounds, centroids, fixed):
    """Weighted SSE of runs `bounds` around `centroids` (float64), from prefix sums.

    Runs flagged in `fixed` use their given centroid; the others their mean.
    """
    a, b = bounds[:-1], bounds[1:]
    dw = P.W[b] - P.W[a]
    ds = P.S[b] - P.S[a]
    dq = P.Q[b] - P.Q[a]
    with np.errstate(divide="ignore", invalid="ignore"):
        free = np.where(dw > 0, dq - ds * ds / np.where(dw > 0, dw, 1.0), 0.0)
    d = centroids - P.mu
    pinned = dq - 2.0 * d * ds + d * d * dw
    return float(np.sum(np.where(fixed, pinned, free)))


def lloyd(P, x, centroids, fixed, max_iter, tol=0.0, history=None, virtual_zero=False):
    """Run Lloyd iterations from `centroids` until a fixed point.

    Parameters
    ----------
    P : Prefix of the points (see ``_optimal.Prefix``); with a virtual zero only
        when `virtual_zero` is set.
    x : ndarray of float64, sorted distinct points.
    centroids : ndarray of float64, sorted; entries flagged in `fixed` never move.
    fixed : ndarray of bool, same length.
    max_iter : int, maximal number of iterations.
    tol : float, stop when an iteration lowers the SSE by <= tol * SSE
        (0.0 runs to the exact fixed point: the assignment no longer changes).
    history : list, optional; the SSE after each iteration is appended.
    virtual_zero : bool, P holds a virtual point 0.0 that `x` does not (see
        ``run_bounds``); the bounds returned index P's points.

    Returns
    -------
    centroids, bounds, n_iter
    """
    c = centroids.astype(np.float64, copy=True)
    bounds = run_bounds(x, c, virtual_zero)
    prev_sse = np.inf
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        a, b = bounds[:-1], bounds[1:]
        dw = P.W[b] - P.W[a]
        ds = P.S[b] - P.S[a]
        move = (dw > 0) & ~fixed
        c[move] = P.mu + ds[move] / dw[move]
        if history is not None or tol > 0:      # the SSE is only needed here
            sse = runs_sse(P, bounds, c, fixed)
            if history is not None:
                history.append(sse)
        new_bounds = run_bounds(x, c, virtual_zero)
        if np.array_equal(new_bounds, bounds):
            break
        bounds = new_bounds
        if tol > 0:
            if prev_sse - sse <= tol * sse:
                break
            prev_sse = sse
    return c, bounds, n_iter
