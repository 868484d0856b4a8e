"""Checks of an HDF5 file that libhdf5 does not make, run before h5py reads what they guard.

- **Global heap collections** hold the variable-length strings of a Keras
  file (layer and weight names, configs). libhdf5 (2.0 included) loops
  forever on a collection whose object sizes do not tile it, the first time
  any string in it is read. :func:`check_global_heaps` walks every
  collection (found by its ``GCOL`` signature outside the datasets' data)
  before a single attribute is read.
- **Datasets**: :func:`check_dataset` refuses a dataset that lives in another
  file (an external link: a rewrite would write there), whose shape claims
  far more bytes than it stores (a forged shape or a decompression bomb must
  not allocate gigabytes), or whose data runs past the end of the file.
- :func:`raw_place` tells where a contiguous, unfiltered dataset's bytes are,
  so that a rewrite can patch them with plain file writes instead of opening
  a damaged file for writing with libhdf5.
"""

import struct

import h5py

from ._npy import check_expansion
from ..errors import FileFormatError

__all__ = ["raw_place", "check_dataset", "check_global_heaps", "walk_datasets", "MAX_DEPTH"]

_SIGNATURE = b"GCOL"
_BLOCK = 1 << 20


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


def check_dataset(ds, h5, path, where, file_size):
    """Refuse a dataset that is elsewhere, claims more than it stores, or runs past the end."""
    if h5py.h5i.get_file_id(ds.id) != h5.id:
        raise FileFormatError(path, "is an external link to a dataset in another file, which "
                                    "weightshare does not follow", where)
    nbytes = int(ds.size) * ds.dtype.itemsize
    check_expansion(nbytes, ds.id.get_storage_size(), path, where,
                    what=f"has shape {tuple(ds.shape)} of {ds.dtype}, which")
    place = raw_place(ds)
    if place is not None and place[0] + min(place[1], nbytes) > file_size:
        raise FileFormatError(path, f"its data (bytes {place[0]} to {place[0] + place[1]}) runs "
                                    f"past the end of the file ({file_size} bytes): truncated or "
                                    "damaged", where)


#: deeper group nesting is refused (Keras nests a few levels; libhdf5's own
#: visit builds every path and takes minutes on thousands of levels)
MAX_DEPTH = 64


def walk_datasets(h5, path, where=None):
    """Every dataset under the group `h5`, each once, without following external links.

    An explicit walk (not ``visititems``): each object is visited once (hard
    links and soft links to a parent do not loop), and nesting deeper than
    :data:`MAX_DEPTH` is refused naming the group.
    """
    seen = {hash(h5.id)}
    stack = [(h5, 0)]
    while stack:
        group, depth = stack.pop()
        for name in group:
            link = group.get(name, getlink=True)
            if isinstance(link, h5py.ExternalLink):
                continue
            obj = group.get(name)
            if obj is None:                 # a dangling soft link
                continue
            key = hash(obj.id)
            if key in seen:
                continue
            seen.add(key)
            if isinstance(obj, h5py.Dataset):
                yield obj
            elif isinstance(obj, h5py.Group):
                if depth + 1 > MAX_DEPTH:
                    raise FileFormatError(path, f"has groups nested more than {MAX_DEPTH} "
                                                "levels deep (not a Keras file)",
                                          (where or "") + obj.name)
                stack.append((obj, depth + 1))


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


def _read(f, offset, n):
    f.seek(offset)
    return f.read(n)


def _check_collection(f, start, size, length_size, path, where):
    head = _read(f, start, 8 + length_size)
    if len(head) < 8 + length_size or head[4] != 1:
        return                  # not a collection libhdf5 would parse (it refuses it itself)
    fmt = "<Q" if length_size == 8 else "<I"
    csize = struct.unpack(fmt, head[8:])[0]
    end = start + csize
    if end > size:
        return                  # libhdf5 refuses a collection past the end of the file
    obj_head = 8 + length_size  # index (2), reference count (2), reserved (4), size
    pos = start + 8 + length_size
    while pos < end:
        if pos + obj_head > end:
            break               # a tail too small for an object: free space
        raw = _read(f, pos, obj_head)
        if len(raw) < obj_head:
            break
        index = struct.unpack("<H", raw[:2])[0]
        obj_size = struct.unpack(fmt, raw[8:])[0]
        need = obj_head + ((obj_size + 7) & ~7) if index else obj_size
        if need <= 0 or need > end - pos:
            raise FileFormatError(path, f"has a damaged global heap (the strings of its "
                                        f"attributes) at byte {start}: object {index} claims "
                                        f"{obj_size} bytes", where)
        pos += need


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
    for lo, hi in _gaps(_data_ranges(h5, path, where and where + ":"), size):
        pos = lo
        while pos < hi:
            block = _read(f, pos, min(_BLOCK, hi - pos) + 3)
            if not block:
                break
            i = block.find(_SIGNATURE)
            while 0 <= i and pos + i < hi:
                _check_collection(f, pos + i, size, length_size, path, where)
                i = block.find(_SIGNATURE, i + 1)
            pos += _BLOCK
