"""The smallest lossless container of a model file: ``pack_file`` / ``unpack_file``.

``pack_file`` cuts a file into its floating-point tensor bytes (regions,
:mod:`weightshare._io._regions`) and everything else (the skeleton), stores
each region with :func:`weightshare.encode`'s best scheme (or, unclustered,
as deflated byte planes) and the skeleton with xz, checks that the container
rebuilds the file byte for byte, and only then writes it. ``unpack_file`` rebuilds the file, streaming, through the
atomic writer. Format: docs/format.md, "The pack container".
"""

import hashlib
import mmap
import os
import tempfile
from typing import NamedTuple

from .._base._validation import check_flag
from .._io._atomic import atomic_output, check_output
from .._io._regions import tensor_regions
from ._packed import is_packed, unpack_packed
from ._wsz import MAGIC, build, cut, limit_of, stream
from ..errors import FileFormatError

__all__ = ["PackSummary", "UnpackSummary", "pack_file", "unpack_file", "PACK_SUFFIX"]

#: the suffix of a pack
PACK_SUFFIX = ".wsz"
_CODEC = 2      # xz for the skeleton


class PackSummary(NamedTuple):
    """What :func:`pack_file` wrote.

    Attributes
    ----------
    src : str
    dst : str or None
        None when nothing was written (`dry_run` without `dst`).
    format : str
        The input's format (:data:`weightshare.files.FORMATS`).
    size_before : int
        The input's size in bytes.
    size_after : int
        The pack's size in bytes (what it would be, with ``dry_run``).
    regions : int
        Tensor regions encoded (a tensor longer than 64 MiB counts once per piece).
    tensor_bytes : int
        Bytes of the input they cover.
    tensor_stored : int
        Bytes of their encodings in the pack (blobs, or deflated byte planes).
    skeleton_bytes : int
        Every other byte of the input (metadata, configs, integer tensors).
    skeleton_stored : int
        Its xz-compressed size in the pack.
    dry_run : bool
        Nothing written (the pack was built and checked in memory).
    """

    src: str
    dst: object
    format: str
    size_before: int
    size_after: int
    regions: int
    tensor_bytes: int
    tensor_stored: int
    skeleton_bytes: int
    skeleton_stored: int
    dry_run: bool

    @property
    def ratio(self):
        """size_before / size_after: how many times smaller the pack is than the file."""
        return self.size_before / self.size_after if self.size_after else float("inf")

    def to_dict(self):
        """A JSON-ready dict (plus ``ratio``)."""
        return {**self._asdict(), "ratio": self.ratio}


class UnpackSummary(NamedTuple):
    """What :func:`unpack_file` wrote.

    Attributes
    ----------
    src : str
    dst : str or None
        None when nothing was written (`dry_run` without `dst`).
    size_before : int
        The pack's size in bytes.
    size_after : int
        The rebuilt file's size in bytes.
    sha256 : str
        The rebuilt file's SHA-256 (hex), the one the pack declares.
    dry_run : bool
        Nothing written (the pack was rebuilt and checked, the bytes thrown away).
    """

    src: str
    dst: object
    size_before: int
    size_after: int
    sha256: str
    dry_run: bool

    def to_dict(self):
        """A JSON-ready dict."""
        return self._asdict()


def _check_dst(dst, dry_run):
    if dst is None and not dry_run:
        raise ValueError("dst=None: give the output file, or dry_run=True to write nothing")


def _paths(src, dst, dry_run):
    """(src, dst) as str (dst None only with dry_run), src checked to be a regular file."""
    _check_dst(dst, dry_run)
    src = os.fspath(src)
    _check_src(src)
    return src, None if dst is None else os.fspath(dst)


def _check_src(path):
    if os.path.isdir(path):
        raise FileFormatError(path, "is a folder, not a file")
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such file", path)
    if not os.path.isfile(path):
        raise FileFormatError(path, "is not a regular file (a pipe, socket or device)")


class _Mapped:
    """A read-only memory map of a whole file (empty files as b"")."""

    def __init__(self, path):
        self._f = open(path, "rb")
        try:
            size = os.fstat(self._f.fileno()).st_size
            self._map = mmap.mmap(self._f.fileno(), 0, access=mmap.ACCESS_READ) if size else None
        except BaseException:
            self._f.close()
            raise
        self.view = memoryview(self._map) if self._map is not None else memoryview(b"")

    def __enter__(self):
        return self.view

    def __exit__(self, *exc):
        self.view.release()
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:     # a view still alive: unmapped when it goes
                pass
        self._f.close()


def pack_file(src, dst=None, *, dry_run=False):
    """Pack a model file into a ``.wsz`` container that gives it back byte for byte.

    Every floating-point tensor's bytes are stored with
    :func:`weightshare.encode`'s smallest scheme (a clustered tensor costs
    its codebook and about its entropy in bits per entry; a pruned one, its
    non-zeros; an unclustered one is deflated by byte planes when that is
    smaller than its raw bytes), and every other byte (HDF5 metadata, attributes, configs, zip
    structures, integer tensors) is xz-compressed. The pack is rebuilt in
    memory and its SHA-256 compared with the input's before anything is
    written: a file that cannot be reproduced exactly is refused, never
    written differently.

    Parameters
    ----------
    src : str or os.PathLike
        A file :func:`weightshare.read_weights` reads: ``.keras``,
        ``.weights.h5``, legacy ``.h5``, ``.safetensors`` (one file; a
        sharded checkpoint is packed shard by shard), ``.npy``, ``.npz``.
    dst : str or os.PathLike, optional
        The pack (``.wsz`` by convention), written atomically; required
        unless `dry_run`.
    dry_run : bool, default False
        Build and check the pack, report its size, write nothing (then
        ``weightshare.pack_file(src, dry_run=True).size_after`` is the size
        a pack of `src` would have).

    Returns
    -------
    PackSummary

    Raises
    ------
    weightshare.errors.FileFormatError
        `src` cannot be read, is a sharded checkpoint or a folder, or its
        pack does not rebuild it exactly; nothing is written.

    See Also
    --------
    unpack_file : the file back, byte for byte.

    Examples
    --------
    >>> import os, pathlib, tempfile, weightshare
    >>> src = weightshare.examples.path("digits.keras")
    >>> out = os.path.join(tempfile.mkdtemp(), "digits.wsz")
    >>> p = weightshare.pack_file(src, out)
    >>> p.format, p.size_after == os.path.getsize(out), p.size_after < p.size_before
    ('keras_zip', True, True)
    >>> u = weightshare.unpack_file(out, out[:-4] + ".keras")
    >>> pathlib.Path(u.dst).read_bytes() == pathlib.Path(src).read_bytes()
    True
    """
    dry_run = check_flag(dry_run, "dry_run")
    src, dst = _paths(src, dst, dry_run)
    if not dry_run:
        check_output(dst, (src,))
    fmt, regions = tensor_regions(src)
    with _Mapped(src) as view:
        regions = cut(regions, len(view))
        packed, parts = build(view, regions, _CODEC)
        size = len(view)
        digest = _sha256(view)
    if size > limit_of(len(packed)):
        raise FileFormatError(src, f"packs {size} bytes into {len(packed)}, more than unpack "
                                   "accepts from a pack that small (docs/format.md, limits); "
                                   "not packed")
    try:
        header = stream(memoryview(packed), src, lambda piece: None)
    except FileFormatError as exc:
        raise FileFormatError(src, f"cannot be packed byte for byte ({exc}); nothing "
                                   "written") from None
    if header.sha256 != digest or header.file_size != size:
        raise FileFormatError(src, "changed while it was packed, or cannot be packed byte for "
                                   "byte; nothing written")
    if not dry_run:
        with atomic_output(dst, inputs=(src,)) as tmp:
            with open(tmp, "wb") as f:
                f.write(packed)
    return PackSummary(src, dst, fmt, size, len(packed), len(regions), parts["tensor_bytes"],
                       parts["blobs"], parts["skeleton"], parts["skeleton_stored"], dry_run)


def _sha256(view):
    return hashlib.sha256(view).digest()


def _unpack_wsz(src, dst, dry_run):
    with _Mapped(src) as view:
        size_before = len(view)
        if dry_run:
            header = stream(view, src, lambda piece: None)
        else:
            with atomic_output(dst, inputs=(src,)) as tmp:
                with open(tmp, "wb") as f:
                    header = stream(view, src, f.write)
    return UnpackSummary(src, dst, size_before, header.file_size, header.sha256.hex(), dry_run)


def _unpack_safetensors(src, dst, dry_run):
    """unpack_file of a packed safetensors file or checkpoint (``cluster --packed``): the
    plain file or folder, through :func:`weightshare._jobs._packed.unpack_packed`."""
    size_before = _bytes_of(src)
    if dry_run:
        with tempfile.TemporaryDirectory(prefix="weightshare-unpack-") as tmp:
            out = os.path.join(tmp, os.path.basename(dst or src.rstrip(os.sep)) or "out")
            unpack_packed(src, out)
            return UnpackSummary(src, dst, size_before, _bytes_of(out), _sha256_of(out), True)
    unpack_packed(src, dst)
    return UnpackSummary(src, dst, size_before, _bytes_of(dst), _sha256_of(dst), False)


def _files_of(path):
    """The files of a safetensors checkpoint (a file; a folder's files in name order; an
    index: the files of its folder)."""
    if os.path.isfile(path) and not path.endswith(".json"):
        return [path]
    folder = path if os.path.isdir(path) else os.path.dirname(path) or "."
    return [os.path.join(folder, n) for n in sorted(os.listdir(folder))
            if os.path.isfile(os.path.join(folder, n))]


def _bytes_of(path):
    return sum(os.path.getsize(f) for f in _files_of(path))


def _sha256_of(path):
    """SHA-256 of a file, or of a folder's files one after the other in name order."""
    h = hashlib.sha256()
    for name in _files_of(path):
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


#: the unpackers, by the first bytes of their input (another container adds its entry here)
_UNPACKERS = {MAGIC: _unpack_wsz}
_HEAD = 16


def unpack_file(src, dst=None, *, dry_run=False):
    """Rebuild the file a pack was made from, byte for byte.

    The pack is checked whole first (its CRC-32s, its declared sizes against
    its own length and the limits of docs/format.md), then the file is
    rebuilt piece by piece into a temporary file and renamed into place only
    if its SHA-256 is the one the pack declares. A truncated, damaged or
    foreign file is refused with one error naming it; nothing is written.

    Parameters
    ----------
    src : str or os.PathLike
        A pack written by :func:`pack_file`; or a packed safetensors file,
        index or checkpoint folder (``cluster_file(..., packed=True)``,
        ``weightshare cluster --packed``), whose plain file or folder is
        written: byte for byte the output of the same run without
        ``packed`` (its ``sha256`` is then that of the file written, a
        folder's files hashed one after the other in name order).
    dst : str or os.PathLike, optional
        The rebuilt file (give it the original's suffix), written atomically;
        required unless `dry_run`.
    dry_run : bool, default False
        Rebuild and check everything, write nothing (a test of the pack).

    Returns
    -------
    UnpackSummary

    Raises
    ------
    weightshare.errors.FileFormatError
        `src` is not a pack, or is truncated or damaged; nothing is written.

    Examples
    --------
    >>> import os, tempfile, weightshare
    >>> folder = tempfile.mkdtemp()
    >>> src = weightshare.examples.path("digits.keras")
    >>> _ = weightshare.pack_file(src, os.path.join(folder, "d.wsz"))
    >>> u = weightshare.unpack_file(os.path.join(folder, "d.wsz"), os.path.join(folder, "d.keras"))
    >>> u.size_after == os.path.getsize(src)
    True
    """
    dry_run = check_flag(dry_run, "dry_run")
    _check_dst(dst, dry_run)
    if os.path.exists(src) and is_packed(src):     # a file, an index or a checkpoint folder
        return _unpack_safetensors(os.fspath(src), None if dst is None else os.fspath(dst),
                                   dry_run)
    src, dst = _paths(src, dst, dry_run)
    if not dry_run:
        check_output(dst, (src,))
    with open(src, "rb") as f:
        head = f.read(_HEAD)
    for magic, unpacker in _UNPACKERS.items():
        if head.startswith(magic):
            return unpacker(src, dst, dry_run)
    raise FileFormatError(src, "is not a weightshare pack (.wsz): it does not start with "
                               f"{MAGIC!r} (give a file written by weightshare pack)")
