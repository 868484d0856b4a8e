"""Weight sharing: replace every weight of a tensor by one of k shared values.

This is the core of weightshare. It works on NumPy arrays only and imports
nothing but NumPy and the standard library.
"""

import math
from typing import NamedTuple

import numpy as np

from ._kmeans._dot import dot
from ._kmeans._auto import auto_centroids
from ._kmeans._vector import fit_vectors, to_vectors
from ._codec._lut import LUT_DTYPES, make_grid
from ._kmeans._ecsq import ecsq_fit
from ._kmeans._grid import grid_lloyd
from ._kmeans._init import INITS
from ._kmeans._lloyd import lloyd
from ._kmeans._optimal import Prefix, optimal_partition, partition_centroids
from ._kmeans._points import reduce_points
from ._base._validation import (check_axis, check_choice, check_flag, check_int, check_k,
                                check_number, check_random_state, check_sample_weight,
                                check_weights)

__all__ = ["ClusterResult", "cluster", "init_centroids", "assign", "METHODS", "LUT_DTYPES"]

METHODS = ("auto", "lloyd", "optimal")


class ClusterResult(NamedTuple):
    """Result of :func:`cluster`.

    Attributes
    ----------
    values : ndarray, same shape and dtype as the input
        Every entry replaced by its centroid.
    labels : ndarray of int32, same shape
        Index of each entry's centroid (into its group's row when ``axis`` is
        given: channel c belongs to group ``c // group_size``). With
        ``cluster_dim``: one per vector, the shape of the input with the
        length of ``axis`` divided by ``cluster_dim``.
    centroids : ndarray of the input dtype
        The LUT(s). Sorted ascending, shape (k_used,); with ``axis``, shape
        (n_groups, k_used) (a group per slice unless ``group_size``; one
        with ``per_channel_scale`` alone) where rows that use fewer
        centroids are padded with NaN. With ``cluster_dim``: the codebook,
        shape (k_used, cluster_dim), rows distinct (in no particular order).
    sse : float
        Weighted sum of squared errors ``sum(sample_weight * (weights - values)**2)``
        in float64; ``inf`` when it exceeds the float64 range (weights of
        magnitude about 1e154 and beyond).
    n_iter : int
        Lloyd iterations run (summed over slices; 0 for the exact solver).
    scales : ndarray of the input dtype, shape (channels,), or None
        With ``per_channel_scale``: each channel's scale (``values ==
        scales[c] * centroids[group of c][labels]`` in the input dtype).
    lut_scales : ndarray of the input dtype or None
        With ``lut_dtype`` 'int8' or 'uint8': the scale of each LUT (shape ()
        for one LUT, (groups,) with ``axis``).
    lut_zero_points : ndarray of int32 or None
        With an integer ``lut_dtype``: each LUT's zero point (0 for 'int8');
        ``centroids == lut_scales * (q - lut_zero_points)`` for integers q
        of the dtype.
    n_distinct : int or None
        Distinct values of `weights` (zero counted once), counted from the
        sorted points the solver worked on; None with ``axis`` (slices are
        fitted one by one) or with ``sample_weight``.
    """

    values: np.ndarray
    labels: np.ndarray
    centroids: np.ndarray
    sse: float
    n_iter: int
    scales: np.ndarray = None
    lut_scales: np.ndarray = None
    lut_zero_points: np.ndarray = None
    n_distinct: int = None


class _Fit(NamedTuple):
    centroids: np.ndarray  # float64, sorted, includes 0.0 when has_zero
    has_zero: bool
    n_iter: int
    n_distinct: int = None  # distinct values of the tensor fitted (zero included)


# --------------------------------------------------------------------------- validation

#: The methods that start from ``init`` (the others ignore it, so giving it is an error).
INIT_METHODS = ("lloyd",)


def check_init_method(init, method):
    """`init` given with a method that does not use it: a ValueError saying which do."""
    if init is not None and method not in INIT_METHODS:
        users = ", ".join(f"method={m!r}" for m in INIT_METHODS)
        given = f"init={init!r}" if isinstance(init, str) else "init (an array)"
        raise ValueError(f"{given} is only used "
                         f"by {users}; method={method!r} does not start from an init (leave "
                         "init out, or pass method='lloyd')")


def _check_common(weights, k, init, method, keep_zeros, max_iter, tol):
    x = check_weights(weights)
    k = check_k(k)
    check_choice(method, METHODS, "method")
    if not isinstance(init, str) and init is not None:
        init = _check_init_array(init)
    elif init is not None:
        check_choice(init, tuple(INITS), "init")
    check_init_method(init, method)
    if init is None:
        init = "linear"
    return (x, k, init, check_flag(keep_zeros, "keep_zeros"), check_int(max_iter, "max_iter", 1),
            check_number(tol, "tol", 0))


def _check_init_array(init):
    try:
        c = np.asarray(init, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"init must be one of {', '.join(map(repr, INITS))} or an array of "
                        f"initial centroids; got {init!r}") from None
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"init as an array must be 1-D and non-empty; got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError("init as an array must be finite")
    return np.unique(c)


# --------------------------------------------------------------------------- scaling
#: The solvers square the points and sum the squares (prefix sums of w x**2,
#: (sum w x)**2 / sum w): finite float64 weights beyond about 1e154 would
#: overflow. Points beyond 2**_BIG in magnitude are fitted scaled down by a
#: power of two, which is exact in binary floating point (but for values that
#: end up below the smallest normal number, next to which they are
#: negligible), and the centroids scaled back; inputs within 2**_BIG (any
#: float16 or float32, and float64 up to 1.2e77) are never scaled, so their
#: results are bit-identical to an unscaled solve.
_BIG = 256
#: Sample weights are scaled (a power of two) so that their sum stays below 2**_HEAVY.
_HEAVY = 200


def _exponent(x):
    """e >= 0 such that every ``|x| * 2**-e <= 2**_BIG`` (0 for all but huge float64 input)."""
    if x.dtype != np.float64 or x.size == 0:
        return 0
    top = max(float(x.max()), -float(x.min()))
    return 0 if top <= 2.0 ** _BIG else math.frexp(top)[1] - _BIG


def _weight_exponent(sw):
    """f >= 0 such that ``sum(sw) * 2**-f < 2**_HEAVY``."""
    if sw is None or sw.size == 0:
        return 0
    return max(0, math.frexp(float(sw.max()))[1] + sw.size.bit_length() - _HEAVY)


def _scaled(a, e):
    """``a * 2**-e``; a non-zero that underflows to 0 becomes the smallest subnormal of its sign."""
    if not e:
        return a
    with np.errstate(under="ignore"):
        out = np.ldexp(a, -e)
    lost = (out == 0) & (a != 0)
    if lost.any():
        out[lost] = np.copysign(np.nextafter(0.0, 1.0), a[lost])
    return out


def _unscaled(total, e):
    """``total * 2**e`` as a float; inf beyond the float64 range."""
    try:
        return math.ldexp(total, e)
    except OverflowError:
        return math.inf


# --------------------------------------------------------------------------- fitting

def _fit(x, sw, k, init, method, keep_zeros, max_iter, tol, rng, e=0, grid=None):
    """Fit sorted float64 centroids to one tensor (or one slice).

    `e`: the points are fitted scaled by ``2**-e`` (see :func:`_exponent`).
    `grid`: centroids restricted to it (a ``_codec._lut.Grid`` of the unscaled
    points): 'optimal' is the exact optimum over the grid; the other methods
    round their centroids to the grid and run Lloyd on it (never above the
    SSE of the rounded centroids).
    """
    pts = reduce_points(x, sw, keep_zeros)
    has_zero = pts.has_zero
    n_distinct = pts.n_distinct + int(has_zero) if sw is None else None
    xs, ws = pts.values, pts.weights
    zero = [0.0] if has_zero else []
    if xs.size == 0:
        if not has_zero and x.size:
            raise ValueError("sample_weight is zero for every entry; there is nothing to fit")
        return _Fit(np.array(zero or [0.0]), has_zero, 0, n_distinct)
    k_free = k - int(has_zero)
    if k_free < 1:
        raise ValueError(f"k={k} cannot hold the fixed zero plus one non-zero value: with "
                         "keep_zeros=True and a tensor holding zeros and non-zeros, k must be "
                         ">= 2 (or pass keep_zeros=False)")
    if k_free >= pts.n_distinct:   # as many centroids as distinct values: exact, SSE 0
        c = xs if grid is None else grid.nearest(xs)    # (on a grid: each point's nearest)
        return _Fit(np.unique(np.concatenate((c, zero))), has_zero, 0, n_distinct)
    xs = _scaled(xs, e)
    g = None if grid is None else grid.scaled(e)
    if method == "optimal":
        bounds, z, xe, we = optimal_partition(xs, ws, k_free + int(has_zero), has_zero, g)
        c, n_iter = partition_centroids(xe, we, bounds, z, g), 0
    elif method == "auto":
        c, n_iter = auto_centroids(xs, ws, k_free, has_zero, max_iter, x.size)
    else:
        c, n_iter = _lloyd_from(xs, ws, k, k_free, init, has_zero, max_iter, tol, rng, e)
    if g is not None and method != "optimal":
        c = np.unique(np.concatenate((g.nearest(c), zero)))
        c, more = grid_lloyd(xs, ws, c, has_zero, g, max_iter)
        n_iter += more
    return _Fit(np.ldexp(c, e) if e else c, has_zero, n_iter, n_distinct)


def _lloyd_from(xs, ws, k, k_free, init, has_zero, max_iter, tol, rng, e):
    """Lloyd's algorithm from `init` (a name, or centroids scaled here by ``2**-e``)."""
    if isinstance(init, str):
        c = INITS[init](xs, ws, k_free, rng, has_zero)
    else:
        c = init[init != 0] if has_zero else init
        if c.size > k_free:
            raise ValueError(f"init has {c.size} centroids{' besides zero' if has_zero else ''}; "
                             f"k={k} allows at most {k_free}")
        c = _scaled(c, e)
    c = np.unique(np.concatenate((c, [0.0] if has_zero else [])))
    fixed = (c == 0.0) if has_zero else np.zeros(c.size, dtype=bool)
    c, _, n_iter = lloyd(Prefix(xs, ws), xs, c, fixed, max_iter, tol)
    return c, n_iter


_LUT_BUCKETS = 1 << 16
#: Large tensors are labelled and measured in chunks of this many entries, so
#: that every temporary stays in cache (and no tensor-sized one is allocated).
_CHUNK = 1 << 16


def _round_down(v, dtype):
    """Largest values of `dtype` <= float64 `v`: for x of that dtype,
    ``x > v`` exactly when ``x > _round_down(v, dtype)``."""
    r = v.astype(dtype)
    over = r.astype(np.float64) > v
    r[over] = np.nextafter(r[over], dtype(-np.inf))
    return r


def _nearest(flat, c):
    """Labels of nearest sorted centroids `c` (float64); ties go to the lower one.

    The label of x is the number of midpoints strictly below x. Large inputs
    use a lookup table over 65,536 equal-width buckets between the first and
    last midpoint: the table gives the label one bucket left of each bucket,
    and the few entries with a midpoint between there and themselves are
    stepped to their label, comparing exactly (against the midpoints rounded
    down to the input's precision, which decides ``x > mid`` exactly for such
    x). Steps go both ways: when the data sit far from zero relative to their
    spread (say all within 1e-3 of 1000.0), rounding in the bucket index is
    worth many buckets. O(n) instead of the O(n log k) of a binary search,
    chunk by chunk.
    """
    if c.size == 1:
        return np.zeros(flat.shape, dtype=np.int32)
    with np.errstate(over="ignore"):
        mids = 0.5 * (c[:-1] + c[1:])
    if np.isinf(mids).any():    # neighbours beyond half the float64 maximum: halve them first
        big = np.isinf(mids)
        mids[big] = 0.5 * c[:-1][big] + 0.5 * c[1:][big]
    if c.size == 2:
        return (flat > mids[0]).astype(np.int32)
    lo, hi = float(mids[0]), float(mids[-1])
    scale = _LUT_BUCKETS / (hi - lo) if hi > lo else np.inf    # 0.0 if hi - lo overflows
    if flat.size < _LUT_BUCKETS or not np.isfinite(scale) or scale == 0:
        return np.searchsorted(mids, flat, side="left").astype(np.int32, copy=False)
    with np.errstate(over="ignore"):    # huge values: a bucket index of inf, clipped below
        return _nearest_lut(flat, mids, lo, scale)


def _nearest_lut(flat, mids, lo, scale):
    """The lookup-table labelling of :func:`_nearest` (`flat` of at least 65,536 entries)."""
    shape, flat = flat.shape, flat.ravel()
    edges = lo + (np.arange(_LUT_BUCKETS) - 1.0) / scale
    lut = np.searchsorted(mids, edges, side="left").astype(np.int32)
    work = np.float64 if flat.dtype == np.float64 else np.float32   # float16 is exact in float32
    bnd = np.concatenate(([-np.inf], _round_down(mids, work), [np.inf])).astype(work)
    upper = bnd[1:]     # label L is right when bnd[L] < x <= bnd[L + 1]
    lo_w, scale_w = work(lo), work(scale)
    labels = np.empty(flat.size, dtype=np.int32)
    t = np.empty(min(_CHUNK, flat.size), dtype=work)
    for s in range(0, flat.size, _CHUNK):
        f = flat[s:s + _CHUNK]
        tt, out = t[:f.size], labels[s:s + _CHUNK]
        np.subtract(f, lo_w, out=tt)
        tt *= scale_w
        np.clip(tt, 0, _LUT_BUCKETS - 1, out=tt)
        np.take(lut, tt.astype(np.int32), out=out, mode="clip")
        step = np.flatnonzero(f > upper[out])
        while step.size:
            out[step] += 1
            step = step[f[step] > upper[out[step]]]
        step = np.flatnonzero(f <= bnd[out])
        while step.size:
            out[step] -= 1
            step = step[f[step] <= bnd[out[step]]]
    return labels.reshape(shape)


def _sse(flat, sw, c64, labels, e=0):
    """Sum of (sw-weighted) squared errors of `flat` against ``c64[labels]``, in float64.

    With `e`, the errors are taken between values scaled by ``2**-e`` (so that
    their squares stay finite) and the sum is scaled back: inf if it exceeds
    the float64 range.
    """
    total = 0.0
    d = np.empty(min(_CHUNK, flat.size))
    c64 = _scaled(c64, e)
    for s in range(0, flat.size, _CHUNK):
        dd = d[:min(_CHUNK, flat.size - s)]
        np.take(c64, labels[s:s + _CHUNK], out=dd, mode="clip")
        np.subtract(_scaled(flat[s:s + _CHUNK], e), dd, out=dd)
        if sw is None:
            total += dot(dd, dd)
        else:
            dd *= dd
            total += dot(dd, sw[s:s + _CHUNK])
    return _unscaled(total, 2 * e) if e else total


def _apply(x, sw, fit, keep_zeros, e=0, dtype=None):
    """Round centroids to x's dtype and assign every entry: (values, labels, centroids, sse).

    `e`: the SSE is summed over values scaled by ``2**-e`` (:func:`_sse`).
    `dtype`: round the centroids to this dtype instead (x: float64 points
    divided by their channel's scale).

    With keep_zeros, 0.0 is one of the centroids whenever the tensor holds a
    zero, and every zero gets its label (also when a midpoint rounds to 0,
    which happens next to a subnormal centroid).
    """
    # rounded to x's dtype, sorted in float64 (NumPy's float16 sort is unreliable)
    c64 = np.unique(fit.centroids.astype(dtype or x.dtype).astype(np.float64))
    flat = x.ravel()
    labels = _nearest(flat, c64)
    if keep_zeros and fit.has_zero:
        z = int(np.searchsorted(c64, 0.0))
        if _nearest(np.zeros(1), c64)[0] != z:      # every zero got the label of 0.0
            labels[flat == 0] = z
    used = np.bincount(labels, minlength=c64.size) > 0
    if not used.all():
        remap = (np.cumsum(used) - 1).astype(np.int32)
        c64, labels = c64[used], remap[labels]
    c = c64.astype(dtype or x.dtype)
    values = c[labels]
    sse = _sse(flat, None if sw is None else sw.ravel(), c64, labels, e)
    return values.reshape(x.shape), labels.reshape(x.shape), c, sse


# --------------------------------------------------------------------------- public API

def cluster(weights, k, *, init=None, method="auto", keep_zeros=True, axis=None,
            group_size=None, per_channel_scale=False, lut_dtype=None,
            sample_weight=None, max_iter=300, tol=0.0, random_state=None, cluster_dim=None,
            rate=None):
    """Share weights: replace every entry of `weights` by one of at most `k` values.

    One-dimensional k-means over the entries of a tensor (or of each slice
    along `axis`, or of each group of slices), minimising the (weighted) sum
    of squared errors.

    Parameters
    ----------
    weights : array_like of float16, float32 or float64
        The tensor. Must be finite and non-empty. It is never modified.
    k : int >= 1
        Number of shared values per tensor (per slice with `axis`; per group
        with `group_size`). With `keep_zeros`, the zero counts as one of them.
    init : {'linear', 'density', 'random', 'forgy', 'kmeans++'} or array_like, optional
        Initial centroids for ``method='lloyd'`` (default 'linear'). An
        array gives the initial centroids themselves. Only 'lloyd' starts
        from an init: giving `init` with 'auto' or 'optimal' is a
        ValueError (they would ignore it). 'kmeans++' is the greedy variant
        (``2 + ln k`` candidates per step, as scikit-learn).
    method : {'auto', 'lloyd', 'optimal'}
        'lloyd' iterates from `init` to a fixed point; 'optimal' returns the
        global minimum of the SSE (exact dynamic program, O(k m log m) for m
        distinct values); 'auto' (default) solves the exact problem over
        coarse atoms (by segments for k >= 64) and finishes with Lloyd and
        exact windowed sweeps at full resolution: within 0.01 % of the
        optimum on the benchmark grid, at a few times the cost of a sort.
    keep_zeros : bool, default True
        Sparsity-preserving: every exact zero stays exactly 0.0 and 0.0 is
        one of the k values whenever the tensor holds a zero; the other
        centroids are fitted to the non-zeros, and each non-zero goes to its
        nearest centroid, the fixed zero included. With False, zeros are
        ordinary points.
    axis : int, optional
        The channel axis: cluster each slice along this axis separately
        (per channel), or each group of `group_size` slices; with
        `per_channel_scale`, the axis of the scales; with `cluster_dim`, the
        axis along which vectors are formed (one codebook per tensor).
    group_size : int >= 1, optional
        One LUT per block of `group_size` consecutive channels along `axis`
        (channels ``g * group_size`` to ``(g + 1) * group_size - 1`` share
        LUT g; the entries of a block are clustered together). When the
        channels are not a multiple of it, the last block is shorter (the
        remaining channels). ``group_size=1`` is exactly the per-channel
        result; ``group_size`` >= the number of channels is exactly the
        per-tensor one, with ``centroids`` of shape (1, k_used). Default:
        1 (per channel), or every channel with `per_channel_scale`. Needs
        `axis`.
    per_channel_scale : bool, default False
        Divide each channel (slice along `axis`) by its scale, the channel's
        largest magnitude ``max|w|`` (1.0 for a channel of zeros), and fit
        one LUT to the scaled entries (one per group with `group_size`),
        each weighted by its scale squared, so that the SSE of the
        reconstruction is what is minimised. ``values`` is ``scales[c] *
        centroids[labels]`` computed in the input dtype (one rounding of the
        product, as a runtime multiplying the stored scale and LUT entry
        would); zeros stay zero. Needs `axis`.
    lut_dtype : {'int8', 'uint8', 'float16', 'bfloat16', 'float8_e4m3'}, optional
        Every centroid is exactly representable in this dtype. 'int8': each
        LUT is ``lut_scales[g] * q`` for integers q in [-128, 127], with
        ``lut_scales[g] = max|x| / 127`` over the LUT's (scaled) entries,
        rounded up to a value whose products with every q are exact in the
        input dtype. 'uint8': ``lut_scales[g] * (q - lut_zero_points[g])``
        for q in [0, 255], affine over ``[min(x, 0), max(x, 0)]`` with an
        integer zero point (0.0 stays on the grid). 'float16', 'bfloat16',
        'float8_e4m3' (E4M3FN, largest 448): each centroid round-trips
        through the dtype unchanged (and through the input dtype). With
        'optimal' the result is the exact optimum over that grid (in 1-D
        the best grid point for a run of sorted weights is the one nearest
        its mean); the other methods round their centroids to the grid and
        iterate Lloyd on it, never above the SSE of the rounded centroids.
    sample_weight : array_like, optional
        Non-negative importance of each entry (same shape as `weights`, or
        broadcastable to it); the weighted SSE is minimised. Entries of
        importance zero do not move the centroids and are assigned to the
        nearest one; with `axis`, a slice (or group) of importance zero
        everywhere is fitted by plain SSE (all zero over the whole tensor
        is an error).
    max_iter : int, default 300
        Maximal number of Lloyd iterations.
    tol : float, default 0.0
        Stop Lloyd when an iteration lowers the SSE by at most ``tol * SSE``;
        0.0 runs to the exact fixed point.
    random_state : None, int or numpy.random.Generator
        Seed for the 'random', 'forgy' and 'kmeans++' inits. The same int
        gives the same result.
    cluster_dim : int >= 1, optional
        Vector palettization: share k codebook *vectors* of `cluster_dim`
        entries instead of k values. A vector is `cluster_dim` consecutive
        entries along `axis` (required): entries ``b * cluster_dim`` to
        ``(b + 1) * cluster_dim - 1`` of axis `axis`, at one position of every
        other axis. The length of `axis` must be divisible by `cluster_dim`
        (else a ValueError saying so). One codebook per tensor: ``centroids``
        has shape (k_used, cluster_dim), ``labels`` one entry per vector (the
        shape of `weights` with the length of `axis` divided by
        `cluster_dim`), and ``values`` is ``centroids[labels]`` laid out as
        `weights`. Solver (``method`` 'auto' or 'lloyd'; 'optimal' is a
        ValueError, k-means in d > 1 dimensions is NP-hard): greedy
        k-means++ seeding (Arthur & Vassilvitskii, SODA 2007; ``2 + ln k``
        candidates per step, as scikit-learn), or `init` as an array of shape
        (m, cluster_dim), then Lloyd to its fixed point (``tol > 0``: until
        the centres move by at most ``tol`` times the vectors' mean variance,
        scikit-learn's rule). With `keep_zeros` an all-zero vector stays
        all-zero (a pinned zero codeword that k counts); a vector with some
        zeros is an ordinary point. `sample_weight` must be equal over the
        entries of each vector (one weight per vector). Does not combine with
        `group_size`, `per_channel_scale` or `lut_dtype` (a ValueError). 1 (or
        None, the default) is scalar clustering, bit for bit.
    rate : float >= 0, optional
        Entropy-constrained clustering (ECSQ; Chou, Lookabaugh & Gray 1989):
        minimise ``SSE + rate * sum_j n_j * log2(n / n_j)`` (n_j entries with
        value j, the zeros kept zero counted in the zero's cell), the SSE plus
        `rate` times the bits an ideal entropy coder spends on the indices;
        ``rate=0`` is plain k-means. Cells are intervals of the sorted values,
        so a dynamic program is exact up to ``EXACT_POINTS`` (1024) distinct
        values; above, it is exact over that many atoms and a Lloyd-style ECSQ
        iteration refines it (the objective never increases). Entries are
        assigned by that rule, not to the nearest value; ``rate=0`` is
        exactly the result without it. One LUT per tensor:
        not with `axis`, `lut_dtype` or ``method='lloyd'``. See
        docs/clustering.md, "Entropy-constrained clustering".

    Returns
    -------
    ClusterResult
        ``values``, ``labels``, ``centroids``, ``sse``, ``n_iter``, and
        ``scales``, ``lut_scales``, ``lut_zero_points`` (None unless
        `per_channel_scale` or an integer `lut_dtype`).

    Notes
    -----
    Centroids are rounded to the input dtype and every entry is then assigned
    to its nearest rounded centroid (ties go to the lower value), so the output
    has at most k distinct values per tensor (per slice, per group; with
    `per_channel_scale` at most k per channel). When k is at least the
    number of distinct values, the result is the tensor itself (SSE 0) and
    ``centroids`` are its distinct values (on a `lut_dtype`, each one's
    nearest grid point). An all-zero tensor gives centroids ``[0.]``.

    Examples
    --------
    >>> import numpy as np
    >>> import weightshare
    >>> w = np.array([0.0, 0.1, 0.12, 0.0, -0.5, -0.52, 0.9], dtype=np.float32)
    >>> res = weightshare.cluster(w, 4)
    >>> res.centroids
    array([-0.51,  0.  ,  0.11,  0.9 ], dtype=float32)
    >>> res.values
    array([ 0.  ,  0.11,  0.11,  0.  , -0.51, -0.51,  0.9 ], dtype=float32)
    >>> res.labels
    array([1, 2, 2, 1, 0, 0, 3], dtype=int32)

    Groups of two channels (columns), one LUT of 2 values each:

    >>> w = np.array([[1., 2., 10., 20.], [3., 4., 30., 40.]], dtype=np.float32)
    >>> res = weightshare.cluster(w, 2, axis=1, group_size=2)
    >>> res.centroids
    array([[ 1.5,  3.5],
           [15. , 35. ]], dtype=float32)

    Vector palettization: pairs of consecutive rows (axis 0) share 2 codewords:

    >>> w = np.array([[1., 0., 5.], [2., 0., 6.], [1.1, 5.2, 0.], [2., 6., 0.]])
    >>> res = weightshare.cluster(w, 3, axis=0, cluster_dim=2, random_state=0)
    >>> res.labels.shape, res.centroids.shape
    ((2, 3), (3, 2))
    >>> res.values
    array([[1.05, 0.  , 5.1 ],
           [2.  , 0.  , 6.  ],
           [1.05, 5.1 , 0.  ],
           [2.  , 6.  , 0.  ]])
    """
    if check_cluster_dim(cluster_dim) > 1:
        if rate is not None and check_number(rate, "rate", 0) > 0:
            check_vector_options(cluster_dim, method, init, rate=rate)
        return _cluster_vectors(weights, k, cluster_dim, init=init, method=method,
                               keep_zeros=keep_zeros, axis=axis, group_size=group_size,
                               per_channel_scale=per_channel_scale, lut_dtype=lut_dtype,
                               sample_weight=sample_weight, max_iter=max_iter, tol=tol,
                               random_state=random_state)
    x, k, init, keep_zeros, max_iter, tol = _check_common(weights, k, init, method,
                                                          keep_zeros, max_iter, tol)
    group_size, per_channel_scale = _check_lut_layout(axis, group_size, per_channel_scale,
                                                       lut_dtype)
    sw = None if sample_weight is None else check_sample_weight(sample_weight, x.shape)
    if rate is not None and check_number(rate, "rate", 0) > 0:    # rate=0: plain k-means
        return _entropy_constrained(x, sw, k, rate, keep_zeros, axis, lut_dtype, method)
    rng = check_random_state(random_state)
    e, f = _exponent(x), _weight_exponent(sw)
    if f:           # only the weights' ratios matter; the SSE is scaled back
        sw = _scaled(sw, f)
    if axis is None:
        return _per_tensor(x, sw, f, k, init, method, keep_zeros, max_iter, tol, rng, e,
                           lut_dtype)
    ax = check_axis(axis, x.ndim)
    n_ch = x.shape[ax]
    if group_size is None:
        group_size = n_ch if per_channel_scale else 1
    if group_size >= n_ch and not per_channel_scale:    # one group: the per-tensor result
        res = _per_tensor(x, sw, f, k, init, method, keep_zeros, max_iter, tol, rng, e,
                          lut_dtype)
        return res._replace(centroids=res.centroids[None], lut_scales=_row(res.lut_scales),
                            lut_zero_points=_row(res.lut_zero_points))
    xm = np.moveaxis(x, ax, 0)
    swm = None if sw is None else np.moveaxis(sw, ax, 0)
    values = np.empty(xm.shape, dtype=x.dtype)
    labels = np.empty(xm.shape, dtype=np.int32)
    scales = _channel_scales(xm) if per_channel_scale else None
    rows, grids, sse, n_iter = [], [], 0.0, 0
    for g0 in range(0, n_ch, group_size):
        g1 = min(g0 + group_size, n_ch)
        xb = xm[g0:g1]
        swb = None if swm is None else swm[g0:g1]
        if scales is not None:
            sb = scales[g0:g1].reshape((-1,) + (1,) * (x.ndim - 1))
            pts = xb / sb.astype(np.float64)
            rel = np.square(sb / np.float64(sb.max()))   # the SSE is sum(s**2 (x/s - c)**2)
            swb = np.broadcast_to(rel, xb.shape) if swb is None else swb * rel
        else:
            pts = xb
        grid = None if lut_dtype is None else make_grid(lut_dtype, pts, x.dtype)
        # a slice of zero importance everywhere (an input that is always zero): any values
        # cost nothing, so it is fitted by plain SSE
        fit_sw = swb if swb is None or swb.any() else None
        try:
            fit = _fit(pts, fit_sw, k, init, method, keep_zeros, max_iter, tol, rng,
                       0 if scales is not None else e, grid)
        except ValueError as exc:
            where = (f"slice {g0}" if g1 - g0 == 1 else f"channels {g0} to {g1 - 1}")
            raise ValueError(f"{where} along axis {ax}: {exc}") from None
        if scales is not None:
            _, labels[g0:g1], c, _ = _apply(pts, swb, fit, keep_zeros, dtype=x.dtype)
            values[g0:g1] = sb * c[labels[g0:g1]]
        else:
            values[g0:g1], labels[g0:g1], c, s = _apply(xb, swb, fit, keep_zeros, e)
            sse += s
        rows.append(c)
        grids.append(grid)
        n_iter += fit.n_iter
    if scales is not None:
        sse = _dense_sse(xm, values, swm, e)
    width = max(r.size for r in rows)
    centroids = np.full((len(rows), width), np.nan, dtype=x.dtype)
    for i, r in enumerate(rows):
        centroids[i, :r.size] = r
    lut_scales, zero_points = _lut_params(grids, x.dtype)
    return ClusterResult(np.moveaxis(values, 0, ax), np.moveaxis(labels, 0, ax), centroids,
                         _unscaled(sse, f) if f else sse, n_iter, scales,
                         lut_scales, zero_points)


def check_cluster_dim(cluster_dim):
    """cluster_dim: None (scalar clustering, as 1) or an int >= 1; returned as an int."""
    return 1 if cluster_dim is None else check_int(cluster_dim, "cluster_dim", 1)


def check_vector_options(cluster_dim, method, init, **others):
    """What cluster_dim > 1 (vector palettization) does not combine with: a ValueError naming it.

    `others`: the LUT layout options by name (given when not None/False).
    """
    for name, value in others.items():
        if value is not None and value is not False:
            raise ValueError(f"cluster_dim={cluster_dim} does not combine with {name}={value!r}: "
                             "vector palettization fits one codebook of vectors per tensor")
    if method == "optimal":
        raise ValueError(f"method='optimal' has no exact solver for vectors (cluster_dim="
                         f"{cluster_dim}: k-means in more than one dimension is NP-hard); use "
                         "method='auto' or 'lloyd' (both: greedy k-means++, then Lloyd)")
    if isinstance(init, str) and init != "kmeans++":
        raise ValueError(f"init={init!r} is one-dimensional; with cluster_dim={cluster_dim} init "
                         f"must be 'kmeans++' or an array of shape (m, {cluster_dim})")


def _cluster_vectors(weights, k, cluster_dim, *, init, method, keep_zeros, axis, group_size,
                     per_channel_scale, lut_dtype, sample_weight, max_iter, tol, random_state):
    """cluster() with cluster_dim > 1: validate once, fit a codebook of vectors (_kmeans/_vector)."""
    x = check_weights(weights)
    k = check_k(k)
    check_choice(method, METHODS, "method")
    if isinstance(init, str):
        check_choice(init, tuple(INITS), "init")
    check_init_method(init, method)
    check_vector_options(cluster_dim, method, init, group_size=group_size,
                         per_channel_scale=per_channel_scale, lut_dtype=lut_dtype)
    keep_zeros = check_flag(keep_zeros, "keep_zeros")
    max_iter, tol = check_int(max_iter, "max_iter", 1), check_number(tol, "tol", 0)
    if axis is None:
        raise ValueError(f"cluster_dim={cluster_dim} needs axis: the axis along which vectors of "
                         f"{cluster_dim} consecutive entries are formed (e.g. axis=0)")
    ax = check_axis(axis, x.ndim)
    if x.shape[ax] % cluster_dim:
        raise ValueError(f"cluster_dim={cluster_dim} must divide the length of axis {ax} "
                         f"({x.shape[ax]}): vectors are {cluster_dim} consecutive entries along it")
    if init is not None and not isinstance(init, str):
        try:
            init = np.asarray(init, dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"init must be 'kmeans++' or an array of shape (m, {cluster_dim}); "
                            f"got {init!r}") from None
        if init.ndim != 2 or init.shape[1] != cluster_dim or not 1 <= init.shape[0] <= k:
            raise ValueError(f"init as an array must have shape (m, {cluster_dim}) with "
                             f"1 <= m <= k={k}; got shape {init.shape}")
        if not np.isfinite(init).all():
            raise ValueError("init as an array must be finite")
    sw = None
    if sample_weight is not None:
        sw = to_vectors(check_sample_weight(sample_weight, x.shape), ax, cluster_dim)
        if (sw != sw[:, :1]).any():
            raise ValueError(f"sample_weight must be the same for the {cluster_dim} entries of "
                             f"each vector with cluster_dim={cluster_dim} (one weight per vector)")
        sw = sw[:, 0]
    rng = check_random_state(random_state)
    e, f = _exponent(x), _weight_exponent(sw)
    if f:           # only the weights' ratios matter; the SSE is scaled back
        sw = _scaled(sw, f)
    values, labels, codebook, n_iter = fit_vectors(x, ax, cluster_dim, k, sw, keep_zeros, rng,
                                                   init, max_iter, tol, e)
    swd = None if sw is None else np.repeat(sw, cluster_dim)
    sse = _dense_sse(to_vectors(x, ax, cluster_dim).reshape(-1),
                     to_vectors(values, ax, cluster_dim).reshape(-1), swd, e)
    return ClusterResult(values, labels, codebook, _unscaled(sse, f) if f else sse, n_iter)


def _entropy_constrained(x, sw, k, lam, keep_zeros, axis, lut_dtype, method):
    """:func:`cluster` with ``rate=lam`` (one LUT per tensor): see :mod:`._kmeans._ecsq`."""
    if axis is not None or lut_dtype is not None or method == "lloyd":
        given = ("axis" if axis is not None else "lut_dtype" if lut_dtype is not None
                 else "method='lloyd'")
        raise ValueError(f"rate={lam!r} (entropy-constrained clustering) fits one LUT per "
                         f"tensor with its own solver: not with {given}")
    flat = x.reshape(-1)
    zero = (flat == 0) if keep_zeros else np.zeros(flat.size, dtype=bool)
    n_zero = int(np.count_nonzero(zero))
    rest = flat[~zero].astype(np.float64) if n_zero else flat.astype(np.float64)
    if rest.size == 0:       # all zeros (or empty)
        c = np.zeros(1, dtype=x.dtype)
        return ClusterResult(np.zeros_like(x), np.zeros(x.shape, dtype=np.int32), c, 0.0, 0)
    if n_zero and k < 2:
        raise ValueError(f"k={k} cannot hold the fixed zero plus one non-zero value: with "
                         "keep_zeros=True and a tensor holding zeros and non-zeros, k must be "
                         ">= 2 (or pass keep_zeros=False)")
    u, inv = np.unique(rest, return_inverse=True)
    cs = np.bincount(inv, minlength=u.size).astype(np.float64)
    ws = cs if sw is None else np.bincount(inv, weights=sw.reshape(-1)[~zero],
                                           minlength=u.size)
    c, lab_u, _ = ecsq_fit(u, ws, cs, k, float(lam), n_zero > 0, n_zero)
    # rounded to the dtype; centroids that round together merge
    cr, merge = np.unique(c.astype(x.dtype).astype(np.float64), return_inverse=True)
    labels = np.empty(flat.size, dtype=np.int32)
    labels[~zero] = merge[lab_u[inv]]
    if n_zero:
        labels[zero] = int(np.searchsorted(cr, 0.0))
    used = np.bincount(labels, minlength=cr.size) > 0
    if not used.all():
        remap = (np.cumsum(used) - 1).astype(np.int32)
        cr, labels = cr[used], remap[labels]
    cd = cr.astype(x.dtype)
    sse = _sse(flat, None if sw is None else sw.reshape(-1), cr, labels)
    return ClusterResult(cd[labels].reshape(x.shape), labels.reshape(x.shape), cd, sse, 0)


def _check_lut_layout(axis, group_size, per_channel_scale, lut_dtype):
    """The LUT layout options of :func:`cluster`, checked (group_size and per_channel_scale
    need an axis)."""
    group_size, per_channel_scale = check_lut_options(group_size, per_channel_scale, lut_dtype)
    if axis is None and (group_size is not None or per_channel_scale):
        given = f"group_size={group_size}" if group_size is not None else \
            "per_channel_scale=True"
        raise ValueError(f"{given} needs axis (the channel axis, e.g. axis=-1)")
    return group_size, per_channel_scale


def check_lut_options(group_size, per_channel_scale, lut_dtype):
    """group_size (None or int >= 1), per_channel_scale (bool), lut_dtype (None or a name):
    (group_size, per_channel_scale) checked (cluster and cluster_file)."""
    if group_size is not None:
        group_size = check_int(group_size, "group_size", 1)
    if lut_dtype is not None:
        check_choice(lut_dtype, tuple(LUT_DTYPES), "lut_dtype")
    return group_size, check_flag(per_channel_scale, "per_channel_scale")


def _per_tensor(x, sw, f, k, init, method, keep_zeros, max_iter, tol, rng, e, lut_dtype):
    grid = None if lut_dtype is None else make_grid(lut_dtype, x, x.dtype)
    fit = _fit(x, sw, k, init, method, keep_zeros, max_iter, tol, rng, e, grid)
    values, labels, c, sse = _apply(x, sw, fit, keep_zeros, e)
    lut_scales, zero_points = _lut_params([grid], x.dtype)
    return ClusterResult(values, labels, c, _unscaled(sse, f) if f else sse, fit.n_iter,
                         None, None if lut_scales is None else lut_scales[0],
                         None if zero_points is None else zero_points[0], fit.n_distinct)


def _row(a):
    return None if a is None else np.asarray(a)[None]


def _lut_params(grids, dtype):
    """(lut_scales, lut_zero_points) of integer grids, else (None, None)."""
    if not grids or grids[0] is None or grids[0].scale is None:
        return None, None
    return (np.array([g.scale for g in grids], dtype=dtype),
            np.array([g.zero_point for g in grids], dtype=np.int32))


def _channel_scales(xm):
    """max|w| of each channel (axis 0 of `xm`), in its dtype; 1 for a channel of zeros."""
    s = np.abs(xm.reshape(xm.shape[0], -1)).max(axis=1)
    s[s == 0] = 1
    return s


def _dense_sse(x, values, sw, e):
    """sum(sw * (x - values)**2) in float64 (terms scaled by ``2**-e``, the sum scaled back)."""
    x, v = x.reshape(-1), values.reshape(-1)
    w = None if sw is None else np.broadcast_to(sw, values.shape).reshape(-1)
    total = 0.0
    for s in range(0, x.size, _CHUNK):
        d = _scaled(x[s:s + _CHUNK].astype(np.float64) - v[s:s + _CHUNK], e)
        d *= d
        total += float(d.sum()) if w is None else dot(d, w[s:s + _CHUNK])
    return _unscaled(total, 2 * e) if e else total


def init_centroids(weights, k, *, init="linear", keep_zeros=True, random_state=None):
    """Initial centroids as :func:`cluster` with ``method='lloyd'`` would start from.

    Parameters
    ----------
    weights : array_like of float
    k : int >= 1
    init : {'linear', 'density', 'random', 'forgy', 'kmeans++'}
    keep_zeros : bool
        With zeros in `weights`, 0.0 is one of the returned centroids and the
        others are fitted to the non-zeros.
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    ndarray of the input dtype, sorted ascending, distinct, at most k entries
    (the distinct values themselves when k is at least their number).

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> weightshare.init_centroids(np.array([0., 1., 2., 3., 4.]), 3, keep_zeros=False)
    array([0., 2., 4.])
    """
    x, k, init, keep_zeros, _, _ = _check_common(weights, k, init, "lloyd", keep_zeros, 1, 0.0)
    if not isinstance(init, str):
        raise TypeError(f"init must be one of {', '.join(map(repr, INITS))}; got an array")
    rng = check_random_state(random_state)
    pts = reduce_points(x, None, keep_zeros)
    zero = [0.0] if pts.has_zero else []
    k_free = k - int(pts.has_zero)
    if pts.values.size == 0:
        return np.zeros(1, dtype=x.dtype)
    if k_free < 1:
        raise ValueError(f"k={k} cannot hold the fixed zero plus one non-zero value: with "
                         "keep_zeros=True and a tensor holding zeros and non-zeros, k must be "
                         ">= 2 (or pass keep_zeros=False)")
    if k_free >= pts.n_distinct:
        c = pts.values
    else:
        e = _exponent(x)
        c = INITS[init](_scaled(pts.values, e), pts.weights, k_free, rng, pts.has_zero)
        c = np.ldexp(c, e) if e else c
    return np.unique(np.concatenate((c, zero)).astype(x.dtype).astype(np.float64)).astype(x.dtype)


def assign(weights, centroids):
    """Index of the nearest centroid for every entry of `weights`.

    Parameters
    ----------
    weights : array_like of float
    centroids : array_like of float, 1-D, any order

    Returns
    -------
    ndarray of int32, shape of `weights`
        Index into `centroids` as given. Ties (an entry exactly half-way) go
        to the smaller centroid value; among equal centroids, to the first.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> weightshare.assign(np.array([0.1, 0.4, 0.9]), [1.0, 0.0])
    array([1, 1, 0], dtype=int32)
    """
    x = check_weights(weights, allow_empty=True)
    c = check_weights(centroids, name="centroids")
    if c.ndim != 1:
        raise ValueError(f"centroids must be 1-D; got shape {c.shape}")
    order = np.argsort(c.astype(np.float64), kind="stable")
    labels = _nearest(x, c[order].astype(np.float64))
    return order[labels].astype(np.int32)
