"""Keras files without Keras: read the weights, cluster them, write the same format back.

Formats are detected from the content (never from the name alone): Keras 3
``.keras`` zips (also written by tf-keras 2.13+), Keras 3 ``.weights.h5``
stores, legacy HDF5 ``.h5``/``.hdf5`` from ``model.save`` (Keras 1-3) and
Keras 2 ``save_weights``, and NumPy ``.npy``/``.npz`` array files. See
docs/files.md for what is read, what is preserved byte for byte, and what is
refused.

This module (with :mod:`weightshare._io`) is the file adapter: it imports h5py
and calls the array core, never the reverse.
"""

import numbers
from typing import NamedTuple

import numpy as np

from ._io._reader import FORMATS, WeightInfo, open_weights
from ._io._roles import output_axis
from ._io._writer import rewrite
from .cluster import METHODS, assign, cluster
from ._init import INITS
from ._validation import check_choice, check_k

__all__ = ["WeightInfo", "ClusterSummary", "read_weights", "select_weights", "transform_file",
           "cluster_file", "file_format", "FORMATS"]


class ClusterSummary(NamedTuple):
    """What :func:`cluster_file` did to one tensor."""

    tensor: str
    layer: str
    role: str
    shape: tuple
    dtype: str
    k: int
    distinct_before: int
    distinct_after: int
    zeros_before: int
    zeros_after: int
    sse: float

    def to_dict(self):
        d = self._asdict()
        d["shape"] = list(self.shape)
        return d


def file_format(path):
    """The format of a weights file, from its content: one of :data:`FORMATS`.

    Examples
    --------
    >>> import weightshare
    >>> weightshare.file_format("examples/digits.keras")
    'keras_zip'
    """
    with open_weights(path) as wf:
        return wf.fmt


def read_weights(path, *, values=True):
    """Every weight tensor of a file: layer, role, shape, dtype, where it lives (and values).

    Parameters
    ----------
    path : str or os.PathLike
    values : bool, default True
        Read the values too (``WeightInfo.value``; bfloat16 as exact float32).
        With False only the metadata is read, whatever the file's size.

    Returns
    -------
    list of WeightInfo
        In file order (model layer order for Keras files).

    Raises
    ------
    weightshare.errors.FileFormatError
        The file is not a readable weights file (names the file and dataset).

    Examples
    --------
    >>> import weightshare
    >>> [(w.name, w.shape) for w in weightshare.read_weights("examples/digits.keras")][:2]
    [('fc1/kernel', (64, 64)), ('fc1/bias', (64,))]
    """
    with open_weights(path) as wf:
        if not values:
            return list(wf.records)
        return [r._replace(value=wf.read(r)) for r in wf.records]


def select_weights(records, *, layers=None, roles=("kernel",)):
    """The records a job targets, by the model's own layer names and roles.

    Parameters
    ----------
    records : list of WeightInfo
    layers : iterable of str, optional
        Layer names (top-level, or a nested layer's path such as ``inner/dense``);
        None targets every layer. Names are matched exactly, never as substrings.
    roles : iterable of str, default ("kernel",)
        ``"kernel"`` selects every kernel-like weight (Dense/Conv kernels,
        depthwise and pointwise kernels, recurrent kernels, embeddings,
        attention projections); other names select that exact role
        (``"bias"``, ``"recurrent_kernel"``, ``"gamma"``, ...); ``"all"``
        selects everything.

    Raises
    ------
    ValueError
        A named layer or role does not exist in the file (the message lists
        those that do).
    """
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    known_roles = {r.role for r in records} | {r.kind for r in records} | {"all"}
    bad = [r for r in roles if r not in known_roles]
    if bad:
        raise ValueError(f"roles {bad} do not exist in this file; it has "
                         f"{sorted(known_roles)}")
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        known = {r.layer for r in records} | {r.path for r in records}
        missing = [name for name in layers if name not in known]
        if missing:
            names = sorted({r.layer for r in records})
            raise ValueError(f"no layer named {', '.join(map(repr, missing))}; the layers with "
                             f"weights are: {', '.join(names)}")
    out = []
    for r in records:
        if layers is not None and r.layer not in layers and r.path not in layers:
            continue
        if "all" in roles or r.role in roles or r.kind in roles:
            out.append(r)
    return out


def transform_file(src, dst, fn, *, select=None, in_place=False, progress=None):
    """Rewrite a weights file, replacing the tensors `fn` returns new values for.

    The building block of :func:`cluster_file` and ``weightshare.prune_file``:
    the output keeps the input's format and suffix, every dataset, attribute
    (with its HDF5 type), group and zip member that `fn` leaves alone stays
    byte-identical, the input is only opened for reading, and the output is
    written to a temporary file in the destination folder and renamed into
    place (an interrupted run leaves no partial output). Tensors are
    processed one at a time.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output. ``dst`` must keep ``src``'s suffix and differ from it
        unless `in_place`.
    fn : callable(record, array) -> ndarray or None
        Gets each selected :class:`WeightInfo` and its current values
        (bfloat16 as float32) and returns the new values (same shape; they
        are cast to the stored dtype, bfloat16 rounded to nearest even) or
        None to leave the tensor untouched.
    select : callable(record) -> bool, optional
        Which tensors `fn` sees (all by default).
    in_place : bool, default False
        Allow ``dst`` to be ``src`` (still written atomically).
    progress : callable(done, total, record), optional

    Returns
    -------
    list of WeightInfo
        The tensors that changed.
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    return rewrite(src, dst, fn, select=select, in_place=in_place, progress=progress)


def _check_k_map(k, records):
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        return lambda r: check_k(k)
    if isinstance(k, dict):
        known = {r.layer for r in records} | {r.path for r in records}
        for name, value in k.items():
            if name not in known:
                raise ValueError(f"k names layer {name!r}, which has no targeted weights; targeted "
                                 f"layers: {', '.join(sorted({r.layer for r in records}))}")
            check_k(value, name=f"k[{name!r}]")
        return lambda r: k.get(r.path, k.get(r.layer))
    raise TypeError(f"k must be an int >= 1 or a mapping of layer name to int; got {k!r}")


def cluster_file(src, dst, k, *, layers=None, roles=("kernel",), init="linear", method="auto",
                 keep_zeros=True, per_channel=False, random_state=None, in_place=False,
                 progress=None):
    """Cluster the weights of a Keras (or NumPy) file and write the same format back.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output files (see :func:`transform_file` for the guarantees).
    k : int or dict of str to int
        Shared values per tensor (zero included with `keep_zeros`); a mapping
        gives k per layer name, and layers it leaves out are not clustered.
    layers : iterable of str, optional
        Layer names to cluster (default: every layer).
    roles : iterable of str, default ("kernel",)
        Which weights (see :func:`select_weights`): by default the
        kernel-like ones; biases, normalisation and other state stay untouched.
    init, method, keep_zeros, random_state
        As in :func:`weightshare.cluster`.
    per_channel : bool, default False
        k values per output channel: along the last axis of Dense/Conv
        kernels and embeddings, axis -2 of depthwise and transposed-conv kernels.
    in_place : bool, default False
    progress : callable(done, total, record), optional

    Returns
    -------
    list of ClusterSummary
        One row per clustered tensor.

    Examples
    --------
    >>> import os, tempfile, weightshare
    >>> out = os.path.join(tempfile.mkdtemp(), "digits-k8.keras")
    >>> rows = weightshare.cluster_file("examples/digits.keras", out, 8)
    >>> [(r.tensor, r.distinct_after) for r in rows]
    [('fc1/kernel', 8), ('fc2/kernel', 8), ('out/kernel', 8)]
    """
    check_choice(method, METHODS, "method")
    if isinstance(init, str):
        check_choice(init, tuple(INITS), "init")
    with open_weights(src) as wf:
        chosen = select_weights(wf.records, layers=layers, roles=roles)
    k_of = _check_k_map(k, chosen)
    targets = {r.name for r in chosen if k_of(r) is not None}
    rows = []

    def fn(record, values):
        kk = k_of(record)
        if values.dtype.kind != "f":
            raise ValueError(f"holds {values.dtype} values, not floating-point weights")
        if values.size == 0:
            return None
        axis = output_axis(record.layer_class, record.role, values.ndim) if per_channel else None
        try:
            res = cluster(values, kk, init=init, method=method, keep_zeros=keep_zeros, axis=axis,
                          random_state=random_state)
        except ValueError as exc:
            raise ValueError(f"{record.name}: {exc}") from None
        new = res.values
        if record.dtype == "bfloat16":
            new = _bf16_values(values, res, axis)
        sse = float(np.sum((values.astype(np.float64) - new.astype(np.float64)) ** 2))
        rows.append(ClusterSummary(record.name, record.layer, record.role, record.shape,
                                   record.dtype, kk, _distinct(values), _distinct(new),
                                   int(np.count_nonzero(values == 0)),
                                   int(np.count_nonzero(new == 0)), sse))
        return new

    transform_file(src, dst, fn, select=lambda r: r.name in targets, in_place=in_place,
                   progress=progress)
    return rows


def _distinct(a):
    return int(np.unique(a).size)


def _bf16_values(values, res, axis):
    """Centroids rounded to bfloat16 and entries re-assigned to the nearest rounded one."""
    from ._io._bf16 import round_to_bf16
    if axis is None:
        c = np.unique(round_to_bf16(res.centroids))
        return c[assign(values, c)]
    out = np.empty_like(values)
    vm, om = np.moveaxis(values, axis, 0), np.moveaxis(out, axis, 0)
    for i in range(vm.shape[0]):
        row = res.centroids[i]
        c = np.unique(round_to_bf16(row[~np.isnan(row)]))
        om[i] = c[assign(vm[i], c)]
    return out
