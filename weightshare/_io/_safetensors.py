"""safetensors files, single and sharded, read one tensor at a time without a framework.

The format (https://github.com/huggingface/safetensors): an 8-byte
little-endian unsigned header length ``N``, ``N`` bytes of UTF-8 JSON (an
object: tensor name -> ``{"dtype", "shape", "data_offsets": [begin, end]}``,
and an optional ``"__metadata__"`` of string -> string), then the data: each
tensor's little-endian bytes at ``[8 + N + begin, 8 + N + end)``. A sharded
checkpoint is a ``model.safetensors.index.json`` (``{"metadata": {...},
"weight_map": {tensor: shard file}}``) beside its shards.

Everything is checked before a value is read, and any problem is one
:class:`~weightshare.errors.FileFormatError` naming the file and the tensor:
the header length (at most :data:`MAX_HEADER_BYTES` and inside the file), the
JSON (an object, no key twice, nesting bounded), every entry (a known dtype,
a shape of ints >= 0, offsets ``0 <= begin <= end`` inside the data, a byte
size of ``prod(shape) * itemsize``, no two tensors sharing a byte),
``__metadata__`` (string -> string), and for an index: shard names that are
plain file names in the index's folder, every shard present, each tensor in
exactly the shard the index names. A tensor is read with a seek and a bounded
read of its own bytes (never a map of the whole file).
"""

import json
import os
import struct
from typing import NamedTuple

import numpy as np

from .._base._json import MAX_DEPTH, NestingError, check_depth
from .._codec._bf16 import bf16_to_float32
from .._codec._fp8 import fp8_to_float32
from ..errors import FileFormatError
from ._container import ModelFile, check_model_path
from ._st_roles import role_of

__all__ = ["ST_DTYPES", "MAX_HEADER_BYTES", "MAX_INDEX_BYTES", "INDEX_SUFFIX", "Entry", "Shard",
           "SafetensorsFile", "is_safetensors", "parse_header", "find_index"]

#: safetensors dtype -> (weightshare dtype name, NumPy storage dtype)
ST_DTYPES = {
    "F64": ("float64", "<f8"), "F32": ("float32", "<f4"), "F16": ("float16", "<f2"),
    "BF16": ("bfloat16", "<u2"), "F8_E4M3": ("float8_e4m3fn", "u1"),
    "F8_E5M2": ("float8_e5m2", "u1"),
    "I64": ("int64", "<i8"), "I32": ("int32", "<i4"), "I16": ("int16", "<i2"), "I8": ("int8", "i1"),
    "U64": ("uint64", "<u8"), "U32": ("uint32", "<u4"), "U16": ("uint16", "<u2"),
    "U8": ("uint8", "u1"), "BOOL": ("bool", "|b1"),
}
_FLOATS = ("float64", "float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")
#: the largest header read (the safetensors library's own limit is 100 MB)
MAX_HEADER_BYTES = 100_000_000
#: the largest index file read (a 7B model's index is about 30 kB)
MAX_INDEX_BYTES = 64 << 20
INDEX_SUFFIX = ".safetensors.index.json"
_CHUNK = 1 << 24


class Entry(NamedTuple):
    """One tensor of a safetensors header (offsets relative to the data)."""

    name: str
    st_dtype: str
    shape: tuple
    begin: int
    end: int

    @property
    def storage(self):
        return np.dtype(ST_DTYPES[self.st_dtype][1])


class Shard(NamedTuple):
    """One safetensors file: where its data starts, its entries, its metadata and key order."""

    path: str
    file_name: str
    size: int
    data_start: int
    entries: dict           # name -> Entry, in header order
    metadata: dict          # None when the header has no __metadata__
    keys: tuple             # the header's keys in order (__metadata__ included)


def _pairs(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        twice = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise _Duplicate(twice)
    return dict(pairs)


class _Duplicate(ValueError):
    pass


def _load(text, what):
    """Parse JSON text: no key twice in an object, nesting bounded (messages say `what`)."""
    try:
        obj = json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        raise NestingError(f"{what} is nested more than {MAX_DEPTH} levels deep") from None
    except _Duplicate as exc:
        raise ValueError(f"{what} holds the key {str(exc)!r} twice") from None
    except ValueError as exc:
        raise ValueError(f"{what} is not JSON ({exc})") from None
    return check_depth(obj, what)


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def parse_header(path, fail):
    """The :class:`Shard` of the safetensors file `path`; `fail(message, tensor=None)` raises."""
    size = os.path.getsize(path)
    if size < 8:
        fail(f"is {size} bytes long: too short for a safetensors file (an 8-byte header length "
             "first)")
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        if n > MAX_HEADER_BYTES:
            fail(f"declares a header of {n} bytes; weightshare reads headers of at most "
                 f"{MAX_HEADER_BYTES} bytes (100 MB, as the safetensors library)")
        if n > size - 8:
            fail(f"declares a header of {n} bytes, past the end of the file ({size} bytes)")
        raw = f.read(n)
    if len(raw) != n:
        fail(f"ends inside its header ({len(raw)} of {n} bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        fail(f"its header is not UTF-8 ({exc.reason} at byte {exc.start})")
    try:
        header = _load(text, "the header")
    except ValueError as exc:
        fail(" ".join(str(exc).split()))
    if not isinstance(header, dict):
        fail(f"its header is JSON {type(header).__name__}, not an object")
    data_start, data_size = 8 + n, size - 8 - n
    metadata = None
    entries = {}
    for name, spec in header.items():
        if name == "__metadata__":
            if not isinstance(spec, dict) or not all(isinstance(v, str) for v in spec.values()):
                fail("__metadata__ is not an object of string -> string", "__metadata__")
            metadata = spec
            continue
        entries[name] = _entry(name, spec, data_size, fail)
    _check_overlaps(entries, fail)
    return Shard(path, os.path.basename(path), size, data_start, entries, metadata,
                 tuple(header))


def _entry(name, spec, data_size, fail):
    if not isinstance(spec, dict):
        fail("its header entry is not an object", name)
    extra = sorted(set(spec) - {"dtype", "shape", "data_offsets"})
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in spec]
    if missing:
        fail(f"its header entry has no {missing[0]!r}", name)
    if extra:
        fail(f"its header entry has an unknown key {extra[0]!r}", name)
    dtype, shape, offsets = spec["dtype"], spec["shape"], spec["data_offsets"]
    if not isinstance(dtype, str) or dtype not in ST_DTYPES:
        fail(f"has dtype {dtype!r}, which weightshare does not read (known: "
             f"{', '.join(ST_DTYPES)})", name)
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        fail(f"has shape {shape!r}; a shape is a list of integers >= 0", name)
    if (not isinstance(offsets, list) or len(offsets) != 2
            or not all(_is_int(o) and o >= 0 for o in offsets)):
        fail(f"has data_offsets {offsets!r}; expected [begin, end], integers >= 0", name)
    begin, end = offsets
    if begin > end:
        fail(f"has data_offsets [{begin}, {end}]: the end is before the beginning", name)
    if end > data_size:
        fail(f"has data_offsets [{begin}, {end}] past the end of the data ({data_size} bytes)",
             name)
    count = 1
    for d in shape:
        count *= d
    nbytes = count * np.dtype(ST_DTYPES[dtype][1]).itemsize
    if nbytes != end - begin:
        fail(f"is {dtype} of shape {tuple(shape)} ({nbytes} bytes) but its data_offsets "
             f"[{begin}, {end}] hold {end - begin} bytes", name)
    return Entry(name, dtype, tuple(shape), begin, end)


def _check_overlaps(entries, fail):
    spans = sorted((e.begin, e.end, e.name) for e in entries.values() if e.end > e.begin)
    for (a0, a1, a), (b0, b1, b) in zip(spans, spans[1:]):
        if b0 < a1:
            fail(f"its data overlaps that of {a!r} (bytes [{b0}, {min(a1, b1)}) of the data)", b)


def find_index(folder):
    """The index file of a checkpoint folder, or None (a folder holding one .safetensors file)."""
    names = sorted(os.listdir(folder))
    if "model" + INDEX_SUFFIX in names:
        return os.path.join(folder, "model" + INDEX_SUFFIX)
    index = [n for n in names if n.endswith(INDEX_SUFFIX)]
    if len(index) > 1:
        raise FileFormatError(folder, f"holds {len(index)} safetensors indexes "
                                      f"({', '.join(index[:3])}); give the one to use")
    return os.path.join(folder, index[0]) if index else None


def is_safetensors(path):
    """Whether `path` is for this reader: a ``.safetensors`` file or index, a checkpoint folder
    holding one, or a file whose first bytes are a header length and ``{``."""
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".safetensors") or lower.endswith(INDEX_SUFFIX):
        return True
    if os.path.isdir(path):
        try:
            names = os.listdir(path)
        except OSError:
            return False
        return any(n.endswith(".safetensors") or n.endswith(INDEX_SUFFIX) for n in names)
    if not os.path.isfile(path):      # a pipe or device is never opened (it could block)
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return (len(head) == 9 and head[8:9] == b"{" and not head.startswith(b"\x89HDF")
            and not head.startswith(b"PK") and not head.startswith(b"\x93NUMPY"))


class SafetensorsFile(ModelFile):
    """A safetensors file or sharded checkpoint opened read-only (a context manager).

    ``fmt`` is ``"safetensors"`` or ``"safetensors_sharded"``; ``shards`` the
    :class:`Shard` of each file (one for a single file); ``index`` the parsed
    index (sharded) and ``index_path``; ``records`` the tensors (built with
    `record_type`, :class:`~weightshare._io._reader.WeightInfo`).
    """

    def __init__(self, path, record_type):
        super().__init__(path)
        self._record_type = record_type
        self.records = []
        self.shards = []
        self.index = self.index_path = None
        self._where = {}        # record name -> (shard, entry)

    @classmethod
    def open(cls, path, record_type):
        reader = cls(path, record_type)
        try:
            reader._open()
        except (FileFormatError, FileNotFoundError):
            raise
        except (OSError, ValueError, TypeError, MemoryError, RecursionError) as exc:
            raise FileFormatError(reader.path, f"cannot read the file ({type(exc).__name__}: "
                                               f"{' '.join(str(exc).split())})") from None
        return reader

    def _open(self):
        path = self.path
        if os.path.isdir(path):
            index = find_index(path)
            if index is None:
                files = sorted(n for n in os.listdir(path) if n.endswith(".safetensors"))
                if len(files) != 1:
                    self.fail(f"is a folder holding {len(files)} .safetensors files and no "
                              f"{'model' + INDEX_SUFFIX}; give one file or the index")
                self._open_single(os.path.join(path, files[0]))
            else:
                self._open_index(index)
            return
        check_model_path(path, self.fail, "a safetensors file")
        if path.lower().endswith(INDEX_SUFFIX) or path.lower().endswith(".json"):
            self._open_index(path)
        else:
            self._open_single(path)

    def _shard_fail(self, path):
        def fail(message, tensor=None):
            raise FileFormatError(path, message, tensor)
        return fail

    def _open_single(self, path):
        self.fmt = "safetensors"
        shard = parse_header(path, self._shard_fail(path))
        self.shards = [shard]
        for e in shard.entries.values():
            self._add(shard, e, e.name)

    def _open_index(self, path):
        self.fmt = "safetensors_sharded"
        self.index_path = path
        fail = self._shard_fail(path)
        check_model_path(path, fail, "a safetensors index")
        size = os.path.getsize(path)
        if size > MAX_INDEX_BYTES:
            fail(f"is {size} bytes; weightshare reads indexes of at most {MAX_INDEX_BYTES} bytes")
        with open(path, "rb") as f:
            raw = f.read(MAX_INDEX_BYTES + 1)
        try:
            index = _load(raw.decode("utf-8"), "the index")
        except UnicodeDecodeError as exc:
            fail(f"is not UTF-8 ({exc.reason} at byte {exc.start})")
        except ValueError as exc:
            fail(" ".join(str(exc).split()))
        if not isinstance(index, dict) or not isinstance(index.get("weight_map"), dict):
            fail("is not a safetensors index (a JSON object with a \"weight_map\" object)")
        if "metadata" in index and not isinstance(index["metadata"], dict):
            fail("its \"metadata\" is not an object")
        weight_map = index["weight_map"]
        folder = os.path.dirname(os.path.abspath(path))
        shard_names = []
        for name, shard in weight_map.items():
            if not isinstance(shard, str):
                fail(f"maps the tensor to {shard!r}, not a file name", name)
            if (shard in ("", ".", "..") or "/" in shard or "\\" in shard or "\0" in shard
                    or os.sep in shard or not shard.endswith(".safetensors")):
                fail(f"maps the tensor to {shard!r}: a shard is a .safetensors file in the "
                     "index's own folder", name)
            if shard not in shard_names:
                shard_names.append(shard)
        self.index = index
        owner = {}
        for file_name in sorted(shard_names):
            spath = os.path.join(folder, file_name)
            if not os.path.isfile(spath):
                first = next(n for n, s in weight_map.items() if s == file_name)
                fail(f"maps the tensor to the shard {file_name!r}, which is missing", first)
            shard = parse_header(spath, self._shard_fail(spath))
            self.shards.append(shard)
            for e in shard.entries.values():
                if e.name in owner:
                    fail(f"the tensor is in two shards, {owner[e.name]!r} and {file_name!r}",
                         e.name)
                owner[e.name] = file_name
        for shard in self.shards:
            file_name = shard.file_name
            for e in shard.entries.values():
                mapped = weight_map.get(e.name)
                if mapped != file_name:
                    where = (f"maps it to {mapped!r}" if mapped is not None
                             else "does not list it")
                    fail(f"the tensor is in shard {file_name!r} but the index {where}", e.name)
                self._add(shard, e, f"{file_name}:{e.name}")
        for name, file_name in weight_map.items():
            if name not in owner:
                fail(f"maps the tensor to {file_name!r}, whose header does not hold it", name)

    def _add(self, shard, e, location):
        dtype = ST_DTYPES[e.st_dtype][0]
        role, kind = role_of(e.name, dtype in _FLOATS, len(e.shape))
        self.records.append(self._record_type(e.name, e.name, e.name, None, role, kind, e.shape,
                                              dtype, location, channel_axis=0))
        self._where[e.name] = (shard, e)

    # ------------------------------------------------------------------ reading
    def place(self, record):
        """(Shard, Entry) of a record."""
        return self._where[record.name]

    def read_stored(self, record):
        """The stored array of `record`: its dtype's NumPy type (bfloat16 as uint16 bits, FP8 as
        uint8 codes), native byte order, read with one seek and one bounded read."""
        shard, e = self._where[record.name]
        storage = e.storage
        count = (e.end - e.begin) // storage.itemsize
        try:
            with open(shard.path, "rb") as f:
                f.seek(shard.data_start + e.begin)
                arr = np.fromfile(f, dtype=storage, count=count)
        except (OSError, ValueError) as exc:
            raise FileFormatError(shard.path, f"cannot read the data ({type(exc).__name__}: "
                                              f"{' '.join(str(exc).split())})", e.name) from None
        if arr.size != count:
            raise FileFormatError(shard.path, f"ends inside the tensor's data ({arr.size} of "
                                              f"{count} values): the file changed?", e.name)
        arr = arr.reshape(e.shape)
        if not arr.dtype.isnative:
            arr = arr.astype(arr.dtype.newbyteorder("="))
        return arr

    def read(self, record):
        """The values of `record` (bfloat16 and FP8 as exact float32)."""
        return self.decode(record, self.read_stored(record))

    @staticmethod
    def decode(record, arr):
        """Values from the stored array of `record` (bfloat16 and FP8 as exact float32)."""
        if record.dtype == "bfloat16":
            return bf16_to_float32(arr)
        if record.dtype.startswith("float8"):
            return fp8_to_float32(arr, record.dtype)
        return arr
