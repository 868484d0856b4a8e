"""Brute-force references for tiny inputs, independent of the fast solvers.

Exhaustive enumeration of every assignment of the distinct values to k
clusters: it assumes nothing (not even that clusters are contiguous runs,
which the dynamic program relies on), so agreement with it tests the
solvers' assumptions too. Exponential: keep inputs to <= 8 distinct values.
"""

import itertools

import numpy as np

__all__ = ["brute_force_sse"]


def brute_force_sse(weights, k, *, keep_zeros=True, sample_weight=None):
    """Minimum SSE over all assignments of the distinct values to k groups."""
    x = np.asarray(weights, dtype=np.float64).ravel()
    sw = np.ones_like(x) if sample_weight is None else np.asarray(sample_weight, np.float64).ravel()
    has_zero = keep_zeros and bool(np.any(x == 0))
    if keep_zeros:
        keep = x != 0
        x, sw = x[keep], sw[keep]
    values, inverse = np.unique(x, return_inverse=True)
    w = np.bincount(inverse, weights=sw, minlength=values.size)
    free = k - int(has_zero)
    if free < 1:
        return 0.0 if values.size == 0 else float("nan")
    groups = free + int(has_zero)      # group 0 is the pinned zero when has_zero
    best = np.inf
    for labels in itertools.product(range(groups), repeat=values.size):
        lab = np.asarray(labels)
        total = 0.0
        for g in range(groups):
            sel = lab == g
            if not sel.any():
                continue
            wg, xg = w[sel], values[sel]
            if has_zero and g == 0:
                c = 0.0
            elif wg.sum() > 0:
                c = np.dot(wg, xg) / wg.sum()
            else:
                continue
            total += float(np.dot(wg, (xg - c) ** 2))
        best = min(best, total)
    return float(best)
