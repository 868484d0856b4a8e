"""Small readers shared by the Keras file adapters: string attributes, zip members.

Keras writers and h5py versions store the same string attribute as vlen
UTF-8, vlen ASCII, fixed-length ``|S<n>`` or (for an empty list) a float64
array of shape (0,); these helpers read all of them. Only the adapters
(``weightshare._io``) import h5py; nothing here does.
"""

import io
import struct
import zlib

import numpy as np

__all__ = ["decode_str", "str_list_attr", "MemberWindow",
           "member_data_offset", "check_local_headers", "crc32_of"]


def decode_str(value):
    """A string attribute value (bytes, numpy bytes, str, 0-d array) as str."""
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    if isinstance(value, str):
        return value
    raise TypeError(f"not a string: {type(value).__name__}")


def str_list_attr(obj, name):
    """A list-of-strings attribute (also split ``name0, name1, ...``); [] if empty; None if absent."""
    attrs = obj.attrs
    if name in attrs:
        chunks = [attrs[name]]
    elif f"{name}0" in attrs:
        chunks, i = [], 0
        while f"{name}{i}" in attrs:
            chunks.append(attrs[f"{name}{i}"])
            i += 1
    else:
        return None
    out = []
    for chunk in chunks:
        arr = np.asarray(chunk)
        if arr.dtype.kind in "fiu" and arr.size == 0:
            continue
        try:
            out.extend(decode_str(v) for v in arr.reshape(-1))
        except (TypeError, UnicodeDecodeError) as exc:
            what = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else \
                f"holds {arr.dtype} values, not strings"
            raise ValueError(f"the {name} attribute of {obj.name} {what}") from None
    return out


class MemberWindow(io.RawIOBase):
    """Read-only file object over ``[offset, offset + size)`` of an open file."""

    def __init__(self, f, offset, size):
        super().__init__()
        self._f, self._off, self._size, self._pos = f, offset, size, 0

    def readable(self):
        return True

    def seekable(self):
        return True

    @property
    def region(self):
        """(file, offset, size): where the window lies."""
        return self._f, self._off, self._size

    def tell(self):
        return self._pos

    def seek(self, pos, whence=0):
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
        return self._pos

    def readinto(self, buf):
        n = max(0, min(len(buf), self._size - self._pos))
        if n == 0:
            return 0
        self._f.seek(self._off + self._pos)
        data = self._f.read(n)
        buf[:len(data)] = data
        self._pos += len(data)
        return len(data)


def member_data_offset(f, info):
    f.seek(info.header_offset)
    header = f.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename}")
    n_name, n_extra = struct.unpack("<HH", header[26:30])
    return info.header_offset + 30 + n_name + n_extra


def _encoded_name(info):
    name = info.orig_filename
    if name.isascii():                  # the same in both encodings (and cp437's codec is slow)
        return name.encode("ascii")
    return name.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def check_local_headers(f, infos, end):
    """A message saying which member's local header or data is wrong, or None.

    zipfile checks a member's local header only when the member is opened;
    a rewrite copies members it never opens, so a damaged header would go
    unnoticed (and make the output unreadable). Each member's data must also
    end before the next member's local header (the last one's before `end`,
    where the central directory starts): members whose data overlap would
    let a few compressed bytes decode again and again. Members are visited
    in file order; 30 + len(name) bytes are read per member, never a length
    the file states.
    """
    order = sorted(infos, key=lambda i: i.header_offset)
    stops = [i.header_offset for i in order[1:]] + [end]
    for info, stop in zip(order, stops):
        f.seek(info.header_offset)
        header = f.read(30)
        if len(header) != 30 or header[:4] != b"PK\x03\x04":
            return f"the local header of {info.filename!r} is missing or damaged"
        n_name, n_extra = struct.unpack("<HH", header[26:30])
        expected = _encoded_name(info)
        name = f.read(min(n_name, len(expected) + 1))
        if name != expected:
            return (f"the local header of {info.filename!r} names {name!r}: the zip is "
                    "damaged")
        data_end = info.header_offset + 30 + n_name + n_extra + info.compress_size
        if data_end > stop:
            return (f"the data of {info.filename!r} ({info.compress_size} bytes) runs into the "
                    "next member or past the end of the members: the zip is damaged or forged")
    return None


def crc32_of(f, size, chunk=1 << 20):
    """CRC-32 of the first `size` bytes of the seekable file object `f` (read in chunks)."""
    crc, left = 0, size
    f.seek(0)
    while left:
        block = f.read(min(chunk, left))
        if not block:
            break
        crc = zlib.crc32(block, crc)
        left -= len(block)
    return crc
