"""Exact 1-D k-means by dynamic programming.

The optimal k-means partition of points on a line consists of contiguous runs
of the sorted points, so the optimum follows from the dynamic program

    D[j][b] = min_{a < b} D[j-1][a] + cost(a, b),

where ``cost(a, b)`` is the (weighted) sum of squared deviations of sorted
points ``a .. b-1`` from their mean, evaluated in O(1) from prefix sums
(Wang & Song, "Ckmeans.1d.dp: optimal k-means clustering in one dimension by
dynamic programming", The R Journal 3(2), 2011). The cost matrix satisfies the
quadrangle (Monge) inequality, so the minimising ``a`` is non-decreasing in
``b`` and each row can be solved by divide and conquer over ``b``
(Grønlund, Larsen, Mathiasen, Nielsen, Schneider & Song, "Fast exact k-means,
k-medians and Bregman divergence clustering in 1D", arXiv:1701.07204, 2017).

Here every level of that recursion is evaluated at once with NumPy, its
sub-problems kept in order of b so that their brackets tile the points: one
contiguous slice per bracket while they are few and long, one pass over the
span they tile while they average a few candidates, ragged index arrays
below that. A row costs O(m log m) work in O(log m) vectorised steps, and the
solver O(k m log m) time for m distinct values. The previous row's
arg-minima bound each row's from below (Wang & Song 2011): they narrow the
brackets, and a row whose bands ``[lower[b], b-1]`` are small is searched in
one step. Backtracking stores one int32 row of arg-minima per cluster
(4 k m bytes).

The sparsity-preserving variant fixes one centroid at exactly 0.0: a virtual
point of weight zero is inserted at 0 and any run containing it costs
``sum(w x**2)`` (its centroid is pinned to 0) instead of the variance. This is
the limit of giving that point an infinite weight, so the cost matrix stays
Monge and the same recursion is exact.
"""

import numpy as np

from ._dot import dot

__all__ = ["Prefix", "optimal_partition", "row_minima", "partition_centroids", "STORE_LIMIT"]


class Prefix:
    """Prefix sums of a weighted sorted point set, centred for precision.

    Attributes ``W``, ``S``, ``Q`` hold the cumulative weight, weighted sum and
    weighted sum of squares of ``x - mu`` (length m + 1). ``z`` is the index of
    the virtual zero point (weight 0, centroid pinned to 0) or -1.
    """

    def __init__(self, x, w, z=-1, insert=False):
        """Sums of points `x` (sorted) with weights `w`.

        With `insert`, a virtual point 0.0 of weight 0 is placed at index `z`
        (before ``x[z]``) without copying `x`: the sums then have length
        m + 2 and ``self.m`` counts the virtual point.
        """
        m = self.m = x.size + int(insert)
        self.z = z
        self.grid = None        # a Grid (weightshare._codec._lut): centroids restricted to it
        self._work = {}         # work arrays of the DP steps, kept between rows (_buffer)
        self.W = np.empty(m + 1)
        self.S = np.empty(m + 1)
        self.Q = np.empty(m + 1)
        self.W[0] = self.S[0] = self.Q[0] = 0.0
        # terms built in place in the output buffers (no temporaries of size m)
        W, S, Q = self.W[1:], self.S[1:], self.Q[1:]
        if insert:      # the virtual point: w = 0, x = 0
            S[:z], S[z], S[z + 1:] = w[:z], 0.0, w[z:]
            Q[:z], Q[z], Q[z + 1:] = x[:z], 0.0, x[z:]
            np.cumsum(S, out=W)
            self.mu = dot(w, x) / float(W[-1])
            Q -= self.mu                        # x - mu
            S *= Q                              # w (x - mu)
        else:
            np.cumsum(w, out=W)
            self.mu = dot(w, x) / float(W[-1])
            np.subtract(x, self.mu, out=Q)      # x - mu
            np.multiply(w, Q, out=S)            # w (x - mu)
        Q *= S                                  # w (x - mu)**2
        np.cumsum(S, out=S)
        np.cumsum(Q, out=Q)

    def cost(self, a, b):
        """Cost of the run of points ``a .. b-1`` (prefix indices, arrays)."""
        dw = self.W[b] - self.W[a]
        ds = self.S[b] - self.S[a]
        dq = self.Q[b] - self.Q[a]
        with np.errstate(divide="ignore", invalid="ignore"):  # the lone virtual point
            free = dq - ds * ds / dw + _off_grid(self, ds, dw)
        if self.z < 0:
            return free
        pinned = (a <= self.z) & (b > self.z)
        if not pinned.any():
            return free
        mu = self.mu
        return np.where(pinned, dq + 2.0 * mu * ds + mu * mu * dw, free)


def row_minima(F, P, q_lo, q_hi, p_lo, lower=None):
    """Minimise ``F[a] + cost(a, b)`` over ``a in [p_lo, b-1]`` for each b in [q_lo, q_hi].

    Divide and conquer over b, one NumPy step per recursion level. Any
    minimiser is valid for narrowing the brackets (the matrix is Monge).
    ``cost(a, b) = Q[b] - Q[a] + extra(a, b)`` and ``Q[b]`` is constant for a
    given b, so candidates are compared on ``G[a] + extra(a, b)`` with
    ``G = F - Q`` and ``Q[b]`` is added once per b.

    `q_lo`, `q_hi`, `p_lo` may also be equal-length integer arrays: several
    independent sub-problems over disjoint, ascending ranges of b, solved
    together (one NumPy step per level for all of them).

    `lower` (optional, ``lower[b - min(q_lo)]``): a lower bound on a minimiser for each b,
    such as the arg-minima of the previous DP row (the last run of an
    optimal partition into j runs starts no earlier than that of one into
    j - 1 runs, for any choice of minimisers; Wang & Song 2011). When the
    bands ``[lower[b], b-1]`` hold few candidates, every b is searched in one
    step over its band instead of by divide and conquer.

    Returns (values, argmins) for b in [min(q_lo), max(q_hi)]; entries of b
    outside every range hold inf and 0.
    """
    return _row_minima(F, P, q_lo, q_hi, p_lo, lower)


def _row_minima(F, P, q_lo, q_hi, p_lo, lower=None, p_hi=None, G=None):
    """:func:`row_minima`, with candidates also capped at `p_hi` (a scalar: a minimiser of
    some b' > q_hi, which bounds those of every b <= q_hi from above) and ``G = F - Q``
    given (else computed)."""
    ilo = np.atleast_1d(np.asarray(q_lo, dtype=np.int64))
    ihi = np.atleast_1d(np.asarray(q_hi, dtype=np.int64))
    first, last = int(ilo[0]), int(ihi[-1])
    # the sub-problems in order of b, one column each: b in [ilo, ihi], a in [alo, ahi]
    sub = np.empty((4, ilo.size), dtype=np.int64)
    sub[0], sub[1], sub[2], sub[3] = ilo, ihi, p_lo, ihi - 1
    if p_hi is not None:
        np.minimum(sub[3], p_hi, out=sub[3])
    opt = np.zeros(last - first + 1, dtype=np.int64)
    val = np.full(last - first + 1, np.inf)
    # 0, 1, 2, ...: offsets within a level's candidates (at most about twice its b)
    ramp = _buffer(P, "ramp", 2 * (last - first + 2), np.int64, np.arange)
    Q = P.Q
    if G is None:
        G = F - Q
    if lower is not None:
        n_b = ihi - ilo + 1
        ends = np.cumsum(n_b)
        b = ramp[:int(ends[-1])] + np.repeat(ilo - (ends - n_b), n_b)
        lo = np.maximum(np.repeat(sub[2], n_b), lower[b - first])
        if p_hi is None:
            lens = b - lo
        else:
            lo = np.minimum(lo, p_hi)
            lens = np.minimum(b, p_hi + 1) - lo
        cells = int(lens.sum())
        # (and no more memory than a level of divide and conquer takes)
        if cells <= min(_BAND * b.size * np.log2(b.size + 1), 2 * b.size + (1 << 17)):
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                best, segmin = _ragged_minima(G, P, lo, lens, b, ramp, ordered=False)
            opt[b - first] = best
            val[b - first] = segmin + Q[b]
            return val, opt
    # the lone virtual point (0/0) and points between brackets give garbage
    # that is never selected
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        while sub.shape[1]:
            ilo, ihi, alo, ahi = sub
            mid = ilo + ihi
            mid >>= 1
            hi = np.minimum(ahi, mid - 1)
            if lower is not None:       # narrows this b's bracket (not its children's)
                # (past hi, hi itself is a minimiser: see the Monge argument)
                alo = np.minimum(np.maximum(alo, lower[mid - first]), hi)
            lens = hi - alo
            lens += 1
            total = int(lens.sum())
            if total >= _SLICE_MIN * mid.size:      # few long brackets: one slice each
                best, segmin = _bracket_minima(G, P, alo, hi, mid)
            elif total >= _SPAN_MIN * mid.size and int(hi[-1] - alo[0]) < 2 * total:
                best, segmin = _span_minima(G, P, alo, hi, mid)
            else:
                best, segmin = _ragged_minima(G, P, alo, lens, mid, ramp)
            opt[mid - first] = best
            segmin += Q[mid]
            val[mid - first] = segmin
            # the children, in order of b: left (ilo, mid-1, alo, best), right
            # (mid+1, ihi, best, ahi); a child with no b left is dropped
            ch = np.empty((4, mid.size, 2), dtype=np.int64)
            ch[:, :, 0] = sub
            ch[:, :, 1] = sub
            np.subtract(mid, 1, out=ch[1, :, 0])
            ch[3, :, 0] = best
            np.add(mid, 1, out=ch[0, :, 1])
            ch[2, :, 1] = best
            sub = ch.reshape(4, -1)[:, (ch[0] <= ch[1]).ravel()]
    return val, opt


#: Rows with a lower bound are searched band by band when the bands hold at
#: most this many times b log2(b) candidates (about what divide and conquer
#: evaluates, in one step instead of one per level).
_BAND = 2.0


def _off_grid(P, ds, dw):
    """``W (mean - g)**2`` of runs with centred sums `ds`, `dw`: what the grid point g
    nearest their mean adds to their cost (0.0 without a grid; see ``_codec._lut``)."""
    if P.grid is None:
        return 0.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mean = ds / dw
        mean += P.mu
        d = mean - P.grid.nearest(mean)
        d *= d
        d *= dw
    return d


def _pinned(mu, ds, dw):
    """``extra(a, b)`` of runs that hold the pinned zero, from ``S[b] - S[a]`` and ``W[b] - W[a]``.

    Such a run costs ``sum(w x**2)``; in the centred sums that is
    ``Q[b] - Q[a] + 2 mu ds + mu**2 dw``.
    """
    return (2.0 * mu) * ds + (mu * mu) * dw


#: Brackets at least this long on average are searched one slice at a time
#: (no index arrays; a Python step per bracket), shorter ones all at once.
_SLICE_MIN = 1024


def _bracket_minima(G, P, alo, hi, mid):
    """Last minimiser and minimum of G[a] + extra(a, b) for a in [alo, hi], b = mid."""
    W, S, z, mu = P.W, P.S, P.z, P.mu
    best = np.empty(mid.size, dtype=np.int64)
    segmin = np.empty(mid.size)
    for i, (lo, h, b) in enumerate(zip(alo.tolist(), hi.tolist(), mid.tolist())):
        ds = S[b] - S[lo:h + 1]
        dw = W[b] - W[lo:h + 1]
        if lo <= z < b:                         # runs from a <= z hold the pinned zero
            extra = np.where(np.arange(lo, h + 1) <= z, _pinned(mu, ds, dw),
                             _off_grid(P, ds, dw) - (ds * ds) / dw)
            v = G[lo:h + 1] + extra
        else:
            off = _off_grid(P, ds, dw)
            ds *= ds
            ds /= dw
            v = G[lo:h + 1] - ds
            if P.grid is not None:
                v += off
        a = v.size - 1 - int(np.argmin(v[::-1]))  # the last minimiser, as below
        best[i] = lo + a
        segmin[i] = v[a]
    return best, segmin


#: Brackets at least this long on average (and in order, tiling a span of
#: points) are searched together over that span: no index arrays.
_SPAN_MIN = 8


def _span_minima(G, P, alo, hi, mid):
    """The same for brackets in order of b that tile a span of points.

    Brackets ``[alo_i, hi_i]`` of sub-problems in order of b share at most an
    endpoint (``hi_i <= alo_{i+1}``), so one pass over the span evaluates
    every point for the bracket it starts in, from contiguous prefix sums;
    a shared endpoint is evaluated once more for the bracket it ends.
    """
    W, S, z, mu = P.W, P.S, P.z, P.mu
    n = mid.size
    a0, a1 = int(alo[0]), int(hi[-1]) + 1     # the span: points a0 .. a1-1
    span = a1 - a0
    nxt = np.append(alo[1:], a1)
    end = np.minimum(hi + 1, nxt)             # bracket i owns points alo_i .. end_i - 1
    own = _buffer(P, "own", span, np.int64)   # the bracket each point starts in
    own.fill(0)
    np.add.at(own, alo[1:] - a0, 1)
    np.cumsum(own, out=own)
    ds = _buffer(P, "ds", span + 1)
    dw = _buffer(P, "dw", span + 1)
    v = _buffer(P, "v", span + 1)
    np.take(S[mid], own, out=ds[:span], mode="clip")
    ds[:span] -= S[a0:a1]
    np.take(W[mid], own, out=dw[:span], mode="clip")
    dw[:span] -= W[a0:a1]
    pin = None
    if z >= 0 and mid[-1] > z:  # runs from a <= z to mid > z hold the pinned zero
        p0 = int(alo[np.searchsorted(mid, z, side="right")])
        if p0 <= min(z, a1 - 1):
            pin = slice(p0 - a0, min(z, a1 - 1) - a0 + 1)
            pinned = _pinned(mu, ds[pin], dw[pin])
    v[:span] = G[a0:a1]
    v[span] = np.inf
    off = _off_grid(P, ds, dw)
    ds *= ds        # points past a bracket's end (before the next one starts): garbage
    ds /= dw
    v -= ds
    if P.grid is not None:
        v += off
    if pin is not None:
        v[pin] = G[a0 + pin.start:a0 + pin.stop] + pinned
    cuts = np.empty(2 * n, dtype=np.int64)
    cuts[0::2] = alo - a0
    cuts[1::2] = end - a0
    segmin = np.minimum.reduceat(v, cuts)[0::2]
    segmin[end <= alo] = np.inf                # owns no point
    # arg-minima: points equal to their bracket's minimum (any one will do)
    np.take(segmin, own, out=dw[:span], mode="clip")
    hit = np.flatnonzero(v[:span] == dw[:span])
    i = own[hit]
    hit = hit[hit < end[i] - a0]
    best = np.empty(n, dtype=np.int64)
    best[own[hit]] = hit + a0
    # the endpoint a bracket shares with the next one
    sh = np.flatnonzero(end <= hi)
    if sh.size:
        a, b = hi[sh], mid[sh]
        dse, dwe = S[b] - S[a], W[b] - W[a]
        ve = G[a] - dse * dse / dwe + _off_grid(P, dse, dwe)
        if z >= 0:
            pe = (a <= z) & (b > z)
            ve[pe] = G[a[pe]] + _pinned(mu, dse[pe], dwe[pe])
        better = ve < segmin[sh]
        segmin[sh[better]] = ve[better]
        best[sh[better]] = a[better]
    return best, segmin


def _buffer(P, name, size, dtype=np.float64, make=np.empty):
    """A work array of `size` entries kept on `P` between calls (``make(n, dtype=)``).

    The ragged steps touch arrays of m entries at every level of every row;
    fresh ones each time cost page faults that took about a third of the run.
    """
    buf = P._work.get(name)
    if buf is None or buf.size < size:
        buf = P._work[name] = make(size + (size >> 2), dtype=dtype)
    return buf[:size]


def _ragged_minima(G, P, alo, lens, mid, ramp, ordered=True):
    """The same for many short brackets at once, over ragged index arrays.

    `ordered`: the brackets are in order of b and overlap at most at an
    endpoint (the candidates are then non-decreasing).
    """
    W, S, z, mu = P.W, P.S, P.z, P.mu
    starts = np.cumsum(lens)
    total = int(starts[-1])
    starts -= lens
    # bracket of each candidate: 0, 0, 1, 1, 1, 2, ... (every bracket is non-empty)
    sid = _buffer(P, "sid", total, np.int64)
    sid.fill(0)
    sid[starts[1:]] = 1
    np.cumsum(sid, out=sid)
    cand = _buffer(P, "cand", total, np.int64)
    np.take(alo - starts, sid, out=cand, mode="clip")
    if ramp.size < total:       # (a banded row searches more than a row's worth)
        ramp = _buffer(P, "ramp", total, np.int64, np.arange)
    cand += ramp[:total]
    tmp = _buffer(P, "tmp", total)
    ds = _buffer(P, "ds", total)
    np.take(S[mid], sid, out=ds, mode="clip")
    ds -= np.take(S, cand, out=tmp, mode="clip")
    dw = _buffer(P, "dw", total)
    np.take(W[mid], sid, out=dw, mode="clip")
    dw -= np.take(W, cand, out=tmp, mode="clip")
    pin = None
    if z >= 0 and not ordered:      # runs from a <= z to mid > z hold the pinned zero
        pin = np.flatnonzero((cand <= z) & np.take(mid > z, sid))
    elif z >= 0 and mid[-1] > z:
        # the same runs; in order, cand is non-decreasing: these candidates are one slice
        p0 = int(starts[np.searchsorted(mid, z, side="right")])
        p1 = p0 + int(np.searchsorted(cand[p0:], z, side="right"))
        if p0 < p1:
            pin = slice(p0, p1)
    if pin is not None:
        pinned = _pinned(mu, ds[pin], dw[pin])
    v = np.take(G, cand, out=tmp, mode="clip")
    off = _off_grid(P, ds, dw)
    ds *= ds
    ds /= dw
    v -= ds
    if P.grid is not None:
        v += off
    if pin is not None:
        v[pin] = G[cand[pin]] + pinned
    segmin = np.minimum.reduceat(v, starts)
    hit = np.flatnonzero(v == np.take(segmin, sid, out=dw, mode="clip"))
    best = np.empty(mid.size, dtype=np.int64)
    # any minimiser will do; with ties the last written one wins
    best[sid[hit]] = cand[hit]
    return best, segmin


#: Above this many stored arg-minima (k * m), backtracking recomputes rows
#: from checkpoints instead of keeping every row (memory O(m sqrt(k))).
STORE_LIMIT = 1 << 26


#: Rows longer than this many b are solved in chunks of it (see :func:`_chunked_row`).
ROW_CHUNK = 1 << 16


def _single_minimum(F, P, b, lo, hi):
    """(a, F[a] + cost(a, b)) minimising over a in [lo, hi], in slices of ROW_CHUNK."""
    best, a_best = np.inf, lo
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for s in range(lo, hi + 1, ROW_CHUNK):
            e = min(s + ROW_CHUNK, hi + 1)
            v = P.cost(np.arange(s, e), b)
            v += F[s:e]
            v[np.isnan(v)] = np.inf     # (no run of a real DP is NaN; never pick one)
            i = int(np.argmin(v))
            if v[i] < best:
                best, a_best = float(v[i]), s + i
    return a_best, best


def _chunked_row(F, P, q_lo, q_hi, p_lo, lower=None, val=None):
    """:func:`row_minima` of one range of b in O(ROW_CHUNK) work memory beyond the row.

    The divide and conquer keeps the brackets of a whole level (and the ragged
    steps their candidates): tens of bytes per b. Here the row is cut into
    chunks of ``ROW_CHUNK`` b: the b just past each chunk are solved first, by
    divide and conquer over those few b with one slice each (Monge: a
    minimiser of b' bounds those of every b < b' from above, of every b > b'
    from below), then each chunk between the bounds its neighbours give.
    The same minima as one call; among tied minimisers another may be chosen.
    Returns (values as float64, arg-minima as int32) for b in [q_lo, q_hi]; the values
    are written into `val` when given.
    """
    n = q_hi - q_lo + 1
    if n <= ROW_CHUNK:
        v, opt = row_minima(F, P, q_lo, q_hi, p_lo, lower)
        if val is not None:
            val[:] = v
        return v, opt.astype(np.int32)
    if val is None:
        val = np.empty(n)
    opt = np.empty(n, dtype=np.int32)
    # the last b of every chunk but the last: divide and conquer over them
    ends = list(range(q_lo + ROW_CHUNK - 1, q_hi, ROW_CHUNK))
    end_opt = [0] * len(ends)
    stack = [(0, len(ends) - 1, p_lo, q_hi - 1)]
    while stack:
        i0, i1, alo, ahi = stack.pop()
        if i0 > i1:
            continue
        i = (i0 + i1) // 2
        b = ends[i]
        lo = alo if lower is None else max(alo, int(lower[b - q_lo]))
        hi = min(ahi, b - 1)
        a, v = _single_minimum(F, P, b, min(lo, hi), hi)
        end_opt[i] = a
        val[b - q_lo], opt[b - q_lo] = v, a
        stack.append((i0, i - 1, alo, a))
        stack.append((i + 1, i1, a, ahi))
    G = F - P.Q
    starts = [q_lo] + [b + 1 for b in ends]
    for c, c0 in enumerate(starts):
        c1 = ends[c] - 1 if c < len(ends) else q_hi
        if c1 < c0:
            continue
        lo = p_lo if c == 0 else end_opt[c - 1]
        hi = end_opt[c] if c < len(ends) else None
        lw = None if lower is None else lower[c0 - q_lo:c1 - q_lo + 1]
        v, o = _row_minima(F, P, c0, c1, lo, lw, hi, G)
        val[c0 - q_lo:c1 - q_lo + 1] = v
        opt[c0 - q_lo:c1 - q_lo + 1] = o
    return val, opt


def _next_row(D, P, j, k, M, q_hi_cap=None, prev=None):
    """Row j of the DP from row j-1 (`D`): values (full length) and arg-minima.

    `prev`: (q_lo, arg-minima) of row j-1, which bound those of row j from below.
    """
    q_lo = j if j < k else M
    q_hi = M - (k - j) if q_hi_cap is None else min(M - (k - j), q_hi_cap)
    lower = None
    if prev is not None:
        lower = np.full(q_hi - q_lo + 1, j - 1, dtype=np.int32)
        p_lo, p_opt = prev
        b0, b1 = max(q_lo, p_lo), min(q_hi, p_lo + p_opt.size - 1)
        if b0 <= b1:
            lower[b0 - q_lo:b1 - q_lo + 1] = p_opt[b0 - p_lo:b1 - p_lo + 1]
    out = np.full(M + 1, np.inf)
    _, opt = _chunked_row(D, P, q_lo, q_hi, j - 1, lower, out[q_lo:q_hi + 1])
    return out, q_lo, opt


def optimal_partition(x, w, k, fixed_zero=False, grid=None):
    """Globally optimal partition of sorted distinct points into k runs.

    Parameters
    ----------
    x : ndarray of float64, strictly increasing (zeros excluded if fixed_zero)
    w : ndarray of float64, positive
    k : int, 1 <= k <= len(x) (+1 with fixed_zero)
    fixed_zero : bool
        One of the k centroids is pinned to 0.0.
    grid : weightshare._codec._lut.Grid, optional
        Centroids restricted to this grid (which holds 0.0): each run costs
        its squared deviations from the grid point nearest its mean.

    Returns
    -------
    bounds : ndarray of int64 of length k + 1
        Run j holds points ``bounds[j] .. bounds[j+1]-1`` of the (extended)
        point set; with fixed_zero, the extended set has the virtual zero
        inserted at index ``z``.
    z : int
        Index of the virtual zero in the extended set, or -1.
    xe, we : the extended point set.

    Notes
    -----
    Backtracking needs the arg-minima of every row. Up to ``STORE_LIMIT``
    entries they are kept (4 k m bytes); beyond, only every ceil(sqrt(k))-th
    row of values is kept and the rows in between are recomputed, block by
    block from the last, during backtracking (about twice the time, 12 m
    sqrt(k) bytes).
    """
    z = -1
    if fixed_zero:
        z = int(np.searchsorted(x, 0.0))
        x = np.insert(x, z, 0.0)
        w = np.insert(w, z, 0.0)
    P = Prefix(x, w, z)
    P.grid = grid
    M = x.size
    D = np.full(M + 1, np.inf)
    D[1:] = P.cost(np.zeros(M, dtype=np.int64), np.arange(1, M + 1))
    bounds = np.empty(k + 1, dtype=np.int64)
    bounds[0], bounds[k] = 0, M
    if k * M <= STORE_LIMIT:
        opts = {}
        for j in range(2, k + 1):
            D, q_lo, opt = _next_row(D, P, j, k, M, prev=opts.get(j - 1))
            opts[j] = (q_lo, opt)
        b = M
        for j in range(k, 1, -1):
            q_lo, opt = opts[j]
            b = int(opt[b - q_lo])
            bounds[j - 1] = b
        return bounds, z, x, w
    step = int(np.ceil(np.sqrt(k)))
    checkpoints = {1: D}
    prev = None
    for j in range(2, k + 1):
        D, q_lo, opt = _next_row(D, P, j, k, M, prev=prev)
        prev = (q_lo, opt)
        if (j - 1) % step == 0 and j < k:
            checkpoints[j] = D
    b = M
    starts = sorted(checkpoints)
    for i in range(len(starts) - 1, -1, -1):
        j0 = starts[i]
        j1 = starts[i + 1] if i + 1 < len(starts) else k
        D = checkpoints.pop(j0)
        opts = {}
        for j in range(j0 + 1, j1 + 1):
            D, q_lo, opt = _next_row(D, P, j, k, M, q_hi_cap=b, prev=opts.get(j - 1))
            opts[j] = (q_lo, opt)
        for j in range(j1, j0, -1):
            q_lo, opt = opts[j]
            b = int(opt[b - q_lo])
            bounds[j - 1] = b
    return bounds, z, x, w


def partition_centroids(x, w, bounds, z=-1, grid=None):
    """Weighted mean of each run (0.0 for the run holding the virtual zero).

    With `grid`, the grid point nearest that mean.
    """
    sw = np.add.reduceat(w, bounds[:-1])
    sx = np.add.reduceat(w * x, bounds[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        c = sx / sw
    if grid is not None:
        c = grid.nearest(c)
    if z >= 0:
        j = int(np.searchsorted(bounds, z, side="right")) - 1
        c[j] = 0.0
    return c
