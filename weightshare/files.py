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
import time
from collections.abc import Mapping
from typing import NamedTuple, Optional

import numpy as np

from ._kmeans._dot import dot
from ._codec._bf16 import round_to_bf16
from ._io._atomic import check_output, unwind_later as _unwind_later
from ._io._reader import FORMATS, WeightInfo, open_weights
from ._keras._names import FLOAT_DTYPE_NAMES
from ._keras._nodes import is_keras2
from ._keras._roles import output_axis
from ._io._writer import TensorRewrite, dry_rewrite, rewrite
from ._io._safetensors import is_safetensors
from ._io._safetensors_write import rewrite_safetensors
from .budget import MAX_K, parse_size, plan as plan_budget
from .cluster import (METHODS, assign, check_cluster_dim, check_init_method, check_lut_options,
                      check_vector_options, cluster)
from ._kmeans._init import INITS
from ._base._validation import (check_choice, check_flag, check_int, check_k, check_number,
                                check_random_state, check_weights)
from ._base._parallel import Lookahead, check_jobs, tensor_seed
from ._io._st_packed import write_packed
from .errors import FileFormatError, TensorArgumentError
from ._calibrate._inputs import check_calibration, check_importance, pick_input
from ._calibrate._pass import CalibrationHook, plan_layers
from ._io._npy import load_npy, load_npz
from .forward import (_Run, _check_input_shapes, _check_weights, _top, layer_weight_counts,
                      unsupported_layers)

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
    importance : str or None
        The importance the SSE was weighted by: ``"calibration"`` (from
        calibration inputs), ``"file"`` (the `importance` arrays), or None
        (plain SSE). ``sse`` is always the plain SSE.
    bias_correction : str or None
        ``"corrected"``: the layer's bias was shifted by the mean output
        change; ``"no bias"``: the layer holds no bias, nothing was corrected;
        None: no bias correction was asked for this tensor.
    method : str
        The method that ran (``"auto"``, ``"optimal"`` or ``"lloyd"``).
    seconds : float
        Wall time of this tensor's work (clustering and the counts above),
        in the process that did it.
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
    importance: Optional[str] = None
    bias_correction: Optional[str] = None
    method: str = None
    seconds: float = None

    def to_dict(self):
        """A JSON-ready dict (shape as a list, an infinite SSE as None)."""
        d = self._asdict()
        d["shape"] = list(self.shape)
        if not math.isfinite(self.sse):
            d["sse"] = None
        return d

    def _result(self):
        return tuple(self)[:-1]

    def __eq__(self, other):
        """Equal when they say the same about the tensor: `seconds`, a wall time, is not
        compared (a dry run's rows equal the real run's)."""
        if isinstance(other, ClusterSummary):
            return self._result() == other._result()
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self._result())


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
                 dry_run=False, compress=False, strip=False, importance=None, calibration=None,
                 bias_correction=True, cluster_dim=None, axis=None, packed=False, jobs=None,
                 executor=None, bits=None, size=None, max_k=MAX_K, rate=None):
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
    init, method, keep_zeros
        As in :func:`weightshare.cluster` (`init` only with ``method='lloyd'``).
    random_state : None, int or numpy.random.Generator
        The seed of the random inits (``method='lloyd'`` with ``init`` 'random',
        'forgy' or 'kmeans++'). Each tensor gets its own stream, derived from
        the seed and the tensor's name (a Generator gives the seed: one draw
        from it), so a tensor's result does not depend on which process
        clusters it, in what order, or which other tensors are clustered.
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
    importance : mapping of str to array_like, or path, optional
        Per-weight importance (``sample_weight`` of :func:`weightshare.cluster`):
        ``{tensor name: array}`` with the names of :func:`read_weights`
        (``weightshare info``), each array broadcastable to its tensor, or the
        path of a ``.npz`` of such arrays. Every name must be a tensor this job
        clusters; tensors it leaves out are clustered by plain SSE. Any format.
    calibration : array_like or path, optional
        Inputs of the model, batch first (a few hundred real ones), or the path
        of a ``.npy`` (or ``.npz``) holding them. The model (a ``.keras`` or
        ``.h5`` file with its architecture, of layers the NumPy forward pass
        supports) is run once on them; each targeted Dense, Conv and
        DepthwiseConv kernel is clustered with the second moment of the input
        that multiplies each weight as importance, each Embedding with the
        frequency of each token, in layer order, on the outputs of the layers
        already clustered (docs/importance.md). Not with `importance`.
    bias_correction : bool, default True
        With `calibration`: add ``E[x] (W - W_q)`` to each clustered layer's
        bias, so its mean output over the calibration inputs is unchanged (a
        layer with no bias is left as it is and its row says ``"no bias"``).
    cluster_dim : int >= 1, optional
        Vector palettization (see :func:`weightshare.cluster`): k codebook
        vectors per tensor, each `cluster_dim` consecutive entries along the
        tensor's *output-channel* axis (the `per_channel` axis above; as
        coremltools' ``cluster_dim``, which groups along the output
        channels). A targeted tensor whose output channels are not a
        multiple of `cluster_dim` is an error naming it (nothing written;
        leave it out with `layers` or `k`). Not with `per_channel`,
        `group_size`, `per_channel_scale`, `lut_dtype` or
        ``method='optimal'``. The file keeps each tensor's dtype and shape.
    axis : int, optional
        The channel axis of `per_channel`, `group_size`,
        `per_channel_scale` and `cluster_dim`, for every targeted tensor, instead of each
        tensor's own (a safetensors tensor's is axis 0, the output row of a
        PyTorch ``[out, in]`` matrix; a Keras kernel's is given above).
        Negative values count from the end. Needs one of those four options;
        an axis out of range for a targeted tensor is a
        :class:`~weightshare.errors.TensorArgumentError` naming it.
    packed : bool, default False
        Write a safetensors output packed: each clustered tensor as its
        indices and codebook (and scales) under ``NAME.ws_indices``,
        ``NAME.ws_codebook`` (``NAME.ws_scale``), read back as dense arrays
        by ``weightshare.load_packed`` (see docs/files.md, "Packed
        safetensors"). Only for safetensors inputs (single or sharded), not
        with `in_place`.
    jobs : int >= 1, optional
        Tensors clustered at the same time, in worker processes (default: the
        cores this process may use). The output is identical bit for bit to
        ``jobs=1`` and written in the same order, still atomically. Worker
        processes are started only for a workload worth it: at least 2
        tensors holding at least 2**20 entries in all; smaller files are
        clustered in this process. At most ``2 * jobs`` tensors (and 256 MB
        of their values, or one tensor if it is larger) are in flight.
    executor : concurrent.futures.Executor, optional
        Run the tensors on this executor instead (a thread pool, a Dask
        ``client.get_executor()``, ...; used whatever the file's size, never
        shut down here); `jobs` then sets the tensors in flight (``2 * jobs``).
        Tensors are sent to it as arrays: the workers need weightshare, not the file.
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

    On any executor (here threads; a Dask client's ``get_executor()`` the same way),
    the same rows and the same bytes as ``jobs=1``:

    >>> import pathlib
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> digits, out2 = weightshare.examples.path("digits.keras"), out.replace("k8", "threads")
    >>> one = weightshare.cluster_file(digits, out, 8, jobs=1)
    >>> with ThreadPoolExecutor(2) as pool:
    ...     many = weightshare.cluster_file(digits, out2, 8, executor=pool)
    >>> many == one, pathlib.Path(out).read_bytes() == pathlib.Path(out2).read_bytes()
    (True, True)
    >>> one[0].method, one[0].seconds > 0
    ('auto', True)
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
    cluster_dim = check_cluster_dim(cluster_dim)
    if cluster_dim > 1:
        check_vector_options(cluster_dim, method, init, per_channel=per_channel or None,
                             group_size=group_size, per_channel_scale=per_channel_scale,
                             lut_dtype=lut_dtype)
    channels = per_channel or group_size is not None or per_channel_scale or cluster_dim > 1
    in_place = check_flag(in_place, "in_place")
    dry_run = check_flag(dry_run, "dry_run")
    packed = check_flag(packed, "packed")
    if axis is not None:
        axis = check_int(axis, "axis", -(1 << 31))
        if not channels:
            raise ValueError(f"axis={axis} needs per_channel, group_size, per_channel_scale "
                             "or cluster_dim (it is their channel axis)")
    if packed:
        _check_packed(src, dst, in_place, compress, strip)
    budget = _check_budget(k, bits, size, max_k, channels or lut_dtype is not None)
    if isinstance(k, numbers.Integral) and not isinstance(k, bool):
        check_k(k)
    if rate is not None:
        rate = float(check_number(rate, "rate", 0))
        if budget is not None:
            raise ValueError(f"rate={rate!r} and a bits/size budget exclude each other (the "
                             "budget's error curves are plain k-means')")
        if channels or lut_dtype is not None:
            raise ValueError(f"rate={rate!r} fits one LUT per tensor: not with per_channel, "
                             "group_size, per_channel_scale, lut_dtype or cluster_dim")
    jobs = check_jobs(jobs, executor)
    base = _seed_base(random_state)          # each tensor's stream: tensor_seed(base, name)
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
    targets = {r.name: r for r in chosen if k_of(r) is not None}
    rows = JobRows(skipped=skipped, dry_run=dry_run)
    rows.budget = plan
    bias_correction = check_flag(bias_correction, "bias_correction")
    if importance is not None and calibration is not None:
        raise ValueError("give importance or calibration, not both")
    imp = {} if importance is None else _importance(importance, targets)
    opts = _ClusterOptions(init, method, keep_zeros, channels, group_size, per_channel_scale,
                           lut_dtype, axis, cluster_dim if cluster_dim > 1 else None,
                           packed and not dry_run, rate)
    hints = {}

    def args(record, values, sw=None, label=None):
        return (record, values, k_of(record), opts, tensor_seed(base, record.name), sw, label)

    def keep(new, summary, hint):
        if summary is not None:
            rows.append(summary)
        if hint is not None:            # used (and dropped) by the packed writer
            hints[summary.tensor] = hint
        return new

    done = {} if calibration is None else _calibrate(   # layer by layer, in this process
        src, calibration, targets, bias_correction,
        lambda r, sw: keep(*_cluster_tensor(*args(r, r.value, sw, "calibration"))))
    precomputed = {}
    for name, c in done.items():
        precomputed[name] = c.values
        if c.bias_name is not None:
            precomputed[c.bias_name] = c.bias
    notes = {name: c.bias_correction for name, c in done.items()}

    def work(record, values):
        """The arguments of _cluster_tensor for a targeted tensor of the file."""
        if record.name in precomputed:        # a corrected bias that is targeted too
            values = precomputed[record.name]
        sw = imp.get(record.name)
        return args(record, values, sw, None if sw is None else "file")

    def fn(record, values):
        if record.name in done or (record.name in precomputed and record.name not in targets):
            return precomputed[record.name]
        return keep(*ahead.result(record.name, *work(record, values)))

    note = {"job": "cluster", "k": k if isinstance(k, numbers.Integral) else dict(k),
            "method": method, "init": init if isinstance(init, str) else "array",
            "keep_zeros": keep_zeros, "per_channel": per_channel}
    if group_size is not None or per_channel_scale or lut_dtype is not None:
        note.update(group_size=group_size, per_channel_scale=per_channel_scale,
                    lut_dtype=lut_dtype)
    if imp or done:
        note.update(importance="calibration" if done else "file")
    if cluster_dim > 1:
        note.update(cluster_dim=cluster_dim)
    if axis is not None:
        note.update(axis=axis)
    if plan is not None:
        note["budget"] = plan.to_dict()
    if rate is not None:
        note["rate"] = rate
    select = lambda r: r.name in targets or r.name in precomputed   # noqa: E731
    reader = _LazyReader(src)
    ahead = _lookahead(reader, {n: r for n, r in targets.items() if n not in done}, work, jobs,
                       executor)
    with reader, ahead:
        if packed and not dry_run:
            write_packed(src, dst, fn, select=select, progress=progress, note=note, hints=hints)
        else:
            transform_file(src, dst, fn, select=select, in_place=in_place, progress=progress,
                           note=note, dry_run=dry_run, compress=compress, strip=strip)
    order = {r.name: i for i, r in enumerate(chosen)}
    rows.sort(key=lambda row: order[row.tensor])
    rows[:] = [row._replace(bias_correction=notes.get(row.tensor)) for row in rows]
    return rows


def _importance(importance, targets):
    """The `importance` of :func:`cluster_file`, read (a .npz path) and checked."""
    if isinstance(importance, (str, os.PathLike)):
        return check_importance(load_npz(importance), targets, os.fspath(importance))
    return check_importance(importance, targets)


def _calibration_inputs(calibration):
    """The `calibration` of :func:`cluster_file`, read (a .npy or .npz path) and checked."""
    if isinstance(calibration, (str, os.PathLike)):
        where = os.fspath(calibration)
        arr = pick_input(load_npz(where), where) if where.lower().endswith(".npz") \
            else load_npy(where)
        return check_calibration(arr, where)
    return check_calibration(calibration)


class _HookedRun(_Run):
    """The forward pass with `hook(path, cls, cfg, inputs, weights)` before each layer call."""

    def __init__(self, weights, keras2, hook):
        super().__init__(weights, keras2)
        self.hook = hook

    def layer(self, path, cls, cfg, inputs, kwargs):
        self.hook(path, cls, cfg, inputs, self.weights)
        return super().layer(path, cls, cfg, inputs, kwargs)


def _calibrate(src, calibration, targets, bias_correction, compress):
    """The calibrated pass of :func:`cluster_file`: {kernel name: Calibrated}, its errors
    naming the model (and the calibration file)."""
    inputs = _calibration_inputs(calibration)
    with open_weights(src) as wf:
        config = wf.config
        if config is None:
            raise FileFormatError(os.fspath(src), "holds no model architecture (a weights-only "
                                  "or safetensors file); calibration needs a .keras or .h5 "
                                  "file saved with model.save")
        records = [r._replace(value=wf.read(r)) for r in wf.records]
    given = f" ({os.fspath(calibration)})" if isinstance(calibration, (str, os.PathLike)) \
        else ""
    try:
        config = _top(config)
        bad = unsupported_layers(config)
        if bad:
            raise ValueError(f"the NumPy forward pass does not support {len(bad)} layer(s): "
                             + ", ".join(f"{p} ({c}: {why})" for p, c, why in bad))
        counts = layer_weight_counts(config)
        by_layer, plan = plan_layers(config, records, counts, targets)
        weights = _check_weights(config, {p: [r.value for r in rs]
                                          for p, rs in by_layer.items()})
        xs = inputs if isinstance(inputs, list) else [inputs]
        xs = [x.astype(np.float64) if x.dtype.kind == "f" else x for x in xs]
        _check_input_shapes(config, xs)
        hook = CalibrationHook(plan, compress, bias_correction)
        with np.errstate(all="ignore"):     # an overflow shows in the outputs, not as a warning
            _HookedRun(weights, is_keras2(config), hook).model(config, "", xs)
    except TensorArgumentError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise FileFormatError(os.fspath(src), f"calibration{given}: {exc}") from None
    return hook.done


def _check_packed(src, dst, in_place, compress, strip):
    """packed=True: a safetensors input and output, not in place, no Keras-only options."""
    if in_place or compress or strip:
        which = "in_place" if in_place else "compress" if compress else "strip"
        raise ValueError(f"packed=True and {which}=True exclude each other (packed writes a new "
                         "safetensors file or folder)")
    if not is_safetensors(src):
        raise FileFormatError(os.fspath(src), "packed=True writes safetensors files only; this "
                                              "input is not a .safetensors file or checkpoint")


def _packed_hint(res, axis, shape, group_size, per_channel_scale):
    """The layout of a packed tensor clustered along `axis` (see _io/_st_packed.py)."""
    n_ch = shape[axis]
    g = group_size or (n_ch if per_channel_scale else 1)
    hint = {"axis": axis, "group_size": max(1, min(g, n_ch))}
    if per_channel_scale and res.scales is not None:
        hint.update(scales=res.scales, centroids=res.centroids, labels=res.labels)
    return hint


class _ClusterOptions(NamedTuple):
    """The options of :func:`cluster_file` that every tensor shares (sent to the workers)."""

    init: object
    method: str
    keep_zeros: bool
    channels: bool
    group_size: Optional[int]
    per_channel_scale: bool
    lut_dtype: Optional[str]
    axis: Optional[int]             # the user's channel axis (None: each tensor's own)
    cluster_dim: Optional[int]      # vector palettization (None: scalar)
    hint: bool                      # return the packed writer's layout hint
    rate: Optional[float]           # entropy-constrained clustering (None: plain)


def _seed_base(random_state):
    """The job's seed: an int (None: fresh entropy; a Generator: one draw from it)."""
    if random_state is None:
        return np.random.SeedSequence().entropy
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2 ** 63))
    check_random_state(random_state)         # the type and sign checks, naming the parameter
    return int(random_state)


def _size(record):
    """Entries of a record, from its shape."""
    return int(np.prod(record.shape, dtype=np.int64))


class _LazyReader:
    """A second read-only handle on a file, opened on the first read (a context manager)."""

    def __init__(self, src):
        self.src, self.wf = src, None

    def read(self, record):
        if self.wf is None:
            self.wf = open_weights(self.src)
        return self.wf.read(record)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.wf is not None:
            self.wf.close()
            self.wf = None


def _lookahead(reader, targets, args, jobs, executor):
    """The Lookahead of :func:`cluster_file`: tensors read ahead (by `reader`) and clustered
    on `executor`, on a process pool, or in this process."""
    records = list(targets.values())

    def load(name):
        record = targets[name]
        return args(record, reader.read(record))   # args(record, values): the work's arguments

    def size_of(name):
        r = targets[name]
        return _size(r) * (4 if r.dtype == "bfloat16" else np.dtype(r.dtype).itemsize)

    return Lookahead.start(_cluster_tensor, [r.name for r in records], load, size_of,
                           jobs=jobs, executor=executor, sizes=[_size(r) for r in records])


def _cluster_tensor(record, values, kk, opts, seed, sw=None, label=None):
    """One tensor of :func:`cluster_file`: (new values, ClusterSummary, packed hint), each
    None where it does not apply (an empty tensor: all three).

    The same function in this process and in a worker: its result depends only on its
    arguments (the random stream comes from `seed`, see ``_base._parallel.tensor_seed``).
    `sw` is the tensor's importance (``sample_weight``), `label` what it came from.
    """
    start = time.perf_counter()
    if values.dtype.kind != "f":
        raise ValueError(f"holds {values.dtype} values, not floating-point weights")
    if values.size == 0:
        return None, None, None
    axis = _tensor_axis(record, values, opts)
    check_weights(values, "weights")   # NaN/Inf: the file's fault (FileFormatError, later)
    try:                                # the arguments' fault: TensorArgumentError
        res = cluster(values, kk, init=opts.init, method=opts.method,
                      keep_zeros=opts.keep_zeros, axis=axis, group_size=opts.group_size,
                      per_channel_scale=opts.per_channel_scale, lut_dtype=opts.lut_dtype,
                      sample_weight=sw, cluster_dim=opts.cluster_dim, rate=opts.rate,
                      random_state=np.random.default_rng(np.random.SeedSequence(seed)))
    except ValueError as exc:
        raise TensorArgumentError(f"{record.name}: {exc}") from None
    if record.dtype == "bfloat16":
        if opts.per_channel_scale or opts.cluster_dim or opts.rate:   # as fitted, rounded
            new = round_to_bf16(res.values)
        else:
            new = _bf16_values(values, res, axis, opts.group_size or 1)
        sse, distinct_after = _sse(values, new), _distinct(new)
    else:           # the plain SSE also with importance (res.sse is then weighted)
        new = res.values
        sse = float(res.sse) if sw is None else _sse(values, new)
        distinct_after = _distinct(new) if axis is not None else _distinct_used(res)
    # distinct values before: counted by the solver from the points it sorted anyway (a
    # second sort of the tensor only where it did not: per channel, or a solver without it)
    before = res.n_distinct if axis is None and res.n_distinct is not None else \
        _distinct(values)
    hint = _packed_hint(res, axis, values.shape, opts.group_size, opts.per_channel_scale) \
        if opts.hint and axis is not None else None
    summary = ClusterSummary(record.name, record.layer, record.role, record.shape,
                             record.dtype, kk, before, distinct_after,
                             int(np.count_nonzero(values == 0)),
                             int(np.count_nonzero(new == 0)), sse, importance=label,
                             method=opts.method, seconds=time.perf_counter() - start)
    return new, summary, hint


def _tensor_axis(record, values, opts):
    """The channel axis a tensor is clustered along (None: per tensor)."""
    if not opts.channels:
        return None
    if opts.axis is None:
        return _channel_axis(record, values.ndim)
    if not -values.ndim <= opts.axis < values.ndim:
        raise TensorArgumentError(f"{record.name}: axis={opts.axis} is out of range for this "
                                  f"tensor of shape {tuple(values.shape)} ({values.ndim} "
                                  "dimension(s))")
    return opts.axis % values.ndim


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
                         "per_channel, group_size, per_channel_scale, lut_dtype or cluster_dim")
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
        total += dot(d, d)
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
