"""The payload of each encoding scheme: exact size, writer and reader.

Every scheme works on the tensor's bit patterns (unsigned integers of the
tensor's width), so encoding is exact for every value, -0.0 and NaN payloads
included. The codebook is the sorted distinct bit patterns; a "zero" is the
all-zero pattern (+0.0). Byte layouts: docs/format.md.

Prior validation is assumed (encode.py validates and parses the header).
"""

from functools import cached_property
from typing import Callable, NamedTuple

import numpy as np

from . import _huffman
from ._bitpack import pack_fixed, unpack_fixed
from ._bytes import uleb128, uleb128_size

__all__ = ["Analysis", "analyse", "PLANNERS", "READERS", "SCHEME_CODES"]

#: scheme name -> code byte in the header (the order is also the tie-break order of 'auto')
SCHEME_CODES = {"raw": 0, "packed": 1, "sparse": 2, "huffman": 3, "sparse_huffman": 4}

#: sparse_huffman evaluates every gap width exactly up to this codebook size
_EXACT_GAP_SEARCH_K = 4096


def _uint_for(k):
    for dt in (np.uint8, np.uint16, np.uint32):
        if k <= np.iinfo(dt).max + 1:
            return dt
    return np.uint64


def _index(bits, codebook):
    """Position of every pattern in the sorted `codebook` (which holds them all)."""
    k = codebook.size
    dt = _uint_for(k)
    if k <= 1:
        return np.zeros(bits.size, dtype=dt)
    width = 8 * bits.dtype.itemsize
    top = min(width, 16)
    # a lookup table on the leading 16 bits, when they tell the codebook entries apart
    heads = codebook >> (width - top) if width > top else codebook
    if np.unique(heads).size == k:
        lut = np.zeros(1 << top, dtype=dt)
        lut[heads] = np.arange(k, dtype=dt)
        index = lut[bits >> (width - top)] if width > top else lut[bits]
        if width == top or np.array_equal(codebook[index], bits):
            return index
    return np.searchsorted(codebook, bits).astype(dt)


class Analysis:
    """What the schemes need to know about a tensor (flat, C order), computed on demand."""

    def __init__(self, bits, itemsize):
        self.bits = bits            # bit patterns, uint of the tensor's width
        self.itemsize = itemsize    # bytes per value in the blob
        self.n = bits.size

    @cached_property
    def codebook(self):
        """Sorted distinct patterns."""
        return np.unique(self.bits)

    @cached_property
    def index(self):
        """Position of each entry's pattern in the codebook."""
        return _index(self.bits, self.codebook)

    @cached_property
    def counts(self):
        """int64 occurrences of each codebook entry."""
        return np.bincount(self.index, minlength=self.k).astype(np.int64)

    @cached_property
    def gaps(self):
        """The zero runs before the non-zeros (the sparse layouts)."""
        return _gaps(self)

    @cached_property
    def nonzero_counts(self):
        """int64 occurrences of each codebook entry among the non-zeros."""
        return np.bincount(self.index[self.gaps.nonzero], minlength=self.k).astype(np.int64)

    @property
    def k(self):
        return self.codebook.size

    @property
    def index_bits(self):
        return max(self.k - 1, 0).bit_length()


def analyse(bits, itemsize):
    """Lazy codebook, indices and counts of flat bit patterns `bits`."""
    return Analysis(bits, itemsize)


class Plan(NamedTuple):
    """A scheme's payload for one tensor: its exact size, and how to write it."""

    size: int
    write: Callable[[], bytes]


def _codebook_bytes(a):
    return uleb128(a.k) + a.codebook.astype(f"<u{a.itemsize}").tobytes()


def _codebook_size(a):
    return uleb128_size(a.k) + a.k * a.itemsize


# --------------------------------------------------------------------------- raw

def _plan_raw(a):
    return Plan(a.n * a.itemsize, lambda: a.bits.astype(f"<u{a.itemsize}").tobytes())


def _read_raw(r, n, itemsize):
    return np.frombuffer(r.take(n * itemsize, "raw values"), dtype=f"<u{itemsize}")


# --------------------------------------------------------------------------- packed

def _plan_packed(a):
    b = a.index_bits
    size = _codebook_size(a) + (a.n * b + 7) // 8
    return Plan(size, lambda: _codebook_bytes(a) + pack_fixed(a.index, b))


def _read_codebook(r, n, itemsize):
    k = r.uleb("codebook size", limit=n + 1)
    if n and not k:
        r._fail("codebook size", f"an empty codebook for {n} values")
    raw = r.take(k * itemsize, "codebook")
    return np.frombuffer(raw, dtype=f"<u{itemsize}")


def _check_index(r, idx, k, what):
    if idx.size and int(idx.max()) >= k:
        r._fail(what, f"index {int(idx.max())} is outside the codebook of {k} values")


def _read_packed(r, n, itemsize):
    codebook = _read_codebook(r, n, itemsize)
    b = max(codebook.size - 1, 0).bit_length()
    idx = unpack_fixed(r.take((n * b + 7) // 8, "packed indices"), n, b)
    _check_index(r, idx, codebook.size, "packed indices")
    return codebook[idx] if n else codebook[:0]


# --------------------------------------------------------------------------- sparse layout

class _Gaps(NamedTuple):
    """Zero runs before each non-zero, as distinct run lengths with counts."""

    nonzero: np.ndarray   # flat positions of non-zero patterns
    gaps: np.ndarray      # zeros skipped before each non-zero
    values: np.ndarray    # distinct gap values (sorted)
    counts: np.ndarray    # int64 occurrences of each


def _gaps(a):
    nonzero = np.flatnonzero(a.bits)
    gaps = np.diff(nonzero, prepend=-1) - 1
    if gaps.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return _Gaps(nonzero, gaps, empty, empty)
    top = int(gaps.max())
    if top < 4 * gaps.size + 1024:
        counts = np.bincount(gaps)
        values = np.flatnonzero(counts)
        return _Gaps(nonzero, gaps, values, counts[values].astype(np.int64))
    values, counts = np.unique(gaps, return_counts=True)
    return _Gaps(nonzero, gaps, values, counts.astype(np.int64))


def _gap_widths(gp):
    """Gap widths worth trying: 0 up to the width of the longest zero run."""
    top = int(gp.values[-1]) if gp.values.size else 0
    return range(0, top.bit_length() + 1)


def _fillers(gp, g):
    return int(np.dot(gp.values >> g, gp.counts))


def _entries(a, gp, g):
    """Gap field and codebook index of every stored entry, fillers included."""
    q = gp.gaps >> g
    m = gp.nonzero.size + int(q.sum())
    gap = np.full(m, (1 << g) - 1, dtype=_uint_for(1 << g))
    code = np.zeros(m, dtype=a.index.dtype)
    real = np.cumsum(q + 1) - 1
    gap[real] = gp.gaps & ((1 << g) - 1)
    code[real] = a.index[gp.nonzero]
    return gap, code


def _sparse_size(a, m, g):
    return 1 + uleb128_size(m) + (m * g + 7) // 8 + (m * a.index_bits + 7) // 8


def _plan_sparse(a):
    gp = a.gaps
    nnz = gp.nonzero.size
    g = min(_gap_widths(gp), key=lambda g: _sparse_size(a, nnz + _fillers(gp, g), g))
    m = nnz + _fillers(gp, g)

    def write():
        gap, code = _entries(a, gp, g)
        return b"".join((_codebook_bytes(a), bytes([g]), uleb128(m), pack_fixed(gap, g),
                         pack_fixed(code, a.index_bits)))
    return Plan(_codebook_size(a) + _sparse_size(a, m, g), write)


def _scatter(r, n, codebook, gap, code):
    """Place entries at their positions; everything else is the zero pattern."""
    _check_index(r, code, codebook.size, "sparse indices")
    out = np.zeros(n, dtype=codebook.dtype)
    if gap.size:
        pos = np.cumsum(gap.astype(np.int64) + 1) - 1
        if pos[-1] >= n:
            r._fail("sparse gaps", f"entries run to position {int(pos[-1])} of {n}")
        out[pos] = codebook[code]
    return out


def _read_gap_header(r, n):
    g = r.u8("gap width")
    if g > 57:
        r._fail("gap width", f"{g} bits is more than 57")
    m = r.uleb("entry count", limit=n + 1)
    return g, m


def _read_sparse(r, n, itemsize):
    codebook = _read_codebook(r, n, itemsize)
    g, m = _read_gap_header(r, n)
    b = max(codebook.size - 1, 0).bit_length()
    gap = unpack_fixed(r.take((m * g + 7) // 8, "sparse gaps"), m, g)
    code = unpack_fixed(r.take((m * b + 7) // 8, "sparse indices"), m, b)
    return _scatter(r, n, codebook, gap, code)


# --------------------------------------------------------------------------- Huffman

def _plan_huffman(a):
    lengths = _huffman.code_lengths(a.counts)
    size = _codebook_size(a) + _huffman.stream_size(a.counts, lengths)
    return Plan(size, lambda: _codebook_bytes(a) + _huffman.write_stream(a.index, lengths))


def _read_huffman(r, n, itemsize):
    codebook = _read_codebook(r, n, itemsize)
    idx = _huffman.read_stream(r, n, "Huffman indices")
    _check_index(r, idx, codebook.size, "Huffman indices")
    return codebook[idx]


def _gap_histogram(gp, g):
    """Counts of each gap field symbol 0 .. 2**g - 1 (trimmed after the last used)."""
    top = (1 << g) - 1
    hist = np.bincount(gp.values & top, weights=gp.counts, minlength=0).astype(np.int64) \
        if gp.values.size else np.zeros(0, dtype=np.int64)
    fill = _fillers(gp, g)
    if fill:
        hist = np.concatenate((hist, np.zeros(max(top + 1 - hist.size, 0), dtype=np.int64)))
        hist[top] += fill
    return hist


def _code_histogram(a, gp, g):
    hist = a.nonzero_counts.copy()
    if a.k:
        hist[0] += _fillers(gp, g)
    return hist


def _huffman_bits_estimate(hist):
    """Entropy bound of a histogram, in bits (a cheap stand-in for its Huffman size)."""
    used = hist[hist > 0]
    total = used.sum()
    return float(np.dot(used, np.log2(total / used))) if total else 0.0


def _plan_sparse_huffman(a):
    gp = a.gaps
    nnz = gp.nonzero.size

    def exact(g):
        gh, ch = _gap_histogram(gp, g), _code_histogram(a, gp, g)
        gl, cl = _huffman.code_lengths(gh), _huffman.code_lengths(ch)
        return (1 + uleb128_size(nnz + _fillers(gp, g)) + _huffman.stream_size(gh, gl)
                + _huffman.stream_size(ch, cl)), gh, gl, ch, cl

    widths = _gap_widths(gp)
    if a.k <= _EXACT_GAP_SEARCH_K:
        g = min(widths, key=lambda g: exact(g)[0])
    else:   # the index code changes with g only through the filler count: estimate it
        def estimate(g):
            gh = _gap_histogram(gp, g)
            return (_huffman.stream_size(gh, _huffman.code_lengths(gh))
                    + _huffman_bits_estimate(_code_histogram(a, gp, g)) / 8)
        g = min(widths, key=estimate)
    size, gh, gl, ch, cl = exact(g)
    m = nnz + _fillers(gp, g)

    def write():
        gap, code = _entries(a, gp, g)
        return b"".join((_codebook_bytes(a), bytes([g]), uleb128(m),
                         _huffman.write_stream(gap, gl), _huffman.write_stream(code, cl)))
    return Plan(_codebook_size(a) + size, write)


def _read_sparse_huffman(r, n, itemsize):
    codebook = _read_codebook(r, n, itemsize)
    g, m = _read_gap_header(r, n)
    gap = _huffman.read_stream(r, m, "Huffman gaps")
    if gap.size and int(gap.max()) >= 1 << g:
        r._fail("Huffman gaps", f"gap {int(gap.max())} does not fit {g} bits")
    code = _huffman.read_stream(r, m, "Huffman sparse indices")
    return _scatter(r, n, codebook, gap, code)


PLANNERS = {"raw": _plan_raw, "packed": _plan_packed, "sparse": _plan_sparse,
            "huffman": _plan_huffman, "sparse_huffman": _plan_sparse_huffman}
READERS = {"raw": _read_raw, "packed": _read_packed, "sparse": _read_sparse,
           "huffman": _read_huffman, "sparse_huffman": _read_sparse_huffman}
