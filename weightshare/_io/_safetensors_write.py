"""Same-shape rewrites of safetensors files and sharded checkpoints.

A targeted tensor gets new values; everything else stays as it was: the
header keeps its keys in their order with the same dtypes, shapes and
offsets, ``__metadata__`` keeps its entries and gains one, ``"weightshare"``
(a JSON string: what was done), and the data of every untargeted tensor is
copied byte for byte. The new header is padded with spaces to a multiple of 8
bytes (as the safetensors library writes it). A rewrite that changes no value
copies the file byte for byte.

Values are stored in the tensor's own dtype: floats cast (round to nearest),
bfloat16 rounded to nearest, ties to even; float8 only when every new value
is exactly a float8 number (else refused: weightshare does not round to
float8).

One file goes through :func:`~weightshare._io._atomic.atomic_output`. A
checkpoint folder (given as the folder or its index) is written as a folder:
every shard under its own name (rewritten, or copied when none of its tensors
changed), the index with a ``"weightshare"`` entry in its ``"metadata"``, and
the folder's other ``.json``/``.txt`` files (``config.json``, tokenizer
files) copied; all of it in a temporary folder beside the output, renamed
into place at the end, removed on any failure: the output appears complete
or not at all.
"""

import json
import os
import shutil
import struct

import numpy as np

from ..errors import FileFormatError
from .._codec._bf16 import float32_to_bf16_bits
from .._codec._fp8 import encode_exact
from ._atomic import atomic_folder, atomic_output, check_output, same_file
from ._reader import open_weights
from ._safetensors import INDEX_SUFFIX
from ._writer import _call, _one_tensor, _summary  # the same-shape writer's steps, shared

__all__ = ["rewrite_safetensors", "METADATA_KEY"]

#: the ``__metadata__`` entry (and index ``metadata`` entry) a rewrite adds
METADATA_KEY = "weightshare"
_CHUNK = 1 << 24
#: files of a checkpoint folder copied to the output folder (besides shards and index)
_COPIED = (".json", ".txt", ".model", ".md")


def _to_stored(new, record, storage):
    """`new` as the stored array of `record` (little-endian; bfloat16 bits; float8 codes)."""
    new = np.asarray(new)
    if tuple(new.shape) != tuple(record.shape):
        raise ValueError(f"fn returned shape {new.shape}; the tensor has shape {record.shape} "
                         "(rewrites keep shapes)")
    if new.dtype.kind not in "fiub":
        raise TypeError(f"fn returned {new.dtype} values; expected numbers")
    if record.dtype == "bfloat16":
        return float32_to_bf16_bits(new).astype("<u2", copy=False)
    if record.dtype.startswith("float8"):
        codes = encode_exact(new, record.dtype)
        if codes is None:
            raise ValueError(f"the new values are not all exactly {record.dtype} numbers; "
                             "weightshare writes float8 tensors only without rounding")
        return codes
    return new.astype(storage.newbyteorder("<"), copy=False)


def _header_bytes(shard, note):
    """The rewritten header of `shard`: its keys in order, ``__metadata__`` plus the note."""
    header = {}
    metadata = dict(shard.metadata or {})
    metadata[METADATA_KEY] = json.dumps(note, sort_keys=True, default=str)
    if "__metadata__" not in shard.keys:
        header["__metadata__"] = metadata
    for key in shard.keys:
        if key == "__metadata__":
            header[key] = metadata
            continue
        e = shard.entries[key]
        header[key] = {"dtype": e.st_dtype, "shape": list(e.shape),
                       "data_offsets": [e.begin, e.end]}
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return raw


def rewrite_record(sf, record, fn, src):
    """(entry, stored array as read, new stored array or None) of one tensor of `sf`: read,
    decoded, given to `fn`, encoded back to its stored dtype (an error naming the file)."""
    _, entry = sf.place(record)
    old = sf.read_stored(record)
    new = _call(fn, record, sf.decode(record, old), src)
    if new is None:
        return entry, old, None
    try:
        return entry, old, _to_stored(new, record, entry.storage)
    except (ValueError, TypeError) as exc:
        raise FileFormatError(src, str(exc), record.location) from None


def file_output(sf, src, dst, in_place=False):
    """Whether `src` (open as `sf`) is one .safetensors file, its output the file `dst`
    (checked here: not the input unless `in_place`, a .safetensors name); False for a
    checkpoint (sharded, or given by its folder), whose output is a folder."""
    if sf.fmt == "safetensors_sharded" or os.path.isdir(src):
        return False
    target = check_output(dst, (src,), in_place=bool(in_place))
    if not os.fspath(target).lower().endswith(".safetensors"):
        raise FileFormatError(dst, "must end in .safetensors, as the input")
    return True


def copy_range(src_f, dst_f, start, stop):
    src_f.seek(start)
    left = stop - start
    while left:
        block = src_f.read(min(_CHUNK, left))
        if not block:
            raise OSError(f"the file ended {left} bytes early (it changed while being read?)")
        dst_f.write(block)
        left -= len(block)


def _write_shard(sf, shard, records, fn, note, out_path, progress, counter, src):
    """Write `shard` rewritten to `out_path`; the TensorRewrite rows of its `records`."""
    if not records:
        shutil.copyfile(shard.path, out_path)
        return []
    header = _header_bytes(shard, {**note, "tensors": [r.name for r in records]})
    start = 8 + len(header)
    rows = []
    with open(shard.path, "rb") as src_f, open(out_path, "wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        copy_range(src_f, out, shard.data_start, shard.size)
        for record in records:
            with _one_tensor(src, record):
                entry, old, stored = rewrite_record(sf, record, fn, src)
                if stored is not None:
                    data = np.ascontiguousarray(stored).view(np.uint8).reshape(-1)
                    out.seek(start + entry.begin)
                    out.write(data)
                rows.append(_summary(record, old, stored))
            del old, stored
            counter[0] += 1
            if progress is not None:
                progress(counter[0], counter[1], record)
    if not any(r.changed for r in rows):
        shutil.copyfile(shard.path, out_path)
    return rows


def rewrite_safetensors(src, dst, fn, *, select=None, in_place=False, progress=None, note=None):
    """Write the safetensors file or checkpoint `src` to `dst` with the tensors `fn` changes.

    As :func:`weightshare._io._writer.rewrite`; `note` (a JSON-ready dict)
    is recorded as ``__metadata__["weightshare"]`` of each rewritten file.
    """
    src = os.fspath(src)
    note = {"job": "transform", **(note or {})}
    with open_weights(src) as sf:
        records = [r for r in sf.records if select is None or select(r)]
        if file_output(sf, src, dst, in_place):
            with atomic_output(dst, mode_from=src if in_place else None, inputs=(src,),
                               in_place=bool(in_place)) as tmp:
                return _write_shard(sf, sf.shards[0], records, fn, note, tmp, progress,
                                    [0, len(records)], src)
        return _write_folder(sf, src, dst, records, fn, note, progress, in_place)


def _output_folder(sf, src, dst, in_place):
    """(output folder, index file name or None) of a checkpoint rewrite, after the checks."""
    dst = os.path.abspath(os.fspath(dst))
    src_folder = os.path.dirname(sf.index_path) if sf.index_path else os.path.abspath(src)
    src_folder = os.path.abspath(src_folder)
    index_name = os.path.basename(sf.index_path) if sf.index_path else None
    if dst.endswith(INDEX_SUFFIX):
        index_name = os.path.basename(dst) if index_name else None
        dst = os.path.dirname(dst)
    if in_place:
        raise FileFormatError(dst, "a checkpoint folder is not rewritten in place; write a new "
                                   "folder (-o NEW_FOLDER)")
    if same_file(dst, src_folder) or (dst + os.sep).startswith(src_folder + os.sep):
        raise FileFormatError(dst, f"is (inside) the input folder {src_folder}; write the "
                                   "rewritten checkpoint to a new folder")
    if os.path.lexists(dst) and not (os.path.isdir(dst) and not os.path.islink(dst)
                                     and not os.listdir(dst)):
        raise FileFormatError(dst, "exists; a checkpoint is written as a new folder (missing or "
                                   "empty), so that it appears complete or not at all")
    parent = os.path.dirname(dst)
    if not os.path.isdir(parent):
        raise FileNotFoundError(2, "the output folder's parent does not exist", parent)
    return dst, index_name, src_folder


def _write_folder(sf, src, dst, records, fn, note, progress, in_place):
    out_dir, index_name, src_folder = _output_folder(sf, src, dst, in_place)
    rows = []
    with atomic_folder(out_dir) as tmp:
        counter = [0, len(records)]
        for shard in sf.shards:
            mine = [r for r in records if sf.place(r)[0] is shard]
            rows += _write_shard(sf, shard, mine, fn, note, os.path.join(tmp, shard.file_name),
                                 progress, counter, src)
        written = {s.file_name for s in sf.shards}
        if index_name:
            index = dict(sf.index)
            meta = dict(index.get("metadata") or {})
            if any(r.changed for r in rows):
                meta[METADATA_KEY] = {**note, "tensors": [r.tensor for r in rows if r.changed]}
            index["metadata"] = meta
            with open(os.path.join(tmp, index_name), "w", encoding="utf-8") as f:
                json.dump(index, f, indent=2, ensure_ascii=False)
                f.write("\n")
            written.add(index_name)
        for name in sorted(os.listdir(src_folder)):
            path = os.path.join(src_folder, name)
            if (name in written or name.endswith(INDEX_SUFFIX) or name.endswith(".safetensors")
                    or not name.endswith(_COPIED) or not os.path.isfile(path)):
                continue
            shutil.copyfile(path, os.path.join(tmp, name))
    return rows
