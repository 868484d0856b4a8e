"""Optimizer state and compile config out of a Keras file: ``weightshare.strip_file``.

A job over :func:`weightshare.files.transform_file` (no tensor changes: its
`fn` is never called) with ``strip=True``; what is left out is decided by
:mod:`weightshare._io._strip` from the file's own layout.
"""

import os
from typing import NamedTuple

from .._base._validation import check_flag
from .._io._reader import open_weights
from .._io._writer import finish_of
from ..files import transform_file

__all__ = ["StripSummary", "strip_file"]


class StripSummary(NamedTuple):
    """What :func:`strip_file` left out of a file.

    Attributes
    ----------
    src, dst : str
    format : str
        The file's format (:data:`weightshare.files.FORMATS`).
    dropped : tuple of str
        The HDF5 groups left out (``/optimizer``, ``/optimizer_weights``,
        tf-keras' ``/metrics``), in the weights member of a ``.keras``.
    optimizer_tensors : int
        Datasets left out with them.
    optimizer_bytes : int
        Their bytes of values.
    config_removed : tuple of str
        Config entries left out: ``training_config`` (legacy ``.h5``),
        ``config.json:compile_config`` (``.keras``).
    size_before, size_after : int
        File sizes in bytes.
    compressed : bool
        The output's floating-point datasets are deflated.
    """

    src: str
    dst: str
    format: str
    dropped: tuple
    optimizer_tensors: int
    optimizer_bytes: int
    config_removed: tuple
    size_before: int
    size_after: int
    compressed: bool

    @property
    def stripped(self):
        """Whether anything was left out (False: the file held no optimizer state or config)."""
        return bool(self.dropped or self.config_removed)

    def to_dict(self):
        """A JSON-ready dict (tuples as lists, plus ``stripped``)."""
        d = self._asdict()
        d["dropped"], d["config_removed"] = list(self.dropped), list(self.config_removed)
        d["stripped"] = self.stripped
        return d


def strip_file(src, dst, *, in_place=False, compress=False):
    """Write a Keras file without its optimizer state and compile/training config.

    The output holds the architecture (when the input has one) and the
    weights, byte for byte; Keras loads it uncompiled, with no warning about
    optimizer variables. Left out:

    - ``.keras``: the ``optimizer`` group of ``model.weights.h5`` (and
      tf-keras' ``metrics`` group) and ``compile_config`` of ``config.json``;
    - ``.weights.h5``: the ``optimizer`` group (and tf-keras' ``metrics``);
    - legacy ``.h5`` (``model.save``): the ``optimizer_weights`` group and
      the ``training_config`` attribute.

    Everything else is kept: groups, attributes with their exact HDF5 types,
    the other datasets' values, the zip members' order and settings. What is
    lost is the state to resume training where it stopped (Adam's moments,
    the step count) and the compile settings: call ``model.compile(...)``
    after loading to train again. A file with nothing to leave out (a Keras 2
    ``save_weights`` ``.h5``, an uncompiled model) is written unchanged;
    :attr:`StripSummary.stripped` says so.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output (same suffix; see :func:`weightshare.transform_file`
        for the guarantees: atomic output, nothing left behind on failure).
    in_place : bool, default False
        Allow `dst` to be `src` (still written atomically).
    compress : bool, default False
        Also deflate the floating-point datasets (see
        :func:`weightshare.transform_file`).

    Returns
    -------
    StripSummary

    Raises
    ------
    weightshare.errors.FileFormatError
        `src` is not a Keras model or weights file (a NumPy or safetensors
        file included), or cannot be read; nothing is written.

    Examples
    --------
    >>> import os, tempfile, weightshare
    >>> out = os.path.join(tempfile.mkdtemp(), "digits-stripped.keras")
    >>> s = weightshare.strip_file(weightshare.examples.path("digits.keras"), out)
    >>> s.dropped, s.optimizer_tensors, s.config_removed
    (('/optimizer',), 14, ('config.json:compile_config',))
    >>> s.size_after < s.size_before
    True
    >>> weightshare.strip_file(out, out, in_place=True).stripped
    False
    """
    in_place = check_flag(in_place, "in_place")
    compress = check_flag(compress, "compress")
    src, dst = os.fspath(src), os.fspath(dst)
    with open_weights(src) as wf:
        finish = finish_of(wf, src, True, compress)
        fmt = wf.fmt
    size_before = os.path.getsize(src)
    transform_file(src, dst, _unchanged, select=_nothing, in_place=in_place, compress=compress,
                   strip=True)
    return StripSummary(src, dst, fmt, finish.drop, finish.dropped_tensors, finish.dropped_bytes,
                        finish.config_removed, size_before, os.path.getsize(dst), compress)


def _unchanged(record, values):      # pragma: no cover - never selected
    return None


def _nothing(record):
    return False
