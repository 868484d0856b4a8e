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

import fnmatch
import math
import numbers
import os
from collections.abc import Mapping
from typing import NamedTuple, Optional

import numpy as np

from ._codec._bf16 import round_to_bf16
from ._io._atomic import check_output, unwind_later as _unwind_later
from ._io._reader import FORMATS, WeightInfo, open_weights
from ._keras._names import FLOAT_DTYPE_NAMES
from ._keras._roles import output_axis
from ._io._writer import TensorRewrite, dry_rewrite, rewrite
from ._io._safetensors import is_safetensors
from ._io._safetensors_write import rewrite_safetensors
from .budget import MAX_K, parse_size, plan as plan_budget
from .cluster import METHODS, assign, check_init_method, check_lut_options, cluster
from ._kmeans._init import INITS
from ._base._validation import (check_choice, check_flag, check_k, check_random_state,
                                check_weights)
from ._base._validation import check_int, check_number
from .errors import FileFormatError, TensorArgumentError

__all__ = ["WeightInfo", "TensorRewrite", "ClusterSummary", "JobRows", "SkippedWeight",
           "read_weights", "select_weights", "skipped_weights", "transform_file", "cluster_file",
           "file_format", "output_file", "unwind_later", "FORMATS",
           "FLOAT_DTYPE_NAMES"]

# FLOAT_DTYPE_NAMES (public here; defined in weightshare._keras._names): the WeightInfo.dtype
# of floating-point tensors, the ones cluster_file and prune_file work on (never integers)


class ClusterSummary(NamedTuple):
    """What :func:`cluster_file` did to one tensor.

    Attributes
    ----------
    tensor, layer, role : str
        As in :class:`WeightInfo` (``tensor`` is its ``name``).
    shape : tuple of int
    dtype : str
        The stored dtype, unchanged (``"bfloat16"`` included).
    k : int
        The k asked for this tensor (per channel with ``per_channel=True``).
    distinct_before, distinct_after : int
        Distinct values in the tensor (the whole tensor, also per channel).
    zeros_before, zeros_after : int
        Entries equal to zero.
    sse : float
        Sum of squared differences between the written and the original
        values (float64, after rounding to the stored dtype); ``inf`` when it
        exceeds the float64 range (``None`` in :meth:`to_dict`, so the JSON
        stays standard).
    """

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
        """A JSON-ready dict (shape as a list, an infinite SSE as None)."""
        d = self._asdict()
        d["shape"] = list(self.shape)
        if not math.isfinite(self.sse):
            d["sse"] = None
        return d


def file_format(path):
    """The format of a weights file, from its content: one of :data:`FORMATS`.

    Examples
    --------
    >>> import weightshare
    >>> weightshare.file_format(weightshare.examples.path("digits.keras"))
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
    >>> digits = weightshare.examples.path("digits.keras")
    >>> [(w.name, w.shape) for w in weightshare.read_weights(digits)][:2]
    [('fc1/kernel', (64, 64)), ('fc1/bias', (64,))]
    """
    values = check_flag(values, "values")
    with open_weights(path) as wf:
        if not values:
            return list(wf.records)
        return [r._replace(value=wf.read(r)) for r in wf.records]


def select_weights(records, *, layers=None, roles=("kernel",)):
    """The records a job targets, by the model's own layer names and roles.

    Parameters
    ----------
    records : list of WeightInfo
        From :func:`read_weights`.
    layers : iterable of str, optional
        Layer names (top-level, or a nested layer's path such as ``inner/dense``;
        the tensor names of a safetensors file); None targets every layer. Names
        are matched exactly, never as substrings; a name with ``*``, ``?`` or
        ``[...]`` is a glob pattern (``model.layers.*.mlp.*``) and selects the
        layers it matches that have weights of the roles asked for.
    roles : iterable of str, default ("kernel",)
        ``"kernel"`` selects every kernel-like weight (Dense/Conv kernels,
        depthwise and pointwise kernels, recurrent kernels, embeddings,
        attention projections); other names select that exact role
        (``"bias"``, ``"recurrent_kernel"``, ``"gamma"``, ...); ``"all"``
        selects everything.

    Returns
    -------
    list of WeightInfo
        The selected records, in file order.

    Raises
    ------
    ValueError
        A named layer or role does not exist in the file, or a named layer
        has no weight with the roles asked for (the message lists those that
        do exist).

    Examples
    --------
    >>> import weightshare
    >>> w = weightshare.read_weights(weightshare.examples.path("digits.keras"), values=False)
    >>> [r.name for r in weightshare.select_weights(w, layers=["out"], roles=["kernel", "bias"])]
    ['out/kernel', 'out/bias']
    >>> weightshare.select_weights(w, layers=["fc"])
    Traceback (most recent call last):
    ...
    ValueError: no layer named 'fc'; the layers with weights are: fc1, fc2, out
    """
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    if not roles or not all(isinstance(r, str) for r in roles):
        raise TypeError(f"roles must be role names such as 'kernel' or 'bias'; got {roles!r}")
    known_roles = {r.role for r in records} | {r.kind for r in records} | {"all"}
    bad = [r for r in roles if r not in known_roles]
    if bad:
        raise ValueError(f"roles {bad} do not exist in this file; it has "
                         f"{sorted(known_roles)}")
    patterns = ()
    if layers is not None:
        layers = [layers] if isinstance(layers, str) else list(layers)
        if not all(isinstance(name, str) for name in layers):
            raise TypeError(f"layers must be layer names; got {layers!r}")
        known = {r.layer for r in records} | {r.path for r in records}
        layers, patterns = _expand_patterns(layers, records, known, wanted_roles=roles)
        missing = [name for name in layers if name not in known]
        if missing:
            names = dict.fromkeys(r.layer for r in records)      # model order
            raise ValueError(f"no layer named {', '.join(map(repr, missing))}; the layers with "
                             f"weights are: {', '.join(names)}")

    def wanted(r):
        return "all" in roles or r.role in roles or r.kind in roles
    out = [r for r in records
           if (layers is None or r.layer in layers or r.path in layers) and wanted(r)]
    if layers is not None:
        for name in layers:
            if name in patterns:
                continue
            if not any(r.layer == name or r.path == name for r in out):
                has = [r.role for r in records if r.layer == name or r.path == name]
                raise ValueError(f"layer {name!r} has no weight with roles {list(roles)}; its "
                                 f"weights are: {', '.join(dict.fromkeys(has))}")
    return out


def _expand_patterns(layers, records, known, wanted_roles):
    """(names, names that came from glob patterns): ``*``, ``?`` and ``[...]`` match names
    (:func:`fnmatch.fnmatchcase`); a pattern that matches no weight of the roles asked for is
    an error."""
    names, from_patterns = [], set()
    for name in layers:
        if name in known or not any(c in name for c in "*?["):
            names.append(name)
            continue
        hits = [n for n in dict.fromkeys(x for r in records for x in (r.layer, r.path))
                if fnmatch.fnmatchcase(n, name)]
        useful = [n for n in hits if any((r.layer == n or r.path == n) and (
            "all" in wanted_roles or r.role in wanted_roles or r.kind in wanted_roles)
            for r in records)]
        if not useful:
            raise ValueError(f"the pattern {name!r} matches no layer with weights of roles "
                             f"{list(wanted_roles)}" + (f" (it matches {len(hits)} of other "
                                                        "roles)" if hits else ""))
        names += [n for n in hits if n not in names]
        from_patterns.update(hits)
    return names, from_patterns


def transform_file(src, dst, fn, *, select=None, in_place=False, progress=None, note=None,
                   dry_run=False, compress=False, strip=False):
    """Rewrite a weights file, replacing the tensors `fn` returns new values for.

    The building block of every same-shape edit (:func:`cluster_file`,
    ``weightshare.prune_file``, your own): the caller says what to do to one
    tensor; this function does the file work and keeps its promises.

    - The output has the input's format and suffix. Everything `fn` does not
      change is byte-identical: other datasets, every attribute with its HDF5
      type, groups, optimizer state, configs, and the zip members of a
      ``.keras`` file with their order and ZipInfo settings (a rewrite where
      `fn` always returns None reproduces the input byte for byte).
    - The input is only ever opened for reading. The output is written to a
      temporary file in the destination folder and renamed into place
      (``os.replace``); on any error nothing is left behind and an existing
      `dst` is unchanged. A symlink at `dst` is replaced by the new file,
      never written through (unless `in_place`, see below).
    - Tensors are read, passed to `fn` and written one at a time, so peak
      memory is about two copies of the largest tensor (plus what `fn`
      allocates), whatever the size of the file.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output. `dst` must keep `src`'s suffix (Keras picks its
        loader by the name) and must not be `src` unless `in_place`.
    fn : callable(record, values) -> ndarray or None
        Called once per selected tensor, in file order, with its
        :class:`WeightInfo` (``value`` not filled) and its current values as
        an ndarray in the stored dtype (bfloat16 as exact float32). Return
        the new values, same shape, any real dtype (they are cast to the
        stored dtype; bfloat16 rounded to nearest, ties to even), or None to
        leave the tensor's bytes untouched. Do not modify `values` in place
        and return None: only returned arrays are written. A ``ValueError``
        or ``TypeError`` it raises becomes a
        :class:`~weightshare.errors.FileFormatError` naming the file and the
        tensor's dataset, and nothing is written.
    select : callable(record) -> bool, optional
        Which tensors `fn` sees (all by default); see :func:`select_weights`
        to select by layer name and role.
    in_place : bool, default False
        Allow `dst` to be `src` (still written atomically: a temporary file
        replaces `src` at the end, keeping its permissions). A symlink is
        followed: the real file is replaced and the link still points to it.
        A file with more than one hard link is refused (replacing one name
        would leave the others with the old file).
    progress : callable(done, total, record), optional
        Called after each selected tensor (the CLI draws its progress bar).
    note : dict, optional
        What the job did, JSON-ready: a safetensors output records it (with the
        names of the tensors `fn` was called on) as ``__metadata__["weightshare"]``;
        other formats have no place for it.
    dry_run : bool, default False
        Read the tensors and call `fn` exactly as a real run does, and return
        the same rows, but write nothing (no output, no temporary file);
        `dst` may then be None and is not checked.
    compress : bool, default False
        Store every floating-point dataset of the output with HDF5's deflate
        filter (chunked, no shuffle; Keras files only: ``.keras``,
        ``.weights.h5``, ``.h5``). Values, attributes and groups are the same;
        stock Keras loads it. The file is rebuilt with the HDF5 1.10 format
        as the lower bound (see docs/files.md).
    strip : bool, default False
        Leave out optimizer state and the compile/training config (see
        ``weightshare.strip_file``; Keras files only).

    Returns
    -------
    list of TensorRewrite
        One row per tensor `fn` was called on, in file order: ``changed``
        (fn returned values), ``values_changed`` (entries whose stored bits
        differ), ``zeros_before`` / ``zeros_after`` and ``size``.

    Raises
    ------
    weightshare.errors.FileFormatError
        `src` is not a readable weights file, `fn` failed or returned a
        wrong shape, or `dst` is not an acceptable output.
    FileNotFoundError
        `src` or the folder of `dst` does not exist.

    Examples
    --------
    Zero the 25 % smallest-magnitude entries of every kernel (a simple
    magnitude pruning, the way ``prune_file`` uses this function):

    >>> import os, tempfile, numpy as np, weightshare
    >>> out = os.path.join(tempfile.mkdtemp(), "pruned.keras")
    >>> def prune(record, values):
    ...     cut = np.quantile(np.abs(values), 0.25)
    ...     return np.where(np.abs(values) < cut, 0, values)
    >>> digits = weightshare.examples.path("digits.keras")
    >>> rows = weightshare.transform_file(digits, out, prune, select=lambda r: r.kind == "kernel")
    >>> [(r.tensor, r.changed, r.zeros_after >= r.size // 4) for r in rows]
    [('fc1/kernel', True, True), ('fc2/kernel', True, True), ('out/kernel', True, True)]
    >>> weightshare.transform_file(digits, out, lambda r, v: None)[0].changed
    False
    """
    if not callable(fn):
        raise TypeError(f"fn must be callable; got {type(fn).__name__}")
    if select is not None and not callable(select):
        raise TypeError(f"select must be callable or None; got {type(select).__name__}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")
    in_place = check_flag(in_place, "in_place")
    compress = check_flag(compress, "compress")
    strip = check_flag(strip, "strip")
    if note is not None and not isinstance(note, Mapping):
        raise TypeError(f"note must be a dict or None; got {type(note).__name__}")
    if check_flag(dry_run, "dry_run"):
        return dry_rewrite(src, fn, select=select, progress=progress)
    if is_safetensors(src):
        if compress or strip:
            raise FileFormatError(os.fspath(src), f"is a safetensors file; "
                                  f"{'strip' if strip else 'compress'} works on Keras files "
                                  "only (.keras, .weights.h5, .h5)")
        return rewrite_safetensors(src, dst, fn, select=select, in_place=in_place,
                                   progress=progress, note=dict(note or {}))
    return rewrite(src, dst, fn, select=select, in_place=in_place, progress=progress,
                   strip=strip, compress=compress)


def per_layer(value, records, name, check):
    """A function record -> target (None: not targeted) from one value or a per-layer mapping.

    The one rule of per-layer targets (``k`` of :func:`cluster_file`, ``sparsity`` and
    ``keep`` of ``prune_file``): a key is a layer name or nested layer path of the
    targeted `records`, matched exactly, or a glob pattern (``*``, ``?``, ``[...]``,
    :func:`fnmatch.fnmatchcase`). An exact path wins over its top-level layer, an exact
    name over a pattern; patterns are tried in the mapping's order (so ``{"fc1": 16,
    "*": 8}`` gives fc1 16 and every other targeted layer 8). Each value is checked
    once by ``check(value, label)`` with the label ``name[key]``.
    """
    if not isinstance(value, Mapping):
        one = check(value, name)
        return lambda r: one
    known = dict.fromkeys(x for r in records for x in (r.layer, r.path))
    targeted = ", ".join(dict.fromkeys(r.layer for r in records)) or "none"
    exact, patterns = {}, []
    for key, v in value.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{name} must map layer names to values; got the key {key!r}")
        v = check(v, f"{name}[{key!r}]")
        if key in known:
            exact[key] = v
        elif any(c in key for c in "*?["):
            if records and not any(fnmatch.fnmatchcase(n, key) for n in known):
                raise ValueError(f"{name} names the pattern {key!r}, which matches no targeted "
                                 f"layer; targeted layers: {targeted}")
            patterns.append((key, v))
        else:
            raise ValueError(f"{name} names layer {key!r}, which has no targeted weights; "
                             f"targeted layers: {targeted}")

    def of(r):
        for n in (r.path, r.layer):
            if n in exact:
                return exact[n]
        for key, v in patterns:
            if fnmatch.fnmatchcase(r.path, key) or fnmatch.fnmatchcase(r.layer, key):
                return v
        return None
    return of


def _check_k_map(k, records):
    """A function record -> k (None: not clustered), after checking `k` once."""
    if not isinstance(k, Mapping) and not (isinstance(k, numbers.Integral)
                                           and not isinstance(k, bool)):
        raise TypeError(f"k must be an int >= 1 or a mapping of layer name to int; got {k!r}")
    return per_layer(k, records, "k", lambda v, label: int(check_k(v, name=label)))


class SkippedWeight(NamedTuple):
    """A weight a file job left as it is although its layer was targeted, and why.

    Attributes
    ----------
    name, layer, layer_class, role, dtype : str
        As in :class:`WeightInfo` (`layer_class` may be None).
    reason : str
        ``"role"``: its role is not kernel-like and not one weightshare knows
        (a custom layer's ``var0``, a legacy ``attention_W``, a PReLU's
        ``alpha``, a safetensors position table); name it in ``roles`` to
        target it. ``"dtype"``: not a float16/bfloat16/float32/float64 tensor
        (integers, bool, float8), which file jobs never change.
    """

    name: str
    layer: str
    layer_class: Optional[str]
    role: str
    dtype: str
    reason: str

    def to_dict(self):
        """A JSON-ready dict."""
        return self._asdict()


class JobRows(list):
    """The rows a file job returns (a list), with what it left out and whether it wrote.

    Attributes
    ----------
    skipped : tuple of SkippedWeight
        Weights of the targeted layers left as they are: of a role that is not
        kernel-like (not bias or normalization either) that `roles` did not
        name, or of a dtype file jobs never change. Empty when
        ``roles=("all",)`` names everything.
    dry_run : bool
        True: computed only, nothing was written.
    """

    #: the BudgetResult of cluster_file's bits / size (None otherwise)
    budget = None

    def __init__(self, rows=(), skipped=(), dry_run=False):
        super().__init__(rows)
        self.skipped = tuple(skipped)
        self.dry_run = bool(dry_run)


def skipped_weights(records, chosen, *, layers=None, roles=("kernel",)):
    """The :class:`SkippedWeight` rows of a job that targets `chosen` among `records`.

    Tensors of the layers targeted (`layers`) that the job does not change:
    those whose role is of kind ``"other"`` that `roles` left out, and those
    of the chosen roles whose dtype is not a floating-point one it works on.
    """
    roles = (roles,) if isinstance(roles, str) else tuple(roles)
    names = {r.name for r in chosen}
    pool = records if layers is None else select_weights(records, layers=layers, roles=("all",))
    out = []
    for r in pool:
        if r.name in names:
            if r.dtype not in FLOAT_DTYPE_NAMES:
                out.append(SkippedWeight(r.name, r.layer, r.layer_class, r.role, r.dtype, "dtype"))
        elif r.kind == "other" and "all" not in roles:
            out.append(SkippedWeight(r.name, r.layer, r.layer_class, r.role, r.dtype,
                                     "role" if r.dtype in FLOAT_DTYPE_NAMES else "dtype"))
    return out


def cluster_file(src, dst, k=None, *, layers=None, roles=("kernel",), init=None, method="auto",
                 keep_zeros=True, per_channel=False, group_size=None, per_channel_scale=False,
                 lut_dtype=None, random_state=None, in_place=False, progress=None,
                 dry_run=False, compress=False, strip=False, bits=None, size=None,
                 max_k=MAX_K, rate=None):
    """Cluster the weights of a Keras (or NumPy) file and write the same format back.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output files (see :func:`transform_file` for the guarantees);
        `dst` may be None with `dry_run`.
    k : int or dict of str to int, optional
        (Required unless `bits` or `size` is given, which exclude it.)
        Shared values per tensor (zero included with `keep_zeros`); a mapping
        gives k per layer name (or nested layer path), and layers it leaves
        out are not clustered. A key may be a glob pattern (``*``, ``?``,
        ``[...]``): an exact name wins over a pattern and patterns are tried
        in the mapping's order, so ``{"fc1": 16, "*": 8}`` gives fc1 16 and
        every other targeted layer 8. A name that is not a targeted layer is
        an error listing those that are.
    layers : iterable of str, optional
        Layer names to cluster (default: every layer). Exact names, never
        substrings; an unknown name is an error listing the names that exist.
    roles : iterable of str, default ("kernel",)
        Which weights (see :func:`select_weights`): by default the
        kernel-like ones (Dense/Conv kernels, depthwise and pointwise
        kernels, recurrent kernels, embeddings, attention projections,
        EinsumDense); biases, normalisation and other state stay untouched.
        Only floating-point tensors are clustered (float16, bfloat16,
        float32, float64); integer tensors are left as they are.
    init, method, keep_zeros, random_state
        As in :func:`weightshare.cluster` (`init` only with ``method='lloyd'``).
    per_channel : bool, default False
        k values per output channel, along this axis of each kernel:
        the last axis of Dense, EinsumDense and Conv kernels, pointwise
        kernels, embeddings (output_dim), recurrent kernels (units x gates)
        and attention projections; axis -2 of transposed-convolution kernels
        (their filters) and of depthwise kernels (the input channel, each
        with its depth multipliers); axis 0 of 1-D tensors (each entry is its own
        channel, so a vector is left as it is).
    group_size : int >= 1, optional
        One LUT of k values per block of `group_size` consecutive output
        channels (the same axis as `per_channel`; the last block may be
        shorter); see :func:`weightshare.cluster`. Not with `per_channel`
        (which is ``group_size=1``).
    per_channel_scale : bool, default False
        Divide each output channel by its largest magnitude and share one
        LUT over the scaled channels (one per group with `group_size`); the
        tensor written is ``scale * LUT entry`` per weight, in its dtype.
    lut_dtype : {'int8', 'uint8', 'float16', 'bfloat16', 'float8_e4m3'}, optional
        Every LUT value exactly representable in this dtype (as
        :func:`weightshare.cluster`). The file keeps each tensor's dtype and
        shape: what is written is the dense reconstruction.
    in_place : bool, default False
        Allow `dst` to be `src` (still written atomically).
    progress : callable(done, total, record), optional
        Called after each tensor (the CLI's progress bar).
    dry_run : bool, default False
        Compute everything and return the same rows as a real run (the same
        random stream, so the same values), but write nothing: no output, no
        temporary file.
    compress : bool, default False
        Deflate the floating-point datasets of the output (Keras files; see
        :func:`transform_file`): clustered kernels then take a fraction of
        their bytes on disk.
    strip : bool, default False
        Leave out optimizer state and the compile/training config (see
        ``weightshare.strip_file``).
    bits : float > 0, optional
        Instead of `k`: choose k per targeted tensor so that the average index
        bits per weight, ``sum(n_t * ceil(log2 k_t)) / sum(n_t)``, stay within
        `bits` and the total SSE is least (:func:`weightshare.allocate_k`;
        docs/clustering.md, "Budgets"). One LUT per tensor: not with
        `per_channel`, `group_size`, `per_channel_scale` or `lut_dtype`.
    size : int or str, optional
        Instead of `k`: the same for a byte budget (``'40kB'``, ``'1MiB'``):
        the targeted tensors' ``encode(..., scheme='packed')`` size,
        :func:`weightshare.budget.packed_size` summed.
    max_k : int >= 2, default 64
        With `bits` or `size`: the largest k a tensor gets. The error curves
        are exact with ``method='optimal'``, else exact over
        ``weightshare.budget.CURVE_ATOMS`` atoms of a tensor's sorted values.
    rate : float >= 0, optional
        Entropy-constrained clustering of every targeted tensor, the same
        `rate` for all (so the sum of SSE + rate * index bits over the file is
        what is minimised): see :func:`weightshare.cluster`. Not with
        `bits` / `size` (their error curves are plain k-means').

    Returns
    -------
    JobRows of ClusterSummary
        A list: one row per clustered tensor. ``.skipped`` lists the weights
        of the targeted layers left as they are (see :class:`SkippedWeight`),
        ``.dry_run`` says whether anything was written, ``.budget`` is the
        :class:`weightshare.BudgetResult` of `bits` or `size` (else None).

    Examples
    --------
    >>> import os, tempfile, weightshare
    >>> out = os.path.join(tempfile.mkdtemp(), "digits-k8.keras")
    >>> rows = weightshare.cluster_file(weightshare.examples.path("digits.keras"), out, 8)
    >>> [(r.tensor, r.distinct_after) for r in rows]
    [('fc1/kernel', 8), ('fc2/kernel', 8), ('out/kernel', 8)]
    >>> rows = weightshare.cluster_file(weightshare.examples.path("digits.keras"), None,
    ...                                 {"fc1": 16, "*": 4}, dry_run=True)
    >>> [(r.tensor, r.k) for r in rows], rows.dry_run, rows.skipped
    ([('fc1/kernel', 16), ('fc2/kernel', 4), ('out/kernel', 4)], True, ())
    """
    check_choice(method, METHODS, "method")
    if isinstance(init, str):
        check_choice(init, tuple(INITS), "init")
    check_init_method(init, method)
    keep_zeros = check_flag(keep_zeros, "keep_zeros")
    per_channel = check_flag(per_channel, "per_channel")
    group_size, per_channel_scale = check_lut_options(group_size, per_channel_scale, lut_dtype)
    if per_channel and group_size is not None:
        raise ValueError(f"per_channel=True and group_size={group_size} exclude each other "
                         "(per_channel is group_size=1)")
    channels = per_channel or group_size is not None or per_channel_scale
    in_place = check_flag(in_place, "in_place")
    dry_run = check_flag(dry_run, "dry_run")
    budget = _check_budget(k, bits, size, max_k,
                           per_channel or group_size is not None or per_channel_scale
                           or lut_dtype is not None)
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        check_k(k)
    if rate is not None:
        rate = float(check_number(rate, "rate", 0))
        if budget is not None:
            raise ValueError(f"rate={rate!r} and a bits/size budget exclude each other (the "
                             "budget's error curves are plain k-means')")
        if channels or lut_dtype is not None:
            raise ValueError(f"rate={rate!r} fits one LUT per tensor: not with per_channel, "
                             "group_size, per_channel_scale or lut_dtype")
    rng = check_random_state(random_state)     # one stream for the whole file
    with open_weights(src) as wf:
        if not wf.records:
            raise ValueError(f"{os.fspath(src)}: holds no weight tensors; nothing to cluster")
        chosen = select_weights(wf.records, layers=layers, roles=roles)
        skipped = skipped_weights(wf.records, chosen, layers=layers, roles=roles)
    chosen = [r for r in chosen if r.dtype in FLOAT_DTYPE_NAMES]
    plan = None
    if budget is not None:      # k per tensor (by tensor name: a layer may hold several)
        plan = _budget_plan(src, chosen, budget, keep_zeros, max_k, method == "optimal")
        k = plan.k
        k_of = (lambda r: plan.k.get(r.name))
    else:
        k_of = _check_k_map(k, chosen)
    targets = {r.name for r in chosen if k_of(r) is not None}
    rows = JobRows(skipped=skipped, dry_run=dry_run)
    rows.budget = plan

    def fn(record, values):
        kk = k_of(record)
        if values.dtype.kind != "f":
            raise ValueError(f"holds {values.dtype} values, not floating-point weights")
        if values.size == 0:
            return None
        axis = _channel_axis(record, values.ndim) if channels else None
        check_weights(values, "weights")   # NaN/Inf: the file's fault (FileFormatError, below)
        try:                                # the arguments' fault: TensorArgumentError
            res = cluster(values, kk, init=init, method=method, keep_zeros=keep_zeros,
                          axis=axis, group_size=group_size, per_channel_scale=per_channel_scale,
                          lut_dtype=lut_dtype, random_state=rng, rate=rate)
        except ValueError as exc:
            raise TensorArgumentError(f"{record.name}: {exc}") from None
        if record.dtype == "bfloat16":
            if per_channel_scale or rate:   # as fitted (ECSQ: not to the nearest), rounded
                new = round_to_bf16(res.values)
            else:
                new = _bf16_values(values, res, axis, group_size or 1)
            sse, distinct_after = _sse(values, new), _distinct(new)
        else:
            new, sse = res.values, float(res.sse)
            distinct_after = _distinct(new) if axis is not None else _distinct_used(res)
        rows.append(ClusterSummary(record.name, record.layer, record.role, record.shape,
                                   record.dtype, kk, _distinct(values), distinct_after,
                                   int(np.count_nonzero(values == 0)),
                                   int(np.count_nonzero(new == 0)), sse))
        return new

    note = {"job": "cluster", "k": k if isinstance(k, numbers.Integral) else dict(k),
            "method": method, "init": init if isinstance(init, str) else "array",
            "keep_zeros": keep_zeros, "per_channel": per_channel}
    if group_size is not None or per_channel_scale or lut_dtype is not None:
        note.update(group_size=group_size, per_channel_scale=per_channel_scale,
                    lut_dtype=lut_dtype)
    if plan is not None:
        note["budget"] = plan.to_dict()
    if rate is not None:
        note["rate"] = rate
    transform_file(src, dst, fn, select=lambda r: r.name in targets, in_place=in_place,
                   progress=progress, note=note, dry_run=dry_run, compress=compress,
                   strip=strip)
    return rows


def _check_budget(k, bits, size, max_k, channels):
    """(kind, limit) of a `bits` or `size` budget of :func:`cluster_file`, or None (then k
    is required); checked once."""
    if bits is None and size is None:
        if k is None:
            raise TypeError("give k (shared values per tensor), or a budget: bits=... or "
                            "size=...")
        return None
    if bits is not None and size is not None:
        raise ValueError(f"bits={bits!r} and size={size!r} exclude each other: give one budget")
    given = f"bits={bits!r}" if bits is not None else f"size={size!r}"
    if k is not None:
        raise ValueError(f"k and {given} exclude each other: the budget chooses k per tensor")
    if channels:
        raise ValueError(f"{given} chooses one k per tensor (one LUT each): not with "
                         "per_channel, group_size, per_channel_scale or lut_dtype")
    check_int(max_k, "max_k", 2)
    if bits is not None:
        return "bits", float(check_number(bits, "bits", 0, strict=True))
    return "size", parse_size(size)


def _budget_plan(src, chosen, budget, keep_zeros, max_k, exact):
    """The k per tensor of a budget (a BudgetResult keyed by tensor name): the targeted
    tensors are read once for their error curves."""
    if not chosen:
        raise ValueError(f"{os.fspath(src)}: no floating-point tensor is targeted; nothing to "
                         "allocate a budget to")
    with open_weights(src) as wf:
        try:
            return plan_budget(_Tensors(src, wf, chosen), *budget, keep_zeros=keep_zeros,
                               max_k=max_k, exact=exact, shapes=[r.shape for r in chosen],
                               dtypes=[r.dtype for r in chosen],
                               names=[r.name for r in chosen])
        except FileFormatError:
            raise
        except ValueError as exc:
            raise ValueError(f"{os.fspath(src)}: {exc}") from None


class _Tensors:
    """The targeted tensors of an open file, read one at a time when asked for (the budget
    keeps only each one's error curve, so memory stays about one tensor)."""

    def __init__(self, src, wf, records):
        self.src, self.wf, self.records = src, wf, records

    def __len__(self):
        return len(self.records)

    def __getitem__(self, t):
        r = self.records[t]
        try:
            return check_weights(self.wf.read(r), "weights")
        except ValueError as exc:
            raise FileFormatError(os.fspath(self.src), f"{r.name}: {exc}", r.location) from None


def _channel_axis(record, ndim):
    """The output-channel axis of a tensor: the format's (safetensors: 0), else from its class."""
    if getattr(record, "channel_axis", None) is not None and ndim >= 1:
        return record.channel_axis
    return output_axis(record.layer_class, record.role, ndim)


def _distinct(a):
    """Distinct values. float16 is counted in float32 (exact): NumPy 2.4's AVX-512 float16 sort
    can return unsorted output, and np.unique then counts some values twice."""
    if a.dtype == np.float16:
        a = a.astype(np.float32)
    return int(np.unique(a).size)


def _distinct_used(res):
    """Distinct values of ``res.values`` from its labels in O(n): the centroids in use."""
    used = np.bincount(res.labels.reshape(-1), minlength=res.centroids.size) > 0
    return int(np.unique(res.centroids[used[:res.centroids.size]]).size)


def _sse(a, b, chunk=1 << 20):
    """sum((a - b) ** 2) in float64, a million entries at a time (little extra memory)."""
    a, b = a.reshape(-1), b.reshape(-1)
    total = 0.0
    for i in range(0, a.size, chunk):
        d = a[i:i + chunk].astype(np.float64) - b[i:i + chunk]
        total += float(np.dot(d, d))
    return total


def _bf16_values(values, res, axis, group_size=1):
    """Centroids rounded to bfloat16 and entries re-assigned to the nearest rounded one
    (with `axis`, LUT row g serves channels ``g * group_size`` on)."""
    if axis is None:
        c = np.unique(round_to_bf16(res.centroids))
        return c[assign(values, c)]
    out = np.empty_like(values)
    vm, om = np.moveaxis(values, axis, 0), np.moveaxis(out, axis, 0)
    for g, row in enumerate(res.centroids):
        c = np.unique(round_to_bf16(row[~np.isnan(row)]))
        block = slice(g * group_size, (g + 1) * group_size)
        om[block] = c[assign(vm[block], c)]
    return out


def output_file(output, model, *, in_place=False):
    """The file a rewrite of `model` to `output` really writes, after the writer's checks.

    `output` may not be `model` (by path, symlink or hard link) unless
    `in_place`; in place, a symlink is followed to the real file, which is
    the file replaced (a file with several hard links is refused). A symlink
    at `output` otherwise is replaced, never written through.

    Returns
    -------
    str
        `output`, or the real file behind it when `model` is rewritten in place.
    """
    return check_output(output, (model,), in_place=in_place)


def unwind_later(action):
    """Call `action` now, or as soon as no temporary output is being created.

    For a signal handler that ends a run by raising (as the command line does
    for SIGTERM and SIGHUP): raising between the creation of a temporary file
    and the clean-up that knows its name would leave the file behind.
    """
    _unwind_later(action)
