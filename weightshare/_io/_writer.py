"""Same-shape rewrites: everything not targeted stays byte-identical.

The source is copied (HDF5 files) or its weights member extracted (``.keras``)
to a temporary file in the destination folder; the copy is opened ``r+`` and
only the targeted datasets are overwritten, one tensor at a time (peak memory
about two copies of the largest tensor). A ``.keras`` zip is then re-written
member by member with each member's own ZipInfo, and the result is renamed
into place. The source is only ever opened for reading.
"""

import os
import shutil
import zipfile
from typing import NamedTuple

import h5py
import numpy as np

from ..errors import FileFormatError
from ._atomic import atomic_output, temp_path
from ._bf16 import bf16_to_float32, float32_to_bf16_bits
from ._reader import WEIGHTS_MEMBER, open_weights, suffix_of
from ._zip import clone_info, write_zip

__all__ = ["rewrite", "check_destination", "TensorRewrite"]

_CHUNK = 1 << 20


class TensorRewrite(NamedTuple):
    """What a rewrite did to one tensor that its `fn` was called on.

    Attributes
    ----------
    tensor, layer, path, role : str
        As in :class:`~weightshare.files.WeightInfo` (``tensor`` is its ``name``).
    shape : tuple of int
    dtype : str
        The stored dtype (``"bfloat16"`` included), unchanged by the rewrite.
    location : str
        The HDF5 dataset (or npz member) that was rewritten.
    changed : bool
        `fn` returned new values (False: it returned None; the bytes are untouched).
    values_changed : int
        Entries whose stored bits differ after the rewrite (0 when `fn`
        returned the same values).
    zeros_before, zeros_after : int
        Entries equal to zero (either sign) before and after.
    size : int
        Number of entries.
    """

    tensor: str
    layer: str
    path: str
    role: str
    shape: tuple
    dtype: str
    location: str
    changed: bool
    values_changed: int
    zeros_before: int
    zeros_after: int
    size: int

    def to_dict(self):
        """A JSON-ready dict (shape as a list)."""
        d = self._asdict()
        d["shape"] = list(self.shape)
        return d


def _summary(record, old_stored, new_stored):
    """A TensorRewrite from the stored arrays before and after (None after: untouched)."""
    zeros_before = _zeros(old_stored, record)
    if new_stored is None:
        return TensorRewrite(record.name, record.layer, record.path, record.role, record.shape,
                             record.dtype, record.location, False, 0, zeros_before, zeros_before,
                             int(old_stored.size))
    a, b = _bits(old_stored), _bits(new_stored)
    changed = int(np.count_nonzero(a != b)) if a is not None else int(np.count_nonzero(
        old_stored != new_stored))
    return TensorRewrite(record.name, record.layer, record.path, record.role, record.shape,
                         record.dtype, record.location, True, changed, zeros_before,
                         _zeros(new_stored, record), int(old_stored.size))


def _bits(arr):
    """An unsigned-integer view of `arr`'s bytes, or None for dtypes without one."""
    size = arr.dtype.itemsize
    if size in (1, 2, 4, 8) and arr.dtype.kind in "fiuV" and not arr.dtype.fields:
        return np.ascontiguousarray(arr).view(f"u{size}")
    return None


def _zeros(stored, record):
    if record.dtype == "bfloat16":
        return int(np.count_nonzero((_bits(stored) & np.uint16(0x7FFF)) == 0))
    if stored.dtype.kind in "fiub":
        return int(np.count_nonzero(stored == 0))
    return 0


def check_destination(src, dst, in_place):
    """Refuse a destination that would lose data or that Keras would read differently."""
    src, dst = os.fspath(src), os.fspath(dst)
    if os.path.isdir(dst):
        raise FileFormatError(dst, "is a folder; give the output file's name")
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise FileNotFoundError(2, "the output folder does not exist", folder)
    same = os.path.abspath(src) == os.path.abspath(dst) or (
        os.path.exists(dst) and os.path.exists(src) and os.path.samefile(src, dst))
    if same and not in_place:
        raise FileFormatError(dst, "is the input file; pass in_place=True (--in-place) to replace "
                                   "it (still written atomically)")
    if not same and suffix_of(src) != suffix_of(dst):
        raise FileFormatError(dst, f"must keep the input's suffix {suffix_of(src)!r} (Keras picks "
                                   "its loader by the file name)")


def _stored(new, dtype, record):
    """`new` as the array that will be stored (bfloat16: uint16 bits viewed as the |V2 type)."""
    new = np.asarray(new)
    if tuple(new.shape) != tuple(record.shape):
        raise ValueError(f"fn returned shape {new.shape}; the tensor has shape {record.shape} "
                         "(rewrites keep shapes)")
    if new.dtype.kind not in "fiub":
        raise TypeError(f"fn returned {new.dtype} values; expected numbers")
    if record.dtype == "bfloat16":
        return float32_to_bf16_bits(new).view(dtype)
    return new.astype(dtype, copy=False)


def _call(fn, record, values, src):
    """fn(record, values), with its errors re-raised once as FileFormatError naming the tensor."""
    try:
        return fn(record, values)
    except FileFormatError:
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise FileFormatError(src, " ".join(str(exc).split()) or type(exc).__name__,
                              record.location) from None


def _edit_h5(path, prefix, records, fn, progress, src):
    results = []
    with h5py.File(path, "r+") as h5:
        for i, record in enumerate(records):
            ds = h5[record.location[len(prefix):]]
            try:
                old = ds[()]
            except (OSError, ValueError, TypeError, KeyError) as exc:
                raise FileFormatError(src, f"cannot read the data ({type(exc).__name__}: "
                                           f"{' '.join(str(exc).split())})",
                                      record.location) from None
            new = _call(fn, record, bf16_to_float32(old) if record.dtype == "bfloat16"
                        else np.asarray(old), src)
            stored = None
            if new is not None:
                try:
                    stored = _stored(new, ds.dtype, record)
                except (ValueError, TypeError) as exc:
                    raise FileFormatError(src, str(exc), record.location) from None
                del new
                ds[...] = stored
            results.append(_summary(record, np.asarray(old), stored))
            del old, stored
            if progress is not None:
                progress(i + 1, len(records), record)
    return results


def _rewrite_npz(wf, tmp, fn, records, progress, src):
    results = []
    by_key = {r.location: r for r in records}
    done = 0
    with zipfile.ZipFile(tmp, "w") as out:
        out.comment = wf._zip.comment
        for info in wf.zip_infos:
            record = by_key.get(info.filename[:-4])
            old = new = None
            if record is not None:
                old = wf.read(record)
                new = _call(fn, record, old, src)
                if new is not None:
                    try:
                        new = _stored(new, old.dtype, record)
                    except (ValueError, TypeError) as exc:
                        raise FileFormatError(src, str(exc), record.location) from None
            with out.open(clone_info(info), "w", force_zip64=True) as w:
                if new is None:
                    with wf._zip.open(info) as r:
                        shutil.copyfileobj(r, w, _CHUNK)
                else:
                    np.lib.format.write_array(w, new, allow_pickle=False)
            if record is not None:
                results.append(_summary(record, old, new))
                done += 1
                if progress is not None:
                    progress(done, len(records), record)
    return results


def rewrite(src, dst, fn, *, select=None, in_place=False, progress=None):
    """Write `src` to `dst` with the tensors `fn` returns new values for.

    Parameters
    ----------
    src, dst : path
    fn : callable(record, array) -> ndarray or None
        Called for every selected tensor with its current values; returns the
        new values (same shape; cast to the stored dtype) or None to leave it.
    select : callable(record) -> bool, optional
        Which tensors `fn` sees (all by default).
    in_place : bool
        Allow ``dst == src`` (still atomic).
    progress : callable(done, total, record), optional

    Returns
    -------
    list of TensorRewrite
        One per tensor `fn` was called on, in file order.
    """
    check_destination(src, dst, in_place)
    src, dst = os.fspath(src), os.fspath(dst)
    with open_weights(src) as wf:
        records = [r for r in wf.records if select is None or select(r)]
        fmt = wf.fmt
        with atomic_output(dst, mode_from=src if in_place else None) as tmp:
            if fmt in ("legacy_full", "legacy_weights", "weights_store"):
                shutil.copyfile(src, tmp)
                return _edit_h5(tmp, "", records, fn, progress, src)
            if fmt == "keras_zip":
                h5tmp = temp_path(os.path.dirname(os.path.abspath(dst)), os.path.basename(dst), ".h5")
                try:
                    with wf._zip.open(WEIGHTS_MEMBER) as r, open(h5tmp, "wb") as w:
                        shutil.copyfileobj(r, w, _CHUNK)
                    changed = _edit_h5(h5tmp, WEIGHTS_MEMBER + ":", records, fn, progress, src)
                    edited = any(r.changed for r in changed)    # else: the member as stored
                    write_zip(wf._zip, tmp, {WEIGHTS_MEMBER: h5tmp} if edited else {})
                finally:
                    if os.path.exists(h5tmp):
                        os.unlink(h5tmp)
                return changed
            if fmt == "npy":
                if not records:
                    shutil.copyfile(src, tmp)
                    return []
                record = records[0]
                old = wf.read(record)
                new = _call(fn, record, old, src)
                if new is None:
                    shutil.copyfile(src, tmp)
                else:
                    try:
                        new = _stored(new, old.dtype, record)
                    except (ValueError, TypeError) as exc:
                        raise FileFormatError(src, str(exc), record.location) from None
                    with open(tmp, "wb") as f:
                        np.lib.format.write_array(f, new, allow_pickle=False)
                if progress is not None:
                    progress(1, 1, record)
                return [_summary(record, old, new)]
            return _rewrite_npz(wf, tmp, fn, records, progress, src)
