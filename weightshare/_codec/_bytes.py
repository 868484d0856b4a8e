"""Byte-level fields of an encoded blob: ULEB128 integers, bytes, bounds-checked reads.

ULEB128 (as in DWARF, WebAssembly and protobuf varints): seven bits per byte,
least significant group first, the high bit set on every byte but the last.
"""

__all__ = ["uleb128", "uleb128_size", "Reader"]


def uleb128(value):
    """The ULEB128 bytes of a non-negative int."""
    out = bytearray()
    while True:
        low = value & 0x7F
        value >>= 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def uleb128_size(value):
    """Number of bytes of ``uleb128(value)``."""
    return max(1, -(-int(value).bit_length() // 7))


class Reader:
    """Sequential reads from a bytes-like object; every read is bounds-checked.

    A read past the end raises ``ValueError`` naming the field, its offset and
    what was missing (the caller has already checked length and CRC, so this
    means the writer was broken or the CRC collided).
    """

    def __init__(self, buf, pos, end):
        self.buf = buf
        self.pos = pos
        self.end = end

    def _fail(self, what, detail):
        raise ValueError(f"corrupted blob: {what} at byte {self.pos}: {detail}")

    def take(self, n, what):
        """The next `n` bytes (a memoryview)."""
        if n < 0 or n > self.end - self.pos:
            self._fail(what, f"needs {n} bytes, {self.end - self.pos} left")
        view = memoryview(self.buf)[self.pos:self.pos + n]
        self.pos += n
        return view

    def u8(self, what):
        return self.take(1, what)[0]

    def uleb(self, what, limit=1 << 63):
        """A ULEB128 integer, at most 10 bytes and below `limit`."""
        value, shift = 0, 0
        start = self.pos
        while True:
            if self.pos >= self.end or shift > 63:
                self.pos = start
                self._fail(what, "unterminated integer")
            byte = self.buf[self.pos]
            self.pos += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                break
        if value >= limit:
            self.pos = start
            self._fail(what, f"value {value} is out of range (must be < {limit})")
        return value
