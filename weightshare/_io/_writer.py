"""Same-shape rewrites: everything not targeted stays byte-identical.

The source is copied (HDF5 files) or its weights member extracted (``.keras``)
to a temporary file in the destination folder; the copy is opened ``r+`` and
only the targeted datasets are overwritten, one tensor at a time (peak memory
about two copies of the largest tensor). A ``.keras`` zip is then re-written
member by member with each member's own ZipInfo, and the result is renamed
into place. The source is only ever opened for reading.

With ``strip`` or ``compress`` the edited copy is a temporary file too, and
the output is rebuilt from it by :func:`~weightshare._io._rebuild.rebuild_h5`
(optimizer state and compile config left out: :mod:`weightshare._io._strip`;
floating-point datasets deflated), still through the one atomic output.

Nothing is written outside the temporary output: the reader refused every
file that keeps data in another file (external storage, virtual datasets,
external links), and the h5py write path checks each dataset of the copy
again right before reading and writing it (:func:`_inside`).
"""

import contextlib
import os
import shutil
import zipfile
from typing import NamedTuple

import h5py
import numpy as np

from ..errors import FileFormatError, TensorArgumentError
from ._atomic import atomic_output, check_output, same_file, temp_file
from .._codec._bf16 import bf16_is_zero, bf16_to_float32, float32_to_bf16_bits
from ._h5check import check_local, raw_place
from ._reader import WEIGHTS_MEMBER, open_weights, suffix_of
from ._container import CONFIG_MEMBER
from ._rebuild import rebuild_h5
from ._strip import STRIP_FORMATS, Finish, strip_plan
from ._zip import clone_info, write_zip

__all__ = ["rewrite", "dry_rewrite", "check_destination", "TensorRewrite"]

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
        return int(np.count_nonzero(bf16_is_zero(stored)))
    if stored.dtype.kind in "fiub":
        return int(np.count_nonzero(stored == 0))
    return 0


def check_destination(src, dst, in_place):
    """Refuse a destination that would lose data or that Keras would read differently.

    Returns the file the rewrite replaces (see :func:`~._atomic.check_output`:
    in place, a symlink is followed to the real file).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    target = check_output(dst, (src,), in_place=bool(in_place))
    if not same_file(src, dst) and suffix_of(src) != suffix_of(dst):
        raise FileFormatError(dst, f"must keep the input's suffix {suffix_of(src)!r} (Keras picks "
                                   "its loader by the file name)")
    return target


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


@contextlib.contextmanager
def _one_tensor(src, record):
    """A MemoryError while one tensor is read, changed or written names the file and tensor."""
    try:
        yield
    except MemoryError:
        raise MemoryError(f"{src}: {record.location}: out of memory for tensor {record.name!r} "
                          f"(shape {tuple(record.shape)}, {record.dtype})") from None


def _call(fn, record, values, src):
    """fn(record, values), with its errors re-raised once as FileFormatError naming the tensor.

    A TensorArgumentError (the job's argument does not fit this tensor; the file is fine)
    passes as it is."""
    try:
        return fn(record, values)
    except (FileFormatError, TensorArgumentError):
        raise
    except (ValueError, TypeError, ArithmeticError) as exc:
        raise FileFormatError(src, " ".join(str(exc).split()) or type(exc).__name__,
                              record.location) from None


def _read_stored(ds, record, src):
    try:
        return ds[()]
    except (OSError, ValueError, TypeError, KeyError, RuntimeError) as exc:
        raise FileFormatError(src, f"cannot read the data ({type(exc).__name__}: "
                                   f"{' '.join(str(exc).split())})", record.location) from None


def _new_stored(ds, record, fn, src):
    """(old stored array, new stored array or None) of one tensor."""
    old = _read_stored(ds, record, src)
    new = _call(fn, record, bf16_to_float32(old) if record.dtype == "bfloat16"
                else np.asarray(old), src)
    if new is None:
        return np.asarray(old), None
    try:
        return np.asarray(old), _stored(new, ds.dtype, record)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(src, str(exc), record.location) from None


def _check_overlaps(wf, records, src):
    """Refuse targeted datasets whose bytes overlap another dataset's (a damaged layout)."""
    places = []
    for r in wf.records:
        place = raw_place(wf.dataset(r))
        if place is not None and place[1]:
            places.append((place[0], place[0] + place[1], r.location))
    places.sort()
    targeted = {r.location for r in records}
    for (a0, a1, a), (b0, b1, b) in zip(places, places[1:]):
        if b0 < a1 and (a0, a1) != (b0, b1) and (a in targeted or b in targeted):
            raise FileFormatError(src, f"the data of {a} and {b} overlap in the file (a damaged "
                                       "layout); it cannot be rewritten")


def _patch(out, place, stored, record, src):
    """Write the bytes of `stored` at ``place = (offset, nbytes)`` of the open file `out`."""
    data = np.ascontiguousarray(stored).view(np.uint8).reshape(-1)
    if data.size != place[1]:
        raise FileFormatError(src, f"stores {place[1]} bytes for {data.size} bytes of values (a "
                                   "damaged layout)", record.location)
    out.seek(place[0])
    out.write(data)


def _inside(h5, ds, src, where):
    """`ds` of the open copy `h5`, refused unless its data is stored inside the copy."""
    if h5py.h5i.get_file_id(ds.id) != h5.id:
        raise FileFormatError(src, "is an external link to a dataset in another file, which "
                                   "weightshare never follows", where)
    check_local(ds, src, where)
    return ds


def _edit_h5(path, prefix, records, fn, progress, src, wf):
    """Rewrite the targeted datasets of `path`, a byte copy of the HDF5 file `wf` reads.

    Values are read from the source. A contiguous, unfiltered dataset (what
    Keras writes) is patched in the copy with plain file writes at its
    offset: libhdf5 never opens the copy for writing, so a damaged object
    header cannot crash it or be written back. Other layouts (chunked,
    compressed, compact) are then written through h5py, one at a time.
    """
    results = [None] * len(records)
    done = 0
    with open(path, "r+b", buffering=0) as out:
        for i, record in enumerate(records):
            ds = wf.dataset(record)
            place = raw_place(ds)
            if place is None:
                continue
            with _one_tensor(src, record):
                old, stored = _new_stored(ds, record, fn, src)
                if stored is not None:
                    _patch(out, place, stored, record, src)
                results[i] = _summary(record, old, stored)
            del old, stored
            done += 1
            if progress is not None:
                progress(done, len(records), record)
    rest = [i for i, r in enumerate(results) if r is None]
    if rest:
        with h5py.File(path, "r+") as h5:
            for i in rest:
                record = records[i]
                ds = _inside(h5, h5[record.location[len(prefix):]], src, record.location)
                with _one_tensor(src, record):
                    old, stored = _new_stored(ds, record, fn, src)
                    if stored is not None:
                        ds[...] = stored
                    results[i] = _summary(record, old, stored)
                del old, stored
                done += 1
                if progress is not None:
                    progress(done, len(records), record)
    return results


def _read_array(wf, record, fn, src):
    """(old array, new stored array or None) of one tensor of a .npy/.npz file."""
    old = wf.read(record)
    new = _call(fn, record, old, src)
    if new is None:
        return old, None
    try:
        return old, _stored(new, old.dtype, record)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(src, str(exc), record.location) from None


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
                with _one_tensor(src, record):
                    old, new = _read_array(wf, record, fn, src)
            with out.open(clone_info(info), "w", force_zip64=True) as w:
                if new is None:
                    with wf._zip.open(info) as r:
                        shutil.copyfileobj(r, w, _CHUNK)
                else:
                    np.lib.format.write_array(w, new, allow_pickle=False)
            if record is not None:
                with _one_tensor(src, record):
                    results.append(_summary(record, old, new))
                done += 1
                if progress is not None:
                    progress(done, len(records), record)
    return results


def finish_of(wf, src, strip, compress):
    """The :class:`~._strip.Finish` of a rewrite of the open `wf`; refuses formats without one."""
    if (strip or compress) and wf.fmt not in STRIP_FORMATS:
        what = "strip" if strip else "compress"
        raise FileFormatError(src, f"is a {wf.fmt} file; {what} works on Keras files only "
                                   "(.keras, .weights.h5, .h5)")
    if strip:
        return strip_plan(wf, compress)
    return Finish(compress=bool(compress))


def rewrite(src, dst, fn, *, select=None, in_place=False, progress=None, strip=False,
            compress=False):
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
    strip : bool
        Leave out optimizer state and the compile/training config (Keras files).
    compress : bool
        Deflate the floating-point datasets (Keras files).

    Returns
    -------
    list of TensorRewrite
        One per tensor `fn` was called on, in file order.
    """
    src = os.fspath(src)
    dst = check_destination(src, dst, in_place)
    with open_weights(src) as wf:
        finish = finish_of(wf, src, strip, compress)
        records = [r for r in wf.records if select is None or select(r)]
        with atomic_output(dst, mode_from=src if in_place else None, inputs=(src,),
                           in_place=bool(in_place)) as tmp:
            try:
                if finish.rebuilds:
                    return _rewrite_rebuilt(wf, src, dst, tmp, fn, records, progress, finish)
                return _rewrite_into(wf, src, dst, tmp, fn, records, progress)
            except (zipfile.BadZipFile, RuntimeError, KeyError, EOFError) as exc:
                raise FileFormatError(src, f"cannot be rewritten ({type(exc).__name__}: "
                                           f"{' '.join(str(exc).split())})") from None


def dry_rewrite(src, fn, *, select=None, progress=None):
    """What :func:`rewrite` would do, without writing anything (no output, no temporary file).

    Every format (safetensors too): each selected tensor is read, passed to
    `fn` and its new values converted to the stored dtype exactly as the
    writer converts them; the rows are those :func:`rewrite` returns.
    """
    src = os.fspath(src)
    with open_weights(src) as wf:
        records = [r for r in wf.records if select is None or select(r)]
        rows = []
        for done, record in enumerate(records, 1):
            with _one_tensor(src, record):
                old = wf.read(record)
                new = _call(fn, record, old, src)
                bf16 = record.dtype == "bfloat16"      # compared as the file holds them: bits
                before = float32_to_bf16_bits(old) if bf16 else old
                stored = None
                if new is not None:
                    try:
                        stored = _stored(new, before.dtype, record)
                    except (ValueError, TypeError) as exc:
                        raise FileFormatError(src, str(exc), record.location) from None
                rows.append(_summary(record, before, stored))
            if progress is not None:
                progress(done, len(records), record)
    return rows


def _rebuild_copy(h5path, out, finish, src, where=None):
    """Rebuild the edited HDF5 copy `h5path` into `out` as `finish` says."""
    with h5py.File(h5path, "r") as h5:
        rebuild_h5(h5, out, drop=finish.drop, drop_attrs=finish.drop_attrs,
                   compress=finish.compress, size=os.path.getsize(h5path), path=src, where=where)


def _rewrite_rebuilt(wf, src, dst, tmp, fn, records, progress, finish):
    """Edit a copy of the HDF5 file (or weights member) in a temporary file, then rebuild it
    into `tmp` leaving out what `finish` drops (a ``.keras`` zip: member by member)."""
    _check_overlaps(wf, records, src)
    folder, name = os.path.dirname(os.path.abspath(dst)), os.path.basename(dst)
    with temp_file(folder, name, ".h5") as h5tmp:
        if wf.fmt != "keras_zip":
            shutil.copyfile(src, h5tmp)
            rows = _edit_h5(h5tmp, "", records, fn, progress, src, wf)
            _rebuild_copy(h5tmp, tmp, finish, src)
            return rows
        with wf._zip.open(WEIGHTS_MEMBER) as r, open(h5tmp, "wb") as w:
            shutil.copyfileobj(r, w, _CHUNK)      # checks the member's CRC-32
        rows = _edit_h5(h5tmp, WEIGHTS_MEMBER + ":", records, fn, progress, src, wf)
        replace = {CONFIG_MEMBER: finish.config} if finish.config is not None else {}
        if not (finish.drop or finish.drop_attrs or finish.compress):
            if any(r.changed for r in rows):            # else: the member as stored
                replace[WEIGHTS_MEMBER] = h5tmp
            write_zip(wf._zip, tmp, replace)
            return rows
        with temp_file(folder, name, ".h5") as rebuilt:
            _rebuild_copy(h5tmp, rebuilt, finish, src, WEIGHTS_MEMBER)
            replace[WEIGHTS_MEMBER] = rebuilt
            # the config deflated too (Keras reads it whole); the weights member stays as
            # it was (stored: Keras seeks in it)
            write_zip(wf._zip, tmp, replace, deflate=(CONFIG_MEMBER,) if finish.compress else ())
    return rows


def _rewrite_into(wf, src, dst, tmp, fn, records, progress):
    """Write the rewritten file to `tmp` (see :func:`rewrite`)."""
    fmt = wf.fmt
    if fmt in ("legacy_full", "legacy_weights", "weights_store"):
        _check_overlaps(wf, records, src)
        shutil.copyfile(src, tmp)
        return _edit_h5(tmp, "", records, fn, progress, src, wf)
    if fmt == "keras_zip":
        _check_overlaps(wf, records, src)
        with temp_file(os.path.dirname(os.path.abspath(dst)), os.path.basename(dst),
                       ".h5") as h5tmp:
            with wf._zip.open(WEIGHTS_MEMBER) as r, open(h5tmp, "wb") as w:
                shutil.copyfileobj(r, w, _CHUNK)      # checks the member's CRC-32
            changed = _edit_h5(h5tmp, WEIGHTS_MEMBER + ":", records, fn, progress, src, wf)
            edited = any(r.changed for r in changed)    # else: the member as stored
            write_zip(wf._zip, tmp, {WEIGHTS_MEMBER: h5tmp} if edited else {})
        return changed
    if fmt == "npy":
        if not records:
            shutil.copyfile(src, tmp)
            return []
        record = records[0]
        with _one_tensor(src, record):
            old, new = _read_array(wf, record, fn, src)
            if new is None:
                shutil.copyfile(src, tmp)
            else:
                with open(tmp, "wb") as f:
                    np.lib.format.write_array(f, new, allow_pickle=False)
            summary = _summary(record, old, new)
        if progress is not None:
            progress(1, 1, record)
        return [summary]
    return _rewrite_npz(wf, tmp, fn, records, progress, src)
