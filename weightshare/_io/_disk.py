"""What the bytes of a weights file hold: weights, optimizer state, config, and the rest.

:func:`disk_parts` splits the size of a file opened by
:func:`~weightshare._io._reader.open_weights` into four parts that add up to
the file's size:

- ``weights``: the bytes that hold the values of every tensor that is not
  optimizer state, as stored (an HDF5 dataset's allocated storage: its
  deflated chunks when it is compressed; a safetensors tensor's byte range;
  a ``.npy`` array's data; a ``.npz`` member's array data, or the member's
  compressed bytes when it is deflated);
- ``optimizer``: the stored bytes of the datasets that ``strip`` leaves out
  (:func:`~weightshare._io._strip.strip_plan`: ``optimizer`` and tf-keras'
  ``metrics`` groups, a legacy ``.h5``'s ``optimizer_weights``);
- ``config``: the model's config and metadata: the ``config.json`` and
  ``metadata.json`` members of a ``.keras`` zip as stored, the root
  attributes ``model_config``, ``training_config``, ``keras_version`` and
  ``backend`` of a legacy ``.h5`` (their values' bytes); 0 for NumPy and
  safetensors files;
- ``overhead``: the rest (HDF5 superblock, object headers, heaps, B-trees and
  free space; zip headers and directory; the ``.npy`` headers; a safetensors
  JSON header). It is negative only for a ``.keras`` whose weights member is
  deflated in the zip (Keras never writes one): the parts then count the
  member's bytes before the zip's compression.

Nothing is read but names, shapes and sizes (no tensor values).
"""

import os
import zipfile

import h5py
import numpy as np

from ..errors import FileFormatError
from ._container import CONFIG_MEMBER, METADATA_MEMBER
from ._h5check import walk_datasets
from ._strip import STRIP_FORMATS, strip_plan

__all__ = ["disk_parts", "CONFIG_ATTRS"]

#: root attributes of a legacy ``.h5`` counted as config/metadata
CONFIG_ATTRS = ("model_config", "training_config", "keras_version", "backend")


def disk_parts(wf):
    """{"size", "files", "weights", "optimizer", "config", "overhead"} (bytes) of the open `wf`."""
    if wf.fmt in ("safetensors", "safetensors_sharded"):
        size = sum(int(s.size) for s in wf.shards)
        weights = sum(e.end - e.begin for s in wf.shards for e in s.entries.values())
        return _parts(size, len(wf.shards), weights, 0, 0)
    size = os.path.getsize(wf.path)
    if wf.fmt == "npy":
        return _parts(size, 1, _nbytes(wf.records[0]), 0, 0)
    if wf.fmt == "npz":
        by_key = {r.location: r for r in wf.records}
        weights = 0
        for info in wf.zip_infos:
            record = by_key.get(info.filename[:-4])
            if record is not None:
                weights += _nbytes(record) if info.compress_type == zipfile.ZIP_STORED \
                    else int(info.compress_size)
        return _parts(size, 1, weights, 0, 0)
    try:
        return _h5_parts(wf, size)
    except FileFormatError:
        raise
    except (OSError, KeyError, ValueError, TypeError, RuntimeError) as exc:
        # what libhdf5 finds damaged only now (an attribute's heap object, say)
        wf.fail(f"cannot read ({type(exc).__name__}: {' '.join(str(exc).split())})")


def _nbytes(record):
    n = 1
    for d in record.shape:
        n *= int(d)
    return n * _itemsize(record.dtype)


def _itemsize(dtype):
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _parts(size, files, weights, optimizer, config):
    return {"size": int(size), "files": int(files), "weights": int(weights),
            "optimizer": int(optimizer), "config": int(config),
            "overhead": int(size - weights - optimizer - config)}


def _h5_parts(wf, size):
    h5 = wf.h5
    where = "model.weights.h5:" if wf.fmt == "keras_zip" else ""
    drop = strip_plan(wf).drop if wf.fmt in STRIP_FORMATS else ()
    optimizer = sum(_stored(ds) for p in drop for ds in walk_datasets(h5[p], wf.path, where))
    weights = sum(_stored(ds) for ds in walk_datasets(h5["/"], wf.path, where)) - optimizer
    if wf.fmt == "keras_zip":
        config = sum(int(i.compress_size) for i in wf._zip.infolist()
                     if i.filename in (CONFIG_MEMBER, METADATA_MEMBER))
    else:
        config = sum(_attr_bytes(h5, name) for name in CONFIG_ATTRS if name in h5.attrs)
    return _parts(size, 1, weights, optimizer, config)


def _stored(ds):
    """The bytes the file allocates for the values of `ds` (deflated chunks: their size)."""
    return int(ds.id.get_storage_size())


def _attr_bytes(h5, name):
    """The bytes of a root attribute's value (a string: its encoded length)."""
    aid = h5py.h5a.open(h5.id, name.encode("utf-8"))
    tid = aid.get_type()
    if isinstance(tid, h5py.h5t.TypeStringID) and not tid.is_variable_str():
        return int(tid.get_size()) * max(1, int(aid.get_space().get_simple_extent_npoints()))
    value = h5.attrs[name]
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value.encode("utf-8", "surrogateescape"))   # the bytes stored
    return int(getattr(value, "nbytes", 0))
