"""Lloyd's algorithm with centroids restricted to a grid (a LUT dtype's values).

The grids themselves are ``weightshare._codec._lut``; a run of sorted points is
best served by the grid point nearest its mean, so each update moves a
centroid there.
"""

import numpy as np

__all__ = ["grid_lloyd"]


def grid_lloyd(xs, ws, c, has_zero, grid, max_iter):
    """Lloyd on a grid from centroids `c` (already on it): (centroids, iterations).

    Sorted points `xs` (zeros excluded when `has_zero`; 0.0 then stays a
    centroid) with weights `ws`. Each step assigns every point to its nearest
    centroid and moves each centroid to the grid point nearest its points'
    mean; neither step raises the SSE.
    """
    cw = np.concatenate(([0.0], np.cumsum(ws)))
    cs = np.concatenate(([0.0], np.cumsum(ws * xs)))
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        mids = 0.5 * (c[:-1] + c[1:])
        b = np.concatenate(([0], np.searchsorted(xs, mids, side="right"), [xs.size]))
        dw = cw[b[1:]] - cw[b[:-1]]
        ds = cs[b[1:]] - cs[b[:-1]]
        move = dw > 0
        if has_zero:
            move &= c != 0.0
        new = c.copy()
        new[move] = grid.nearest(ds[move] / dw[move])
        new = np.unique(new)
        if np.array_equal(new, c):
            break
        c = new
    return c, n_iter
