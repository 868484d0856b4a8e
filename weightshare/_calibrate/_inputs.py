"""The user's importance arrays and calibration inputs, checked once.

Both may come as Python objects (a mapping of arrays, an array) or as files
(``.npz`` of arrays named like the tensors; ``.npy`` or ``.npz`` of inputs),
which :mod:`weightshare.files` reads with the bounded readers of
``weightshare._io._npy`` (a forged header, a pickle, a zip bomb are refused
naming the file) and passes here with the file's name. Every error is one
line naming the file (or the parameter) and the tensor.
"""

from collections.abc import Mapping

import numpy as np

from .._base._validation import describe_nonfinite
from ..errors import FileFormatError

__all__ = ["check_importance", "check_calibration", "pick_input", "INPUT_KEYS"]

#: the .npz members taken as calibration inputs (else its only member)
INPUT_KEYS = ("x", "X", "x_train", "X_train", "inputs")


def _fail(where, message, tensor=None):
    if isinstance(where, str):          # a file
        return FileFormatError(where, message, tensor)
    return ValueError(f"importance[{tensor!r}]: {message}" if tensor else f"importance {message}")


def check_importance(arrays, targets, where=None):
    """{tensor name: float64 importance broadcastable to it} from a mapping of arrays.

    `targets` maps the names of the tensors the job clusters to their records
    (``shape`` is used). A name that is not one of them, an array that does not
    broadcast to its tensor, a negative, NaN or infinite entry, an array that is
    zero everywhere: one error naming the file `where` (a ``FileFormatError``; None:
    a ``ValueError`` naming the parameter) and the tensor.
    """
    if not isinstance(arrays, Mapping):
        raise TypeError("importance must be a mapping {tensor name: array} or the path of a "
                        f".npz of such arrays; got {type(arrays).__name__}")
    if not arrays:
        raise _fail(where, "holds no arrays (name them like the tensors: weightshare info)")
    out = {}
    for name, value in arrays.items():
        if not isinstance(name, str) or name not in targets:
            listed = ", ".join(list(targets)[:8]) + (", ..." if len(targets) > 8 else "")
            raise _fail(where, f"names {name!r}, which is not a tensor this job clusters; "
                        f"targeted tensors: {listed or 'none'}")
        try:
            a = np.asarray(value)
        except (TypeError, ValueError) as exc:
            raise _fail(where, f"is not an array ({exc})", name) from None
        if a.dtype.kind not in "biuf":
            raise _fail(where, f"holds {a.dtype} values, not numbers", name)
        shape = tuple(targets[name].shape)
        try:
            ok = np.broadcast_shapes(a.shape, shape) == shape
        except ValueError:
            ok = False
        if not ok:
            raise _fail(where, f"has shape {a.shape}, which does not broadcast to the tensor's "
                        f"shape {shape}", name)
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise _fail(where, f"importance must be finite; found {describe_nonfinite(a)}", name)
        if a.size and a.min() < 0:
            raise _fail(where, f"importance must be >= 0; found minimum {a.min()!r}", name)
        if not a.any():
            raise _fail(where, "importance is zero everywhere (nothing would be fitted)", name)
        out[name] = a
    return out


def pick_input(members, where):
    """The calibration inputs of a .npz: the member named one of :data:`INPUT_KEYS`, or its
    only member."""
    arr = next((members[k] for k in INPUT_KEYS if k in members), None)
    if arr is None:
        if len(members) != 1:
            raise FileFormatError(where, "the calibration .npz must hold one of "
                                  f"{', '.join(INPUT_KEYS)} or a single member; it holds "
                                  f"{', '.join(members) or 'nothing'}")
        arr = next(iter(members.values()))
    return arr


def check_calibration(calibration, where=None):
    """The calibration inputs as an ndarray (a list for several inputs), checked: numbers,
    non-empty, with a batch axis, finite. `where`: the file they came from (named in the
    error, a ``FileFormatError``), else a ``ValueError`` naming the parameter."""
    xs = list(calibration) if isinstance(calibration, (list, tuple)) else [calibration]
    try:
        xs = [np.asarray(x) for x in xs]
    except (TypeError, ValueError) as exc:
        raise TypeError(f"calibration must be an array of inputs: {exc}") from None
    for i, x in enumerate(xs):
        what = "the calibration inputs" + (f" (input {i})" if len(xs) > 1 else "")
        problem = None
        if x.dtype.kind not in "biuf":
            problem = f"{what} hold {x.dtype} values, not numbers"
        elif x.ndim < 2 or x.size == 0:
            problem = (f"{what} have shape {x.shape}; they need a batch axis and the model's "
                       "input axes, e.g. (batch, features)")
        elif x.dtype.kind == "f" and not np.isfinite(x).all():
            problem = f"{what} must be finite; found {describe_nonfinite(x)}"
        if problem:
            if where is not None:
                raise FileFormatError(where, problem)
            raise ValueError(f"calibration: {problem}")
    return xs[0] if len(xs) == 1 else xs
