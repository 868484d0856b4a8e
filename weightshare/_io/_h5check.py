"""Checks of an HDF5 file that libhdf5 does not make, run before h5py reads what they guard.

- **Global heap collections** hold the variable-length strings of a Keras
  file (layer and weight names, configs). libhdf5 (2.0 included) loops
  forever on a collection whose object sizes do not tile it, the first time
  any string in it is read. :func:`check_global_heaps` walks every
  collection (found by its ``GCOL`` signature outside the datasets' data)
  before a single attribute is read.
- **Storage outside the file**: a file is read only from its own bytes.
  :func:`check_storage` walks every dataset and link of the file (not only
  those weightshare reads: a rewrite's output would still reference the
  others) and refuses, naming its path, a dataset whose data is stored in
  another file (HDF5 external storage, ``external=`` in h5py: its declared
  size is not stored bytes), a virtual dataset (its data is mapped from
  other datasets, possibly in other files), an external link and a
  user-defined link. libhdf5 would follow each of them, reading another
  file as weights and writing a rewrite's values into it (a relative name
  is resolved against the current folder). Keras never writes any of them.
  Soft links stay: they name objects inside the file, which the walk
  reaches through hard links. The signatures are found with NumPy
  (no Python call per byte or per signature); at most
  :data:`MAX_HEAP_OBJECTS` collections and objects are walked in all, more
  is refused, so that no file can make the walk long.
- **Datasets**: :func:`check_dataset` refuses a dataset that lives in another
  file (as above, checked again for the datasets that are read), whose
  shape claims far more bytes than it stores (a forged shape or a
  decompression bomb must not allocate gigabytes), that claims to store
  more bytes than the file holds (a forged chunk index), or whose data runs
  past the end of the file. Every array weightshare allocates for a dataset
  is sized by its shape, so these bounds come before any read. The chunk
  index of every chunked dataset in the file is checked at open as well
  (:func:`check_storage`): libhdf5 allocates what a chunk claims, and
  crashes copying a chunk that lies past the end of the file.
- :func:`check_local` is the storage check of one dataset; the writers call
  it again on the dataset they write, right before writing.
- :func:`raw_place` tells where a contiguous, unfiltered dataset's bytes are,
  so that a rewrite can patch them with plain file writes instead of opening
  a damaged file for writing with libhdf5.
"""

import io
import mmap
import struct

import h5py
import numpy as np

from ._npy import check_expansion
from ..errors import FileFormatError
from ._common import MemberWindow

__all__ = ["raw_place", "check_dataset", "check_local", "check_storage", "check_global_heaps",
           "walk_datasets", "MAX_DEPTH", "MAX_HEAP_OBJECTS"]

_SIGNATURE = int.from_bytes(b"GCOL", "little")
_BLOCK = 1 << 20
#: H5HG_SIZEOF_HDR and H5HG_SIZEOF_OBJHDR: a collection's header and an object's header are
#: both 16 bytes (4 + 1 + 3 + length, and 2 + 2 + 4 + length, aligned to 8) for either length
_HEAD = 16
#: bytes of a collection read at a time while walking it, when the file cannot be mapped
#: (H5HG_MINSIZE, the smallest collection libhdf5 writes)
_WINDOW = 4096
#: global heap collections and objects walked per file at most: a Keras file holds a few
#: thousand strings; more is refused rather than walked
MAX_HEAP_OBJECTS = 1 << 18


def raw_place(ds):
    """(offset, nbytes) of the bytes of a contiguous, unfiltered dataset in its file, or None."""
    dsid = ds.id
    dcpl = dsid.get_create_plist()
    if dcpl.get_layout() != h5py.h5d.CONTIGUOUS or dcpl.get_nfilters() or \
            dcpl.get_external_count():
        return None
    offset = dsid.get_offset()
    if offset is None:
        return None
    return int(offset), int(dsid.get_storage_size())


def check_local(ds, path, where):
    """Refuse the dataset `ds` if its data is not stored inside its own file; its dcpl.

    Looks only at the creation properties: nothing that would open another
    file (the extent of a virtual dataset with unlimited mappings is read
    from its sources) is asked before the refusal.
    """
    dcpl = ds.id.get_create_plist()
    if dcpl.get_layout() == h5py.h5d.VIRTUAL:
        raise FileFormatError(path, "is a virtual dataset (its data is mapped from other "
                                    "datasets, possibly in other files), which weightshare "
                                    "never reads or writes", where)
    if dcpl.get_external_count():
        raise FileFormatError(path, "stores its data outside the file (HDF5 external storage), "
                                    "which weightshare never reads or writes", where)
    return dcpl


def check_storage(h5, path, where=None, size=None):
    """Refuse, anywhere in the open file `h5`, data stored outside it (see the module doc).

    `where` is the zip member holding the file, or None. With `size` (the
    file's bytes), a chunked dataset whose chunk index claims more bytes
    than that, or a chunk past the end, is refused too: libhdf5 allocates a
    chunk's claimed size to read it, also when it copies a dataset
    weightshare never reads. Run before anything else reads the datasets.
    """
    prefix = where + ":" if where else ""
    for ds in walk_datasets(h5, path, prefix):
        dcpl = check_local(ds, path, prefix + ds.name)
        if size is not None and dcpl.get_layout() == h5py.h5d.CHUNKED:
            _check_stored(ds, path, prefix + ds.name, size)
            _check_chunks(ds, path, prefix + ds.name, size)


def _check_stored(ds, path, where, file_size):
    stored = int(ds.id.get_storage_size())
    if stored > file_size:
        raise FileFormatError(path, f"claims to store {stored} bytes of data in a file of "
                                    f"{file_size} bytes: damaged or forged", where)


class _PastEnd(Exception):
    pass


def _check_chunks(ds, path, where, file_size):
    """Refuse a chunk that the index places (partly) past the end of the file.

    libhdf5 allocates the size a chunk claims before reading it, and copying
    such a chunk (``H5Ocopy``, as removal does for datasets it does not
    change) frees a buffer twice when the read fails: a crash. One call per
    stored chunk (``H5Dchunk_iter``, h5py >= 3.8; skipped before).
    """
    iterate = getattr(ds.id, "chunk_iter", None)
    if iterate is None:  # pragma: no cover - older h5py
        return

    def visit(info):
        if info.byte_offset + info.size > file_size:
            raise _PastEnd(info.byte_offset, info.size)
    try:
        iterate(visit)
    except _PastEnd as exc:
        offset, nbytes = exc.args
        raise FileFormatError(path, f"has a chunk of {nbytes} bytes at byte {offset}, past the "
                                    f"end of the file ({file_size} bytes): truncated, damaged or "
                                    "forged", where) from None


def check_dataset(ds, h5, path, where, file_size):
    """Refuse a dataset that is elsewhere, claims more than it stores, or runs past the end."""
    if h5py.h5i.get_file_id(ds.id) != h5.id:
        raise FileFormatError(path, "is an external link to a dataset in another file, which "
                                    "weightshare never follows", where)
    check_local(ds, path, where)
    nbytes = int(ds.size) * ds.dtype.itemsize
    stored = int(ds.id.get_storage_size())     # as the file says: the file holds at most its size
    check_expansion(nbytes, min(stored, file_size), path, where,
                    what=f"has shape {tuple(ds.shape)} of {ds.dtype}, which claims")
    place = raw_place(ds)
    if place is not None and place[0] + min(place[1], nbytes) > file_size:
        raise FileFormatError(path, f"its data (bytes {place[0]} to {place[0] + place[1]}) runs "
                                    f"past the end of the file ({file_size} bytes): truncated or "
                                    "damaged", where)
    _check_stored(ds, path, where, file_size)


#: deeper group nesting is refused (Keras nests a few levels; libhdf5's own
#: visit builds every path and takes minutes on thousands of levels)
MAX_DEPTH = 64


def walk_datasets(h5, path, where=None):
    """Every dataset under the group `h5`, each once, through hard links only.

    An explicit walk (not ``visititems``): each object is visited once (hard
    links to a parent do not loop), and nesting deeper than
    :data:`MAX_DEPTH` is refused naming the group. Soft links are not
    followed (their targets are inside the file, reached through hard
    links); an external or user-defined link is refused naming it, never
    followed. `where` prefixes the paths in errors.
    """
    where = where or ""
    seen = {hash(h5.id)}
    stack = [(h5, 0)]
    while stack:
        group, depth = stack.pop()
        for bname in group.id:
            kind = group.id.links.get_info(bname).type
            if kind == h5py.h5l.TYPE_SOFT:
                continue
            if kind != h5py.h5l.TYPE_HARD:
                what = "an external link (to another file)" if kind == h5py.h5l.TYPE_EXTERNAL \
                    else "a user-defined link"
                raise FileFormatError(path, f"is {what}, which weightshare never follows",
                                      where + group.name.rstrip("/") + "/" +
                                      bname.decode("utf-8", "replace"))
            obj = _wrap(h5py.h5o.open(group.id, bname))
            key = hash(obj.id)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(obj, h5py.Dataset):
                yield obj
            elif isinstance(obj, h5py.Group):
                if depth + 1 > MAX_DEPTH:
                    raise FileFormatError(path, f"has groups nested more than {MAX_DEPTH} "
                                                "levels deep (not a Keras file)", where + obj.name)
                stack.append((obj, depth + 1))


def _wrap(oid):
    """The h5py object of an opened id (a committed datatype is neither group nor dataset)."""
    if isinstance(oid, h5py.h5d.DatasetID):
        return h5py.Dataset(oid)
    if isinstance(oid, h5py.h5g.GroupID):
        return h5py.Group(oid)
    return h5py.Datatype(oid)


def _data_ranges(h5, path, where):
    out = []
    for obj in walk_datasets(h5, path, where):
        place = raw_place(obj)
        if place is not None and place[1]:
            out.append(place)
    return sorted(out)


def _gaps(ranges, size):
    pos = 0
    for offset, nbytes in ranges:
        if offset > pos:
            yield pos, min(offset, size)
        pos = max(pos, offset + nbytes)
    if pos < size:
        yield pos, size


class _Bytes:
    """The `size` bytes of the file object `f`, read without a copy or a system call if possible.

    A memory map of the file (of the whole zip for a member read in place),
    or the buffer of a BytesIO: slices are views. Anything else (or a file
    that cannot be mapped) is read with seek and read. Close it after use.
    """

    def __init__(self, f, size):
        self._f, self._size, self._map, self._mem, self._base = f, size, None, None, 0
        try:
            if isinstance(f, io.BytesIO):
                self._mem = f.getbuffer()
            else:
                raw = f
                if isinstance(f, MemberWindow):
                    raw, self._base, _ = f.region
                self._map = mmap.mmap(raw.fileno(), 0, access=mmap.ACCESS_READ)
                self._mem = memoryview(self._map)
        except (OSError, ValueError, AttributeError, BufferError):
            self.close()

    @property
    def mapped(self):
        """True if :meth:`read` returns views (then a read of any length is free)."""
        return self._mem is not None

    def read(self, offset, n):
        """Up to `n` bytes at `offset` (fewer at the end): bytes or a memoryview."""
        n = max(0, min(n, self._size - offset))
        if self._mem is None:
            self._f.seek(offset)
            return self._f.read(n)
        start = self._base + offset
        return self._mem[start:start + n]

    def close(self):
        mem, amap, self._mem, self._map = self._mem, self._map, None, None
        if mem is not None:
            mem.release()
        if amap is not None:
            try:
                amap.close()
            except BufferError:         # a view is still alive: unmapped when it goes
                pass


def _collections(block, n, size, base, length_size):
    """(starts, sizes) of the collections whose header begins in ``block[:n]`` (at file offset
    `base`): the ``GCOL`` signature, version 1 (libhdf5 refuses any other) and a size that
    keeps the collection within the `size` bytes of the file (libhdf5 refuses it otherwise).

    Found with NumPy, four alignments of a uint32 view: no Python call per byte or per hit.
    """
    if len(block) < _HEAD:
        return ()
    hits = []
    for a in range(4):
        u32 = np.frombuffer(block, "<u4", count=(len(block) - a) // 4, offset=a)
        found = np.flatnonzero((u32[:-1] == _SIGNATURE) & ((u32[1:] & 0xFF) == 1))
        if found.size:
            hits.append(found * 4 + a)
    if not hits:
        return ()
    at = np.concatenate(hits)
    at = at[(at < n) & (at + _HEAD <= len(block))]        # a header cut by the file's end: skip
    u8 = np.frombuffer(block, np.uint8)
    fields = u8[at[:, None] + np.arange(8, 8 + length_size)]
    csize = np.ascontiguousarray(fields).view("<u8" if length_size == 8 else "<u4").ravel()
    starts = at.astype(np.int64) + base
    keep = (csize > _HEAD) & (csize.astype(np.uint64) <= (size - starts).astype(np.uint64))
    return zip(starts[keep].tolist(), csize[keep].tolist())


def _too_many(path, where):
    return FileFormatError(path, f"has more than {MAX_HEAP_OBJECTS} global heap collections and "
                                 "objects (the strings of its attributes), or bytes that look "
                                 "like them: not a Keras file, or a crafted one", where)


def _walk(data, start, csize, fmt, budget, path, where):
    """Walk the objects of the collection at `start` as libhdf5 does; the number walked.

    Raises FileFormatError when an object does not end inside the collection
    (libhdf5 would loop forever or read past it), or after `budget` objects.
    """
    end = start + csize
    pos = start + _HEAD
    window = csize if data.mapped else _WINDOW     # a view of the whole collection costs nothing
    base, buf = pos, b""
    walked, problem = 0, None
    while end - pos >= _HEAD:       # a tail too small for an object header is free space
        if pos + _HEAD > base + len(buf):
            base, buf = pos, data.read(pos, min(window, end - pos))
            if len(buf) < _HEAD:
                break
        index, obj_size = struct.unpack_from(fmt, buf, pos - base)
        need = _HEAD + ((obj_size + 7) & ~7) if index else obj_size
        if need <= 0 or need > end - pos:
            problem = FileFormatError(path, f"has a damaged global heap (the strings of its "
                                            f"attributes) at byte {start}: object {index} claims "
                                            f"{obj_size} bytes", where)
            break
        pos += need
        walked += 1
        if walked > budget:
            problem = _too_many(path, where)
            break
    del buf                         # no view of the file outlives the walk (_Bytes.close)
    if problem is not None:
        raise problem
    return walked


def check_global_heaps(h5, f, size, path, where=None):
    """Walk every global heap collection of the open file `h5` (bytes readable from `f`).

    Parameters
    ----------
    h5 : h5py.File
        Open, nothing read from it yet but its structure.
    f : file object
        The same bytes, seekable (the file, or the zip member).
    size : int
        Bytes in `f`.
    path, where : str
        For the error: the file, and the zip member.
    """
    length_size = h5.id.get_create_plist().get_sizes()[1]
    if length_size not in (4, 8):
        return
    fmt = "<H6xQ" if length_size == 8 else "<H6xI"
    gaps = list(_gaps(_data_ranges(h5, path, where and where + ":"), size))
    data = _Bytes(f, size)
    try:
        budget = MAX_HEAP_OBJECTS
        for lo, hi in gaps:
            for pos in range(lo, hi, _BLOCK):
                n = min(_BLOCK, hi - pos)
                block = data.read(pos, n + _HEAD - 1)     # a header may straddle two blocks
                found = _collections(block, n, size, pos, length_size)
                del block
                for start, csize in found:
                    budget -= 1
                    if budget < 0:
                        raise _too_many(path, where)
                    budget -= _walk(data, start, csize, fmt, budget, path, where)
    finally:
        data.close()
