"""Exact references: the optimal clustering SSE and the magnitude-pruning keep set.

These are the answers a correct implementation must reproduce. They favour
clarity over speed where that keeps them independent of the fast code paths:
:func:`keep_set` sorts fully instead of selecting, and the optimal SSE is the
exact dynamic program (itself checked against exhaustive enumeration in
weightshare's own tests, see :mod:`weightshare.testing._reference`).
"""

import numpy as np

from .._kmeans._optimal import optimal_partition
from .._kmeans._points import reduce_points
from .._base._validation import check_k, check_sample_weight, check_weights

__all__ = ["optimal_sse", "keep_set", "sse"]


def sse(weights, values, sample_weight=None):
    """Weighted sum of squared errors between two arrays, in float64."""
    d = np.asarray(weights, dtype=np.float64) - np.asarray(values, dtype=np.float64)
    d2 = d * d
    if sample_weight is not None:
        d2 = d2 * np.asarray(sample_weight, dtype=np.float64)
    return float(d2.sum())


def optimal_sse(weights, k, *, keep_zeros=True, sample_weight=None):
    """The global minimum of the (weighted) SSE over all clusterings into at most k values.

    Parameters
    ----------
    weights : array_like of float
    k : int >= 1
    keep_zeros : bool
        If True and `weights` holds zeros, one of the k values is pinned to
        0.0 and every exact zero must keep it.
    sample_weight : array_like, optional

    Returns
    -------
    float
        The optimum in exact float64 arithmetic, before any rounding of the
        centroids to the tensor's dtype (so a float16 result may exceed it by
        the rounding term that :func:`assert_sse_within` allows).

    Examples
    --------
    >>> from weightshare.testing import optimal_sse
    >>> optimal_sse([0.0, 1.0, 2.0, 10.0], 2, keep_zeros=False)
    2.0
    >>> optimal_sse([0.0, 1.0, 2.0, 10.0], 2, keep_zeros=True)
    5.0
    """
    x = check_weights(weights)
    k = check_k(k)
    sw = None if sample_weight is None else check_sample_weight(sample_weight, x.shape)
    pts = reduce_points(x, sw, keep_zeros)
    xs, ws = pts.values, pts.weights
    if xs.size == 0:
        return 0.0
    k_total = min(k, pts.n_distinct + int(pts.has_zero))
    if pts.has_zero and k_total < 2:
        raise ValueError(f"k={k} cannot hold the fixed zero plus one non-zero value")
    if k_total >= pts.n_distinct + int(pts.has_zero):
        return 0.0
    bounds, z, xe, we = optimal_partition(xs, ws, k_total, pts.has_zero)
    total = 0.0
    for a, b in zip(bounds[:-1], bounds[1:]):
        xr, wr = xe[a:b], we[a:b]
        if z >= 0 and a <= z < b:
            c = 0.0
        else:
            c = np.dot(wr, xr) / wr.sum()
        total += float(np.dot(wr, (xr - c) ** 2))
    return total


def keep_set(weights, keep):
    """Boolean mask of the entries exact magnitude pruning keeps.

    The rule weightshare documents: rank entries by magnitude, largest first,
    ties broken by flat (C-order) index, smallest first; keep the first
    `keep` that are non-zero (existing zeros always count as pruned).

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import keep_set
    >>> keep_set(np.array([0.5, -2.0, 0.5, 0.0, 1.0]), 3)
    array([ True,  True, False, False,  True])
    """
    x = np.asarray(weights)
    flat = np.abs(x.astype(np.float64)).ravel()
    order = np.lexsort((np.arange(flat.size), -flat))   # magnitude desc, then index asc
    mask = np.zeros(flat.size, dtype=bool)
    chosen = order[:keep]
    mask[chosen[flat[chosen] != 0]] = True
    return mask.reshape(x.shape)
