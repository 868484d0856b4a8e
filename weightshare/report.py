"""How small is it really: encoded sizes per tensor and per model, and the error.

:func:`report` measures every tensor of a model with the real encoders of
:mod:`weightshare.encode` (bytes a blob actually takes, header and CRC
included), next to the Shannon bound, deflate of the raw bytes (the "zip it"
number) and the Deep Compression eq. 1 estimate. What each number means:
docs/report.md.

Arrays (a dict, ``.npy``, ``.npz``) never touch h5py; Keras files are read
through :func:`weightshare.files.read_weights`, imported only when a Keras
file is given.
"""

import os
import zlib
from collections.abc import Mapping
from typing import NamedTuple, Optional

import numpy as np

from ._kmeans._dot import dot
from .errors import printable
from ._codec._bf16 import bf16_bits_of
from .encode import DTYPES, encoded_sizes

__all__ = ["report", "Report", "TensorReport", "ReportTotal", "load_tensors", "DEFLATE_LEVEL"]

#: zlib level of the deflate column (the highest)
DEFLATE_LEVEL = 9
#: bits per weight of the reference size (Deep Compression's b, float32)
_REF_BITS = 32


class TensorReport(NamedTuple):
    """One tensor's row of a :class:`Report`. Sizes are in bytes.

    Attributes
    ----------
    name : str
    shape : tuple of int
    dtype : str
        'float16', 'float32', 'float64' or 'bfloat16'.
    n, nonzeros, distinct : int
        Entries, entries that are not +0.0, distinct values (k).
    index_bits : int
        ceil(log2 k).
    raw : int
        As stored: n times the dtype's size.
    packed, sparse, huffman, sparse_huffman : int
        ``len(weightshare.encode(values, scheme=...))``.
    best : int
        The smallest encoding (``'auto'``), and ``best_scheme`` its name.
    best_scheme : str
    entropy : float
        n * H / 8: the Shannon bound of the codebook indices, entries coded
        one at a time (no header, no codebook).
    deflate : int
        ``len(zlib.compress(raw bytes, 9))``.
    ratio : float or None
        Raw float32 size (4 n) over ``best``; None for an empty tensor.
    ratio_eq1 : float or None
        Deep Compression eq. 1, ``n b / (n ceil(log2 k) + k b)`` with b = 32.
    sse, max_abs_error : float or None
        Against the original tensor (``compare``); None without it; ``inf``
        beyond the float64 range (None in the CLI's JSON).
    """

    name: str
    shape: tuple
    dtype: str
    n: int
    nonzeros: int
    distinct: int
    index_bits: int
    raw: int
    packed: int
    sparse: int
    huffman: int
    sparse_huffman: int
    best: int
    best_scheme: str
    entropy: float
    deflate: int
    ratio: Optional[float]
    ratio_eq1: Optional[float]
    sse: Optional[float]
    max_abs_error: Optional[float]


class ReportTotal(NamedTuple):
    """The model's totals in a :class:`Report` (sums over tensors; ratios of sums).

    ``float32`` is 4 bytes per entry, the reference of both ratios;
    ``max_abs_error`` is the largest over tensors.
    """

    n_tensors: int
    n: int
    nonzeros: int
    float32: int
    raw: int
    packed: int
    sparse: int
    huffman: int
    sparse_huffman: int
    best: int
    entropy: float
    deflate: int
    ratio: Optional[float]
    ratio_eq1: Optional[float]
    sse: Optional[float]
    max_abs_error: Optional[float]


_COLUMNS = [  # header, row attribute, format
    ("tensor", "name", "s"), ("shape", "shape", "shape"), ("dtype", "dtype", "s"),
    ("n", "n", "d"), ("nonzero", "nonzeros", "d"), ("k", "distinct", "d"),
    ("bits", "index_bits", "d"), ("raw", "raw", "d"), ("deflate", "deflate", "d"),
    ("packed", "packed", "d"), ("sparse", "sparse", "d"), ("huffman", "huffman", "d"),
    ("sp+huff", "sparse_huffman", "d"), ("entropy", "entropy", ".0f"),
    ("best", "best", "d"), ("scheme", "best_scheme", "s"), ("ratio", "ratio", ".2f"),
    ("eq.1", "ratio_eq1", ".2f"),
]
_ERROR_COLUMNS = [("sse", "sse", ".3g"), ("max err", "max_abs_error", ".3g")]


def _cell(value, fmt):
    if value is None:
        return "-"
    if fmt == "shape":
        return "x".join(str(d) for d in value) or "()"
    if isinstance(value, str):      # a name from the file: control characters escaped
        return printable(value)
    return format(value, fmt)


class Report(NamedTuple):
    """Result of :func:`report`: per-tensor rows and the model's totals.

    Attributes
    ----------
    rows : tuple of TensorReport
        In the order of the input.
    total : ReportTotal
    """

    rows: tuple
    total: ReportTotal

    def to_dict(self):
        """Plain dict (lists, ints, floats, None) for ``json.dump``."""
        return {"tensors": [dict(r._asdict(), shape=list(r.shape)) for r in self.rows],
                "total": self.total._asdict()}

    def table(self):
        """The report as a text table, one line per tensor and a total line (names from the
        file with their control characters escaped: safe to print on a terminal)."""
        cols = _COLUMNS + (_ERROR_COLUMNS if self.total.sse is not None else [])
        cells = [[_cell(getattr(r, attr), fmt) for _, attr, fmt in cols] for r in self.rows]
        t = self.total
        total = {"name": "total", "n": t.n, "nonzeros": t.nonzeros, "raw": t.raw,
                 "deflate": t.deflate, "packed": t.packed, "sparse": t.sparse,
                 "huffman": t.huffman, "sparse_huffman": t.sparse_huffman,
                 "entropy": t.entropy, "best": t.best, "ratio": t.ratio,
                 "ratio_eq1": t.ratio_eq1, "sse": t.sse, "max_abs_error": t.max_abs_error}
        cells.append([_cell(total[attr], fmt) if attr in total else ""
                      for _, attr, fmt in cols])
        widths = [max([len(h)] + [len(row[i]) for row in cells]) for i, (h, _, _) in enumerate(cols)]
        lines = []
        for row in [[h for h, _, _ in cols]] + cells:
            left = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            lines.append("  ".join(left + [c.rjust(w) for c, w in zip(row[2:], widths[2:])]).rstrip())
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)


# --------------------------------------------------------------------------- loading

class _Step(NamedTuple):
    """A measured tensor, as :func:`report` tells its `progress`."""

    name: str
    shape: tuple


class _Tensor(NamedTuple):
    name: str
    values: np.ndarray
    dtype: Optional[str]     # None: the array's own dtype; 'bfloat16': float32 values


def _is_path(source):
    return isinstance(source, (str, os.PathLike))


def _load(source, name):
    """[_Tensor] of a dict, a .npy/.npz file or a Keras file."""
    if isinstance(source, Mapping):
        out = []
        for key, value in source.items():
            if not isinstance(key, str):
                raise TypeError(f"{name} keys must be tensor names (str); got {key!r}")
            out.append(_Tensor(key, value, None))
        return out
    if not _is_path(source):
        raise TypeError(f"{name} must be a path or a dict of arrays; got {type(source).__name__}")
    path = os.fspath(source)
    return _load_keras(path)


def _load_keras(path):
    """Floating-point tensors of a file, named by weightshare.files, whatever the file's name:
    ``layer/role`` in Keras files, the member in a .npz, ``array`` for a .npy (one rule for
    every reader, so that a byte copy under another name compares equal)."""
    from .files import read_weights   # h5py only when a Keras file is read
    return [_Tensor(rec.name, rec.value, "bfloat16" if rec.dtype == "bfloat16" else None)
            for rec in read_weights(path) if rec.value.dtype.kind == "f"]


def load_tensors(path_or_tensors):
    """The tensors :func:`report` would measure, as a dict {name: ndarray}.

    bfloat16 tensors of Keras files come as float32 arrays (exact).

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> sorted(weightshare.load_tensors({"b": np.zeros(2), "a": np.ones(3)}))
    ['a', 'b']
    """
    return {t.name: t.values for t in _load(path_or_tensors, "path_or_tensors")}


# --------------------------------------------------------------------------- numbers

def _ratio(num, den):
    return num / den if den else None


def _row(t, original):
    s = encoded_sizes(t.values, dtype=t.dtype)
    values = np.asarray(t.values)
    if t.dtype == "bfloat16":
        raw_bytes = bf16_bits_of(values).astype("<u2").tobytes()
    else:
        raw_bytes = np.ascontiguousarray(values).astype(values.dtype.newbyteorder("<"),
                                                       copy=False).tobytes()
    raw = s.n * DTYPES[s.dtype][1]
    eq1_den = s.n * s.index_bits + s.distinct * _REF_BITS
    sse = err = None
    if original is not None:
        a = values.astype(np.float64)
        b = np.asarray(original, dtype=np.float64)
        if b.shape != a.shape:
            raise ValueError(f"compare: tensor {t.name!r} has shape {b.shape} in the original "
                             f"and {a.shape} in the model")
        with np.errstate(over="ignore"):    # beyond the float64 range (weights near 1e154+): inf
            d = a - b
            sse = dot(d.ravel(), d.ravel())
        err = float(np.abs(d).max()) if d.size else 0.0
    return TensorReport(
        name=t.name, shape=s.shape, dtype=s.dtype, n=s.n, nonzeros=s.nonzeros,
        distinct=s.distinct, index_bits=s.index_bits, raw=raw, packed=s.packed, sparse=s.sparse,
        huffman=s.huffman, sparse_huffman=s.sparse_huffman, best=s.best,
        best_scheme=s.best_scheme, entropy=s.entropy_bits / 8,
        deflate=len(zlib.compress(raw_bytes, DEFLATE_LEVEL)),
        ratio=_ratio(4 * s.n, s.best) if s.n else None,
        ratio_eq1=_ratio(s.n * _REF_BITS, eq1_den),
        sse=sse, max_abs_error=err)


def _total(rows, compared):
    def tot(attr):
        return sum(getattr(r, attr) for r in rows)
    n = tot("n")
    k_bits = sum(r.n * r.index_bits + r.distinct * _REF_BITS for r in rows)
    return ReportTotal(
        n_tensors=len(rows), n=n, nonzeros=tot("nonzeros"), float32=4 * n, raw=tot("raw"),
        packed=tot("packed"), sparse=tot("sparse"), huffman=tot("huffman"),
        sparse_huffman=tot("sparse_huffman"), best=tot("best"), entropy=float(tot("entropy")),
        deflate=tot("deflate"), ratio=_ratio(4 * n, tot("best")) if n else None,
        ratio_eq1=_ratio(n * _REF_BITS, k_bits),
        sse=float(tot("sse")) if compared else None,
        max_abs_error=max((r.max_abs_error for r in rows), default=0.0) if compared else None)


def report(path_or_tensors, *, compare=None, progress=None):
    """Measure every tensor of a model: real encoded sizes, bounds, and the error.

    Parameters
    ----------
    path_or_tensors : dict of str to ndarray, or path
        The tensors (float16, float32 or float64 arrays), or a file: ``.npy``
        (one tensor, named after the file), ``.npz`` (one tensor per member),
        or a Keras file (``.keras``, ``.weights.h5``, ``.h5``) whose weights
        are read with :func:`weightshare.files.read_weights` and named as it
        names them (``layer/role``, ``inner/dense/kernel``); non-float
        tensors (integer state) are left out.
    compare : dict or path, optional
        The original model, same kinds of input. Every tensor of the model
        must be in it, with the same shape; adds the sum of squared errors
        and the largest absolute error per tensor.
    progress : callable(done, total, tensor), optional
        Called after each tensor is measured (`tensor` has ``name`` and
        ``shape``; the CLI's progress bar).

    Returns
    -------
    Report
        ``rows`` (one :class:`TensorReport` per tensor, input order) and
        ``total``; ``Report.table()`` formats it, ``Report.to_dict()`` is
        ready for JSON.

    Notes
    -----
    Encoded sizes are whole blobs (header and CRC32 included, 15-20 bytes),
    so a tiny tensor never looks smaller than it is; its ratio can be below 1.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> w = np.array([0.0, 0.0, 0.5, 0.5, 0.0, -1.0, 0.0, 0.0], dtype=np.float32)
    >>> rep = weightshare.report({"fc/kernel": w})
    >>> r = rep.rows[0]
    >>> r.n, r.nonzeros, r.distinct, r.index_bits, r.raw, r.packed, r.best_scheme
    (8, 3, 3, 2, 32, 29, 'packed')
    >>> round(r.ratio_eq1, 3)          # 8 * 32 / (8 * 2 + 3 * 32)
    2.286
    >>> rep2 = weightshare.report({"fc/kernel": w}, compare={"fc/kernel": w + 0.25})
    >>> rep2.rows[0].sse, rep2.total.max_abs_error
    (0.5, 0.25)
    """
    tensors = _load(path_or_tensors, "path_or_tensors")
    originals = None
    if compare is not None:
        originals = {t.name: t.values for t in _load(compare, "compare")}
        missing = [t.name for t in tensors if t.name not in originals]
        if missing:
            raise ValueError(f"compare: {len(missing)} tensor(s) of the model are not in the "
                             f"original: {', '.join(missing[:5])}")
    names = [t.name for t in tensors]
    if len(set(names)) != len(names):
        dup = sorted({x for x in names if names.count(x) > 1})
        raise ValueError(f"tensor names must be unique; repeated: {', '.join(dup[:5])}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")
    rows = []
    for done, t in enumerate(tensors, 1):
        try:
            rows.append(_row(t, None if originals is None else originals[t.name]))
        except (ValueError, TypeError, MemoryError) as exc:   # name the tensor and its file
            where = f"{os.fspath(path_or_tensors)}: " if _is_path(path_or_tensors) else ""
            why = str(exc) if not isinstance(exc, MemoryError) else \
                f"out of memory for this tensor (shape {np.shape(t.values)})"
            raise type(exc)(f"{where}{t.name}: {why}") from None
        if progress is not None:
            progress(done, len(tensors), _Step(t.name, np.shape(t.values)))
    rows = tuple(rows)
    return Report(rows, _total(rows, originals is not None))

