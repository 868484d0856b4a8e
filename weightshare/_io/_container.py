"""Opening the container of a model file, with the checks both readers need.

The weights reader (:mod:`weightshare._io._reader`) and the model reader of
structured removal (:mod:`weightshare._io._source`) read different things
from a file, but open it the same way: the path must be a regular file, a zip
must have unique members whose local headers agree with its central
directory, the HDF5 weights member must not be a bomb nor run past the end of
the file, an HDF5 file must keep all its data inside itself (no external
storage, virtual dataset or external link anywhere: see
:mod:`weightshare._io._h5check`), and its global heaps are checked before
libhdf5 reads a string from them. Every refusal goes through the caller's ``fail(message,
dataset=None)``, which raises.
"""

import io
import os
import zipfile

import h5py

from .._base._json import NestingError, loads as load_json
from ._npy import check_expansion
from ..errors import FileFormatError
from ._common import MemberWindow, check_local_headers, member_data_offset
from ._h5check import check_global_heaps, check_storage

__all__ = ["CONFIG_MEMBER", "WEIGHTS_MEMBER", "ModelFile", "check_model_path", "open_zip",
           "keras_config", "open_member", "open_hdf5"]

#: the members of a Keras 3 ``.keras`` zip that hold the model
CONFIG_MEMBER = "config.json"
WEIGHTS_MEMBER = "model.weights.h5"


class ModelFile:
    """Base of the readers: the path, the open handles (``h5``, ``_zip``, ``_raw``), closing.

    A context manager; :meth:`close` closes every handle and never raises,
    so that it cannot hide the error that made the caller close the file.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self.h5 = self._zip = self._raw = None
        self.zip_infos = None
        self.fmt = None
        self.config = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        for obj in (self.h5, self._zip, self._raw):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # noqa: BLE001 - closing must not hide the real error
                    pass
        self.h5 = self._zip = self._raw = None

    def fail(self, message, dataset=None):
        """Raise FileFormatError naming the file (and `dataset`)."""
        raise FileFormatError(self.path, message, dataset)


def check_model_path(path, fail, what):
    """Refuse a folder, a dangling link or loop, a pipe or device; FileNotFoundError if missing.

    `what` ends the folder message: ``"is a folder, not <what>"``.
    """
    if not os.path.exists(path):
        if os.path.lexists(path):
            fail("is a symbolic link that leads nowhere (dangling, or a loop)")
        raise FileNotFoundError(2, "no such file", path)
    if os.path.isdir(path):
        fail(f"is a folder, not {what}")
    if not os.path.isfile(path):
        fail("is not a regular file (a pipe, socket or device); give the model file")


def open_zip(raw, fail):
    """(ZipFile, infos) of the open binary file `raw`: unique members, sound local headers."""
    zf = zipfile.ZipFile(raw)
    infos = zf.infolist()
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        fail(f"holds two members named {twice[0]!r} (a damaged or tampered zip)")
    bad = check_local_headers(raw, infos)
    if bad:
        fail(bad)
    return zf, infos


def keras_config(zf, names, fail):
    """The model config (a dict) of a ``.keras`` zip holding `names`, whose weights are HDF5."""
    if WEIGHTS_MEMBER not in names:
        if "model.weights.npz" in names:
            fail("stores its weights as model.weights.npz, which is not supported")
        fail("is a .keras zip without model.weights.h5")
    try:
        config = load_json(zf.read(CONFIG_MEMBER).decode("utf-8"), "the model config")
    except NestingError as exc:
        fail(str(exc), CONFIG_MEMBER)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"config.json is not valid JSON ({exc})", CONFIG_MEMBER)
    if not isinstance(config, dict):
        fail("config.json does not hold a model", CONFIG_MEMBER)
    return config


def open_member(zf, raw, path, member, fail):
    """(file object, ZipInfo) of a zip member holding an HDF5 file.

    A stored, unencrypted member is read in place (a :class:`MemberWindow`
    over `raw`: nothing is copied), after checking that it lies within the
    file; zipfile does not check its CRC-32 then, which is the caller's job
    (:func:`~weightshare._io._common.crc32_of`). Any other member is
    decompressed into memory, after refusing a decompression bomb.
    """
    info = zf.getinfo(member)
    check_expansion(info.file_size, info.compress_size, path, member)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        start = member_data_offset(raw, info)
        if start + info.file_size > os.path.getsize(path):
            fail("is truncated: the weights member runs past the end of the file", member)
        return MemberWindow(raw, start, info.file_size), info
    return io.BytesIO(zf.read(member)), info


def open_hdf5(source, size, path, where=None):
    """h5py.File of `source` (a path or a file object of `size` bytes), checked.

    Nothing of the file is stored elsewhere (:func:`check_storage`) and its
    global heaps are sound; `where` is the zip member holding it, or None.
    """
    h5 = h5py.File(source, "r")
    try:
        check_storage(h5, path, where, size)
        if isinstance(source, (str, os.PathLike)):
            with open(source, "rb") as f:
                check_global_heaps(h5, f, size, path, where)
        else:
            check_global_heaps(h5, source, size, path, where)
    except BaseException:
        h5.close()
        raise
    return h5
