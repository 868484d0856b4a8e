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
  its external file).

:func:`atomic_output` gives a temporary path in the destination folder that
replaces the destination with ``os.replace`` only on success and is removed
on any failure.
"""

import zipfile

import h5py
import numpy as np

from ._atomic import atomic_output, temp_file  # noqa: F401 (re-exported)
from ._h5check import check_local, check_storage
from ._zip import write_zip  # noqa: F401 (re-exported)
from ..errors import FileFormatError

__all__ = ["rebuild_h5", "write_zip", "atomic_output", "temp_file", "copy_attrs", "WRITE_ERRORS"]

#: what writing a rebuilt file may raise besides FileFormatError (a damaged
#: source or a full disk), for the caller to report naming the file
WRITE_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, zipfile.BadZipFile)



# --------------------------------------------------------------------------- attributes
def copy_attrs(src, dst, overrides=None):
    """Copy every attribute of `src` onto `dst` with its exact HDF5 type and dataspace.

    `overrides` maps attribute names to a new ``str`` value, written with the
    original string type (vlen ASCII stays vlen ASCII; a fixed-length type is
    widened to fit).
    """
    overrides = overrides or {}
    for name in src.attrs:
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
        aid.read(buf)
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
    copy_attrs(src_ds, built)
    scratch.copy(built, dst_group, name=name)
    del scratch["x"]


def _tracks_times(ds):
    info = h5py.h5o.get_info(ds.id)
    return bool(info.mtime or info.atime or info.ctime or info.btime)


def _needs_walk(path, paths):
    prefix = path.rstrip("/") + "/"
    return any(p.startswith(prefix) for p in paths)


def rebuild_h5(src, dst_path, data=None, drop=(), attrs=None, *, path=None, where=None):
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
    """
    path = path or src.filename
    check_storage(src, path, where)
    origin = (path, where + ":" if where else "")
    data = dict(data or {})
    drop = set(drop)
    attrs = dict(attrs or {})
    touched = set(data) | drop | {p for p in attrs if p != "/"}
    seen = set()
    scratch_name = f"weightshare-scratch-{id(seen)}"
    with h5py.File(dst_path, "w") as dst, \
            h5py.File(scratch_name, "w", driver="core", backing_store=False) as scratch:
        _walk(src["/"], dst["/"], "/", (data, drop, attrs, touched, seen, scratch, origin))
    left = set(data) - seen
    if left:  # pragma: no cover - a programming error, never user input
        raise RuntimeError(f"datasets not found: {sorted(left)}")


def _walk(sg, dg, path, job):
    data, drop, attrs, touched, seen, scratch, origin = job
    copy_attrs(sg, dg, attrs.get(path))
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
            if child in attrs or _needs_walk(child, touched):
                _walk(obj, dg.create_group(name), child, job)
            else:
                sg.copy(obj, dg, name=name)
        elif isinstance(obj, h5py.Dataset) and child in data:
            _recreate(obj, dg, name, data[child], scratch, origin)
            seen.add(child)
        else:
            if isinstance(obj, h5py.Dataset):   # H5Ocopy keeps a reference to external data
                check_local(obj, origin[0], origin[1] + child)
            sg.copy(obj, dg, name=name)


