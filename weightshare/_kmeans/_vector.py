"""Vector k-means (NumPy only): greedy k-means++ seeding, then Lloyd with Hamerly's bounds.

The solver behind ``weightshare.cluster(..., cluster_dim=d)`` (vector
palettization): n points of d coordinates (d small, a few entries of a
kernel), k codewords, weighted squared Euclidean distance.

- Seeding: greedy k-means++ (Arthur & Vassilvitskii, "k-means++: the
  advantages of careful seeding", SODA 2007; the greedy variant of their
  implementation and scikit-learn's ``KMeans(init="k-means++")``): each new
  centre is the best of ``2 + floor(ln k)`` candidates drawn in proportion to
  their weighted squared distance D² to the nearest centre so far, the one
  lowering the potential ``sum w D²`` most. O(n d k log k) time, O(n log k)
  memory (the candidates' distances to every point).
- Lloyd (Lloyd, IEEE Trans. Inf. Theory 28(2), 1982) with Hamerly's bounds
  (Hamerly, "Making k-means even faster", SDM 2010): each point keeps an upper
  bound on the distance to its centre and a lower bound on the distance to
  every other one; after the centres move, only the points whose bounds
  overlap are measured again, so late iterations touch few points. The
  assignment is exact (bounds are kept conservative against rounding), so the
  iterations are those of plain Lloyd. Distances to all k centres are taken
  ``chunk`` points at a time (``|x|² - 2 x·c + |c|²``, one matrix product per
  chunk): O(n d k) time per full pass, memory O(n d + k d + chunk k).

An empty cluster keeps its centre; centres flagged fixed (the pinned zero
codeword) never move. Every step lowers the weighted SSE or leaves it.
"""

import numpy as np

from ._dot import dot
from ._kpp import n_local_trials

__all__ = ["seed_vectors", "lloyd_vectors", "nearest_vectors", "kmeans_vectors", "potential",
           "to_vectors", "from_vectors", "fit_vectors"]

#: Distances to all centres are computed for this many (point, centre) pairs at a time.
_PAIRS = 1 << 18
#: Above this many centres the centre-centre half distances (O(k² d)) are not kept.
_MAX_CC = 2048


def _sqnorms(A):
    return np.einsum("ij,ij->i", A, A)


def _rows(k):
    return max(64, _PAIRS // max(k, 1))


def _d2_to(X, c):
    """Squared distances of the rows of X (n, d) to one point c (d,), directly (exact)."""
    out = np.zeros(X.shape[0])
    for j in range(X.shape[1]):
        t = X[:, j] - c[j]
        t *= t
        out += t
    return out


def seed_vectors(X, w, k, rng, fixed=None):
    """Greedy k-means++: up to k rows of `X` chosen as centres (besides `fixed`).

    Parameters
    ----------
    X : ndarray (n, d) float64
    w : ndarray (n,) float64, non-negative weights (positive sum)
    k : int >= 1, centres wanted besides `fixed`
    rng : numpy.random.Generator
    fixed : ndarray (f, d), optional: centres that count as chosen (the zero codeword)

    Returns
    -------
    ndarray (m, d), m <= k: the seeds (fewer when every point of positive weight
    already coincides with a centre).
    """
    n = X.shape[0]
    xx = _sqnorms(X)
    trials = n_local_trials(k)
    seeds = []
    if fixed is None or len(fixed) == 0:
        cw = np.cumsum(w)
        first = min(int(np.searchsorted(cw, rng.random() * cw[-1], side="right")), n - 1)
        seeds.append(X[first])
        d2 = _d2_to(X, X[first])
    else:
        d2 = np.min([_d2_to(X, c) for c in np.asarray(fixed, dtype=np.float64)], axis=0)
    while len(seeds) < k:
        cum = np.cumsum(w * d2)
        pot = float(cum[-1])
        if not pot > 0:
            break
        cand = np.minimum(np.searchsorted(cum, rng.random(trials) * pot, side="right"), n - 1)
        C = X[cand]
        dc = X @ C.T             # (n, trials): |x|² - 2 x·c + |c|², clipped at 0
        dc *= -2
        dc += _sqnorms(C)
        dc += xx[:, None]
        np.maximum(dc, 0, out=dc)
        np.minimum(dc, d2[:, None], out=dc)
        best = int(np.argmin(w @ dc))
        d2 = np.minimum(_d2_to(X, C[best]), d2)    # exact for the one kept
        seeds.append(C[best])
    return np.array(seeds).reshape(-1, X.shape[1])


def _nearest_two(Xc, xx, C, cc):
    """(labels, squared distance to the nearest, to the second nearest) of the rows `Xc`."""
    D = Xc @ C.T
    D *= -2
    D += cc
    lab = np.argmin(D, axis=1)
    r = np.arange(D.shape[0])
    best = D[r, lab] + xx
    if C.shape[0] > 1:
        D[r, lab] = np.inf
        second = D.min(axis=1) + xx
    else:
        second = np.full(D.shape[0], np.inf)
    return lab, np.maximum(best, 0), np.maximum(second, 0)


def nearest_vectors(X, C):
    """Index of the nearest row of `C` for every row of `X` (ties: the lower index), chunked."""
    labels = np.empty(X.shape[0], dtype=np.int64)
    cc, step = _sqnorms(C), _rows(C.shape[0])
    for s in range(0, X.shape[0], step):
        Xc = X[s:s + step]
        labels[s:s + step] = _nearest_two(Xc, _sqnorms(Xc), C, cc)[0]
    return labels


def _half_gaps(C):
    """Half the distance of each centre to its nearest other centre (0 when k is large)."""
    k = C.shape[0]
    if k < 2:
        return np.full(k, np.inf)
    if k > _MAX_CC:
        return np.zeros(k)
    d2 = np.zeros((k, k))
    for j in range(C.shape[1]):
        t = C[:, j][:, None] - C[:, j][None, :]
        d2 += t * t
    np.fill_diagonal(d2, np.inf)
    return 0.5 * np.sqrt(d2.min(axis=1))


def lloyd_vectors(X, w, C, fixed, max_iter, tol=0.0):
    """Lloyd's algorithm from centres `C` (Hamerly's bounds): (centres, labels, n_iter).

    `fixed`: bool (k,), centres that never move. Stops at the exact fixed point
    (no label changes), after `max_iter` iterations, or, with ``tol > 0``, when
    the centres moved by at most ``tol`` times the data's mean variance in total
    squared shift (scikit-learn's rule). The clusters' weighted sums are
    updated by the points that change cluster (recomputed every
    ``_REFRESH`` iterations), so a late iteration costs O(n) plus
    O(changed * k * d).
    """
    n, d = X.shape
    C = np.array(C, dtype=np.float64)
    k = C.shape[0]
    xx = _sqnorms(X)
    eps = 16 * np.finfo(np.float64).eps
    labels = np.full(n, -1, dtype=np.int64)
    u = np.empty(n)
    lo = np.empty(n)
    wx = w[:, None] * X
    pos = (w > 0).astype(np.int64)

    def totals():
        sums = np.stack([np.bincount(labels, weights=wx[:, j], minlength=k) for j in range(d)],
                        axis=1)
        return np.bincount(labels, weights=w, minlength=k), sums, np.bincount(labels, pos, k)

    def assign(idx, sums):
        """Full assignment of the points `idx`; the number of labels changed (sums updated)."""
        changed = 0
        cc = _sqnorms(C)
        slack = eps * float(cc.max(initial=0.0))
        step = _rows(k)
        for s in range(0, idx.size, step):
            ii = idx[s:s + step]
            Xc = X[ii]
            lab, _, second = _nearest_two(Xc, xx[ii], C, cc)
            moved = np.flatnonzero(lab != labels[ii])
            if moved.size and sums is not None:
                old, new, mi = labels[ii][moved], lab[moved], ii[moved]
                for tot, vals in ((sums[0], w[mi]), (sums[2], pos[mi])):
                    tot -= np.bincount(old, weights=vals, minlength=k).astype(tot.dtype)
                    tot += np.bincount(new, weights=vals, minlength=k).astype(tot.dtype)
                for j in range(d):
                    sums[1][:, j] -= np.bincount(old, weights=wx[mi, j], minlength=k)
                    sums[1][:, j] += np.bincount(new, weights=wx[mi, j], minlength=k)
            changed += moved.size
            labels[ii] = lab
            u[ii] = np.sqrt(_sqnorms(Xc - C[lab]))
            lo[ii] = np.sqrt(np.maximum(second - eps * xx[ii] - slack, 0.0))
        return changed

    assign(np.arange(n), None)
    sums = totals()
    if tol > 0:
        mean = np.average(X, axis=0, weights=w)
        threshold = tol * float(np.mean(np.average((X - mean) ** 2, axis=0, weights=w)))
    else:
        threshold = -1.0
    n_iter = 0
    bound = np.empty(n)
    while n_iter < max_iter:
        n_iter += 1
        if n_iter % _REFRESH == 0:
            sums = totals()
        new = C.copy()
        live = (sums[2] > 0) & ~fixed
        new[live] = sums[1][live] / sums[0][live, None]
        shift = np.sqrt(_sqnorms(new - C))
        C = new
        if not shift.any():
            n_iter -= 1     # nothing moved: the previous iteration reached the fixed point
            break
        u += shift[labels] * (1 + eps)
        lo -= float(shift.max()) * (1 + eps)
        np.maximum(lo, _half_gaps(C)[labels], out=bound)
        cand = np.flatnonzero(u > bound)
        if cand.size:
            u[cand] = np.sqrt(_d2_rows(X[cand], C[labels[cand]]))
            cand = cand[u[cand] > bound[cand]]
        changed = assign(cand, sums) if cand.size else 0
        if changed == 0 or dot(shift, shift) <= threshold:
            break
    return C, labels, n_iter


#: The clusters' sums are recomputed from scratch every this many iterations.
_REFRESH = 16


def _d2_rows(A, B):
    """Row-wise squared distances of A and B (same shape), directly."""
    t = A - B
    return _sqnorms(t)


def kmeans_vectors(X, w, k, rng, fixed=None, init=None, max_iter=300, tol=0.0):
    """Greedy k-means++ (or `init`) then Lloyd: (centres (m, d), labels (n,), n_iter).

    `fixed` (f, d): centres pinned in place (the zero codeword), rows 0..f-1 of
    the result; k counts them. `init` (m, d): the starting free centres instead
    of the seeding.
    """
    d = X.shape[1]
    fixed = np.zeros((0, d)) if fixed is None else np.asarray(fixed, dtype=np.float64)
    k_free = k - fixed.shape[0]
    if init is None:
        seeds = seed_vectors(X, w, k_free, rng, fixed)
    else:
        seeds = np.asarray(init, dtype=np.float64).reshape(-1, d)
    C = np.concatenate((fixed, seeds))
    is_fixed = np.arange(C.shape[0]) < fixed.shape[0]
    return lloyd_vectors(X, w, C, is_fixed, max_iter, tol)


def potential(X, w, C, labels):
    """Weighted SSE ``sum w |x - C[label]|²`` in float64 (exact differences)."""
    return dot(w, _d2_rows(X, C[labels]))



# --------------------------------------------------------------------------- tensors as vectors

def to_vectors(a, axis, d):
    """The vectors of `a`: `d` consecutive entries along `axis`, as rows (n, d).

    Block b along `axis` (entries ``b*d .. b*d + d - 1``) at every position of
    the other axes is one vector; rows are in the order of
    ``moveaxis(a, axis, 0)`` with the block index first (row ``b * R + r`` for
    the r-th of the R positions of the other axes, C order).
    """
    am = np.moveaxis(a, axis, 0)
    rest = am.shape[1:]
    r = int(np.prod(rest, dtype=np.int64))
    return am.reshape(am.shape[0] // d, d, r).transpose(0, 2, 1).reshape(-1, d)


def from_vectors(v, shape, axis, d):
    """Inverse of :func:`to_vectors`: rows (n, d) back to an array of `shape`."""
    moved = (shape[axis],) + tuple(s for i, s in enumerate(shape) if i != axis)
    r = int(np.prod(moved[1:], dtype=np.int64))
    am = v.reshape(moved[0] // d, r, d).transpose(0, 2, 1).reshape(moved)
    return np.moveaxis(am, 0, axis)


def _labels_shape(shape, axis, d):
    return tuple(s // d if i == axis else s for i, s in enumerate(shape))


def fit_vectors(x, axis, d, k, sw, keep_zeros, rng, init, max_iter, tol, e=0):
    """Vector palettization of `x`: (values, labels, codebook, n_iter).

    `sw`: weight per vector (n,) or None; `init`: 'kmeans++'/None or free
    starting codewords (m, d); `e`: the vectors are fitted scaled by ``2**-e``
    (huge values, see ``cluster._exponent``). The codebook (k_used, d) is
    rounded to x's dtype (duplicates merged), every vector is assigned to its
    nearest rounded codeword, unused ones are dropped; with `keep_zeros`, an
    all-zero vector keeps an all-zero codeword (k counts it). ``values`` is
    ``codebook[labels]`` laid out as `x`; ``labels`` has x's shape with the
    length of `axis` divided by `d`.
    """
    V = to_vectors(x, axis, d).astype(np.float64)
    if e:
        V = np.ldexp(V, -e)
    w = np.ones(V.shape[0]) if sw is None else sw
    zero = ~V.any(axis=1)
    has_zero = bool(keep_zeros and zero.any())
    X, wx = (V[~zero], w[~zero]) if has_zero else (V, w)
    fixed = np.zeros((1, d)) if has_zero else None
    if X.shape[0] == 0:                     # every vector is zero
        C, n_iter = np.zeros((1, d)), 0
    else:
        if not wx.sum() > 0:
            raise ValueError("sample_weight is zero for every vector; there is nothing to fit")
        if has_zero and k < 2:
            raise ValueError(f"k={k} cannot hold the fixed zero codeword plus one non-zero "
                             "vector: with keep_zeros=True and all-zero vectors next to others, "
                             "k must be >= 2 (or pass keep_zeros=False)")
        start = None
        if init is not None and not isinstance(init, str):
            start = np.ldexp(init, -e) if e else init
            if has_zero:
                start = start[start.any(axis=1)]
            if start.shape[0] > k - int(has_zero):
                raise ValueError(f"init has {start.shape[0]} codewords besides the zero one; "
                                 f"k={k} allows at most {k - 1}")
            if start.shape[0] == 0:
                start = None
        C, _, n_iter = kmeans_vectors(X, wx, k, rng, fixed, start, max_iter, tol)
    # round to the input dtype (in the fitted scale: a power of two, exact), merge duplicates
    C = np.ldexp(np.ldexp(C, e).astype(x.dtype).astype(np.float64), -e) if e else \
        C.astype(x.dtype).astype(np.float64)
    C = np.unique(C, axis=0)
    labels = nearest_vectors(V, C)
    if has_zero:
        labels[zero] = int(np.flatnonzero(~C.any(axis=1))[0])
    used = np.bincount(labels, minlength=C.shape[0]) > 0
    if not used.all():
        labels = (np.cumsum(used) - 1)[labels]
        C = C[used]
    codebook = (np.ldexp(C, e) if e else C).astype(x.dtype)
    values = from_vectors(codebook[labels], x.shape, axis, d)
    labels = np.moveaxis(labels.astype(np.int32).reshape(
        _labels_shape(np.moveaxis(x, axis, 0).shape, 0, d)), 0, axis)
    return values, labels, codebook, n_iter
