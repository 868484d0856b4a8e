"""Lossless encodings of weight tensors: real bytes, not estimates.

``encode`` turns a float tensor into a self-describing blob (versioned header,
payload, CRC32); ``decode`` gives the tensor back bit for bit. The schemes are
the storage layouts of weight sharing and pruning (Han, Mao and Dally, "Deep
Compression", ICLR 2016, section 4):

- ``'raw'``: the values as stored, little-endian.
- ``'packed'``: a codebook of the distinct values (in the tensor's dtype) and
  every entry's codebook index in ceil(log2 k) bits.
- ``'sparse'``: the Deep Compression CSR-like layout: only non-zeros are
  stored, each as the number of zeros before it (in g bits; a run longer
  than 2**g - 1 is bridged by filler zeros) and its codebook index.
- ``'huffman'``: the codebook indices of every entry, canonical Huffman coded.
- ``'sparse_huffman'``: the sparse layout with both the gaps and the indices
  Huffman coded (the last stage of Deep Compression).
- ``'auto'``: whichever of these is smallest (ties: the simplest).

Byte layout: docs/format.md. Imports NumPy and the standard library only.
"""

import struct
import zlib
from typing import NamedTuple

import numpy as np

from ._codec._bf16 import bf16_bits_of, bf16_to_float32, is_bf16_exact
from ._codec._bytes import Reader, uleb128, uleb128_size
from ._codec._schemes import PLANNERS, READERS, SCHEME_CODES, analyse
from ._base._validation import check_choice

__all__ = ["encode", "decode", "encoded_sizes", "blob_info", "EncodedSizes", "BlobInfo",
           "SCHEMES", "DTYPES", "MAGIC", "FORMAT_VERSION"]

MAGIC = b"WSEB"
FORMAT_VERSION = 1
#: the `scheme` options of :func:`encode`
SCHEMES = ("auto",) + tuple(SCHEME_CODES)
#: dtype label -> (code byte, bytes per value)
DTYPES = {"float16": (1, 2), "float32": (2, 4), "float64": (3, 8), "bfloat16": (4, 2)}

_SCHEME_NAMES = {code: name for name, code in SCHEME_CODES.items()}
_DTYPE_NAMES = {code: name for name, (code, _) in DTYPES.items()}
_PREFIX = 8          # magic, version, scheme, dtype, ndim
_CRC = 4


class EncodedSizes(NamedTuple):
    """Result of :func:`encoded_sizes`: one tensor's statistics and encoded sizes.

    Attributes
    ----------
    dtype : str
        'float16', 'float32', 'float64' or 'bfloat16'.
    shape : tuple of int
    n : int
        Number of entries.
    nonzeros : int
        Entries whose bit pattern is not all zeros (-0.0 counts as non-zero).
    distinct : int
        Distinct bit patterns (k, the codebook size).
    index_bits : int
        ceil(log2 k): bits per index in the packed layout (0 when k <= 1).
    entropy_bits : float
        n times the Shannon entropy (bits) of the distribution of values: the
        least any code of the entries one at a time can spend on the indices.
    raw, packed, sparse, huffman, sparse_huffman : int
        Length in bytes of ``encode(values, scheme=...)``, header and CRC included.
    best_scheme : str
        The scheme ``'auto'`` picks; ``best`` is its size.
    best : int
    """

    dtype: str
    shape: tuple
    n: int
    nonzeros: int
    distinct: int
    index_bits: int
    entropy_bits: float
    raw: int
    packed: int
    sparse: int
    huffman: int
    sparse_huffman: int
    best_scheme: str
    best: int


class BlobInfo(NamedTuple):
    """Result of :func:`blob_info`: what a blob's header says."""

    version: int
    scheme: str
    dtype: str
    shape: tuple
    n_bytes: int


# --------------------------------------------------------------------------- input

def _check_dtype_label(dtype):
    if dtype is None:
        return None
    return check_choice(dtype, tuple(DTYPES), "dtype")


def _bits(values, dtype):
    """(label, shape, flat uint bit patterns) of the input, validated."""
    label = _check_dtype_label(dtype)
    if isinstance(values, np.ndarray):
        x = values
    else:
        try:
            x = np.asarray(values)
        except Exception as exc:
            raise TypeError(f"values must be an array of floats; could not convert "
                            f"{type(values).__name__}: {exc}") from None
    kind, size = x.dtype.kind, x.dtype.itemsize
    if label == "bfloat16":
        if kind == "u" and size == 2:
            bits = x.astype(np.uint16)
        elif kind == "f" and size == 4:
            low = ~is_bf16_exact(x)
            if low.any():
                first = tuple(int(i) for i in np.argwhere(low)[0])
                raise ValueError(
                    f"values must be exactly representable in bfloat16 for dtype='bfloat16'; "
                    f"{int(low.sum())} value(s) are not, first {x[first]!r} at index {first}")
            bits = bf16_bits_of(x)
        else:
            raise TypeError("with dtype='bfloat16', values must be float32 (bfloat16 values "
                            f"widened) or uint16 (bfloat16 bit patterns); got dtype {x.dtype}")
        return label, x.shape, np.ascontiguousarray(bits).reshape(-1)
    if kind != "f" or size not in (2, 4, 8):
        raise TypeError("values must have a floating dtype (float16, float32 or float64); "
                        f"got dtype {x.dtype}")
    own = {2: "float16", 4: "float32", 8: "float64"}[size]
    if label is not None and label != own:
        raise ValueError(f"dtype={label!r} does not match the values' dtype {own}; "
                         "encode does not convert (pass dtype=None)")
    bits = x.astype(x.dtype.newbyteorder("="), copy=False).view(f"u{size}")
    return own, x.shape, np.ascontiguousarray(bits).reshape(-1)


# --------------------------------------------------------------------------- header

def _header(scheme, label, shape, payload_size):
    dims = b"".join(uleb128(d) for d in shape)
    body = _PREFIX + len(dims) + payload_size + _CRC
    total = body + 1
    while body + uleb128_size(total) != total:
        total = body + uleb128_size(total)
    prefix = MAGIC + bytes([FORMAT_VERSION, SCHEME_CODES[scheme], DTYPES[label][0], len(shape)])
    return prefix + uleb128(total) + dims, total


def _size(shape, payload_size):
    return _header("raw", "float32", shape, payload_size)[1]


def _plans(a, schemes):
    return {s: PLANNERS[s](a) for s in schemes}


# --------------------------------------------------------------------------- public

def encode(values, *, scheme="auto", dtype=None):
    """Encode a float tensor losslessly as bytes.

    Parameters
    ----------
    values : array_like of float16, float32 or float64
        The tensor, any shape (0-d and empty included), any values (NaN,
        Inf and -0.0 are kept bit for bit). It is never modified.
    scheme : {'auto', 'raw', 'packed', 'sparse', 'huffman', 'sparse_huffman'}
        The layout (see the module docstring); 'auto' (default) picks the
        smallest.
    dtype : {None, 'float16', 'float32', 'float64', 'bfloat16'}
        None (default): the values' own dtype. 'bfloat16': `values` are
        bfloat16 numbers given as float32 (each must be exactly representable;
        the Keras file adapters read bfloat16 this way) or as their uint16 bit
        patterns; they are stored in 2 bytes each. Other labels must match
        the values' dtype (no conversion).

    Returns
    -------
    bytes
        A blob that :func:`decode` reads without other information: header
        (magic ``b"WSEB"``, version, scheme, dtype, shape, length), payload,
        CRC32. Layout: docs/format.md.

    Notes
    -----
    Values are compared by bit pattern: the codebook holds the distinct
    patterns and the sparse layouts leave out the all-zero pattern (+0.0).
    Encoding costs O(n log n) for the distinct values (a sort) and O(n) for
    the rest; decoding is O(n) (Huffman: O(n log n) bit operations for short
    streams, by pointer doubling).

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> w = np.array([[0.0, 0.5, 0.0, 0.0], [-0.25, 0.5, 0.0, 0.0]], dtype=np.float32)
    >>> blob = weightshare.encode(w, scheme="packed")
    >>> len(blob)    # header 11 + codebook 1 + 3 * 4 + indices 8 * 2 bits = 2 + CRC 4
    30
    >>> weightshare.decode(blob)
    array([[ 0.  ,  0.5 ,  0.  ,  0.  ],
           [-0.25,  0.5 ,  0.  ,  0.  ]], dtype=float32)
    >>> weightshare.blob_info(weightshare.encode(w)).scheme
    'packed'
    """
    check_choice(scheme, SCHEMES, "scheme")
    label, shape, bits = _bits(values, dtype)
    a = analyse(bits, DTYPES[label][1])
    plans = _plans(a, SCHEME_CODES if scheme == "auto" else (scheme,))
    chosen = min(plans, key=lambda s: (plans[s].size, SCHEME_CODES[s]))
    payload = plans[chosen].write()
    header, total = _header(chosen, label, shape, len(payload))
    body = header + payload
    return body + struct.pack("<I", zlib.crc32(body))


def encoded_sizes(values, *, dtype=None):
    """The size of every encoding of a tensor, and the statistics behind them.

    Sizes are computed without writing the blobs and equal
    ``len(encode(values, scheme=...))`` exactly.

    Parameters
    ----------
    values : array_like of float16, float32 or float64
    dtype : {None, 'float16', 'float32', 'float64', 'bfloat16'}
        As in :func:`encode`.

    Returns
    -------
    EncodedSizes

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> w = np.array([0.0, 0.5, 0.0, 0.0, -0.25, 0.5, 0.0, 0.25], dtype=np.float32)
    >>> s = weightshare.encoded_sizes(w)
    >>> s.n, s.nonzeros, s.distinct, s.index_bits, s.entropy_bits
    (8, 4, 4, 2, 14.0)
    >>> s.raw, s.packed, s.sparse, s.huffman, s.best_scheme
    (46, 33, 35, 40, 'packed')
    """
    label, shape, bits = _bits(values, dtype)
    a = analyse(bits, DTYPES[label][1])
    plans = _plans(a, SCHEME_CODES)
    sizes = {s: _size(shape, p.size) for s, p in plans.items()}
    best = min(sizes, key=lambda s: (sizes[s], SCHEME_CODES[s]))
    p = a.counts[a.counts > 0]
    entropy = float(np.dot(p, np.log2(a.n / p))) if a.n else 0.0
    return EncodedSizes(label, tuple(int(d) for d in shape), a.n, int(np.count_nonzero(bits)),
                        a.k, a.index_bits, entropy, best_scheme=best, best=sizes[best], **sizes)


def _open(blob):
    """Check magic, length and CRC; returns (Reader over the body, version)."""
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise TypeError(f"blob must be bytes, bytearray or memoryview; got {type(blob).__name__}")
    blob = bytes(blob)
    if len(blob) < 4 or blob[:4] != MAGIC:
        raise ValueError(f"not a weightshare encoding: it must start with {MAGIC!r}; "
                         f"got {blob[:4]!r}")
    if len(blob) < _PREFIX + 1:
        raise ValueError(f"truncated blob: {len(blob)} bytes is shorter than any header")
    r = Reader(blob, _PREFIX, len(blob))
    try:
        total = r.uleb("blob length")
    except ValueError:
        raise ValueError(f"truncated or corrupted blob: the length field is unreadable "
                         f"({len(blob)} bytes)") from None
    if total != len(blob):
        what = "truncated" if len(blob) < total else "too long (trailing bytes)"
        raise ValueError(f"{what} blob: its header says {total} bytes, it has {len(blob)} "
                         "(or the header is corrupted)")
    stored = struct.unpack("<I", blob[-_CRC:])[0]
    actual = zlib.crc32(blob[:-_CRC])
    if stored != actual:
        raise ValueError(f"corrupted blob: CRC32 mismatch (stored {stored:08x}, "
                         f"computed {actual:08x})")
    version = blob[4]
    if version != FORMAT_VERSION:
        raise ValueError(f"unsupported format version {version}; this weightshare reads "
                         f"version {FORMAT_VERSION}")
    r.end = len(blob) - _CRC
    return r, blob


def _parse_header(r, blob):
    scheme, dtype, ndim = blob[5], blob[6], blob[7]
    if scheme not in _SCHEME_NAMES:
        r._fail("scheme", f"unknown scheme code {scheme}")
    if dtype not in _DTYPE_NAMES:
        r._fail("dtype", f"unknown dtype code {dtype}")
    if ndim > 64:
        r._fail("ndim", f"{ndim} dimensions (at most 64)")
    shape = tuple(r.uleb(f"dimension {i}", limit=1 << 62) for i in range(ndim))
    return _SCHEME_NAMES[scheme], _DTYPE_NAMES[dtype], shape


def blob_info(blob):
    """Read and check a blob's header (length and CRC32 included), without decoding.

    Parameters
    ----------
    blob : bytes, bytearray or memoryview

    Returns
    -------
    BlobInfo
        ``version``, ``scheme``, ``dtype`` ('bfloat16' included), ``shape``, ``n_bytes``.

    Raises
    ------
    ValueError
        Not a blob, truncated, corrupted (CRC32) or of an unknown version.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> weightshare.blob_info(weightshare.encode(np.zeros((3, 4), np.float16), scheme="raw"))
    BlobInfo(version=1, scheme='raw', dtype='float16', shape=(3, 4), n_bytes=39)
    """
    r, blob = _open(blob)
    scheme, dtype, shape = _parse_header(r, blob)
    return BlobInfo(FORMAT_VERSION, scheme, dtype, shape, len(blob))


def decode(blob):
    """Decode a blob written by :func:`encode`.

    Parameters
    ----------
    blob : bytes, bytearray or memoryview

    Returns
    -------
    ndarray
        The encoded tensor, bit for bit, in its shape and dtype (native byte
        order). bfloat16 tensors come back as float32 arrays holding the same
        values (exactly); :func:`blob_info` tells the stored dtype.

    Raises
    ------
    ValueError
        The blob is not a weightshare encoding, is truncated (or has trailing
        bytes), fails its CRC32 check, or has an unknown version, scheme or
        dtype; the message says which.

    Examples
    --------
    >>> import numpy as np, weightshare
    >>> x = np.array([1.5, -0.0, 0.0, 1.5], dtype=np.float16)
    >>> y = weightshare.decode(weightshare.encode(x, scheme="sparse"))
    >>> y, np.signbit(y[1])
    (array([ 1.5, -0. ,  0. ,  1.5], dtype=float16), np.True_)
    >>> weightshare.decode(weightshare.encode(x)[:-1])
    Traceback (most recent call last):
    ...
    ValueError: truncated blob: its header says 22 bytes, it has 21 (or the header is corrupted)
    """
    r, blob = _open(blob)
    scheme, label, shape = _parse_header(r, blob)
    n = 1
    for d in shape:
        n *= d
    itemsize = DTYPES[label][1]
    bits = READERS[scheme](r, n, itemsize)
    if r.pos != r.end:
        r._fail("payload", f"{r.end - r.pos} bytes left over after the {scheme} payload")
    bits = np.asarray(bits, dtype=f"u{itemsize}").reshape(shape)
    if label == "bfloat16":
        return bf16_to_float32(bits)
    return bits.view(label).copy() if not bits.flags.owndata else bits.view(label)
