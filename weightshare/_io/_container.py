"""Opening the container of a model file, with the checks every reader needs.

The reader (:mod:`weightshare._io._reader`, for weights and, as a model
view, for structured removal) opens every file this way: the path must be a regular file, a zip
must have unique members whose local headers agree with its central
directory and whose data do not overlap, every member that is decompressed
is bounded (the JSON members by a size cap and a ratio, the HDF5 weights
member by the ratio) and read through a bounded reader, an HDF5 file must
keep all its data inside itself (no external storage, virtual dataset or
external link anywhere: see :mod:`weightshare._io._h5check`), and its global
heaps are checked before libhdf5 reads a string from them. Every refusal goes
through the caller's ``fail(message, dataset=None)``, which raises.
"""

import collections
import io
import os
import zipfile
import zlib

import h5py

from .._base._json import NestingError, loads as load_json
from ._npy import check_expansion
from ..errors import FileFormatError
from ._common import MemberWindow, check_local_headers, member_data_offset
from ._h5check import check_global_heaps, check_storage

__all__ = ["CONFIG_MEMBER", "METADATA_MEMBER", "WEIGHTS_MEMBER", "MAX_CONFIG_BYTES",
           "MAX_METADATA_BYTES", "JSON_FREE_BYTES", "ModelFile", "check_model_path", "open_zip",
           "read_member", "keras_config", "keras_metadata", "open_member", "open_hdf5"]

#: the members of a Keras 3 ``.keras`` zip that hold the model
CONFIG_MEMBER = "config.json"
METADATA_MEMBER = "metadata.json"
WEIGHTS_MEMBER = "model.weights.h5"
#: the largest config.json read (decoded); Keras writes under 1 kB per layer
MAX_CONFIG_BYTES = 8 << 20
#: the largest metadata.json read (decoded); Keras writes under 100 bytes
MAX_METADATA_BYTES = 1 << 20
#: bytes a JSON member may decode to from any stored size (beyond: MAX_EXPANSION times)
JSON_FREE_BYTES = 1 << 20
#: what reading a zip member raises when its bytes are damaged or unsupported
_MEMBER_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError,
                  NotImplementedError, ValueError)


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

    @classmethod
    def open(cls, path):
        """A reader of `path` with its file mapped; closed again if that fails.

        FileFormatError and FileNotFoundError pass through; any other error a
        damaged file makes h5py or zipfile raise becomes one FileFormatError
        naming the file.
        """
        reader = cls(path)
        try:
            reader._open()
        except (FileFormatError, FileNotFoundError):
            reader.close()
            raise
        except (OSError, KeyError, ValueError, TypeError, RuntimeError, EOFError, AttributeError,
                IndexError, zipfile.BadZipFile, UnicodeDecodeError, RecursionError,
                MemoryError) as exc:
            reader.close()
            raise FileFormatError(reader.path, f"cannot read the file ({type(exc).__name__}: "
                                               f"{' '.join(str(exc).split())})") from None
        except BaseException:
            reader.close()
            raise
        return reader


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
    counts = collections.Counter(i.filename for i in infos)
    if len(counts) != len(infos):
        twice = min(n for n, c in counts.items() if c > 1)
        fail(f"holds two members named {twice!r} (a damaged or tampered zip)")
    end = getattr(zf, "start_dir", None)
    bad = check_local_headers(raw, infos, os.fstat(raw.fileno()).st_size if end is None else end)
    if bad:
        fail(bad)
    return zf, infos


def read_member(zf, member, path, fail, limit):
    """The bytes of the small member `member` (a JSON file) of `zf`: at most `limit` of them.

    Refused before anything is decompressed when it claims more than
    `limit` bytes, or more than :data:`JSON_FREE_BYTES` and more than
    ``MAX_EXPANSION`` times its stored size; then read with one bounded
    read (zipfile inflates at most what a read asks for, whatever the member
    holds), so that a forged size cannot make it inflate more either.
    """
    info = zf.getinfo(member)
    if info.file_size > limit:
        fail(f"claims {info.file_size} bytes; more than {limit} is refused (a Keras file holds "
             "far less: a damaged or forged file, or a decompression bomb)", member)
    check_expansion(info.file_size, info.compress_size, path, member, free=JSON_FREE_BYTES)
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)       # zipfile inflates at most what is asked
    except _MEMBER_ERRORS as exc:
        fail(f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())})", member)
    if len(data) > info.file_size:      # zipfile stops at the claimed size; never trust it
        fail(f"holds more than the {info.file_size} bytes it claims", member)
    return data


def _json_member(zf, member, path, fail, limit):
    data = read_member(zf, member, path, fail, limit)
    try:
        return load_json(data.decode("utf-8"), "the model config" if member == CONFIG_MEMBER
                         else member)
    except NestingError as exc:
        fail(str(exc), member)
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{member} is not valid JSON ({exc})", member)


def keras_config(zf, names, fail, path):
    """The model config (a dict) of a ``.keras`` zip holding `names`, whose weights are HDF5."""
    if WEIGHTS_MEMBER not in names:
        if "model.weights.npz" in names:
            fail("stores its weights as model.weights.npz, which is not supported")
        fail("is a .keras zip without model.weights.h5")
    config = _json_member(zf, CONFIG_MEMBER, path, fail, MAX_CONFIG_BYTES)
    if not isinstance(config, dict):
        fail("config.json does not hold a model", CONFIG_MEMBER)
    return config


def keras_metadata(zf, names, fail, path):
    """The dict of a ``.keras`` zip's metadata.json, or None (absent, or not a JSON object).

    Unreadable JSON is ignored (the metadata only tells the Keras version);
    a bomb or a damaged member is refused like any other.
    """
    if METADATA_MEMBER not in names:
        return None
    data = read_member(zf, METADATA_MEMBER, path, fail, MAX_METADATA_BYTES)
    try:
        meta = load_json(data.decode("utf-8"), METADATA_MEMBER)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return meta if isinstance(meta, dict) else None


def open_member(zf, raw, path, member, fail):
    """(file object, ZipInfo) of a zip member holding an HDF5 file.

    A stored, unencrypted member is read in place (a :class:`MemberWindow`
    over `raw`: nothing is copied), after checking that it lies within the
    file; zipfile does not check its CRC-32 then, which is the caller's job
    (:func:`~weightshare._io._common.crc32_of`). Any other member is
    decompressed into memory, after refusing a decompression bomb, through a
    bounded reader: never more than the size it claims.
    """
    info = zf.getinfo(member)
    check_expansion(info.file_size, info.compress_size, path, member)
    if info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1:
        start = member_data_offset(raw, info)
        if start + info.file_size > os.path.getsize(path):
            fail("is truncated: the weights member runs past the end of the file", member)
        return MemberWindow(raw, start, info.file_size), info
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)       # zipfile inflates at most what is asked
    except _MEMBER_ERRORS as exc:
        fail(f"cannot be read ({type(exc).__name__}: {' '.join(str(exc).split())})", member)
    if len(data) > info.file_size:
        fail(f"holds more than the {info.file_size} bytes it claims", member)
    return io.BytesIO(data), info


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
