"""Reduce a tensor to the weighted 1-D point set the solvers work on.

Every solver in weightshare works on the sorted *distinct* values of a tensor,
each with a weight (its count, or the sum of its importance weights). Exact
duplicates are common in the tensors people cluster (float16 weights, pruned or
already clustered tensors), and clustering the distinct values with their counts
gives the same result as clustering every entry.

With ``keep_zeros`` the exact zeros are taken out: they belong to the fixed
zero centroid and are not points of the fit.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["Points", "reduce_points"]


class Points(NamedTuple):
    """Sorted values with positive weights.

    The values are distinct (strictly increasing) unless fewer than
    ``COMPACT_BELOW`` of them repeat: then compacting would cost more than it
    saves and repeated values stay as separate points of weight 1 (the
    solvers give the same result either way).
    """

    values: np.ndarray   # float64, non-decreasing
    weights: np.ndarray  # float64, > 0 (read-only; possibly a broadcast view)
    has_zero: bool       # keep_zeros is on and the tensor holds an exact zero
    n_distinct: int      # number of distinct values


#: Compact repeated values into counts only when at least this fraction repeats.
COMPACT_BELOW = 0.25


def _ones(n):
    """n unit weights, read-only, without n floats of memory."""
    return np.broadcast_to(np.float64(1.0), (n,))


def _from_sorted(s, sw=None):
    """Values of sorted `s` with their counts (or summed `sw`), and the distinct count."""
    if s.size == 0:
        return np.empty(0), np.empty(0), 0
    new = np.empty(s.size, dtype=bool)
    new[0] = True
    np.not_equal(s[1:], s[:-1], out=new[1:])
    n_distinct = int(np.count_nonzero(new))
    if n_distinct == s.size or (sw is None and n_distinct > (1 - COMPACT_BELOW) * s.size):
        values = s.astype(np.float64)
        # unit weights as a read-only view of one 1.0: no memory to fill
        weights = _ones(s.size) if sw is None else np.asarray(sw, dtype=np.float64)
    else:
        starts = np.flatnonzero(new)
        values = s[starts].astype(np.float64)
        if sw is None:
            weights = np.empty(starts.size)
            np.subtract(starts[1:], starts[:-1], out=weights[:-1])
            weights[-1] = s.size - starts[-1]
        else:
            weights = np.add.reduceat(sw, starts)
    return values, weights, n_distinct


def _float16_counts(x):
    """Distinct values and counts of a float16 array by counting bit patterns.

    O(n) with a 65,536-bin count instead of an O(n log n) sort.
    """
    counts = np.bincount(x.view(np.uint16).ravel(), minlength=1 << 16)
    bits = np.flatnonzero(counts).astype(np.uint16)
    values = bits.view(np.float16).astype(np.float64)
    weights = counts[bits].astype(np.float64)
    order = np.argsort(values, kind="stable")
    values, weights = values[order], weights[order]
    # +0.0 and -0.0 are two bit patterns but one value: merge equal neighbours.
    if values.size > 1 and np.any(values[1:] == values[:-1]):
        new = np.concatenate(([True], values[1:] != values[:-1]))
        starts = np.flatnonzero(new)
        values, weights = values[starts], np.add.reduceat(weights, starts)
    return values, weights


def _sortable(a):
    """`a`, or float16 widened (exactly) to float32: NumPy 2.4's AVX-512 float16 sort can
    return unsorted output on arrays with few distinct values."""
    return a.astype(np.float32) if a.dtype == np.float16 else a


def reduce_points(x, sample_weight=None, keep_zeros=True):
    """Return the :class:`Points` of a float array `x` (any shape).

    Parameters
    ----------
    x : ndarray of float16, float32 or float64
        Finite values (validated by the caller).
    sample_weight : ndarray of float64 of x's shape, optional
        Non-negative importance weights. Distinct values whose total weight is
        zero are left out of the point set (they do not affect the fit).
    keep_zeros : bool
        Take the exact zeros out of the point set and report whether any exist.
    """
    flat = x.ravel()
    sw = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64).ravel()
    has_zero = False
    if keep_zeros:
        nonzero = flat != 0
        has_zero = not nonzero.all()
        if has_zero:
            flat = flat[nonzero]
            if sw is not None:
                sw = sw[nonzero]
    if sw is None and flat.dtype == np.float16 and flat.size > 4096:
        values, weights = _float16_counts(flat)
        n_distinct = values.size
    elif sw is None:
        values, weights, n_distinct = _from_sorted(np.sort(_sortable(flat)))
    else:
        order = np.argsort(_sortable(flat), kind="stable")
        values, weights, n_distinct = _from_sorted(flat[order], sw[order])
        keep = weights > 0
        if not keep.all():
            values, weights = values[keep], weights[keep]
            n_distinct = int(np.count_nonzero(np.diff(values))) + 1 if values.size else 0
    return Points(values, weights, has_zero, n_distinct)
