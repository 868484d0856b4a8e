"""The rebuild writer: a fresh HDF5 (or ``.keras`` zip) with some datasets re-shaped.

Shape changes cannot be done in place (HDF5 does not reclaim the space of a
deleted dataset), so the output is written from scratch:

- every group and attribute is re-created with its exact HDF5 type (the
  low-level ``h5a`` API: the attribute's own type and dataspace), because
  h5py's high-level copy turns vlen-ASCII strings into vlen UTF-8;
- untouched datasets and whole untouched subtrees are copied with
  ``H5Ocopy`` (``Group.copy``), which keeps dtype, layout, filters and
  attributes;
- changed datasets are re-created with the source's own HDF5 type and
  creation property list (chunks clipped to the new shape, filters, fill
  value), then their attributes are copied;
- a ``.keras`` zip is re-written member by member, in the same order, with a
  copy of each ``ZipInfo`` (name, date, compression, permissions, system);
- nothing is written outside the output: the source is checked again for
  data stored in other files (external storage, virtual datasets, external
  links: :func:`~weightshare._io._h5check.check_storage`; the reader refused
  them already), and each dataset again right before it is copied or
  re-created (re-creating one with its creation properties would write into
  its external file);
- with ``compress``, every floating-point dataset (float16/32/64 and the
  2-byte opaque bfloat16) that has at least one entry is re-created chunked
  (:func:`chunk_shape`: at most :data:`CHUNK_BYTES` a chunk) with HDF5's
  deflate filter at level :data:`DEFLATE_LEVEL` and no shuffle (on clustered
  float32 the shuffle filter makes the output larger: docs/files.md); each
  one is checked (:func:`~weightshare._io._h5check.check_dataset`: stored
  in the file, no more bytes claimed than stored) before it is read. The
  file is then written with the HDF5 1.10 format as the lower bound, whose
  single-chunk index costs a few bytes where the 1.8 chunk B-tree costs
  about 2 KiB per dataset (readable by HDF5 >= 1.10, h5py >= 2.8), and
  without HDF5's file-space aggregation (``fs_strategy="none"``): every
  object is placed at the end of the file as it is written, where the
  default aggregator hands out metadata in 2 KiB blocks and leaves their
  unused tails in the file.

:func:`atomic_output` gives a temporary path in the destination folder that
replaces the destination with ``os.replace`` only on success and is removed
on any failure.
"""

import zipfile
import zlib

import h5py
import numpy as np

from ._atomic import atomic_output, temp_file  # noqa: F401 (re-exported)
from ._h5check import check_dataset, check_local, check_storage
from ._zip import write_zip  # noqa: F401 (re-exported)
from ..errors import FileFormatError, printable

__all__ = ["rebuild_h5", "write_zip", "atomic_output", "temp_file", "copy_attrs", "WRITE_ERRORS",
           "chunk_shape", "compressible", "CHUNK_BYTES", "DEFLATE_LEVEL"]

#: what writing a rebuilt file may raise besides FileFormatError (a damaged
#: source or a full disk), for the caller to report naming the file
WRITE_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile)

#: the largest chunk of a compressed dataset, in bytes (deflate's window is 32 KiB: larger
#: chunks gain little, and a reader decompresses a whole chunk to read any entry of it)
CHUNK_BYTES = 1 << 20
#: the deflate (gzip) level of compressed datasets
DEFLATE_LEVEL = 9
#: a dataset of at most this many bytes is kept contiguous unless deflating it saves more
#: than the filter message and chunk index cost (about _FILTER_COST bytes of header)
_SMALL = 4096
_FILTER_COST = 64



# --------------------------------------------------------------------------- attributes
def copy_attrs(src, dst, overrides=None, skip=(), origin=None):
    """Copy every attribute of `src` onto `dst` with its exact HDF5 type and dataspace.

    `overrides` maps attribute names to a new ``str`` value, written with the
    original string type (vlen ASCII stays vlen ASCII; a fixed-length type is
    widened to fit). Attributes named in `skip` are left out. `origin` is
    (file, error prefix): an attribute libhdf5 cannot read (a damaged heap
    object, say) is refused naming that file, not the copy being read.
    """
    overrides = overrides or {}
    for name in src.attrs:
        if name in skip:
            continue
        bname = name.encode("utf-8")
        aid = h5py.h5a.open(src.id, bname)
        tid, sid = aid.get_type(), aid.get_space()
        if name in overrides:
            _write_str_attr(dst, bname, tid, sid, overrides[name], src)
            continue
        new = h5py.h5a.create(dst.id, bname, tid, sid)
        if sid.get_simple_extent_type() == h5py.h5s.NULL:
            continue
        buf = np.empty(aid.shape, dtype=aid.dtype)
        try:
            aid.read(buf)
        except (OSError, ValueError, TypeError) as exc:
            file, prefix = origin or (src.file.filename, "")
            raise FileFormatError(file, f"cannot read the attribute {printable(name)!r} "
                                        f"({type(exc).__name__}: {' '.join(str(exc).split())})",
                                  f"{prefix}{src.name}") from None
        new.write(buf)


def _write_str_attr(dst, bname, tid, sid, value, src):
    if not isinstance(tid, h5py.h5t.TypeStringID) or sid.get_simple_extent_type() != h5py.h5s.SCALAR:
        raise FileFormatError(src.file.filename, "cannot rewrite a non-string attribute",
                              f"{src.name}@{bname.decode()}")
    data = value.encode("utf-8")
    if tid.is_variable_str():
        new = h5py.h5a.create(dst.id, bname, tid, sid)
        new.write(np.array(data, dtype=h5py.string_dtype(
            "utf-8" if tid.get_cset() == h5py.h5t.CSET_UTF8 else "ascii")))
        return
    ftype = tid.copy()
    ftype.set_size(max(1, len(data)))
    new = h5py.h5a.create(dst.id, bname, ftype, sid)
    new.write(np.array(data, dtype=f"S{max(1, len(data))}"))


# --------------------------------------------------------------------------- datasets
def _recreate(src_ds, dst_group, name, data, scratch, origin):
    """Re-create `src_ds` as `dst_group[name]` holding `data` (same HDF5 type and properties).

    The dataset is built in the in-memory `scratch` file and then copied with
    ``H5Ocopy``, which writes a compact object header (a dataset created in
    place keeps a header with room to spare, so the file would grow).
    `origin` is (file, error prefix) for errors.
    """
    check_local(src_ds, origin[0], origin[1] + src_ds.name)   # its properties would write there
    sid = src_ds.id
    tid = sid.get_type()
    dcpl = sid.get_create_plist()
    dcpl.set_obj_track_times(_tracks_times(src_ds))
    shape = tuple(int(d) for d in data.shape)
    if dcpl.get_layout() == h5py.h5d.CHUNKED:
        chunks = dcpl.get_chunk()
        dcpl.set_chunk(tuple(max(1, min(int(c), max(d, 1))) for c, d in zip(chunks, shape)))
    elif dcpl.get_layout() not in (h5py.h5d.CONTIGUOUS, h5py.h5d.COMPACT):
        raise FileFormatError(src_ds.file.filename, "has a storage layout removal cannot re-create",
                              src_ds.name)
    if shape == ():
        space = h5py.h5s.create(h5py.h5s.SCALAR)
    else:
        old_max = sid.get_space().get_simple_extent_dims(True)
        maxshape = tuple(h5py.h5s.UNLIMITED if m == h5py.h5s.UNLIMITED else d
                         for m, d in zip(old_max, shape))
        space = h5py.h5s.create_simple(shape, maxshape)
    new = h5py.h5d.create(scratch.id, b"x", tid, space, dcpl=dcpl)
    arr = np.ascontiguousarray(data)
    if arr.size:
        new.write(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=tid)
    built = h5py.Dataset(new)
    copy_attrs(src_ds, built, origin=origin)
    scratch.copy(built, dst_group, name=name)
    del scratch["x"]


def compressible(ds):
    """Whether `compress` re-creates the dataset `ds` deflated: floating point, one entry or more."""
    dt = ds.dtype
    floating = dt.kind == "f" or (dt.kind == "V" and dt.itemsize == 2 and dt.fields is None)
    return floating and len(ds.shape) > 0 and int(ds.size) > 0


def chunk_shape(shape, itemsize, limit=CHUNK_BYTES):
    """The chunk of a compressed dataset: the whole `shape` when it fits `limit` bytes, else
    slabs along the leading axes (a row that alone exceeds `limit` is split along the next axis).

    >>> chunk_shape((64, 64), 4)
    (64, 64)
    >>> chunk_shape((1000, 1000), 4)
    (262, 1000)
    >>> chunk_shape((2, 1 << 20), 4)
    (1, 262144)
    """
    chunk = [max(1, int(d)) for d in shape]
    for i in range(len(chunk)):
        rest = itemsize
        for d in chunk[i + 1:]:
            rest *= d
        if rest * chunk[i] <= limit:
            break
        chunk[i] = max(1, min(chunk[i], limit // rest))
        if rest <= limit:
            break
    return tuple(chunk)


def _recreate_deflated(src_ds, dst_group, name, origin, size, data=None):
    """Re-create `src_ds` as `dst_group[name]`, same HDF5 type and attributes, deflated; its
    values, or `data` (new contents of the source's dtype, e.g. sliced by a removal)."""
    where = origin[1] + src_ds.name
    check_dataset(src_ds, src_ds.file, origin[0], where, size)
    sid = src_ds.id
    tid = sid.get_type()
    shape = tuple(int(d) for d in (src_ds.shape if data is None else data.shape))
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_obj_track_times(_tracks_times(src_ds))
    dcpl.set_chunk(chunk_shape(shape, tid.get_size()))
    dcpl.set_deflate(DEFLATE_LEVEL)
    space = h5py.h5s.create_simple(shape, shape)
    if data is None:
        arr = np.empty(shape, dtype=src_ds.dtype)
        sid.read(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=tid)
    else:
        arr = np.ascontiguousarray(data)
    if arr.nbytes <= _SMALL and len(zlib.compress(arr.tobytes(), DEFLATE_LEVEL)) + \
            _FILTER_COST >= arr.nbytes:
        return False
    # created in place: H5Ocopy of a chunked dataset leaves the uncompressed size as dead space
    new = h5py.h5d.create(dst_group.id, name.encode("utf-8"), tid, space, dcpl=dcpl)
    new.write(h5py.h5s.ALL, h5py.h5s.ALL, arr, mtype=tid)
    del arr
    copy_attrs(src_ds, h5py.Dataset(new), origin=origin)
    return True


def _tracks_times(ds):
    info = h5py.h5o.get_info(ds.id)
    return bool(info.mtime or info.atime or info.ctime or info.btime)


def _needs_walk(path, paths):
    prefix = path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in paths)


def rebuild_h5(src, dst_path, data=None, drop=(), attrs=None, *, path=None, where=None,
               drop_attrs=None, compress=False, size=None):
    """Write a fresh HDF5 file `dst_path` from the open h5py file `src`.

    Parameters
    ----------
    src : h5py.File
    dst_path : str
    data : dict of str to ndarray
        Absolute dataset path -> new content (same dtype as the source).
    drop : iterable of str
        Absolute paths of groups or datasets to leave out.
    attrs : dict of str to dict of str to str
        Absolute object path -> {attribute name: new string value}.
    path, where : str, optional
        For errors: the model file (default: `src`'s file name) and the zip
        member holding `src`.
    drop_attrs : dict of str to set of str, optional
        Absolute object path -> names of attributes to leave out.
    compress : bool, default False
        Re-create every floating-point dataset deflated (see the module doc).
    size : int, optional
        The bytes of `src` (required with `compress`): each dataset
        re-created is checked against it before it is read.
    """
    path = path or src.filename
    check_storage(src, path, where, size)
    origin = (path, where + ":" if where else "")
    data = dict(data or {})
    drop = set(drop)
    attrs = dict(attrs or {})
    drop_attrs = dict(drop_attrs or {})
    touched = set(data) | drop | {p for p in attrs if p != "/"} | \
        {p for p in drop_attrs if p != "/"}
    seen = set()
    scratch_name = f"weightshare-scratch-{id(seen)}"
    libver = ("v110", "latest") if compress else None
    # compress: no file-space aggregation (each object written at the end of the file: no
    # half-empty 2 KiB metadata blocks; -1.5 % on the digits model, docs/files.md)
    space = {"fs_strategy": "none"} if compress else {}
    with h5py.File(dst_path, "w", libver=libver, **space) as dst, \
            h5py.File(scratch_name, "w", driver="core", backing_store=False,
                      libver=libver) as scratch:
        _walk(src["/"], dst["/"], "/", (data, drop, attrs, touched, seen, scratch, origin,
                                        drop_attrs, size if compress else None))
    left = set(data) - seen
    if left:  # pragma: no cover - a programming error, never user input
        raise RuntimeError(f"datasets not found: {sorted(left)}")


def _walk(sg, dg, path, job):
    data, drop, attrs, touched, seen, scratch, origin, drop_attrs, deflate = job
    copy_attrs(sg, dg, attrs.get(path), drop_attrs.get(path, ()), origin)
    for name in sg:
        child = f"{path.rstrip('/')}/{name}"
        if child in drop:
            continue
        link = sg.get(name, getlink=True)
        if isinstance(link, h5py.SoftLink):
            dg[name] = h5py.SoftLink(link.path)
            continue
        if isinstance(link, h5py.ExternalLink):
            raise FileFormatError(origin[0], "holds an external link, which removal does "
                                  "not copy", origin[1] + child)
        obj = sg[name]
        if isinstance(obj, h5py.Group):
            if child in attrs or child in drop_attrs or deflate is not None or \
                    _needs_walk(child, touched):
                _walk(obj, dg.create_group(name), child, job)
            else:
                sg.copy(obj, dg, name=name)
        elif isinstance(obj, h5py.Dataset) and child in data:
            new = data[child]
            if not (deflate is not None and compressible(obj) and new.size and
                    _recreate_deflated(obj, dg, name, origin, deflate, new)):
                _recreate(obj, dg, name, new, scratch, origin)
            seen.add(child)
        elif isinstance(obj, h5py.Dataset) and deflate is not None and compressible(obj):
            if not _recreate_deflated(obj, dg, name, origin, deflate):
                sg.copy(obj, dg, name=name)     # too small to gain from deflate
        else:
            if isinstance(obj, h5py.Dataset):   # H5Ocopy keeps a reference to external data
                check_local(obj, origin[0], origin[1] + child)
            sg.copy(obj, dg, name=name)


