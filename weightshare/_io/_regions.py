"""Where a model file keeps its tensor bytes: the regions ``pack`` encodes.

:func:`tensor_regions` opens a file with the readers (every container check
of :func:`~weightshare._io._reader.open_weights`: a file is read only from
its own bytes; see :class:`_Layout`) and lists the byte ranges of the file
that hold float data stored as plain little- or big-endian items, by format:

- HDF5 (``.weights.h5``, legacy ``.h5``, and a ``.keras`` zip's
  ``model.weights.h5`` when the zip stores it, as Keras does): every
  floating-point dataset (bfloat16's opaque ``|V2`` included), contiguous
  (``H5Dget_offset``) or chunked (each chunk, ``H5Dchunk_iter``), without
  filters; compact and filtered (deflated) datasets stay in the skeleton;
- safetensors: the ``F16``, ``BF16``, ``F32`` and ``F64`` tensors;
- ``.npy``, and an ``.npz``'s stored (not deflated) members: the float array.

The regions are only where to look: whatever they cover, ``pack`` stores
those bytes losslessly and checks the rebuilt file before writing, so a
region that is not really a tensor costs compression, never correctness.
"""

import os
import zipfile

import h5py

from .._codec._bf16 import is_bf16_storage
from ..errors import FileFormatError
from ._common import MemberWindow, member_data_offset
from ._container import WEIGHTS_MEMBER
from ._h5check import walk_datasets
from ._npy import read_npy_header
from ._reader import WeightsFile
from ._safetensors import ST_DTYPES, SafetensorsFile, is_safetensors

__all__ = ["tensor_regions"]

_ST_FLOATS = {name: 2 if storage.endswith("2") else int(storage[-1])
              for name, (label, storage) in ST_DTYPES.items()
              if label in ("float16", "bfloat16", "float32", "float64")}


def _itemsize(dtype):
    if dtype.kind == "f" and dtype.itemsize in (2, 4, 8):
        return dtype.itemsize
    if is_bf16_storage(dtype):
        return 2
    return None


def _h5_regions(h5, base, path, where):
    out = []
    for ds in walk_datasets(h5, path, where):
        item = _itemsize(ds.dtype)
        if item is None:
            continue
        dcpl = ds.id.get_create_plist()
        if dcpl.get_nfilters() or dcpl.get_external_count():
            continue
        layout = dcpl.get_layout()
        if layout == h5py.h5d.CONTIGUOUS:
            offset = ds.id.get_offset()
            if offset is not None:
                out.append((base + int(offset), int(ds.id.get_storage_size()), item))
        elif layout == h5py.h5d.CHUNKED and hasattr(ds.id, "chunk_iter"):
            ds.id.chunk_iter(lambda c, item=item: out.append(
                (base + int(c.byte_offset), int(c.size), item)))
    return out


def _npy_region(f, size, base, path, where=None):
    shape, _, dtype = read_npy_header(f, size, path, where)
    item = _itemsize(dtype)
    if item is None or dtype.kind != "f":
        return []
    n = 1
    for d in shape:
        n *= int(d)
    return [(base + f.tell(), n * dtype.itemsize, item)]


def _zip_regions(wf):
    out = []
    for info in wf.zip_infos:
        if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
            continue            # deflated or encrypted: its stored bytes stay in the skeleton
        start = member_data_offset(wf._raw, info)
        if wf.fmt == "keras_zip" and info.filename == WEIGHTS_MEMBER:
            out += _h5_regions(wf.h5, start, wf.path, WEIGHTS_MEMBER + ":")
        elif wf.fmt == "npz":
            window = MemberWindow(wf._raw, start, info.file_size)
            out += _npy_region(window, info.file_size, start, wf.path, info.filename)
    return out


class _Layout(WeightsFile):
    """A Keras file opened with every check of the reader, its format told, its layers not mapped.

    pack needs where the bytes are, not what the layers mean: the container
    checks (zip members, bounded members, HDF5 storage and global heaps,
    .npy headers) all run; the Keras mapping, which costs more than packing,
    does not. So pack takes every file the reader takes (and Keras files
    whose layers the reader cannot name).
    """

    def _map_store(self, h5):
        pass

    def _map_legacy(self, root, where):
        pass


def _open(path):
    if is_safetensors(path):
        from ._reader import WeightInfo
        return SafetensorsFile.open(path, WeightInfo)
    return _Layout.open(path)


def tensor_regions(path):
    """(format, regions) of the model file `path`: regions as ``(offset, length, itemsize)``.

    Unsorted, possibly overlapping or past the end in a damaged file: the
    caller cuts them (:func:`weightshare._jobs._wsz.cut`).

    Raises FileFormatError for anything :func:`open_weights` refuses, for a
    folder, and for a sharded safetensors checkpoint (a folder of files).
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise FileFormatError(path, "is a folder; pack packs one file (pack each .safetensors "
                                    "file of a sharded checkpoint on its own)")
    size = os.path.getsize(path) if os.path.isfile(path) else 0
    with _open(path) as wf:
        fmt = wf.fmt
        if fmt == "safetensors_sharded":
            raise FileFormatError(path, "is the index of a sharded safetensors checkpoint; pack "
                                        "packs one file: pack each .safetensors shard on its own")
        if fmt == "safetensors":
            shard = wf.shards[0]
            regions = [(shard.data_start + e.begin, e.end - e.begin, _ST_FLOATS[e.st_dtype])
                       for e in shard.entries.values() if e.st_dtype in _ST_FLOATS]
        elif fmt == "npy":
            with open(path, "rb") as f:
                regions = _npy_region(f, size, 0, path)
        elif wf.zip_infos is not None:
            regions = _zip_regions(wf)
        else:
            regions = _h5_regions(wf.h5, 0, path, "")
    return fmt, regions
