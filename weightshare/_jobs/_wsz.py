"""The ``.wsz`` pack container: a model file as its tensors' encodings plus its other bytes.

Layout and limits: docs/format.md, "The pack container (.wsz, version 1)". A
file is cut into *regions* (byte ranges holding floating-point tensor data,
found by :mod:`weightshare._io._regions`) and the *skeleton* (every other
byte, in order). Each region is stored as one :func:`weightshare.encode`
blob of its bytes read as little-endian bit patterns; the skeleton as one
zlib or xz stream. Reading rebuilds the file byte for byte, streaming: no
allocation is larger than :data:`MAX_PIECE_BYTES` (a region) or
:data:`_STEP` (a piece of the skeleton), whatever the container declares,
and every declared size is checked against the container's own length and
the documented bounds before anything is allocated or written.

Only NumPy, the standard library and :mod:`weightshare.encode`; the caller
opens files and writes through :func:`~weightshare._io._atomic.atomic_output`; the
regions come from :mod:`weightshare._io._regions`.
"""

import hashlib
import lzma
import struct
import zlib

import numpy as np

from ..encode import blob_info, decode, encode
from ..errors import FileFormatError

__all__ = ["MAGIC", "VERSION", "HEADER_SIZE", "ENTRY_SIZE", "MAX_PIECE_BYTES", "MAX_REGIONS",
           "FREE_BYTES", "MAX_RATIO", "CODECS", "Header", "build", "parse", "stream",
           "encode_piece", "cut"]

MAGIC = b"WSPK"
VERSION = 1
#: magic 4, version 1, codec 1, reserved 2, file size 8, skeleton size 8, skeleton stored 8,
#: regions 4, reserved 4, SHA-256 32, CRC-32 4
_HEADER = struct.Struct("<4sBBHQQQII32sI")
HEADER_SIZE = _HEADER.size
#: a region's entry: offset in the file, length in the file, stored length, kind, item size,
#: reserved
_ENTRY = struct.Struct("<QQQBBH")
#: region kinds: an encoded tensor blob; the bytes grouped by position in the item, deflated
BLOB, PLANES = 0, 1
KINDS = {BLOB: "blob", PLANES: "planes"}
ENTRY_SIZE = _ENTRY.size
_CRC = struct.Struct("<I")
#: the largest region (bytes of the file) one blob holds; pack cuts longer tensors
MAX_PIECE_BYTES = 64 << 20
#: the most regions a container may declare
MAX_REGIONS = 1 << 22
#: a container may declare a file this large whatever its own size ...
FREE_BYTES = 1 << 30
#: ... and beyond that at most this many times its own size
MAX_RATIO = 4096
#: skeleton codecs: code -> name
CODECS = {0: "stored", 1: "zlib", 2: "xz"}
_STEP = 1 << 20
#: the bit patterns of a region's items, by item size (2: float16 and bfloat16 alike)
_PATTERNS = {2: np.dtype("<f2"), 4: np.dtype("<f4"), 8: np.dtype("<f8")}
#: a sample this large with more than half its patterns distinct is stored raw (not planned)
_SAMPLE = 16384
#: tensors this small are always planned with every scheme (it costs nothing)
_SMALL = 256


class Header:
    """The fields of a container's header (see docs/format.md)."""

    def __init__(self, codec, file_size, skeleton_size, skeleton_stored, n_regions, sha256):
        self.codec, self.file_size = codec, file_size
        self.skeleton_size, self.skeleton_stored = skeleton_size, skeleton_stored
        self.n_regions, self.sha256 = n_regions, sha256

    def pack(self):
        body = _HEADER.pack(MAGIC, VERSION, self.codec, 0, self.file_size, self.skeleton_size,
                            self.skeleton_stored, self.n_regions, 0, self.sha256, 0)
        return body[:-4] + _CRC.pack(zlib.crc32(body[:-4]))


def limit_of(container_size):
    """The largest file a container of `container_size` bytes may rebuild."""
    return max(FREE_BYTES, MAX_RATIO * container_size)


# --------------------------------------------------------------------------- writing

def cut(regions, size):
    """Sorted, disjoint regions inside `size` bytes, whole items, none longer than a piece."""
    out, pos = [], 0
    for offset, length, item in sorted(regions):
        length -= length % item
        if offset < pos or length <= 0 or offset + length > size:
            continue            # overlapping or outside: left in the skeleton
        step = MAX_PIECE_BYTES - MAX_PIECE_BYTES % item
        for start in range(offset, offset + length, step):
            out.append((start, min(step, offset + length - start), item))
        pos = offset + length
    return out



def _planes(data, itemsize):
    """The bytes of `data` grouped by their position in the item: all first bytes, then ..."""
    return np.frombuffer(data, np.uint8).reshape(-1, itemsize).T.tobytes()


def _unplanes(data, itemsize):
    return np.frombuffer(data, np.uint8).reshape(itemsize, -1).T.tobytes()


def _deflate_planes(data, itemsize):
    """zlib stream of the byte planes of `data`: run-length matches only (``Z_RLE``), and
    for pieces of at most ``_BOTH_WAYS`` values also zlib's default strategy (level 6),
    whichever is smaller.

    Measured on float32 planes (Laplace, Gaussian and Student-t arrays; MobileNetV2's
    kernels): from about 3e4 values on, ``Z_RLE`` was 1.5-2 % smaller and about 5x faster
    than the default (1e6 Laplace values: 0.07 s against 0.37 s; the default's lazy match
    search costs much on the skewed sign-and-exponent plane and finds little), while on
    pieces of a few thousand values the default was 2-5 % smaller. Either stream
    decodes with the same reader.
    """
    planes = _planes(data, itemsize)
    rle = _rle(planes)
    if len(data) > _BOTH_WAYS * itemsize:
        return rle
    return min(rle, zlib.compress(planes, 6), key=len)


#: Byte planes of up to this many values are deflated both ways (see :func:`_deflate_planes`).
_BOTH_WAYS = 1 << 15


def _rle(planes):
    z = zlib.compressobj(6, zlib.DEFLATED, 15, 9, zlib.Z_RLE)
    return z.compress(planes) + z.flush()


def encode_piece(data, itemsize):
    """(kind, stored bytes) of one region's bytes `data` (a buffer) of `itemsize`-byte items.

    The smallest of :func:`weightshare.encode`'s schemes (kind BLOB), or,
    when that is the raw layout (unclustered values), the bytes grouped by
    position in the item and deflated (kind PLANES) if that is smaller:
    sign and exponent bytes compress, mantissa bytes do not. Many distinct
    patterns in a sample go straight to the raw scheme: planning the others
    would cost time for nothing.
    """
    values = np.frombuffer(data, dtype=_PATTERNS[itemsize])
    n = values.size
    scheme = "auto"
    if n >= _SMALL:
        sample = values[::max(1, n // _SAMPLE)].view(f"<u{itemsize}")
        if np.unique(sample).size > sample.size // 2:
            scheme = "raw"
    blob = encode(values, scheme=scheme)
    if scheme == "raw" or blob_info(blob).scheme == "raw":
        planes = _deflate_planes(data, itemsize)
        if len(planes) < len(blob):
            return PLANES, planes
    return BLOB, blob


def _compress(skeleton, codec):
    if codec == 1:
        return zlib.compress(skeleton, 9)
    if codec == 2:
        return lzma.compress(skeleton, format=lzma.FORMAT_XZ, check=lzma.CHECK_NONE,
                             preset=2)
    return bytes(skeleton)


def build(view, regions, codec=2):
    """The container of the file whose bytes are `view`, cut at `regions`.

    Parameters
    ----------
    view : buffer
        The whole file (a memoryview of a memory map).
    regions : list of (offset, length, itemsize)
        Sorted, disjoint, inside the file, each at most
        :data:`MAX_PIECE_BYTES` long and a whole number of items.
    codec : int
        The skeleton's codec (:data:`CODECS`).

    Returns
    -------
    (bytes, dict)
        The container and its parts' sizes (``skeleton``, ``skeleton_stored``,
        ``tensor_bytes``, ``blobs``).
    """
    size = len(view)
    gaps, pos, table, blobs = [], 0, [], []
    for offset, length, itemsize in regions:
        gaps.append(view[pos:offset])
        kind, blob = encode_piece(view[offset:offset + length], itemsize)
        table.append(_ENTRY.pack(offset, length, len(blob), kind, itemsize, 0))
        blobs.append(blob)
        pos = offset + length
    gaps.append(view[pos:size])
    skeleton = b"".join(gaps)
    del gaps
    stored = _compress(skeleton, codec)
    header = Header(codec, size, len(skeleton), len(stored), len(regions),
                    hashlib.sha256(view).digest()).pack()
    table = b"".join(table)
    parts = [header, table, _CRC.pack(zlib.crc32(table)), stored, _CRC.pack(zlib.crc32(stored)),
             *blobs]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    parts.append(_CRC.pack(crc))
    return b"".join(parts), {"skeleton": len(skeleton), "skeleton_stored": len(stored),
                             "tensor_bytes": sum(r[1] for r in regions),
                             "blobs": sum(len(b) for b in blobs)}


# --------------------------------------------------------------------------- reading

def _crc_of(buf, start, stop):
    crc = 0
    for pos in range(start, stop, 16 * _STEP):
        crc = zlib.crc32(buf[pos:min(stop, pos + 16 * _STEP)], crc)
    return crc


def parse(buf, path):
    """(Header, entries, skeleton slice bounds, first blob offset) of the container `buf`, checked.

    `buf` is the whole container (bytes or a memoryview of a memory map).
    Every check of docs/format.md's reading order is made here, before
    anything is decompressed or allocated: magic, length, the CRC-32 of the
    whole container, the header's CRC, version, codec, declared sizes
    against the container's length and the bounds, the table's CRC, the
    regions (sorted, disjoint, inside the file), and the skeleton's CRC.
    """
    def fail(message):
        raise FileFormatError(path, message)
    total = len(buf)
    if total < 4 or bytes(buf[:4]) != MAGIC:
        fail(f"is not a weightshare pack (.wsz): it does not start with {MAGIC!r}")
    if total < HEADER_SIZE + 2 * _CRC.size + _CRC.size:
        fail(f"is truncated: {total} bytes is shorter than any pack")
    (_, version, codec, _, file_size, skel_size, skel_stored, n_regions, _, sha,
     head_crc) = _HEADER.unpack_from(buf, 0)
    stored_crc = _CRC.unpack_from(buf, total - 4)[0]
    if _crc_of(buf, 0, total - 4) != stored_crc:
        fail("is damaged or truncated: the pack fails its CRC-32 check")
    if zlib.crc32(buf[:HEADER_SIZE - 4]) != head_crc:
        fail("has a damaged header (CRC-32)")
    if version != VERSION:
        fail(f"is a pack of format version {version}; this weightshare reads version {VERSION}")
    if codec not in CODECS:
        fail(f"has an unknown skeleton codec {codec}")
    if file_size > limit_of(total):
        fail(f"declares a file of {file_size} bytes from {total} bytes; more than "
             f"{limit_of(total)} (docs/format.md, limits) is refused: a damaged or forged pack")
    if n_regions > MAX_REGIONS or HEADER_SIZE + n_regions * ENTRY_SIZE + 12 > total:
        fail(f"declares {n_regions} regions, more than the pack can hold")
    table_end = HEADER_SIZE + n_regions * ENTRY_SIZE
    if zlib.crc32(buf[HEADER_SIZE:table_end]) != _CRC.unpack_from(buf, table_end)[0]:
        fail("has a damaged region table (CRC-32)")
    skel_start = table_end + 4
    if skel_stored > total - skel_start - 8 or skel_size > file_size:
        fail("declares a skeleton larger than the pack or the file")
    if codec == 0 and skel_stored != skel_size:
        fail("declares a stored skeleton whose two sizes differ")
    skel_end = skel_start + skel_stored
    if zlib.crc32(buf[skel_start:skel_end]) != _CRC.unpack_from(buf, skel_end)[0]:
        fail("has a damaged skeleton (CRC-32)")
    entries, pos, blob_total, covered = [], 0, 0, 0
    for i in range(n_regions):
        offset, length, blob_len, kind, item, _ = _ENTRY.unpack_from(
            buf, HEADER_SIZE + i * ENTRY_SIZE)
        if offset < pos or length == 0 or length > MAX_PIECE_BYTES or \
                offset + length > file_size:
            fail(f"has a bad region {i} (bytes {offset} to {offset + length} of a file of "
                 f"{file_size}): regions must be sorted, disjoint, non-empty, at most "
                 f"{MAX_PIECE_BYTES} bytes and inside the file")
        if kind not in KINDS or item not in _PATTERNS or length % item:
            fail(f"has a bad region {i}: kind {kind}, item size {item}, {length} bytes")
        entries.append((offset, length, blob_len, kind, item))
        pos = offset + length
        blob_total += blob_len
        covered += length
    if covered + skel_size != file_size:
        fail(f"does not add up: regions of {covered} bytes and a skeleton of {skel_size} "
             f"bytes do not make the declared {file_size}")
    blobs_start = skel_end + 4
    if blobs_start + blob_total + 4 != total:
        fail(f"does not add up: its parts take {blobs_start + blob_total + 4} bytes, the pack "
             f"has {total}")
    return (Header(codec, file_size, skel_size, skel_stored, n_regions, sha), entries,
            (skel_start, skel_end), blobs_start)


class _Skeleton:
    """The skeleton's bytes, decompressed `n` at a time (never more than asked)."""

    def __init__(self, data, codec, size, path):
        self._data, self._left, self._path = data, size, path
        self._codec = codec
        self._pending = b""
        self._dec = (zlib.decompressobj() if codec == 1 else
                     lzma.LZMADecompressor(format=lzma.FORMAT_XZ) if codec == 2 else None)
        self._fed = False

    def _fail(self, why):
        raise FileFormatError(self._path, f"has a damaged skeleton ({why})")

    def take(self, n, write):
        """Write the next `n` bytes of the skeleton, in pieces of at most _STEP."""
        if n > self._left:
            self._fail("shorter than declared")
        self._left -= n
        if self._dec is None:
            while n:
                step = min(n, _STEP)
                write(self._data[:step])
                self._data = self._data[step:]
                n -= step
            return
        while n:
            step = min(n, _STEP)
            try:
                if self._codec == 1:
                    piece = self._dec.decompress(self._pending or self._data, step)
                    self._pending = self._dec.unconsumed_tail
                    self._data = b""
                else:
                    piece = self._dec.decompress(b"" if self._fed else self._data, step)
                    self._fed = True
            except (zlib.error, lzma.LZMAError, EOFError) as exc:
                self._fail(str(exc))
            if not piece:
                self._fail("it ends early")
            write(piece)
            n -= len(piece)

    def finish(self):
        if self._left:
            self._fail("shorter than declared")
        if self._dec is None:
            return
        eof = self._dec.eof
        if self._codec == 1:
            if not eof and not self._pending:
                try:
                    rest = self._dec.decompress(b"", 1)
                except zlib.error as exc:
                    self._fail(str(exc))
                if rest:
                    self._fail("longer than declared")
            eof = self._dec.eof
            extra = self._pending or self._dec.unused_data
        else:
            if not eof and not self._dec.needs_input:
                try:
                    if self._dec.decompress(b"", 1):
                        self._fail("longer than declared")
                except (lzma.LZMAError, EOFError) as exc:
                    self._fail(str(exc))
            eof = self._dec.eof
            extra = self._dec.unused_data if eof else b""
        if not eof or extra:
            self._fail("its stream does not end where declared")


def stream(buf, path, write):
    """Rebuild the file of the container `buf`, passing its bytes in order to `write`.

    Checks everything :func:`parse` checks first, then each blob's header
    against its region before decoding it, and the SHA-256 of the rebuilt
    bytes at the end. Returns the parsed :class:`Header`.
    """
    header, entries, (s0, s1), pos = parse(buf, path)
    digest = hashlib.sha256()

    def out(piece):
        digest.update(piece)
        write(piece)
    skeleton = _Skeleton(buf[s0:s1], header.codec, header.skeleton_size, path)
    at = 0
    for i, (offset, length, blob_len, kind, item) in enumerate(entries):
        skeleton.take(offset - at, out)
        blob = buf[pos:pos + blob_len]
        pos += blob_len
        try:
            out(_region(blob, kind, item, length))
        except (ValueError, KeyError, zlib.error) as exc:
            raise FileFormatError(path, f"has a damaged region {i} "
                                        f"({' '.join(str(exc).split())})") from None
        at = offset + length
    skeleton.take(header.file_size - at, out)
    skeleton.finish()
    if digest.digest() != header.sha256:
        raise FileFormatError(path, "rebuilds a file whose SHA-256 differs from the one it "
                                    "declares: the pack is damaged")
    return header


def _region(stored, kind, item, length):
    """The `length` bytes of a region from its `stored` bytes; ValueError if they are not."""
    if kind == PLANES:
        dec = zlib.decompressobj()
        data = dec.decompress(stored, length + 1)       # never more than the region
        if len(data) != length or not dec.eof or dec.unused_data or dec.unconsumed_tail:
            raise ValueError(f"its deflated bytes do not make {length} bytes")
        return _unplanes(data, item)
    info = blob_info(stored)
    if _PATTERNS_OF.get(info.dtype) != item or len(info.shape) != 1 or \
            info.shape[0] * item != length:
        raise ValueError(f"its blob holds {info.shape} of {info.dtype}, not {length} bytes of "
                         f"{item}-byte items")
    values = decode(stored)
    return np.ascontiguousarray(values, dtype=_PATTERNS[item]).data.cast("B")


#: blob dtype label -> item size of the patterns written back
_PATTERNS_OF = {"float16": 2, "float32": 4, "float64": 8}
