"""k per tensor from a budget: the least total error for a number of bits or bytes.

Every tensor gets the k that minimises the total (weighted) SSE of all tensors
under one budget:

- ``bits``: average index bits per weight, ``sum_t n_t * ceil(log2 k_t) / sum_t n_t
  <= bits``; the index width of ``encode(..., scheme='packed')``. Within one
  width the largest k costs no more bits, so only k = 2, 4, 8, ... (and a
  tensor's number of distinct values) are candidates.
- ``size``: bytes of the targeted tensors encoded with
  ``encode(values, scheme='packed')`` (header, codebook of k values in the
  tensor's dtype, indices of ceil(log2 k) bits, CRC): :func:`packed_size`, the
  exact length of that blob when the tensor holds k distinct values (a tensor
  that ends up with fewer takes fewer bytes).

The error of each tensor at every k comes from one run of the exact dynamic
program (:mod:`weightshare._kmeans._budget`), over the distinct values, or over
``CURVE_ATOMS`` atoms above that many; the allocation takes the convex-hull
steps of all tensors in order of slope (exactly optimal at every allocation it
passes), fills the leftover budget greedily and never returns an allocation
worse than the best uniform k that fits. docs/clustering.md, "Budgets".

Imports NumPy and the standard library only.
"""

import math
import numbers
import re
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ._base._validation import check_flag, check_int, check_number, check_sample_weight, \
    check_weights
from ._codec._bytes import uleb128_size
from ._kmeans._auto import _atom_edges
from ._kmeans._budget import allocate, sse_curve
from ._kmeans._optimal import Prefix
from ._kmeans._points import reduce_points

__all__ = ["BudgetResult", "allocate_k", "packed_size", "parse_size", "BUDGET_KINDS",
           "CURVE_ATOMS", "MAX_K"]

#: the budget kinds, and the unit each is counted in
BUDGET_KINDS = {"bits": "bits per weight", "size": "bytes"}
#: Above this many distinct values, a tensor's error curve is the exact optimum over
#: this many contiguous atoms (the union of equal-count, equal-width and equal
#: companded-mass cells of the sorted values): within about 0.03 % of the optimum
#: on MobileNetV2's kernels at k <= 32, measured. ``exact=True`` lifts it.
CURVE_ATOMS = 1024
#: Default largest k per tensor.
MAX_K = 64
_ITEMSIZE = {"float16": 2, "bfloat16": 2, "float32": 4, "float64": 8}
_UNITS = {"": 1, "b": 1, "kb": 10 ** 3, "mb": 10 ** 6, "gb": 10 ** 9,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30}


class BudgetResult(NamedTuple):
    """Result of :func:`allocate_k`.

    Attributes
    ----------
    k : tuple of int, or dict of str to int
        The k chosen per tensor (a dict keyed like `tensors` when it is a mapping).
    sse : tuple of float, or dict
        Each tensor's least SSE at its k (from the error curve; see Notes of
        :func:`allocate_k`).
    kind : str
        'bits' or 'size'.
    limit : float
        The budget: bits per weight, or bytes.
    used : float
        What the chosen k take, in the same unit.
    total_sse : float
        The sum of `sse`.
    uniform_k : int or None
        The best uniform k that fits the budget (None if none fits).
    uniform_sse : float
        Its total SSE (inf if none fits); ``total_sse <= uniform_sse``.
    """

    k: object
    sse: object
    kind: str
    limit: float
    used: float
    total_sse: float
    uniform_k: object
    uniform_sse: float

    def to_dict(self):
        """A JSON-ready dict of the totals (without the per-tensor k and SSE)."""
        return {"kind": self.kind, "limit": self.limit, "used": self.used,
                "total_sse": _finite(self.total_sse), "uniform_k": self.uniform_k,
                "uniform_sse": _finite(self.uniform_sse)}


def _finite(v):
    return v if math.isfinite(v) else None


def parse_size(text, name="size"):
    """A byte count from an int or a string such as ``'40kB'``, ``'1.5MiB'``, ``'4096'``.

    Units: B, kB, MB, GB (powers of 1000) and KiB, MiB, GiB (powers of 1024),
    case-insensitive; no unit means bytes.

    Examples
    --------
    >>> from weightshare.budget import parse_size
    >>> parse_size("40kB"), parse_size("2KiB"), parse_size(512)
    (40000, 2048, 512)
    """
    if isinstance(text, numbers.Integral) and not isinstance(text, bool):
        return check_int(text, name, 1)
    if not isinstance(text, str):
        raise TypeError(f"{name} must be a number of bytes or a string such as '40kB'; "
                        f"got {text!r}")
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([a-zA-Z]*)\s*", text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{name} must be a byte count such as '40kB', '1.5MiB' or '4096' "
                         f"(units B, kB, MB, GB, KiB, MiB, GiB); got {text!r}")
    value = math.floor(float(m.group(1)) * _UNITS[unit])
    if value < 1:
        raise ValueError(f"{name} must be at least 1 byte; got {text!r}")
    return value


def packed_size(shape, k, dtype="float32"):
    """Bytes of ``encode(values, scheme='packed')`` for a tensor holding k distinct values.

    Header (with the shape), a codebook of k values of `dtype`, n indices of
    ``ceil(log2 k)`` bits (0 bits for k = 1) rounded up to whole bytes, CRC32.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> from weightshare.budget import packed_size
    >>> w = np.tile(np.array([0., 1., 2., 3.], dtype=np.float32), 25).reshape(10, 10)
    >>> packed_size(w.shape, 4), len(weightshare.encode(w, scheme="packed"))
    (57, 57)
    """
    n = math.prod(shape)
    b = max(int(k) - 1, 0).bit_length()
    payload = uleb128_size(int(k)) + int(k) * _ITEMSIZE[dtype] + (n * b + 7) // 8
    # encode's header (docs/format.md): magic, version, scheme, dtype, ndim (8 bytes), the
    # blob's total length as a ULEB128 (which counts itself), the dims as ULEB128s; CRC32
    body = 8 + sum(uleb128_size(int(d)) for d in shape) + payload + 4
    total = body + 1
    while body + uleb128_size(total) != total:
        total = body + uleb128_size(total)
    return total


def _curve(x, sw, keep_zeros, k_max, exact):
    """(SSE at k = 1 .. K, K, D) of one tensor: D its distinct values (zero included),
    K = min(k_max, D)."""
    pts = reduce_points(x, sw, keep_zeros)
    xs, ws = pts.values, np.asarray(pts.weights, dtype=np.float64)
    full = max(1, pts.n_distinct + int(pts.has_zero))
    top = min(k_max, full)
    if xs.size == 0:
        return np.zeros(top), top, full
    if exact or xs.size <= CURVE_ATOMS:
        return sse_curve(xs, ws, pts.has_zero, top), top, full
    edges = _atom_edges(xs, ws, CURVE_ATOMS)
    P = Prefix(xs, ws)
    a_w = np.diff(P.W[edges])
    a_s = np.diff(P.S[edges])
    within = float(np.sum(np.maximum(np.diff(P.Q[edges]) - a_s * a_s / a_w, 0.0)))
    return sse_curve(P.mu + a_s / a_w, a_w, pts.has_zero, top) + within, top, full


def _caps(kind, budget, shapes, dtypes, max_k):
    """The largest k each tensor can take when every other one takes k = 2: no larger k
    fits the budget, so the error curves stop there (at most `max_k`, at least 2)."""
    if kind == "bits":
        least = [math.prod(s) for s in shapes]
    else:
        least = [packed_size(s, 2, d) for s, d in zip(shapes, dtypes)]
    total = sum(least)
    caps = []
    for t, s in enumerate(shapes):
        spare = budget - (total - least[t])
        k = 2
        if kind == "bits":
            n = math.prod(s)
            while k < max_k and n * (2 * k - 1).bit_length() <= spare:
                k *= 2
        else:
            while k < max_k and packed_size(s, k + 1, dtypes[t]) <= spare:
                k += 1
        caps.append(min(k, max_k))
    return caps


def _candidates(kind, top):
    """The k worth trying for a tensor whose curve reaches k = `top`."""
    if top < 2:
        return [top]
    if kind == "size":
        return list(range(2, top + 1))
    ks, k = [], 2
    while k < top:
        ks.append(k)
        k *= 2
    return ks + [top]


def plan(tensors, kind, limit, *, keep_zeros=True, sample_weights=None, max_k=MAX_K,
         exact=False, shapes=None, dtypes=None, names=None):
    """:func:`allocate_k` on validated input: float arrays, their sample weights (or None),
    optional shapes / stored dtypes / names (for the file job). Returns a BudgetResult
    with tuples, or raises ValueError naming the budget when k = 2 everywhere does not fit."""
    T = len(tensors)
    shapes = [t.shape for t in tensors] if shapes is None else shapes
    dtypes = [t.dtype.name for t in tensors] if dtypes is None else dtypes
    n_total = sum(math.prod(s) for s in shapes)
    ks, rates, errors, fulls = [], [], [], []
    budget = limit * n_total if kind == "bits" else float(limit)
    caps = _caps(kind, budget, shapes, dtypes, max_k)
    for t in range(T):
        sw = None if sample_weights is None else sample_weights[t]
        curve, top, full = _curve(tensors[t], sw, keep_zeros, caps[t], exact)
        fulls.append(full)
        cand = _candidates(kind, top)
        n = math.prod(shapes[t])
        if kind == "bits":
            r = [n * max(k - 1, 0).bit_length() for k in cand]
        else:
            r = [packed_size(shapes[t], k, dtypes[t]) for k in cand]
        ks.append(cand)
        rates.append(np.array(r, dtype=np.float64))
        errors.append(curve[np.array(cand) - 1])
    uniform_ks = sorted({k for c in ks for k in c if k >= 2}) or [1]
    # uniform k: each tensor at min(k, its distinct values); -1: k is beyond a tensor's
    # cap (k alone would exceed the budget there), so that uniform k does not fit
    uniform = [[c.index(min(k, c[-1])) if min(k, c[-1]) in c and (k <= c[-1] or full <= c[-1])
                else -1 for k in uniform_ks] for c, full in zip(ks, fulls)]
    res = allocate(rates, errors, budget + 1e-9 * max(budget, 1.0), uniform)
    if res is None:
        need = sum(float(r[0]) for r in rates)
        if kind == "bits":
            need_s = f"{need / max(n_total, 1):.6g} index bits per weight on average"
            given = f"bits={limit!r}"
        else:
            need_s = f"{int(need)} bytes"
            given = f"size={int(limit)} bytes"
        raise ValueError(f"{given} is below what k = 2 for every tensor needs ({need_s} for "
                         f"{T} tensor{'s' if T != 1 else ''})")
    k_of = tuple(int(ks[t][i]) for t, i in enumerate(res.choice))
    sse = tuple(float(errors[t][i]) for t, i in enumerate(res.choice))
    used = res.rate / n_total if kind == "bits" and n_total else res.rate
    u_k = None if res.uniform < 0 else int(uniform_ks[res.uniform])
    if names is not None:
        k_of, sse = dict(zip(names, k_of)), dict(zip(names, sse))
    return BudgetResult(k_of, sse, kind, float(limit), float(used), float(res.error), u_k,
                        float(res.uniform_error))


def allocate_k(tensors, *, bits=None, size=None, keep_zeros=True, sample_weight=None,
               max_k=MAX_K, exact=False):
    """The k per tensor that minimises the total SSE under a budget of bits or bytes.

    Parameters
    ----------
    tensors : sequence of array_like, or mapping of name to array_like
        The float tensors to be clustered, one LUT each (as :func:`weightshare.cluster`
        without `axis`).
    bits : float > 0, optional
        Average index bits per weight: ``sum(n_t * ceil(log2 k_t)) / sum(n_t) <= bits``.
    size : int or str, optional
        Bytes: ``sum(packed_size(shape_t, k_t, dtype_t)) <= size`` (``'40kB'``,
        ``'1MiB'``, see :func:`parse_size`), the length of the tensors encoded
        with ``encode(..., scheme='packed')``. Exactly one of `bits`, `size`.
    keep_zeros : bool, default True
        As in :func:`weightshare.cluster` (zeros kept zero; 0.0 counts among the k).
    sample_weight : sequence or mapping of array_like, optional
        Importance of each entry, per tensor (the weighted SSE is minimised).
    max_k : int >= 2, default 64
        The largest k any tensor gets.
    exact : bool, default False
        Every error curve from the exact DP over all distinct values (slower
        above ``CURVE_ATOMS`` of them).

    Returns
    -------
    BudgetResult
        ``k`` and ``sse`` per tensor (a dict when `tensors` is a mapping),
        ``used`` of ``limit``, ``total_sse``, and the best uniform k that fits
        with its ``uniform_sse`` (never below ``total_sse``).

    Raises
    ------
    ValueError
        The budget is below what k = 2 for every tensor takes (the message names it).

    Notes
    -----
    One exact DP run per tensor gives its least SSE at every k <= `max_k`
    (over ``CURVE_ATOMS`` atoms for a tensor with more distinct values,
    unless `exact`). The allocation is exactly optimal whenever the budget
    falls on a vertex of the tensors' convex hulls, is filled greedily
    otherwise, and is never worse than the best uniform k that fits (that k
    is a feasible allocation, compared at the end). ``cluster(w, k)`` then
    reaches the curve's SSE (``method='optimal'``), or about it (the default
    'auto': within about 0.01 %).

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> rng = np.random.default_rng(0)
    >>> a = rng.standard_normal(1000)                 # a Gaussian and a very peaked tensor
    >>> b = rng.laplace(size=1000) ** 3
    >>> res = weightshare.allocate_k([a, b], bits=3)
    >>> res.k, res.used, res.uniform_k
    ((2, 32), 3.0, 8)
    >>> bool(res.total_sse < res.uniform_sse)
    True
    """
    if (bits is None) == (size is None):
        raise ValueError("give exactly one budget: bits=... (index bits per weight) or "
                         "size=... (bytes)")
    if bits is not None:
        kind, limit = "bits", float(check_number(bits, "bits", 0, strict=True))
    else:
        kind, limit = "size", parse_size(size)
    names = None
    if isinstance(tensors, Mapping):
        names = list(tensors)
        tensors = [tensors[n] for n in names]
    arrays = [check_weights(t, f"tensors[{i if names is None else repr(names[i])}]")
              for i, t in enumerate(tensors)]
    if not arrays:
        raise ValueError("tensors is empty: nothing to allocate")
    sws = None
    if sample_weight is not None:
        if isinstance(sample_weight, Mapping):
            if names is None or set(sample_weight) - set(names):
                raise ValueError("sample_weight as a mapping needs tensors as a mapping with "
                                 "the same names")
            sample_weight = [sample_weight.get(n) for n in names]
        if len(sample_weight) != len(arrays):
            raise ValueError(f"sample_weight has {len(sample_weight)} entries for "
                             f"{len(arrays)} tensors")
        sws = [None if s is None else check_sample_weight(s, a.shape)
               for s, a in zip(sample_weight, arrays)]
    for a in arrays:
        if a.dtype.name not in _ITEMSIZE:
            raise TypeError(f"tensors must be float16, float32 or float64; got {a.dtype}")
    return plan(arrays, kind, limit, keep_zeros=check_flag(keep_zeros, "keep_zeros"),
                sample_weights=sws, max_k=check_int(max_k, "max_k", 2),
                exact=check_flag(exact, "exact"), names=names)
