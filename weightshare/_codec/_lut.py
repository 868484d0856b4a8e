"""LUT dtypes: the grid of values a look-up table stored in a given dtype can hold.

A LUT stored as ``lut_dtype`` can only hold some values. Every solver then
looks for the best centroids *on that grid*. In one dimension that stays
easy: for a run of sorted points the best grid point is the one nearest the
run's (weighted) mean, since ``sum w (x - g)**2 = sum w (x - mean)**2 +
W (mean - g)**2``; so a run's cost is still computed from prefix sums, and
the cost matrix stays Monge (for a <= b <= c <= d, give the run [a, c) and
the run [b, d) the grid points g1, g2 optimal for [a, d) and [b, c) in the
order that puts the mean of the outer part nearer its point: sorted points
make one of the two orders work), so the exact dynamic program stays exact.

Grids:

- ``"int8"``: ``scale * q`` for integers ``q`` in [-128, 127], ``scale =
  max|x| / 127`` over the LUT's points (rounded up to a value whose products
  with every q are exact in the tensor's dtype);
- ``"uint8"``: ``scale * (q - zero_point)`` for ``q`` in [0, 255] (affine):
  ``scale = (max(x, 0) - min(x, 0)) / 255`` (rounded up as above) and the
  integer ``zero_point = round(-min(x, 0) / scale)``, so 0.0 is on the grid;
- ``"float16"``, ``"bfloat16"``, ``"float8_e4m3"`` (E4M3FN): every finite value
  of that dtype that the tensor's dtype also holds exactly.

Snapping to an integer grid is O(1) arithmetic, to float16 one conversion
(every float16 is exact in float16, float32 and float64); to the others a
binary search in their sorted values (at most 65,536).
"""

import math

import numpy as np

from ._bf16 import bf16_to_float32
from ._fp8 import fp8_table

__all__ = ["Grid", "LUT_DTYPES", "make_grid"]


class Grid:
    """A sorted set of float64 values with :meth:`nearest`.

    Integer grids (``scale`` set): ``scale * n`` for integers n in [lo, hi];
    ``zero_point`` is the offset of the stored codes (``q = n + zero_point``).
    Float grids: ``points``, sorted.
    """

    def __init__(self, points=None, scale=None, lo=0, hi=0, zero_point=0, cast=None):
        self.points, self.scale, self.lo, self.hi = points, scale, lo, hi
        self.zero_point = zero_point
        self.cast = cast        # a NumPy dtype whose every finite value is a point (float16)

    def nearest(self, v):
        """The grid point nearest each value of `v` (float64 array); ties go either way."""
        v = np.asarray(v, dtype=np.float64)
        if self.scale is not None:
            with np.errstate(invalid="ignore"):
                n = np.clip(np.rint(v / self.scale), self.lo, self.hi)
            return n * self.scale
        p = self.points
        if self.cast is not None:   # NumPy's conversion rounds to nearest (clipped: no inf)
            with np.errstate(invalid="ignore"):
                return np.clip(v, p[0], p[-1]).astype(self.cast).astype(np.float64)
        i = np.clip(np.searchsorted(p, v), 1, p.size - 1) if p.size > 1 else \
            np.zeros(v.shape, dtype=np.intp)
        if p.size == 1:
            return p[i]
        lo, hi = p[i - 1], p[i]
        with np.errstate(invalid="ignore"):
            return np.where(v - lo <= hi - v, lo, hi)

    def scaled(self, e):
        """The same grid times ``2**-e`` (exact: e >= 0 only for huge float64 input)."""
        if not e:
            return self
        if self.scale is not None:
            return Grid(None, math.ldexp(self.scale, -e), self.lo, self.hi, self.zero_point)
        return Grid(np.ldexp(self.points, -e))    # (no longer the cast dtype's values)


_FLOAT_TABLES = {}


def _float_points(lut_dtype, dtype):
    """Sorted distinct finite values of `lut_dtype` that `dtype` holds exactly."""
    key = (lut_dtype, np.dtype(dtype).str)
    pts = _FLOAT_TABLES.get(key)
    if pts is None:
        if lut_dtype == "float16":
            t = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
        elif lut_dtype == "bfloat16":
            with np.errstate(invalid="ignore"):     # (its signalling NaNs)
                t = bf16_to_float32(np.arange(1 << 16, dtype=np.uint16)).astype(np.float64)
        else:
            t = fp8_table("float8_e4m3fn").astype(np.float64)
        t = t[np.isfinite(t)]
        with np.errstate(over="ignore", under="ignore"):
            t = t[t.astype(dtype).astype(np.float64) == t]
        pts = _FLOAT_TABLES[key] = np.unique(t)     # -0.0 and 0.0 are one point
    return pts


def _exact_scale(s, dtype):
    """A scale >= `s` such that ``scale * n`` is exact in `dtype` for every |n| <= 255.

    Its significand is rounded up to ``p - 8`` bits (p: the dtype's precision)
    and its last bit kept at or above the dtype's smallest subnormal: then
    every ``n * scale`` is an integer of at most p bits times a power of two
    the dtype resolves.
    """
    info = np.finfo(dtype)
    if not s > 0 or not math.isfinite(s):
        return 1.0
    bits = info.nmant + 1 - 8
    lsb = max(math.frexp(s)[1] - bits, math.frexp(float(info.smallest_subnormal))[1] - 1)
    return math.ldexp(math.ceil(math.ldexp(s, -lsb)), lsb)


def _int_grid(v, signed, dtype):
    lo_v, hi_v = min(float(v.min()), 0.0), max(float(v.max()), 0.0)
    if signed:
        scale = _exact_scale(max(-lo_v, hi_v) / 127.0, dtype)
        zp, lo, hi = 0, -128, 127
    else:
        scale = _exact_scale((hi_v - lo_v) / 255.0, dtype)
        zp = int(min(255, max(0, round(-lo_v / scale))))
        lo, hi = -zp, 255 - zp
    top = float(np.finfo(dtype).max) / scale     # products beyond the dtype's range: left out
    if top < 256:
        lo, hi = max(lo, -math.floor(top)), min(hi, math.floor(top))
    return Grid(None, scale, lo, hi, zp)


#: lut_dtype -> grid builder (points of the LUT, float64; the tensor's dtype)
LUT_DTYPES = {
    "int8": lambda v, dtype: _int_grid(v, True, dtype),
    "uint8": lambda v, dtype: _int_grid(v, False, dtype),
    "float16": lambda v, dtype: Grid(_float_points("float16", dtype), cast=np.float16),
    "bfloat16": lambda v, dtype: Grid(_float_points("bfloat16", dtype)),
    "float8_e4m3": lambda v, dtype: Grid(_float_points("float8_e4m3", dtype)),
}


def make_grid(lut_dtype, values, dtype):
    """The grid of `lut_dtype` for a LUT of `values` (float64, non-empty) in a tensor of `dtype`."""
    return LUT_DTYPES[lut_dtype](values, dtype)
