"""Argument checks shared by the public functions.

Public functions validate here, once, and hand clean NumPy arrays to private
helpers that assume valid input (the scikit-learn convention). Every error
names the parameter, the rule and the offending value.
"""

import math
import numbers

import numpy as np

__all__ = ["FLOAT_DTYPES", "check_weights", "check_k", "check_int", "check_flag", "check_fraction",
           "check_number", "check_random_state", "check_choice", "check_axis",
           "check_sample_weight", "describe_nonfinite"]

#: dtypes the array API accepts (bfloat16 enters through the file adapters).
FLOAT_DTYPES = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))


def describe_nonfinite(x, limit=3):
    """Return 'N NaN and M Inf values, first at index (...)' for a float array."""
    bad = ~np.isfinite(x)
    n_nan = int(np.count_nonzero(np.isnan(x)))
    n_inf = int(np.count_nonzero(bad)) - n_nan
    where = [tuple(int(i) for i in idx) for idx in np.argwhere(bad)[:limit]]
    first = ", ".join(str(w[0]) if len(w) == 1 else str(w) for w in where)
    return f"{n_nan} NaN and {n_inf} Inf value(s), first at index {first}"


def check_weights(weights, name="weights", allow_empty=False):
    """Return `weights` as a float ndarray (not copied), or raise.

    Rejects non-numeric, integer, boolean and complex input, NaN/Inf, and empty
    arrays (unless `allow_empty`). Floats stored in the other byte order (a
    big-endian ``.npy``) are converted to native order: results then come back
    in the native dtype of the same size.
    """
    if isinstance(weights, np.ndarray):
        x = weights
    else:
        try:
            x = np.asarray(weights)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be an array of floats; could not convert "
                            f"{type(weights).__name__}: {exc}") from None
    if x.dtype.kind == "f" and not x.dtype.isnative and x.dtype.newbyteorder("=") in FLOAT_DTYPES:
        x = x.astype(x.dtype.newbyteorder("="))
    if x.dtype not in FLOAT_DTYPES:
        kind = {"i": "integer", "u": "unsigned integer", "b": "boolean", "c": "complex",
                "O": "object", "U": "string", "S": "bytes", "V": "void"}.get(x.dtype.kind, x.dtype.kind)
        raise TypeError(f"{name} must have a floating dtype (float16, float32 or float64); "
                        f"got {kind} dtype {x.dtype}")
    if x.size == 0 and not allow_empty:
        raise ValueError(f"{name} must not be empty; got shape {x.shape}")
    if x.size and not np.isfinite(x).all():
        raise ValueError(f"{name} must be finite; found {describe_nonfinite(x)}")
    return x


def check_int(value, name, minimum):
    """Return `value` as a Python int >= `minimum`, or raise (a bool is not an int here)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r} of type "
                        f"{type(value).__name__}")
    value = int(value)
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {name}={value}")
    return value


def check_k(k, name="k"):
    """Return `k` as a Python int >= 1, or raise."""
    return check_int(k, name, 1)


def check_flag(value, name):
    """Return `value` as a Python bool; only True and False (NumPy's too) are flags."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}")
    return bool(value)


def check_fraction(value, name):
    """Return `value` as a float in [0, 1), or raise (NaN is out of range)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number in [0, 1); got {value!r} of type "
                        f"{type(value).__name__}")
    f = float(value)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {name}={value!r}")
    return f


def check_number(value, name, minimum, *, strict=False):
    """Return `value` as a finite float >= `minimum` (> with `strict`), or raise ValueError."""
    ok = (not isinstance(value, (bool, np.bool_)) and isinstance(value, numbers.Real)
          and math.isfinite(value) and (value > minimum if strict else value >= minimum))
    if not ok:
        rule = ">" if strict else ">="
        raise ValueError(f"{name} must be a finite number {rule} {minimum}; got {name}={value!r}")
    return float(value)


def check_random_state(random_state):
    """Normalise `random_state` (None, int or Generator) to a Generator, once."""
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, (bool, np.bool_)) or not isinstance(random_state, numbers.Integral):
        raise TypeError("random_state must be None, an int or a numpy.random.Generator; "
                        f"got {type(random_state).__name__} {random_state!r}")
    if random_state < 0:
        raise ValueError(f"random_state must be >= 0; got random_state={random_state}")
    return np.random.default_rng(int(random_state))


def check_choice(value, choices, name):
    """Return `value` if it is one of `choices` (strings), else raise listing them."""
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {allowed}; got {value!r}")
    return value


def check_axis(axis, ndim, name="axis"):
    """Return a non-negative axis for an array of `ndim` dimensions, or raise."""
    if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, numbers.Integral):
        raise TypeError(f"{name} must be None or an int; got {axis!r}")
    if not -ndim <= axis < ndim:
        raise ValueError(f"{name}={axis} is out of range for an array with {ndim} dimension(s)")
    return int(axis) % ndim


def check_sample_weight(sample_weight, shape, name="sample_weight"):
    """Return float64 importance weights of `shape` (non-negative, finite), or raise."""
    try:
        sw = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of non-negative numbers: {exc}") from None
    if sw.shape != tuple(shape):
        try:
            sw = np.broadcast_to(sw, shape)
        except ValueError:
            raise ValueError(f"{name} must have the shape of weights {tuple(shape)}; "
                             f"got shape {sw.shape}") from None
    if sw.size and not np.isfinite(sw).all():
        raise ValueError(f"{name} must be finite; found {describe_nonfinite(sw)}")
    if sw.size and sw.min() < 0:
        raise ValueError(f"{name} must be >= 0; found minimum {sw.min()!r}")
    return sw
