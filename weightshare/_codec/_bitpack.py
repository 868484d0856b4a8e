"""Bit packing for the encoders: unsigned codes written most significant bit first.

A stream is the concatenation of the codes' bits, first code first, each code
most significant bit first, padded with zero bits to a whole number of bytes
(the bit order of ``np.packbits`` with ``bitorder="big"``). Codes are at most
:data:`MAX_WIDTH` bits wide, so that any code lies inside the 64-bit window
that starts at its first byte.

All functions assume valid input (the callers validate); they work on whole
arrays, never one code at a time.
"""

import numpy as np

__all__ = ["MAX_WIDTH", "pack_fixed", "pack_codes", "unpack_fixed", "windows", "peek"]

#: widest code (bits): a code starting at any bit of a byte fits in the 64-bit window there
MAX_WIDTH = 57

_U64 = np.uint64


def _byte_plan(width):
    """For `width` <= 8: which of 8 codes (one group = `width` bytes) feed each byte, and how.

    Yields (byte, code, shift): the code's bits land in the byte shifted left
    by `shift` (right by -shift), bits outside the byte falling off.
    """
    for j in range(8):
        first, last = (j * width) // 8, (j * width + width - 1) // 8
        for t in range(first, last + 1):
            yield t, j, (8 * t + 8) - (j * width + width)


def _pack_bytes(values, width, n_bytes):
    n = values.size
    v = np.zeros(-(-n // 8) * 8, dtype=np.uint8)
    v[:n] = values
    v = v.reshape(-1, 8)
    out = np.zeros((v.shape[0], width), dtype=np.uint8)
    for t, j, sh in _byte_plan(width):
        out[:, t] |= (v[:, j] << np.uint8(sh)) if sh >= 0 else (v[:, j] >> np.uint8(-sh))
    return out.tobytes()[:n_bytes]


def _unpack_bytes(buf, count, width):
    rows = -(-count // 8)
    raw = np.zeros(rows * width + 1, dtype=np.uint8)
    src = np.frombuffer(buf, dtype=np.uint8)[:rows * width]
    raw[:src.size] = src
    pairs = (raw[:-1].astype(np.uint16) << 8) | raw[1:]      # byte t and the next one
    pairs = pairs.reshape(rows, width) if width > 1 else pairs.reshape(rows, 1)
    mask = np.uint16((1 << width) - 1)
    out = np.empty((rows, 8), dtype=np.uint8)
    for j in range(8):
        t, off = divmod(j * width, 8)
        out[:, j] = (pairs[:, t] >> np.uint16(16 - off - width)) & mask
    return out.reshape(-1)[:count]


def _period(width):
    """Codes and 64-bit words per period of a fixed-width stream, and each code's place.

    ``width`` bits per code repeat their alignment every ``64 / gcd(width, 64)``
    codes, which fill ``width / gcd`` words exactly. For code ``j`` of a period:
    its word, and the left shift (>= 0) or right shift (< 0) that puts it there.
    """
    g = int(np.gcd(width, 64))
    per, n_words = 64 // g, width // g
    starts = np.arange(per) * width
    return per, n_words, starts // 64, 64 - starts % 64 - width


def pack_fixed(values, width):
    """Pack unsigned `values` in `width` bits each; returns ``ceil(n * width / 8)`` bytes."""
    values = np.asarray(values).reshape(-1)
    n = values.size
    n_bytes = (n * width + 7) // 8
    if width == 0 or n == 0:
        return bytes(n_bytes)
    if width <= 8:
        return _pack_bytes(values, width, n_bytes)
    per, n_words, word, left = _period(width)
    rows = -(-n // per)
    padded = np.zeros(rows * per, dtype=_U64)
    padded[:n] = values
    cols = np.ascontiguousarray(padded.reshape(rows, per).T)    # code j of every period
    out = np.zeros((n_words, rows), dtype=_U64)
    for j in range(per):
        w, sh = int(word[j]), int(left[j])
        if sh >= 0:
            out[w] |= cols[j] << _U64(sh)
        else:
            out[w] |= cols[j] >> _U64(-sh)
            out[w + 1] |= cols[j] << _U64(64 + sh)
    return out.T.astype(">u8").tobytes()[:n_bytes]


def pack_codes(codes, lengths):
    """Concatenate variable-length `codes` (``lengths[i]`` bits each, <= 57).

    Returns ``(stream_bytes, n_bits, starts)`` with the bit offset at which
    every code starts. Zero-length codes write nothing. Every code is shifted
    into the 64-bit word that holds its first bit and, when it crosses the
    word's end, its tail into the next word; the codes of one word do not
    overlap, so OR-reducing them per word builds the word.
    """
    codes = np.asarray(codes, dtype=_U64).reshape(-1)
    lengths = np.asarray(lengths, dtype=np.int64).reshape(-1)
    starts = np.cumsum(lengths)
    n_bits = int(starts[-1]) if starts.size else 0
    starts -= lengths
    if n_bits == 0:
        return b"", 0, starts
    word = starts >> 6
    left = 64 - ((starts & 63) + lengths)          # free bits after the code in its word
    hi = (codes << np.maximum(left, 0).astype(_U64)) >> np.maximum(-left, 0).astype(_U64)
    n_words = (n_bits + 63) >> 6
    words = np.zeros(n_words + 1, dtype=_U64)
    first = np.flatnonzero(np.diff(word, prepend=-1))
    words[word[first]] = np.bitwise_or.reduceat(hi, first)
    spill = np.flatnonzero(left < 0)
    if spill.size:
        words[word[spill] + 1] |= codes[spill] << (64 + left[spill]).astype(_U64)
    return words.astype(">u8").tobytes()[:(n_bits + 7) // 8], n_bits, starts


def windows(buf):
    """The 64-bit big-endian window starting at every byte of `buf` (zero padded).

    ``windows(buf)[j]`` holds bytes ``j .. j+7``; bits past the end read as 0.
    """
    raw = np.frombuffer(buf, dtype=np.uint8)
    n = raw.size
    padded = np.zeros(n + 16, dtype=np.uint8)
    padded[:n] = raw
    out = np.empty(n + 1, dtype=_U64)
    count = -(-(n + 1) // 8)
    for r in range(8):  # eight aligned views, interleaved
        part = padded[r:r + 8 * count].view(">u8")
        out[r::8] = part[:out[r::8].size]
    return out


def peek(win, pos, width):
    """The `width` bits (<= 57) starting at bit positions `pos`, via :func:`windows`."""
    pos = np.asarray(pos, dtype=np.int64)
    w = win[pos >> 3] << (pos & 7).astype(_U64)
    return w >> _U64(64 - width)


def unpack_fixed(buf, count, width):
    """Read `count` unsigned codes of `width` bits from the start of `buf`.

    Returns uint8 codes for widths up to 8, uint64 otherwise.
    """
    if width == 0 or count == 0:
        return np.zeros(count, dtype=np.uint8)
    if width <= 8:
        return _unpack_bytes(buf, count, width)
    per, n_words, word, left = _period(width)
    rows = -(-count // per)
    raw = np.zeros(rows * n_words * 8, dtype=np.uint8)
    src = np.frombuffer(buf, dtype=np.uint8)[:raw.size]
    raw[:src.size] = src
    words = raw.view(">u8").reshape(rows, n_words).T.astype(_U64)   # (n_words, rows)
    mask = _U64((1 << width) - 1)
    cols = np.empty((rows, per), dtype=_U64)
    for j in range(per):
        w, sh = int(word[j]), int(left[j])
        if sh >= 0:
            cols[:, j] = (words[w] >> _U64(sh)) & mask
        else:
            cols[:, j] = ((words[w] << _U64(-sh)) | (words[w + 1] >> _U64(64 + sh))) & mask
    return cols.reshape(-1)[:count]
