"""Sparsity: magnitude pruning to an exact count or a target, masks, schedules.

This is core weightshare: it works on NumPy arrays only and imports nothing
but NumPy and the standard library.

The rules every function here follows
--------------------------------------
Target
    Give exactly one of ``sparsity`` (the fraction of zeros wanted in the
    result) or ``keep`` (the number of non-zeros kept).
Rounding
    ``sparsity`` asks for *at least* that fraction of zeros: of ``n`` entries,
    ``ceil(sparsity * n)`` are zero afterwards and ``n - ceil(sparsity * n)``
    are kept. The product is computed exactly on the decimal that the float
    prints as (``repr``), so ``sparsity=0.7`` of 10 entries is 7 zeros, not 8
    (in binary floating point ``0.7 * 10 == 7.000000000000001``).
Tie rule
    Entries are ranked by magnitude, largest first; equal magnitudes are
    ranked by flat (C-order) index, lowest first; the first ``keep`` are
    kept. Among equal magnitudes the lower flat index survives. The same rule
    is :func:`weightshare.testing.keep_set`.
Zeros
    Existing zeros count as pruned: they are never kept, never revived, and
    fill part of the zeros a ``sparsity`` asks for. ``keep=200`` leaves
    exactly 200 non-zeros, or fewer only when the input had fewer. So
    pruning is monotone and ``prune(prune(w, keep=m).values, keep=m)`` is the
    identity.
Output
    Same shape and dtype as the input, which is never modified; pruned
    entries are exactly ``0.0`` (a ``-0.0`` in the input comes out as
    ``0.0``); ``mask`` is True exactly where ``values`` is non-zero.

Selection is O(n): one :func:`numpy.partition` finds the threshold and the
tie rule is applied only to the entries equal to it.
"""

import math
import numbers
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from ._base._validation import (check_axis, check_choice, check_fraction, check_int,
                                check_number, check_weights)

__all__ = ["PruneResult", "prune", "prune_global", "apply_mask", "sparsity_schedule",
           "SparsitySchedule", "SCHEDULES"]


class PruneResult(NamedTuple):
    """Result of :func:`prune` (and, per tensor, of :func:`prune_global`).

    Attributes
    ----------
    values : ndarray, same shape and dtype as the input
        The pruned tensor; pruned entries are exactly 0.0.
    mask : ndarray of bool, same shape
        True where a weight is kept; equal to ``values != 0``.
    threshold : float or ndarray of float64
        The smallest magnitude kept (with ``block``, the smallest L2 norm of a
        kept block; with ``n_m``, the smallest kept magnitude, though N:M
        groups are ranked separately). Every pruned non-zero has a magnitude
        (norm) ``<= threshold``, except with ``n_m``. ``inf`` when nothing is
        kept. With ``axis``, one threshold per slice, shape ``(n_slices,)``.
        :func:`prune_global` gives every tensor the one global threshold.
    n_kept : int
        Number of non-zeros in ``values``.
    n_nonzero_before : int
        Number of non-zeros in the input.
    """

    values: np.ndarray
    mask: np.ndarray
    threshold: object
    n_kept: int
    n_nonzero_before: int


# --------------------------------------------------------------------------- validation

def _check_target(sparsity, keep):
    """Exactly one of sparsity / keep, each of the right type and range (size checked later)."""
    if sparsity is None and keep is None:
        raise ValueError("give exactly one of sparsity or keep; got neither")
    if sparsity is not None and keep is not None:
        raise ValueError(f"give exactly one of sparsity or keep; got both "
                         f"(sparsity={sparsity!r}, keep={keep!r})")
    if sparsity is not None:
        return _check_sparsity(sparsity), None
    return None, _check_keep(keep)


def _check_sparsity(sparsity, name="sparsity"):
    return check_fraction(sparsity, name)


def _check_keep(keep):
    return check_int(keep, "keep", 0)


def _check_pair(value, name, what):
    """A pair of Python ints >= 1, or raise naming `name`."""
    ok = (isinstance(value, (tuple, list)) and len(value) == 2
          and all(isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))
                  for v in value))
    if not ok:
        raise TypeError(f"{name} must be a pair {what} of integers; got {value!r}")
    a, b = int(value[0]), int(value[1])
    if a < 1 or b < 1:
        raise ValueError(f"{name} must be a pair {what} of integers >= 1; got {name}={value!r}")
    return a, b


def _check_n_m(n_m, shape):
    n, m = _check_pair(n_m, "n_m", "(n, m)")
    if n > m:
        raise ValueError(f"n_m=(n, m) needs n <= m; got n_m={n_m!r}")
    if len(shape) == 0:
        raise ValueError("n_m needs a tensor with at least 1 dimension; got a scalar")
    ax = len(shape) - 2 if len(shape) >= 2 else 0
    if shape[ax] % m:
        label = "axis -2" if len(shape) >= 2 else "axis 0"
        raise ValueError(f"n_m={n_m!r} needs the input axis ({label}, size {shape[ax]}) to be a "
                         f"multiple of m={m}; got shape {tuple(shape)}")
    return n, m, ax


def _check_block(block, shape):
    r, c = _check_pair(block, "block", "(rows, cols)")
    if len(shape) < 2:
        raise ValueError(f"block needs a tensor with at least 2 dimensions; got shape {tuple(shape)}")
    rows, cols = shape[-2], shape[-1]
    if rows % r or cols % c:
        raise ValueError(f"block={block!r} must divide the last two dimensions ({rows}, {cols}) "
                         f"of shape {tuple(shape)}; edge blocks are refused, not padded")
    return r, c


def check_prune_args(shape, sparsity=None, keep=None, *, block=None, n_m=None):
    """The checks :func:`prune` makes before any work, once, for one tensor or for many.

    With `shape` None, the arguments alone (types, ranges, exactly one of
    `sparsity`/`keep`); with a shape, also what a tensor of that shape can
    take (``n_m``'s m divides the input axis, ``block`` divides the last two
    dimensions, ``keep`` is a whole number of blocks). :func:`prune` and
    :func:`weightshare.prune_file` (before it writes anything) both call it.

    Returns
    -------
    (sparsity, keep, block, n_m)
        Normalised: floats and ints, `block` and `n_m` as pairs of ints (None
        when not given).
    """
    if n_m is not None:
        if sparsity is not None or keep is not None:
            raise ValueError(f"n_m={n_m!r} sets the sparsity itself; do not also give sparsity "
                             "or keep")
        pair = _check_pair(n_m, "n_m", "(n, m)") if shape is None else _check_n_m(n_m, shape)[:2]
        return None, None, None, pair
    sparsity, keep = _check_target(sparsity, keep)
    if block is None:
        return sparsity, keep, None, None
    if shape is None:
        return sparsity, keep, _check_pair(block, "block", "(rows, cols)"), None
    r, c = _check_block(block, shape)
    size = r * c
    if keep is not None:
        kept = min(keep, math.prod(shape))       # larger: every block is kept
        if kept % size:
            lo = kept - kept % size
            raise ValueError(f"keep={kept} must be a multiple of the block size {r}x{c}={size} "
                             f"with block={block!r} (nearest: {lo} or {lo + size})")
    return sparsity, keep, (r, c), None


def _n_to_keep(n, sparsity, keep):
    """Number of entries to keep out of `n` (before existing zeros are taken out).

    A `keep` larger than `n` keeps all `n`: "exactly keep, or fewer if it had fewer".
    """
    if keep is not None:
        return min(keep, n)
    return n - _n_pruned(n, sparsity)


def _n_pruned(n, sparsity):
    """ceil(sparsity * n), exact on the decimal `repr(sparsity)`."""
    return math.ceil(Fraction(repr(float(sparsity))) * n)


# --------------------------------------------------------------------------- selection

_UINT = {2: np.uint16, 4: np.uint32, 8: np.uint64}


def _mag_bits(x):
    """Magnitudes of finite floats as unsigned integers of the same width (a new array).

    Without its sign bit, the IEEE 754 bit pattern of a finite float orders
    exactly like its magnitude, and both zeros become 0. Integer comparisons
    and partitions are exact, and much faster than float16 arithmetic.
    """
    u = _UINT[x.dtype.itemsize]
    return np.bitwise_and(x.view(u), u(np.iinfo(u).max >> 1))


def _bits_to_float(bits, dtype):
    """The magnitude a bit pattern from :func:`_mag_bits` stands for, as float (array)."""
    return np.asarray(bits, dtype=_UINT[dtype.itemsize]).view(dtype).astype(np.float64)


def _select(a, keep):
    """Mask of the `keep` largest non-zero entries of the 1-D magnitudes `a`, tie rule applied.

    O(n): one partition finds the keep-th largest magnitude t; everything
    above t is kept and the entries equal to t are taken lowest index first.
    Returns (mask, t) with t the smallest kept magnitude (an element of `a`),
    or None when nothing is kept. Prior validation assumed (0 <= keep <= a.size).
    """
    n = a.size
    if keep == 0 or n == 0:
        return np.zeros(n, dtype=bool), None
    kth = n - keep
    t = np.partition(a, kth)[kth]
    if t == 0:   # fewer non-zeros than keep: keep them all
        mask = a != 0
        return mask, (a[mask].min() if mask.any() else None)
    mask = a > t
    need = keep - int(np.count_nonzero(mask))
    if need:
        mask[np.flatnonzero(a == t)[:need]] = True
    return mask, t


def _select_rows(a, keep):
    """Row-wise :func:`_select` of a 2-D array of magnitudes, the same `keep` for every row.

    Returns (mask, t, any_kept): t per row (meaningless where not any_kept).
    """
    s, m = a.shape
    if keep == 0 or m == 0:
        return np.zeros(a.shape, dtype=bool), np.zeros(s, dtype=a.dtype), np.zeros(s, dtype=bool)
    kth = m - keep
    t = np.partition(a, kth, axis=1)[:, kth]
    mask = a > t[:, None]
    need = keep - np.count_nonzero(mask, axis=1)
    eq = a == t[:, None]
    eq[t == 0] = False                    # rows with fewer non-zeros than keep: no zero is kept
    n_eq = np.count_nonzero(eq, axis=1)
    simple = n_eq <= need                 # every entry at the threshold fits
    mask[simple] |= eq[simple]
    tied = np.flatnonzero(~simple)        # the tie rule: lowest indices first, only where needed
    if tied.size:
        e = eq[tied]
        mask[tied] |= e & (np.cumsum(e, axis=1) <= need[tied, None])
    low = np.flatnonzero(t == 0)          # the smallest kept magnitude of those rows
    if low.size:
        t[low] = np.where(mask[low], a[low], np.iinfo(a.dtype).max).min(axis=1)
    return mask, t, mask.any(axis=1)


def _prune_flat(x, a, sparsity, keep):
    keep = _n_to_keep(x.size, sparsity, keep)
    mask, t = _select(a.ravel(), keep)
    thr = math.inf if t is None else float(_bits_to_float(t, x.dtype))
    return mask.reshape(x.shape), thr


def _prune_axis(x, a, ax, sparsity, keep):
    am = np.moveaxis(a, ax, 0)
    s = am.shape[0]
    m = am[0].size if s else 0
    keep = _n_to_keep(m, sparsity, keep)
    mask, t, kept = _select_rows(am.reshape(s, m), keep)
    thr = np.where(kept, _bits_to_float(t, x.dtype), np.inf)
    return np.moveaxis(mask.reshape(am.shape), 0, ax), thr


def _prune_block(x, block, sparsity, keep):
    r, c = block
    size = r * c
    *lead, rows, cols = x.shape
    if keep is not None:
        keep = min(keep, x.size)                # a multiple of `size` (check_prune_args)
    grid = x.astype(np.float64).reshape(*lead, rows // r, r, cols // c, c)
    norms = np.sqrt(np.einsum("...ibjc,...ibjc->...ij", grid, grid))
    n_blocks = norms.size
    if keep is not None:
        k_blocks = keep // size
    else:
        k_blocks = n_blocks - _n_pruned(n_blocks, sparsity)
    bmask, t = _select(norms.ravel(), k_blocks)
    bmask = bmask.reshape(norms.shape)
    full = np.broadcast_to(bmask[..., :, None, :, None], grid.shape).reshape(x.shape)
    return full & (x != 0), (math.inf if t is None else float(t))


def _group_ranks(g, axis):
    """Rank of every entry in its group along `axis`: magnitude desc, position asc; 0 is first."""
    m = g.shape[axis]
    if m > 8:   # a stable sort beats m^2 comparisons
        order = np.argsort(np.iinfo(g.dtype).max - g, axis=axis, kind="stable")
        rank = np.empty_like(order)
        shape = [1] * g.ndim
        shape[axis] = m
        np.put_along_axis(rank, order, np.arange(m).reshape(shape), axis=axis)
        return rank
    pre = (slice(None),) * axis
    rank = np.zeros(g.shape, dtype=np.uint8)
    for j in range(m):   # rank_i = #{j: g_j > g_i} + #{j < i: g_j == g_i}
        gj = g[pre + (slice(j, j + 1),)]
        rank += gj > g
        later = pre + (slice(j + 1, None),)
        rank[later] += gj == g[later]
    return rank


def _prune_n_m(x, a, n_m):
    n, m, ax = n_m
    # groups of m consecutive entries along ax: a C-order reshape, no transpose
    groups = a.reshape(a.shape[:ax] + (a.shape[ax] // m, m) + a.shape[ax + 1:])
    mask = (_group_ranks(groups, ax + 1) < n) & (groups != 0)
    kept = groups[mask]
    thr = float(_bits_to_float(kept.min(), x.dtype)) if kept.size else math.inf
    return mask.reshape(x.shape), thr


def _masked(x, mask):
    """x where mask, exactly +0.0 elsewhere; a new array of x's dtype, kept entries bit for bit."""
    u = _UINT[x.dtype.itemsize]
    out = np.empty(x.shape, dtype=u)
    np.multiply(x.view(u), mask, out=out)   # on the bit patterns: fast, and no -0.0
    return out.view(x.dtype)


def _result(x, mask, thr, n_before):
    return PruneResult(_masked(x, mask), mask, thr, int(np.count_nonzero(mask)), n_before)


# --------------------------------------------------------------------------- public API

def prune(weights, *, sparsity=None, keep=None, axis=None, block=None, n_m=None):
    """Magnitude pruning: zero the smallest weights, to an exact count or a sparsity.

    Parameters
    ----------
    weights : array_like of float16, float32 or float64
        The tensor; finite (NaN/Inf are refused), any shape, possibly empty.
        It is never modified.
    sparsity : float in [0, 1), optional
        Fraction of zeros wanted in the result: ``ceil(sparsity * n)`` of the
        ``n`` entries end up zero (existing zeros included), computed exactly
        on the decimal the float prints as.
    keep : int >= 0, optional
        Number of non-zeros kept: exactly ``keep``, or fewer only when the
        tensor has fewer non-zeros. Never more. Larger than the tensor (than
        one slice with `axis`): all of it is kept. Give exactly one of
        `sparsity` and `keep` (neither with `n_m`).
    axis : int, optional
        Prune every slice along `axis` to the same target separately (per
        output channel: ``axis=-1`` for a Dense kernel ``(in, out)`` or a
        Conv kernel ``(kh, kw, in, out)``). `keep` and `sparsity` then apply
        to each slice.
    block : (int, int), optional
        Keep or prune whole ``(rows, cols)`` blocks of the last two
        dimensions (of each leading index for N-D tensors), ranked by their
        L2 norm with the tie rule applied to the C-order block index. The
        block must divide the last two dimensions (edge blocks are refused,
        not padded). `keep` counts weights and must be a multiple of
        ``rows * cols`` (or be at least the tensor's size: every block is
        kept); `sparsity` is the fraction of blocks pruned. A block
        of zero norm counts as pruned; zeros inside a kept block stay zero,
        so the result has at most `keep` non-zeros.
    n_m : (int, int), optional
        N:M semi-structured sparsity (2:4 is what sparse tensor cores
        accelerate): in every group of M consecutive weights along the input
        axis, keep the N largest magnitudes (tie rule within the group) and
        zero the rest. The input axis is -2 (0 of a Dense kernel ``(in,
        out)``, the input channels of a Conv kernel ``(kh, kw, in, out)``),
        or 0 for a 1-D tensor; its size must be a multiple of M. Use
        :func:`numpy.swapaxes` for other layouts.

    Returns
    -------
    PruneResult
        ``values``, ``mask``, ``threshold``, ``n_kept``, ``n_nonzero_before``.

    Notes
    -----
    Ranking: magnitude descending, ties by flat (C-order) index ascending;
    the first `keep` non-zero entries survive. Existing zeros count as
    pruned, so pruning never revives a zero and is idempotent. The selection
    is O(n) (:func:`numpy.partition`, tie rule only at the threshold); N:M
    sorts each group of M. At most one of `axis`, `block` and `n_m`.

    Examples
    --------
    >>> import numpy as np
    >>> import weightshare
    >>> w = np.array([0.5, -2.0, 0.5, 0.0, 1.0, -0.1], dtype=np.float32)
    >>> res = weightshare.prune(w, keep=3)
    >>> res.values
    array([ 0.5, -2. ,  0. ,  0. ,  1. ,  0. ], dtype=float32)
    >>> res.mask
    array([ True,  True, False, False,  True, False])
    >>> res.threshold, res.n_kept, res.n_nonzero_before
    (0.5, 3, 5)

    `sparsity=0.5` of 6 entries leaves 3 zeros (the existing one counts):

    >>> weightshare.prune(w, sparsity=0.5).values
    array([ 0.5, -2. ,  0. ,  0. ,  1. ,  0. ], dtype=float32)

    Per output channel, and 2:4 along the input axis of a Dense kernel:

    >>> k = np.array([[1., 8.], [2., 7.], [3., 6.], [4., 5.]])
    >>> weightshare.prune(k, keep=1, axis=1).values
    array([[0., 8.],
           [0., 0.],
           [0., 0.],
           [4., 0.]])
    >>> weightshare.prune(k, n_m=(2, 4)).values
    array([[0., 8.],
           [0., 7.],
           [3., 0.],
           [4., 0.]])
    """
    x = check_weights(weights, allow_empty=True)
    given = [name for name, v in (("axis", axis), ("block", block), ("n_m", n_m)) if v is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of axis, block and n_m; got {' and '.join(given)}")
    a = _mag_bits(x)
    n_before = int(np.count_nonzero(a))
    sparsity, keep, block, pair = check_prune_args(x.shape, sparsity, keep, block=block, n_m=n_m)
    if pair is not None:
        mask, thr = _prune_n_m(x, a, _check_n_m(pair, x.shape))
        return _result(x, mask, thr, n_before)
    if block is not None:
        mask, thr = _prune_block(x, block, sparsity, keep)
    elif axis is not None:
        mask, thr = _prune_axis(x, a, check_axis(axis, x.ndim), sparsity, keep)
    else:
        mask, thr = _prune_flat(x, a, sparsity, keep)
    return _result(x, mask, thr, n_before)


def prune_global(tensors, *, sparsity=None, keep=None):
    """Prune several tensors with one magnitude threshold across all of them.

    Parameters
    ----------
    tensors : mapping of name -> array_like of float
        The tensors (finite, any shapes, float dtypes may differ). Never
        modified.
    sparsity : float in [0, 1), optional
        Fraction of zeros wanted over all entries together:
        ``ceil(sparsity * N)`` of the ``N`` entries end up zero.
    keep : int >= 0, optional
        Number of non-zeros kept over all tensors together: exactly `keep`,
        or fewer only when the tensors hold fewer non-zeros. Give exactly one
        of `sparsity` and `keep`.

    Returns
    -------
    dict of name -> PruneResult
        In the order of `tensors`; every ``threshold`` is the global one.

    Notes
    -----
    The tie rule runs over the concatenation of the flattened tensors in the
    mapping's order: among equal magnitudes, an entry of an earlier tensor
    (or a lower flat index in the same tensor) is kept first. Magnitudes are
    compared in the widest float dtype present, which holds every narrower
    one exactly. O(N) in the total number of entries.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> res = weightshare.prune_global({"a": np.array([3., 0.1, 2.]),
    ...                                 "b": np.array([[0.5, 4.], [1., 0.]])}, keep=3)
    >>> res["a"].values, res["b"].values
    (array([3., 0., 2.]), array([[0., 4.],
           [0., 0.]]))
    >>> res["a"].threshold
    2.0
    """
    if not hasattr(tensors, "keys") or not hasattr(tensors, "__getitem__"):
        raise TypeError(f"tensors must be a mapping of name -> array; got {type(tensors).__name__}")
    if len(tensors) == 0:
        raise ValueError("tensors must hold at least one tensor; got an empty mapping")
    xs = {name: check_weights(tensors[name], name=f"tensors[{name!r}]", allow_empty=True)
          for name in tensors.keys()}
    sparsity, keep = _check_target(sparsity, keep)
    total = sum(x.size for x in xs.values())
    keep = _n_to_keep(total, sparsity, keep)
    dtype = np.result_type(*(x.dtype for x in xs.values()))
    a = np.empty(total, dtype=_UINT[dtype.itemsize])
    pos, n_before = 0, []
    for x in xs.values():   # magnitudes as bits of the widest dtype (exact, order-preserving)
        a[pos:pos + x.size] = _mag_bits(x.astype(dtype, copy=False)).ravel()
        n_before.append(int(np.count_nonzero(a[pos:pos + x.size])))
        pos += x.size
    mask, t = _select(a, keep)
    thr = math.inf if t is None else float(_bits_to_float(t, dtype))
    out, pos = {}, 0
    for (name, x), nb in zip(xs.items(), n_before):
        m = mask[pos:pos + x.size].reshape(x.shape)
        pos += x.size
        out[name] = _result(x, m, thr, nb)
    return out


def apply_mask(weights, mask):
    """Zero the weights where `mask` is False: what a training loop calls after each step.

    Parameters
    ----------
    weights : array_like of float
        Finite; never modified.
    mask : array_like of bool, same shape
        True where a weight is kept (e.g. ``prune(...).mask``). A numeric
        array holding only 0 and 1 is accepted too.

    Returns
    -------
    ndarray, the dtype of `weights`
        A new array: the weights where `mask`, exactly 0.0 elsewhere.
        Idempotent: ``apply_mask(apply_mask(w, m), m)`` equals
        ``apply_mask(w, m)``.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> weightshare.apply_mask(np.array([0.3, -0.2, 0.7], dtype=np.float32), [True, False, True])
    array([0.3, 0. , 0.7], dtype=float32)
    """
    w = check_weights(weights, allow_empty=True)
    m = _check_mask(mask, w.shape)
    return _masked(w, m)


def _check_mask(mask, shape):
    try:
        m = np.asarray(mask)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"mask must be a boolean array; could not convert "
                        f"{type(mask).__name__}: {exc}") from None
    if m.shape != tuple(shape):
        raise ValueError(f"mask must have the shape of weights {tuple(shape)}; got shape {m.shape}")
    if m.dtype == bool:
        return m
    if m.dtype.kind not in "iuf":
        raise TypeError(f"mask must be a boolean array (or numbers 0 and 1); got dtype {m.dtype}")
    nonbinary = (m != 0) & (m != 1)
    if nonbinary.any():
        i = tuple(int(v) for v in np.argwhere(nonbinary)[0])
        raise ValueError(f"mask must hold only 0 and 1 (or booleans); found {m[i].item()!r} at index {i}")
    return m != 0


# --------------------------------------------------------------------------- schedules

@dataclass(frozen=True)
class SparsitySchedule:
    """A pruning schedule: ``schedule(step)`` is the sparsity, ``should_prune(step)`` when.

    Made by :func:`sparsity_schedule`; the formulas are TFMOT's
    ``PolynomialDecay`` and ``ConstantSparsity``.

    Attributes
    ----------
    kind : {'polynomial', 'constant'}
    initial, final : float
        Sparsity at and before `begin_step`, and at and after `end_step`
        (both the target for 'constant').
    begin_step : int
    end_step : int or None
        None: prune forever ('constant' only).
    power : float
        Exponent of the polynomial decay (1.0 for 'constant', unused).
    frequency : int
        Prune every `frequency` steps from `begin_step`.
    """

    kind: str
    initial: float
    final: float
    begin_step: int
    end_step: object
    power: float
    frequency: int

    def __call__(self, step):
        """The sparsity at `step` (a float in [0, 1))."""
        step = _check_step(step)
        if self.kind == "constant":
            return self.final
        p = min(1.0, max(0.0, (step - self.begin_step) / (self.end_step - self.begin_step)))
        return self.final + (self.initial - self.final) * (1.0 - p) ** self.power

    def should_prune(self, step):
        """True when pruning happens at `step`: in [begin_step, end_step], every `frequency` steps."""
        step = _check_step(step)
        in_range = step >= self.begin_step and (self.end_step is None or step <= self.end_step)
        return in_range and (step - self.begin_step) % self.frequency == 0


def _check_step(step):
    return check_int(step, "step", 0)


def _polynomial(initial, final, target, begin_step, end_step, power, frequency):
    if target is not None:
        raise ValueError("target is for sparsity_schedule('constant'); 'polynomial' takes "
                         "initial and final")
    missing = [n for n, v in (("initial", initial), ("final", final), ("begin_step", begin_step),
                              ("end_step", end_step)) if v is None]
    if missing:
        raise ValueError(f"sparsity_schedule('polynomial') needs {', '.join(missing)}")
    initial = _check_sparsity(initial, "initial")
    final = _check_sparsity(final, "final")
    begin_step = check_int(begin_step, "begin_step", 0)
    end_step = check_int(end_step, "end_step", 0)
    if end_step <= begin_step:
        raise ValueError(f"end_step must be > begin_step; got begin_step={begin_step}, "
                         f"end_step={end_step}")
    power = 3 if power is None else power
    power = check_number(power, "power", 0, strict=True)
    frequency = check_int(100 if frequency is None else frequency, "frequency", 1)
    return SparsitySchedule("polynomial", initial, final, begin_step, end_step, float(power),
                            frequency)


def _constant(initial, final, target, begin_step, end_step, power, frequency):
    extra = [n for n, v in (("initial", initial), ("final", final), ("power", power)) if v is not None]
    if extra:
        raise ValueError(f"{', '.join(extra)} {'is' if len(extra) == 1 else 'are'} for "
                         "sparsity_schedule('polynomial'); 'constant' takes target")
    if target is None:
        raise ValueError("sparsity_schedule('constant') needs target")
    target = _check_sparsity(target, "target")
    begin_step = check_int(0 if begin_step is None else begin_step, "begin_step", 0)
    if end_step is not None:
        end_step = check_int(end_step, "end_step", 0)
        if end_step < begin_step:
            raise ValueError(f"end_step must be >= begin_step; got begin_step={begin_step}, "
                             f"end_step={end_step}")
    frequency = check_int(100 if frequency is None else frequency, "frequency", 1)
    return SparsitySchedule("constant", target, target, begin_step, end_step, 1.0, frequency)


#: schedule kinds of :func:`sparsity_schedule`
SCHEDULES = {"polynomial": _polynomial, "constant": _constant}


def sparsity_schedule(kind, *, initial=None, final=None, target=None, begin_step=None,
                      end_step=None, power=None, frequency=None):
    """A sparsity schedule for gradual pruning during training (TFMOT's formulas).

    Parameters
    ----------
    kind : {'polynomial', 'constant'}
    initial, final : float in [0, 1)
        'polynomial' only: sparsity at `begin_step` and at `end_step`.
    target : float in [0, 1)
        'constant' only: the sparsity at every step.
    begin_step : int >= 0
        First pruning step (required for 'polynomial'; default 0 for 'constant').
    end_step : int
        Last pruning step: required for 'polynomial' (> `begin_step`);
        optional for 'constant' (>= `begin_step`; default None, prune forever).
    power : float > 0, default 3
        'polynomial' only: exponent of the decay.
    frequency : int >= 1, default 100
        Prune every `frequency` steps, counted from `begin_step`.

    Returns
    -------
    SparsitySchedule
        ``schedule(step)`` returns the sparsity at `step`;
        ``schedule.should_prune(step)`` says whether pruning happens at `step`
        (TFMOT's schedules return the pair ``(should_prune, sparsity)``).

    Notes
    -----
    Polynomial decay (Zhu & Gupta 2017, "To prune, or not to prune",
    arXiv:1710.01878; TFMOT ``PolynomialDecay``)::

        p        = clip((step - begin_step) / (end_step - begin_step), 0, 1)
        sparsity = final + (initial - final) * (1 - p) ** power

    so it is `initial` up to `begin_step` and `final` from `end_step` on.
    Constant (TFMOT ``ConstantSparsity``): ``sparsity = target``. Both prune
    only when::

        begin_step <= step <= end_step  and  (step - begin_step) % frequency == 0

    (no upper bound when a constant schedule has ``end_step=None``).
    Computed in float64 (TFMOT uses float32).

    Examples
    --------
    >>> import weightshare
    >>> s = weightshare.sparsity_schedule("polynomial", initial=0.5, final=0.75,
    ...                                   begin_step=0, end_step=100, frequency=10)
    >>> s(0), s(50), s(100), s(1000)       # 0.75 - 0.25 * 0.5**3 at step 50
    (0.5, 0.71875, 0.75, 0.75)
    >>> s.should_prune(50), s.should_prune(55), s.should_prune(110)
    (True, False, False)
    >>> c = weightshare.sparsity_schedule("constant", target=0.9, begin_step=200)
    >>> c(0), c.should_prune(100), c.should_prune(300)
    (0.9, False, True)
    """
    check_choice(kind, tuple(SCHEDULES), "kind")
    return SCHEDULES[kind](initial, final, target, begin_step, end_step, power, frequency)
