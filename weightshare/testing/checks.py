"""Invariant checks that raise ``AssertionError`` saying what failed, where, and by how much.

Each check states one family of invariants a compression algorithm must keep.
They compare in float64 and allow only the slack that exact arithmetic
forces (ties and the rounding of centroids to the tensor's dtype).
"""

import math
from fractions import Fraction

import numpy as np

from .oracles import keep_set, optimal_sse, sse

__all__ = ["assert_zeros_kept", "assert_clustered", "assert_sse_within", "assert_pruned",
           "assert_roundtrip"]


def _v(a):
    """A readable scalar (repr of the Python value, not of the NumPy scalar)."""
    return repr(a.item()) if hasattr(a, "item") else repr(a)


def _index(flat_i, shape):
    return tuple(int(i) for i in np.unravel_index(int(flat_i), shape)) if shape else ()


def _same_layout(original, values, what):
    if values.shape != original.shape:
        raise AssertionError(f"{what}: shape changed from {original.shape} to {values.shape}")
    if values.dtype != original.dtype:
        raise AssertionError(f"{what}: dtype changed from {original.dtype} to {values.dtype}")


def assert_zeros_kept(original, values):
    """Every exact zero of `original` is exactly zero in `values`.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import assert_zeros_kept
    >>> assert_zeros_kept(np.array([0.0, 1.0]), np.array([0.0, 0.9]))
    >>> assert_zeros_kept(np.array([0.0, 1.0]), np.array([0.1, 0.9]))
    Traceback (most recent call last):
    AssertionError: zeros kept: 1 of 1 zero(s) moved, first at index (0,) to 0.1
    """
    original, values = np.asarray(original), np.asarray(values)
    zero = original == 0
    moved = zero & (values != 0)
    if moved.any():
        first = np.flatnonzero(moved.ravel())[0]
        raise AssertionError(f"zeros kept: {int(moved.sum())} of {int(zero.sum())} zero(s) moved, "
                             f"first at index {_index(first, original.shape)} to "
                             f"{_v(values.ravel()[first])}")


def _slices(a, axis):
    if axis is None:
        return [a.ravel()]
    m = np.moveaxis(a, axis, 0)
    return [m[i].ravel() for i in range(m.shape[0])]


def assert_clustered(original, values, k, *, keep_zeros=True, axis=None):
    """`values` is a valid k-clustering of `original`.

    Checks, per tensor (per slice along `axis`): the shape and dtype are
    kept; there are at most `k` distinct values; with `keep_zeros`, every zero
    stays exactly zero; and every entry holds (one of) the value(s) nearest to
    it among the distinct output values, i.e. the assignment step of k-means
    is consistent with the centroids.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import assert_clustered
    >>> w = np.array([0.0, 0.1, 0.2, 0.9, 1.0])
    >>> assert_clustered(w, np.array([0.0, 0.15, 0.15, 0.95, 0.95]), k=3)
    >>> assert_clustered(w, np.array([0.0, 0.15, 0.95, 0.95, 0.95]), k=3)
    Traceback (most recent call last):
    AssertionError: nearest centroid: entry (2,) = 0.2 holds 0.95 at distance 0.75, but 0.15 is at distance 0.05
    """
    original, values = np.asarray(original), np.asarray(values)
    _same_layout(original, values, "clustered")
    if keep_zeros:
        assert_zeros_kept(original, values)
    xs, vs = _slices(original, axis), _slices(values, axis)
    for s, (x, v) in enumerate(zip(xs, vs)):
        where = "" if axis is None else f" in slice {s} along axis {axis}"
        cents = np.unique(v.astype(np.float64)).astype(v.dtype)   # float16 sorts are unreliable
        if cents.size > k:
            raise AssertionError(f"at most k values: {cents.size} distinct values{where} > k={k}")
        x64, v64, c64 = x.astype(np.float64), v.astype(np.float64), cents.astype(np.float64)
        d_own = np.abs(x64 - v64)
        # nearest centroid distance via the sorted centroids
        pos = np.clip(np.searchsorted(c64, x64), 1, max(c64.size - 1, 1))
        lo = c64[pos - 1] if c64.size > 1 else c64[np.zeros_like(pos)]
        hi = c64[pos] if c64.size > 1 else c64[np.zeros_like(pos)]
        d_best = np.minimum(np.abs(x64 - lo), np.abs(x64 - hi))
        slack = 4 * np.spacing(np.maximum(np.abs(x64), np.abs(v64)))
        bad = d_own > d_best + slack
        if keep_zeros:
            bad &= x != 0
        if bad.any():
            i = np.flatnonzero(bad)[0]
            best = lo[i] if abs(x64[i] - lo[i]) <= abs(x64[i] - hi[i]) else hi[i]
            idx = _index(i, original.shape) if axis is None else (s, int(i))
            raise AssertionError(
                f"nearest centroid: entry {idx}{where} = {_v(x[i])} holds {_v(v[i])} at distance "
                f"{d_own[i]:.6g}, but {_v(best)} is at distance {d_best[i]:.6g}")


def assert_sse_within(original, values, k, *, rel=1e-3, keep_zeros=True, sample_weight=None):
    """The SSE of `values` is within ``rel`` of the exact optimum for k values.

    The allowance also covers rounding the centroids to the tensor's dtype
    (half a unit in the last place) and computing them in floating point (16
    float64 units): at most ``n * (spacing(max|w|) / 2 + 16 * eps64(max|w|))**2``
    (weighted), since a centroid moved by d raises its cluster's SSE by at most
    ``n_j * d**2`` and re-assignment can only lower it.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import assert_sse_within
    >>> w = np.array([0.0, 1.0, 2.0, 10.0])
    >>> assert_sse_within(w, np.array([1.0, 1.0, 1.0, 10.0]), k=2, keep_zeros=False)
    >>> assert_sse_within(w, np.array([0.0, 0.0, 6.0, 6.0]), k=2, keep_zeros=False)
    Traceback (most recent call last):
    AssertionError: SSE within rel=0.001 of the optimum: got 33, optimum 2 (+1550% above)
    """
    original, values = np.asarray(original), np.asarray(values)
    _same_layout(original, values, "clustered")
    got = sse(original, values, sample_weight)
    best = optimal_sse(original, k, keep_zeros=keep_zeros, sample_weight=sample_weight)
    total_w = original.size if sample_weight is None else float(np.sum(sample_weight))
    top = float(np.max(np.abs(original.astype(np.float64)))) if original.size else 0.0
    d = float(np.spacing(original.dtype.type(top))) / 2 + 16 * float(np.spacing(np.float64(top)))
    rounding = total_w * d * d
    allowed = best * (1 + rel) + rounding + 1e-12 * max(best, 1e-300)
    if got > allowed:
        above = (got - best) / best * 100 if best > 0 else float("inf")
        raise AssertionError(f"SSE within rel={rel:g} of the optimum: got {got:.6g}, optimum "
                             f"{best:.6g} (+{above:.4g}% above)")


def assert_pruned(original, values, *, keep=None, sparsity=None):
    """`values` is exact magnitude pruning of `original`.

    Give exactly one of `keep` (number of non-zeros kept) or `sparsity`
    (fraction of zeros wanted; the number kept is ``n - ceil(sparsity * n)``,
    the product taken exactly on the decimal ``repr(sparsity)``, the rule of
    :func:`weightshare.prune`).
    Checks: kept entries are unchanged, pruned entries are exactly zero, and
    the kept set is exactly :func:`keep_set` (largest magnitudes, ties by
    flat index).

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import assert_pruned
    >>> w = np.array([0.5, -2.0, 0.5, 1.0])
    >>> assert_pruned(w, np.array([0.5, -2.0, 0.0, 1.0]), keep=3)
    >>> assert_pruned(w, np.array([0.5, -2.0, 0.5, 1.0]), keep=3)
    Traceback (most recent call last):
    AssertionError: pruned: 4 non-zeros kept, expected 3; first extra at index (2,) = 0.5
    """
    original, values = np.asarray(original), np.asarray(values)
    _same_layout(original, values, "pruned")
    if (keep is None) == (sparsity is None):
        raise TypeError("give exactly one of keep or sparsity")
    if keep is None:
        keep = original.size - math.ceil(Fraction(repr(float(sparsity))) * original.size)
    expected = keep_set(original, keep)
    got = values != 0
    changed = got & (values != original)
    if changed.any():
        i = np.flatnonzero(changed.ravel())[0]
        raise AssertionError(f"pruned: kept entry {_index(i, original.shape)} changed from "
                             f"{_v(original.ravel()[i])} to {_v(values.ravel()[i])}")
    if got.sum() != expected.sum():
        diff = got & ~expected if got.sum() > expected.sum() else expected & ~got
        i = np.flatnonzero(diff.ravel())[0]
        word = "extra" if got.sum() > expected.sum() else "missing"
        raise AssertionError(f"pruned: {int(got.sum())} non-zeros kept, expected "
                             f"{int(expected.sum())}; first {word} at index "
                             f"{_index(i, original.shape)} = {_v(original.ravel()[i])}")
    if not np.array_equal(got, expected):
        i = np.flatnonzero((got & ~expected).ravel())[0]
        j = np.flatnonzero((expected & ~got).ravel())[0]
        raise AssertionError(f"pruned: kept {_index(i, original.shape)} = {_v(original.ravel()[i])} "
                             f"but dropped {_index(j, original.shape)} = {_v(original.ravel()[j])} "
                             "(larger magnitude, or equal magnitude and lower flat index)")


def assert_roundtrip(original, decoded):
    """`decoded` equals `original` bit for bit: shape, dtype and every byte.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.testing import assert_roundtrip
    >>> assert_roundtrip(np.array([0.0, 1.5]), np.array([0.0, 1.5]))
    >>> assert_roundtrip(np.array([0.0, 1.5]), np.array([-0.0, 1.5]))
    Traceback (most recent call last):
    AssertionError: round trip: 1 entry differs bitwise, first at index (0,): 0.0 became -0.0
    """
    original, decoded = np.asarray(original), np.asarray(decoded)
    _same_layout(original, decoded, "round trip")
    a = np.ascontiguousarray(original).view(np.uint8).reshape(original.size, -1)
    b = np.ascontiguousarray(decoded).view(np.uint8).reshape(decoded.size, -1)
    diff = np.any(a != b, axis=1) if a.size else np.zeros(0, dtype=bool)
    if diff.any():
        i = np.flatnonzero(diff)[0]
        raise AssertionError(f"round trip: {int(diff.sum())} entr{'y differs' if diff.sum() == 1 else 'ies differ'} "
                             f"bitwise, first at index {_index(i, original.shape)}: "
                             f"{_v(original.ravel()[i])} became {_v(decoded.ravel()[i])}")
