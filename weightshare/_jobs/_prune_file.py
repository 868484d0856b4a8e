"""Magnitude pruning of Keras (and NumPy) files: ``weightshare.prune_file``.

A file adapter over the public file API (:func:`weightshare.files.read_weights`,
:func:`~weightshare.files.select_weights`, :func:`~weightshare.files.transform_file`)
and the array core (:mod:`weightshare.prune`). It imports h5py through them;
``weightshare`` loads it on first use, so the array core never does.
"""

import math
import os
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from .._base._validation import check_flag, check_fraction, check_int, check_weights
from ..errors import TensorArgumentError
from .._keras._roles import output_axis
from ..files import (FLOAT_DTYPE_NAMES, JobRows, per_layer, read_weights, select_weights,
                     skipped_weights, transform_file)
from ..prune import apply_mask, check_prune_args, prune, prune_global

__all__ = ["PruneSummary", "prune_file"]


class PruneSummary(NamedTuple):
    """What :func:`prune_file` did to one tensor.

    Attributes
    ----------
    tensor, layer, role : str
        As in :class:`weightshare.files.WeightInfo` (``tensor`` is its ``name``).
    shape : tuple of int
    dtype : str
        The stored dtype, unchanged (``"bfloat16"`` included).
    size : int
        Number of entries.
    nonzero_before, nonzero_after : int
        Non-zero entries before and after pruning.
    threshold : float
        The smallest magnitude kept (see :class:`weightshare.PruneResult`):
        the one global threshold with ``global_=True``; the smallest of the
        per-channel thresholds with ``per_channel``; the smallest kept block
        norm with ``block``. ``inf`` when nothing is kept (``None`` in
        :meth:`to_dict`, so the JSON stays standard).
    """

    tensor: str
    layer: str
    role: str
    shape: tuple
    dtype: str
    size: int
    nonzero_before: int
    nonzero_after: int
    threshold: float

    @property
    def sparsity(self):
        """Fraction of zeros after pruning (0.0 for an empty tensor)."""
        return 1.0 - self.nonzero_after / self.size if self.size else 0.0

    def to_dict(self):
        """A JSON-ready dict (shape as a list, an infinite threshold as None, plus sparsity)."""
        d = self._asdict()
        d["shape"] = list(self.shape)
        d["threshold"] = self.threshold if math.isfinite(self.threshold) else None
        d["sparsity"] = self.sparsity
        return d


def _check_tensor(record, sparsity, keep, axis, block, n_m):
    """Refuse a target this tensor cannot take, from its shape alone (before anything is written)."""
    shape = tuple(record.shape)
    try:
        check_prune_args(shape, sparsity, keep, block=block, n_m=n_m)
    except ValueError as exc:
        raise ValueError(f"{record.name} (shape {shape}): {exc}") from None


def _threshold(t):
    t = np.asarray(t, dtype=np.float64)
    if t.ndim == 0:
        return float(t)
    return float(t.min()) if t.size else math.inf


def _targets(sparsity, keep, global_):
    """(name, mapping) of a per-layer target, or None for one target for every tensor."""
    if not isinstance(sparsity, Mapping) and not isinstance(keep, Mapping):
        return None
    if sparsity is not None and keep is not None:
        raise ValueError("give exactly one of sparsity or keep; got both (sparsity="
                         f"{sparsity!r}, keep={keep!r})")
    name = "sparsity" if sparsity is not None else "keep"
    if global_:
        raise ValueError(f"global_=True ranks magnitudes across tensors with one {name}; got a "
                         f"per-layer mapping {name}={dict(sparsity or keep)!r}")
    return name, sparsity if sparsity is not None else keep


def prune_file(src, dst, *, sparsity=None, keep=None, global_=False, layers=None,
               roles=("kernel",), per_channel=False, n_m=None, block=None, in_place=False,
               progress=None, dry_run=False, compress=False, strip=False):
    """Magnitude-prune the weights of a Keras (or NumPy) file and write the same format back.

    Parameters
    ----------
    src, dst : str or os.PathLike
        Input and output (same suffix). The input is never modified; the
        output is written to a temporary file and renamed into place, and
        everything not pruned stays byte-identical (see
        :func:`weightshare.transform_file`).
    sparsity : float in [0, 1), or dict of str to float, optional
        Fraction of zeros wanted in each targeted tensor (over all of them
        together with `global_`); existing zeros count. A mapping gives the
        sparsity per layer name (or nested path), as ``k`` of
        :func:`weightshare.cluster_file` does: layers it leaves out are not
        pruned, a key may be a glob pattern (``{"fc1": 0.9, "*": 0.5}``: fc1
        0.9, every other targeted layer 0.5), an exact name wins over a
        pattern, and a name that is not a targeted layer is an error listing
        those that are. Not with `global_`.
    keep : int >= 0, or dict of str to int, optional
        Non-zeros kept in each targeted tensor (in all of them together with
        `global_`): exactly `keep`, or fewer if it had fewer (a tensor
        smaller than `keep` keeps all its non-zeros); per layer as
        `sparsity`. Give exactly one of `sparsity` and `keep`, or `n_m`.
    global_ : bool, default False
        One magnitude threshold across all targeted tensors
        (:func:`weightshare.prune_global`; ties go to the tensor earlier in
        the file). Two passes: the magnitudes are read first, then the file
        is rewritten. Not with `per_channel`, `n_m` or `block`.
    layers : iterable of str, optional
        The model's layer names (or nested paths) to prune; default every
        layer. Exact names; an unknown one is an error listing those that exist.
    roles : iterable of str, default ("kernel",)
        Which weights (see :func:`weightshare.select_weights`): by default the
        kernel-like ones; biases and normalisation state stay untouched. Only
        floating-point tensors are pruned.
    per_channel : bool, default False
        Prune every output channel to the same target (``axis`` of
        :func:`weightshare.prune`; the same output axis as
        ``cluster_file(per_channel=True)``: the last axis of Dense and Conv
        kernels, axis -2 of depthwise and transposed-convolution kernels).
    n_m : (int, int), optional
        N:M sparsity along the input axis (-2) of every targeted tensor.
    block : (int, int), optional
        Prune whole blocks of the last two dimensions by their L2 norm.
    in_place : bool, default False
        Allow `dst` to be `src` (still written atomically; a symlink is
        followed to the real file, a file with several hard links refused).
    progress : callable(done, total, record), optional
        Called after each tensor (the CLI's progress bar).
    dry_run : bool, default False
        Compute everything and return the same rows as a real run, but
        write nothing (no output, no temporary file); `dst` may be None.
    compress : bool, default False
        Deflate the floating-point datasets of the output (Keras files; see
        :func:`weightshare.transform_file`): the zeros then cost next to nothing on disk.
    strip : bool, default False
        Leave out optimizer state and the compile/training config (see
        :func:`weightshare.strip_file`).

    Returns
    -------
    JobRows of PruneSummary
        A list: one row per pruned tensor, in file order: size, non-zeros
        before and after, threshold. ``.skipped`` lists the weights of the
        targeted layers left as they are (:class:`weightshare.SkippedWeight`),
        ``.dry_run`` whether anything was written.

    Raises
    ------
    ValueError
        A bad target, or one a targeted tensor cannot take (N:M or a block
        that does not divide its axes, a `keep` that is not a multiple of
        the block): the message names the tensor, and nothing is written.
    weightshare.errors.FileFormatError
        The file cannot be read or written (names the file and dataset).

    Notes
    -----
    Each tensor follows :func:`weightshare.prune` exactly (rounding rule,
    tie rule, existing zeros count as pruned); bfloat16 tensors are pruned
    on their exact values and kept entries are written back unchanged.

    Examples
    --------
    >>> import os, tempfile, weightshare
    >>> out = os.path.join(tempfile.mkdtemp(), "digits-sparse.keras")
    >>> digits = weightshare.examples.path("digits.keras")
    >>> rows = weightshare.prune_file(digits, out, sparsity=0.8)
    >>> [(r.tensor, r.size, r.nonzero_after) for r in rows]
    [('fc1/kernel', 4096, 819), ('fc2/kernel', 2048, 409), ('out/kernel', 320, 64)]
    >>> rows = weightshare.prune_file(digits, out, keep=1000, global_=True)
    >>> sum(r.nonzero_after for r in rows), len({r.threshold for r in rows})
    (1000, 1)
    >>> rows = weightshare.prune_file(digits, None, sparsity={"fc1": 0.9, "*": 0.5},
    ...                               dry_run=True)
    >>> [(r.tensor, r.nonzero_after) for r in rows], rows.dry_run
    ([('fc1/kernel', 409), ('fc2/kernel', 1024), ('out/kernel', 160)], True)
    """
    structure = [name for name, v in (("per_channel", per_channel), ("n_m", n_m),
                                      ("block", block)) if v not in (None, False)]
    global_ = check_flag(global_, "global_")
    per_channel = check_flag(per_channel, "per_channel")
    dry_run = check_flag(dry_run, "dry_run")
    if len(structure) > 1:
        raise ValueError(f"give at most one of per_channel, n_m and block; got "
                         f"{' and '.join(structure)}")
    if global_ and structure:
        raise ValueError(f"global_=True ranks magnitudes across tensors; it does not combine "
                         f"with {structure[0]}")
    per_layer_target = None if n_m is not None else _targets(sparsity, keep, global_)
    if per_layer_target is None:
        sparsity, keep, _, _ = check_prune_args(None, sparsity, keep, block=block, n_m=n_m)
    elif block is not None:                 # the targets are checked per layer below
        check_prune_args(None, keep=0, block=block)

    records = read_weights(src, values=bool(global_))
    if not records:
        raise ValueError(f"{os.fspath(src)}: holds no weight tensors; nothing to prune")
    selected = select_weights(records, layers=layers, roles=roles)
    skipped = skipped_weights(records, selected, layers=layers, roles=roles)
    chosen = [r for r in selected
              if r.dtype in FLOAT_DTYPE_NAMES and int(np.prod(r.shape, dtype=np.int64)) > 0]
    if per_layer_target is None:
        targets = {r.name: (sparsity, keep) for r in chosen}
    else:
        name, mapping = per_layer_target
        check = check_fraction if name == "sparsity" else (lambda v, label: check_int(v, label, 0))
        value_of = per_layer(mapping, [r for r in selected if r.dtype in FLOAT_DTYPE_NAMES],
                              name, check)
        targets = {r.name: ((v, None) if name == "sparsity" else (None, v)) for r in chosen
                   for v in [value_of(r)] if v is not None}
        chosen = [r for r in chosen if r.name in targets]
    axes = {r.name: (_channel_axis(r) if per_channel else None) for r in chosen}
    if global_:
        return _prune_global_file(src, dst, records, chosen, sparsity, keep, in_place, progress,
                                  JobRows(skipped=skipped, dry_run=dry_run), (compress, strip))
    for r in chosen:
        _check_tensor(r, *targets[r.name], axes[r.name], block, n_m)

    rows = JobRows(skipped=skipped, dry_run=dry_run)

    def fn(record, values):
        check_weights(values, "weights")   # NaN/Inf: the file's fault (FileFormatError, below)
        s, k = targets[record.name]
        try:                                # the arguments' fault: TensorArgumentError
            res = prune(values, sparsity=s, keep=k, axis=axes[record.name],
                        block=block, n_m=n_m)
        except ValueError as exc:
            raise TensorArgumentError(f"{record.name}: {exc}") from None
        rows.append(PruneSummary(record.name, record.layer, record.role, tuple(record.shape),
                                 record.dtype, int(values.size), res.n_nonzero_before,
                                 res.n_kept, _threshold(res.threshold)))
        return res.values

    names = {r.name for r in chosen}
    transform_file(src, dst, fn, select=lambda r: r.name in names, in_place=in_place,
                   progress=progress, dry_run=dry_run, compress=compress, strip=strip)
    return rows


def _prune_global_file(src, dst, records, chosen, sparsity, keep, in_place, progress, rows,
                       finish):
    """Pass 1: one threshold from every targeted tensor's magnitudes; pass 2: rewrite."""
    by_name = {r.name: r for r in records}
    tensors = {r.name: by_name[r.name].value for r in chosen}
    masks = {}
    if tensors:
        try:
            results = prune_global(tensors, sparsity=sparsity, keep=keep)
        except ValueError as exc:
            raise ValueError(f"{len(tensors)} targeted tensor(s) together: {exc}") from None
        except MemoryError:
            n = sum(int(np.size(v)) for v in tensors.values())
            raise MemoryError(f"{os.fspath(src)}: out of memory ranking the {len(tensors)} "
                              f"targeted tensor(s) together ({n} entries) with global_=True") \
                from None
        for name, res in results.items():
            r = by_name[name]
            masks[name] = res.mask
            rows.append(PruneSummary(name, r.layer, r.role, tuple(r.shape), r.dtype,
                                     int(res.values.size), res.n_nonzero_before, res.n_kept,
                                     _threshold(res.threshold)))
        del results
    del tensors, records, by_name      # pass 2 holds only the masks

    def fn(record, values):
        mask = masks[record.name]
        if values.shape != mask.shape:
            raise ValueError(f"shape {values.shape} differs from the first pass's {mask.shape}")
        return apply_mask(values, mask)

    transform_file(src, dst, fn, select=lambda r: r.name in masks, in_place=in_place,
                   progress=progress, dry_run=rows.dry_run, compress=finish[0],
                   strip=finish[1])
    return rows


def _channel_axis(r):
    """The output-channel axis: the format's when it fixes one (safetensors: 0), else the class's."""
    if r.channel_axis is not None and len(r.shape) >= 1:
        return r.channel_axis
    return output_axis(r.layer_class, r.role, len(r.shape))
