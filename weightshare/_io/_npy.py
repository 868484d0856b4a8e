"""Read ``.npy`` and ``.npz`` files given by users, refusing what would hurt before reading it.

``np.load`` trusts what a file says: a header claiming a huge shape makes it
allocate that much before finding the data is not there, an empty file
raises ``EOFError``, and its errors do not name the file. These helpers check
the header against the bytes the file (or zip member) really holds, refuse
pickles, and raise :class:`~weightshare.errors.FileFormatError` naming the
file and member. They import only NumPy and the standard library.

The limits on decoded sizes are shared with the Keras file adapters: a
tensor may decode to at most :data:`FREE_BYTES` from any stored size, and
beyond that to at most :data:`MAX_EXPANSION` times the bytes it is stored in
(compressed zip members and HDF5 chunks); more is a bomb or a forged header.
"""

import io
import math
import os
import stat
import zipfile

import numpy as np

from ..errors import FileFormatError

__all__ = ["FREE_BYTES", "MAX_EXPANSION", "check_expansion", "check_archive", "BoundedReader",
           "check_regular_file", "read_npy_header", "load_npy", "load_npz"]

#: bytes a tensor may decode to whatever it is stored in
FREE_BYTES = 16 << 20
#: beyond FREE_BYTES, the largest decoded size per stored byte
MAX_EXPANSION = 100


def check_expansion(nbytes, stored, path, where, what="claims", free=FREE_BYTES):
    """Refuse `nbytes` decoded from `stored` bytes when that is a bomb or a forged size.

    Up to `free` bytes are allowed from any stored size (:data:`FREE_BYTES`
    for tensors; the JSON members of a ``.keras`` zip allow less).
    """
    if nbytes > free and nbytes > MAX_EXPANSION * max(int(stored), 0):
        raise FileFormatError(path, f"{what} {nbytes} bytes of data but stores only {stored} "
                                    f"(more than {MAX_EXPANSION} times; a damaged or forged "
                                    "file, or a decompression bomb)", where)


def check_archive(infos, size, path):
    """Refuse zip members that lie past the end of the file or decode to too much in all.

    Each member's compressed bytes must fit in the `size` bytes of the file
    (else its stored size is forged, and so is any ratio checked against it),
    and all members together may decode to at most ``FREE_BYTES +
    MAX_EXPANSION * size`` bytes, so that many members sharing the same
    compressed bytes cannot multiply a bomb.
    """
    total = 0
    for info in infos:
        if info.header_offset + 30 + info.compress_size > size:
            raise FileFormatError(path, f"claims {info.compress_size} stored bytes, past the end "
                                        "of the file (a damaged or forged zip)", info.filename)
        total += info.file_size
    if total > FREE_BYTES + MAX_EXPANSION * size:
        raise FileFormatError(path, f"its members claim {total} bytes of data in all, more than "
                                    f"{MAX_EXPANSION} times the {size} bytes of the file (a "
                                    "damaged or forged file, or a decompression bomb)")


class BoundedReader(io.RawIOBase):
    """At most `limit` bytes of the file object `f`, asked of it at most `chunk` at a time.

    ``zipfile`` inflates as much as one read asks for, whatever size the
    member claims (a read of 4 GiB from a member claiming 1 MiB inflates all
    the member holds before cutting it to 1 MiB), and NumPy reads a ``.npy``
    header of the length the header states. Through this reader no read
    asks for more than `chunk` bytes, nor in all for more than `limit`.
    """

    def __init__(self, f, limit, chunk=1 << 20):
        super().__init__()
        self._f, self._left, self._chunk, self._pos = f, max(int(limit), 0), chunk, 0

    def readable(self):
        return True

    def tell(self):
        return self._pos

    def read(self, n=-1):
        """At most `n` bytes and at most `chunk` of them (all that is left if `n` < 0)."""
        if n is None or n < 0:
            return b"".join(iter(lambda: self.read(self._chunk), b""))
        n = min(n, self._left, self._chunk)
        data = self._f.read(n) if n > 0 else b""
        self._left -= len(data)
        self._pos += len(data)
        return data

    def readinto(self, buf):
        data = self.read(len(buf))
        buf[:len(data)] = data
        return len(data)


def check_regular_file(path):
    """Refuse what is not a regular file (a folder, a pipe, a device) before opening it.

    Raises FileNotFoundError (or the OSError of a symlink loop) for a missing
    path, naming it.
    """
    path = os.fspath(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        raise type(exc)(exc.errno, exc.strerror or "cannot open", path) from None
    if stat.S_ISDIR(st.st_mode):
        raise FileFormatError(path, "is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise FileFormatError(path, "is not a regular file (a pipe, socket or device)")
    return st.st_size


_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
            (2, 0): np.lib.format.read_array_header_2_0}


def read_npy_header(f, size, path, where=None):
    """(shape, fortran_order, dtype) of the .npy stream `f` of `size` bytes, checked.

    The data the header promises must fit in what is left of the `size`
    bytes, and the dtype must not hold Python objects.
    """
    try:
        version = np.lib.format.read_magic(f)
    except (ValueError, EOFError) as exc:
        raise FileFormatError(path, f"is not a .npy array ({exc})", where) from None
    reader = _HEADERS.get(version)
    if reader is None:
        raise FileFormatError(path, f"has an unsupported .npy format version {version}", where)
    try:
        shape, fortran, dtype = reader(f)
    except (ValueError, EOFError, TypeError, SyntaxError) as exc:
        raise FileFormatError(path, f"has a damaged .npy header ({exc})", where) from None
    if dtype.hasobject:
        raise FileFormatError(path, "holds Python objects, not numbers (pickles are never loaded)",
                              where)
    nbytes = math.prod(int(d) for d in shape) * dtype.itemsize
    left = size - f.tell()
    if nbytes > left:
        raise FileFormatError(path, f"is truncated or its header is wrong: shape {tuple(shape)} "
                                    f"of {dtype} needs {nbytes} bytes of data, there are {left}",
                              where)
    return tuple(shape), fortran, dtype


def load_npy(path):
    """The array of a .npy file, checked first (see :func:`read_npy_header`)."""
    path = os.fspath(path)
    size = check_regular_file(path)
    with open(path, "rb") as f:
        read_npy_header(f, size, path)
        f.seek(0)
        try:
            return np.lib.format.read_array(f, allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise FileFormatError(path, f"cannot read the array ({exc})") from None


def load_npz(path):
    """{name: array} of a .npz file, every member checked before it is read."""
    path = os.fspath(path)
    size = check_regular_file(path)
    try:
        z = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        raise FileFormatError(path, f"is not a valid .npz (zip) file ({exc})") from None
    out = {}
    with z:
        names = [i.filename for i in z.infolist()]
        if len(set(names)) != len(names):
            raise FileFormatError(path, "holds two members of the same name (a damaged zip)")
        check_archive(z.infolist(), size, path)
        for info in z.infolist():
            if not info.filename.endswith(".npy"):
                raise FileFormatError(path, "holds a member that is not a .npy array",
                                      info.filename)
            check_expansion(info.file_size, info.compress_size, path, info.filename)
            try:
                with z.open(info) as f:
                    read_npy_header(BoundedReader(f, info.file_size), info.file_size, path,
                                    info.filename)
                with z.open(info) as f:
                    out[info.filename[:-4]] = np.lib.format.read_array(
                        BoundedReader(f, info.file_size), allow_pickle=False)
            except FileFormatError:
                raise
            except (zipfile.BadZipFile, ValueError, EOFError, OSError, RuntimeError,
                    NotImplementedError) as exc:
                raise FileFormatError(path, f"cannot read the array ({type(exc).__name__}: "
                                            f"{exc})", info.filename) from None
    return out
