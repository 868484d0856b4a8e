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

import h5py
import numpy as np

from ..errors import FileFormatError
from ._atomic import atomic_output, temp_path
from ._bf16 import bf16_to_float32, float32_to_bf16_bits
from ._reader import WEIGHTS_MEMBER, open_weights, suffix_of
from ._zip import clone_info, write_zip

__all__ = ["rewrite", "check_destination"]

_CHUNK = 1 << 20


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


def _read(ds, record):
    arr = ds[()]
    if record.dtype == "bfloat16":
        return bf16_to_float32(arr)
    return np.asarray(arr)


def _write(ds, record, new):
    new = np.asarray(new)
    if tuple(new.shape) != tuple(ds.shape):
        raise ValueError(f"new value has shape {new.shape}, the dataset {tuple(ds.shape)}")
    if record.dtype == "bfloat16":
        ds[...] = float32_to_bf16_bits(new).view(ds.dtype)
    else:
        ds[...] = new.astype(ds.dtype, copy=False)


def _edit_h5(path, prefix, records, fn, progress, src):
    results = []
    with h5py.File(path, "r+") as h5:
        for i, record in enumerate(records):
            ds = h5[record.location[len(prefix):]]
            try:
                new = fn(record, _read(ds, record))
                if new is not None:
                    _write(ds, record, new)
                    results.append(record)
            except FileFormatError:
                raise
            except (ValueError, TypeError, OSError) as exc:
                raise FileFormatError(src, f"{' '.join(str(exc).split())}", record.location) from None
            if progress is not None:
                progress(i + 1, len(records), record)
    return results


def _rewrite_npz(wf, tmp, fn, records, progress):
    results = []
    by_key = {r.location: r for r in records}
    with zipfile.ZipFile(tmp, "w") as out:
        out.comment = wf._zip.comment
        for n, info in enumerate(wf.zip_infos):
            record = by_key.get(info.filename[:-4])
            new = None
            if record is not None:
                new = fn(record, wf.read(record))
            with out.open(clone_info(info), "w", force_zip64=True) as w:
                if new is None:
                    with wf._zip.open(info) as r:
                        shutil.copyfileobj(r, w, _CHUNK)
                else:
                    old = wf.read(record)
                    np.lib.format.write_array(w, np.asarray(new).astype(old.dtype, copy=False),
                                              allow_pickle=False)
                    results.append(record)
            if progress is not None and record is not None:
                progress(n + 1, len(wf.zip_infos), record)
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
    list of WeightInfo
        The records that were changed, in file order.
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
                    write_zip(wf._zip, tmp, {WEIGHTS_MEMBER: h5tmp})
                finally:
                    if os.path.exists(h5tmp):
                        os.unlink(h5tmp)
                return changed
            if fmt == "npy":
                record = records[0] if records else None
                new = fn(record, wf.read(record)) if record is not None else None
                if new is None:
                    shutil.copyfile(src, tmp)
                    return []
                old_dtype = np.load(src, mmap_mode="r", allow_pickle=False).dtype
                with open(tmp, "wb") as f:
                    np.lib.format.write_array(f, np.asarray(new).astype(old_dtype, copy=False),
                                              allow_pickle=False)
                return [record]
            return _rewrite_npz(wf, tmp, fn, records, progress)
