"""8-bit floats (OCP FP8) decoded to float32, exactly, without ml_dtypes.

Two formats, as safetensors names them (and PyTorch's ``float8_e4m3fn`` /
``float8_e5m2``):

- ``F8_E4M3`` (E4M3FN): 1 sign bit, 4 exponent bits (bias 7), 3 mantissa
  bits; no infinities; ``S.1111.111`` is NaN; largest finite value 448;
  exponent 0 holds the subnormals ``m / 8 * 2**-6``.
- ``F8_E5M2``: 1 sign bit, 5 exponent bits (bias 15), 2 mantissa bits, IEEE
  754 rules: exponent 31 is infinity (mantissa 0) or NaN; exponent 0 holds
  the subnormals ``m / 4 * 2**-14``.

Every one of the 256 codes of each format is an exact float32; decoding is a
lookup in a 256-entry table built from these rules. :func:`encode_exact`
goes the other way only for values that are exactly a code (no rounding),
which is all a rewrite that must not change a value needs.
"""

import numpy as np

__all__ = ["FP8_FORMATS", "fp8_table", "fp8_to_float32", "encode_exact"]

#: name -> (exponent bits, mantissa bits, bias, has infinities)
FP8_FORMATS = {"float8_e4m3fn": (4, 3, 7, False), "float8_e5m2": (5, 2, 15, True)}


def _value(code, ebits, mbits, bias, ieee):
    sign = -1.0 if code & 0x80 else 1.0
    exp = (code >> mbits) & ((1 << ebits) - 1)
    man = code & ((1 << mbits) - 1)
    top = (1 << ebits) - 1
    if ieee and exp == top:
        return sign * np.inf if man == 0 else np.nan
    if not ieee and exp == top and man == (1 << mbits) - 1:
        return np.nan
    if exp == 0:
        return sign * man / (1 << mbits) * 2.0 ** (1 - bias)
    return sign * (1 + man / (1 << mbits)) * 2.0 ** (exp - bias)


def fp8_table(fmt):
    """The float32 value of each of the 256 codes of `fmt` (``"float8_e4m3fn"``/``"float8_e5m2"``).

    Examples
    --------
    >>> t = fp8_table("float8_e4m3fn")
    >>> float(t[0x7E]), float(t[0x01]), bool(np.isnan(t[0x7F]))
    (448.0, 0.001953125, True)
    >>> float(fp8_table("float8_e5m2")[0x7C])
    inf
    """
    ebits, mbits, bias, ieee = FP8_FORMATS[fmt]
    return np.array([_value(c, ebits, mbits, bias, ieee) for c in range(256)], dtype=np.float32)


_TABLES = {}


def fp8_to_float32(codes, fmt):
    """float32 values of FP8 data given as uint8 codes (any shape)."""
    table = _TABLES.get(fmt)
    if table is None:
        table = _TABLES[fmt] = fp8_table(fmt)
    return table[np.asarray(codes, dtype=np.uint8)]


def encode_exact(values, fmt):
    """uint8 codes of `values` when every value is exactly an FP8 number of `fmt`, else None.

    NaN encodes as the canonical NaN (0x7F); -0.0 keeps its sign.

    Examples
    --------
    >>> encode_exact(np.array([0.5, -448.0, -0.0]), "float8_e4m3fn").tolist()
    [48, 254, 128]
    >>> encode_exact(np.array([0.3]), "float8_e4m3fn") is None
    True
    """
    table = fp8_table(fmt)
    v = np.asarray(values, dtype=np.float64)
    finite = ~np.isnan(table)
    codes = np.nonzero(finite)[0]
    # sort by value; -0.0 and +0.0 compare equal, so the sign is chosen afterwards
    order = np.argsort(table[codes], kind="stable")
    sorted_vals, sorted_codes = table[codes][order].astype(np.float64), codes[order]
    pos = np.clip(np.searchsorted(sorted_vals, v), 0, sorted_vals.size - 1)
    out = sorted_codes[pos].astype(np.uint8)
    nan = np.isnan(v)
    if not np.all(nan | (sorted_vals[pos] == v)):
        return None
    zero = v == 0
    out[zero] = np.where(np.signbit(v[zero]), 0x80, 0x00)
    out[nan] = 0x7F
    return out
