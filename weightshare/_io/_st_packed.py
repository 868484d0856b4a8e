"""Packed safetensors: clustered tensors as indices + codebook, read back without a framework.

A clustered tensor ``NAME`` (at most k distinct values per tensor, or per
group of channels) is stored as separate safetensors entries, at the place
``NAME`` had in the header:

``NAME.ws_indices``
    The index of every entry into its codebook row, in C order of the
    tensor's shape. ``bits = max(1, ceil(log2(width)))`` for a codebook of
    ``width`` values; ``bits < 8``: dtype U8, shape ``[ceil(n * bits / 8)]``,
    the indices bit-packed most significant bit first (``np.packbits``
    order, zero padded); ``bits == 8``: U8 of the tensor's shape;
    ``bits <= 16``: U16 of the tensor's shape.
``NAME.ws_codebook``
    The values, in the tensor's dtype: shape ``[width]`` (layout
    ``"tensor"``), or ``[groups, width]`` (layout ``"channels"``: channel c
    along ``axis`` uses row ``c // group_size``; rows with fewer values are
    padded with zeros).
``NAME.ws_scale``
    Only with ``scaled``: one scale per channel along ``axis`` (shape
    ``[channels]``); the value is ``scale[c] * codebook[row][index]``, computed
    in the codebook's dtype (F32 for a BF16 tensor) and rounded to the
    tensor's dtype.

``__metadata__["weightshare"]`` (a JSON string, the note of a plain rewrite)
gains ``"packed"``: ``{"version": 1, "tensors": {NAME: {"dtype", "shape",
"layout", "axis", "group_size", "bits", "scaled"}}, "offsets": {every tensor
of the plain output: [begin, end]}, "data_size": ...}``, so that the plain
output (what ``cluster_file`` writes without ``packed``) is rebuilt byte for
byte. Data are laid out by itemsize, largest first (each entry aligned), with
no gaps, as the safetensors library writes them.

The dense values are the plain output's, bit for bit: the codebook is taken
from the stored bits of the clustered tensor (``np.unique`` of its bit
patterns, per group), and a scaled layout is used only when it reproduces
those bits exactly (else one codebook row per channel).
"""

import json
import math
import os
import shutil
import struct
import tempfile

import numpy as np

from .._codec._bf16 import bf16_to_float32, float32_to_bf16_bits
from .._codec._bitpack import pack_fixed, unpack_fixed
from ..errors import FileFormatError
from ._atomic import atomic_folder, atomic_output
from ._reader import open_weights
from ._safetensors import INDEX_SUFFIX, ST_DTYPES, Entry, is_safetensors
from ._safetensors_write import (METADATA_KEY, _COPIED, _header_bytes, _output_folder,
                                 copy_range, file_output, rewrite_record)
from ._writer import _one_tensor, _summary

__all__ = ["PACKED_VERSION", "SUFFIXES", "write_packed", "read_packed", "unpack_checkpoint",
           "packed_note", "is_packed_file"]

PACKED_VERSION = 1
INDICES, CODEBOOK, SCALE = ".ws_indices", ".ws_codebook", ".ws_scale"
SUFFIXES = (INDICES, CODEBOOK, SCALE)
_FLOAT_ST = ("F64", "F32", "F16", "BF16")


# ---------------------------------------------------------------------------- layouts
def _bits_view(stored):
    """Unsigned-integer view of a stored array (bfloat16 is already uint16 bits)."""
    return np.ascontiguousarray(stored).view(f"u{stored.dtype.itemsize}")


def _n_bits(width):
    return max(1, math.ceil(math.log2(width))) if width > 1 else 1


def _compute_dtype(st_dtype):
    """NumPy dtype of a scaled layout's codebook and scales (F32 for BF16)."""
    return np.dtype("<f4") if st_dtype == "BF16" else np.dtype(ST_DTYPES[st_dtype][1])


def _rows(bits, axis, group_size):
    """(codebook (groups, width) of bit patterns, indices) of `bits` per group along `axis`."""
    moved = np.moveaxis(bits, axis, 0)
    n_ch = moved.shape[0]
    flat = moved.reshape(n_ch, -1)
    idx = np.empty(flat.shape, dtype=np.int64)
    rows = []
    for g0 in range(0, n_ch, group_size):
        u, inv = np.unique(flat[g0:g0 + group_size], return_inverse=True)
        idx[g0:g0 + group_size] = inv.reshape(-1, flat.shape[1])
        rows.append(u)
    width = max((r.size for r in rows), default=1) or 1
    book = np.zeros((len(rows), width), dtype=bits.dtype)
    for i, r in enumerate(rows):
        book[i, :r.size] = r
    idx = np.moveaxis(idx.reshape(moved.shape), 0, axis)
    return book, idx


def _scaled_dense(st_dtype, book, scale, idx, axis, group_size, shape):
    """The stored array (little-endian storage dtype) of a scaled layout."""
    n_ch = shape[axis]
    rows = np.arange(n_ch) // group_size
    im = np.moveaxis(idx.reshape(shape), axis, 0)
    vals = np.empty(im.shape, dtype=book.dtype)
    bshape = (-1,) + (1,) * (len(shape) - 1)
    for g in range(book.shape[0]):
        ch = np.flatnonzero(rows == g)
        if ch.size == 0:
            continue
        vals[ch] = scale[ch].reshape(bshape) * book[g][im[ch]]
    vals = np.moveaxis(vals, 0, axis)
    if st_dtype == "BF16":
        return float32_to_bf16_bits(vals).astype("<u2", copy=False)
    return vals.astype(ST_DTYPES[st_dtype][1], copy=False)


def _pack(record, entry, stored, hint):
    """(spec, parts) of one clustered tensor: parts = [(suffix, st_dtype, shape, array)]."""
    st, shape = entry.st_dtype, tuple(entry.shape)
    bits = _bits_view(stored)
    spec = {"dtype": st, "shape": list(shape), "layout": "tensor", "axis": None,
            "group_size": None, "scaled": False}
    scale = None
    if hint is not None and hint.get("scales") is not None and len(shape) >= 1:
        axis, g = hint["axis"], hint["group_size"]
        cd = _compute_dtype(st)
        book = np.nan_to_num(np.asarray(hint["centroids"], dtype=cd).reshape(
            -1, np.asarray(hint["centroids"]).shape[-1]), nan=0.0).astype(cd)
        sc = np.asarray(hint["scales"], dtype=cd).reshape(-1)
        idx = np.asarray(hint["labels"]).astype(np.int64)
        if (sc.size == shape[axis] and idx.shape == shape and idx.size
                and np.array_equal(_bits_view(_scaled_dense(st, book, sc, idx, axis, g, shape)),
                                   bits)):
            spec.update(layout="channels", axis=axis, group_size=g, scaled=True)
            scale = sc
            codebook = book
    if scale is None:
        if hint is not None and hint.get("axis") is not None and len(shape) >= 1:
            axis, g = hint["axis"], hint["group_size"] if hint.get("scales") is None else 1
            book, idx = _rows(bits, axis, g)
            spec.update(layout="channels", axis=axis, group_size=g)
        else:
            u, inv = np.unique(bits.reshape(-1), return_inverse=True)
            book, idx = u, inv.reshape(shape)
        codebook = book.view(stored.dtype) if st != "BF16" else book.astype("<u2")
        codebook = codebook.astype(codebook.dtype.newbyteorder("<"), copy=False)
    width = codebook.shape[-1]
    nb = _n_bits(width)
    spec["bits"] = nb
    flat = idx.reshape(-1)
    if nb < 8:
        ind = np.frombuffer(pack_fixed(flat.astype(np.uint8), nb), dtype=np.uint8)
        parts = [(INDICES, "U8", (ind.size,), ind)]
    elif nb == 8:
        parts = [(INDICES, "U8", shape, flat.astype(np.uint8))]
    elif nb <= 16:
        parts = [(INDICES, "U16", shape, flat.astype("<u2"))]
    else:
        raise ValueError(f"has a codebook of {width} values; packed output stores at most "
                         "65536 per row")
    cst = st if not spec["scaled"] else ("F32" if st == "BF16" else st)
    parts.append((CODEBOOK, cst, tuple(codebook.shape), codebook))
    if scale is not None:
        parts.append((SCALE, cst, (scale.size,), scale.astype(scale.dtype.newbyteorder("<"))))
    return spec, parts


# ---------------------------------------------------------------------------- writing
def _itemsize(st):
    return np.dtype(ST_DTYPES[st][1]).itemsize


def _write_packed_shard(sf, shard, records, fn, note, out_path, progress, counter, src, hints):
    """Write `shard` packed to `out_path`; (TensorRewrite rows, {name: [entry names]})."""
    if not records:
        shutil.copyfile(shard.path, out_path)
        return [], {}
    rows, specs, parts_of, renamed = [], {}, {}, {}
    with open(shard.path, "rb") as src_f, tempfile.TemporaryFile(
            dir=os.path.dirname(os.path.abspath(out_path))) as spool:
        for record in records:
            with _one_tensor(src, record):
                entry, old, stored = rewrite_record(sf, record, fn, src)
                if stored is not None:
                    try:
                        spec, parts = _pack(record, entry, stored, hints.pop(record.name, None))
                    except (ValueError, TypeError) as exc:
                        raise FileFormatError(src, str(exc), record.location) from None
                    specs[record.name] = spec
                    placed = []
                    for suffix, st, shape, arr in parts:
                        data = np.ascontiguousarray(arr).view(np.uint8).reshape(-1)
                        placed.append((record.name + suffix, st, shape, spool.tell(), data.size))
                        spool.write(data.tobytes())
                    parts_of[record.name] = placed
                    renamed[record.name] = [p[0] for p in placed]
                rows.append(_summary(record, old, stored))
            del old, stored
            counter[0] += 1
            if progress is not None:
                progress(counter[0], counter[1], record)
        if not specs:
            shutil.copyfile(shard.path, out_path)
            return rows, {}
        taken = set(shard.entries)
        for name, placed in parts_of.items():
            for p in placed:
                if p[0] in taken:
                    raise FileFormatError(src, f"already holds a tensor named {p[0]!r}; packed "
                                               "output cannot name its indices so", name)
        # header keys in order, each packed tensor replaced by its parts at its place
        entries = []        # (name, st, shape, source: ("src", begin) or ("spool", pos), nbytes)
        for key in shard.keys:
            if key == "__metadata__":
                entries.append(None)
                continue
            if key in parts_of:
                for pname, st, shape, pos, n in parts_of[key]:
                    entries.append((pname, st, shape, ("spool", pos), n))
            else:
                e = shard.entries[key]
                entries.append((key, e.st_dtype, e.shape, ("src", e.begin), e.end - e.begin))
        order = sorted((i for i, x in enumerate(entries) if x is not None),
                       key=lambda i: -_itemsize(entries[i][1]))
        offsets, pos = {}, 0
        for i in order:
            offsets[i] = (pos, pos + entries[i][4])
            pos += entries[i][4]
        plain_offsets = {n: [e.begin, e.end] for n, e in shard.entries.items()}
        packed = {"version": PACKED_VERSION, "tensors": specs, "offsets": plain_offsets,
                  "data_size": shard.size - shard.data_start}
        full_note = {**note, "tensors": [r.name for r in records], "packed": packed}
        header = {}
        metadata = dict(shard.metadata or {})
        metadata[METADATA_KEY] = json.dumps(full_note, sort_keys=True, default=str)
        if "__metadata__" not in shard.keys:
            header["__metadata__"] = metadata
        for i, x in enumerate(entries):
            if x is None:
                header["__metadata__"] = metadata
                continue
            header[x[0]] = {"dtype": x[1], "shape": list(x[2]), "data_offsets": list(offsets[i])}
        raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        raw += b" " * (-len(raw) % 8)
        with open(out_path, "wb") as out:
            out.write(struct.pack("<Q", len(raw)))
            out.write(raw)
            for i in order:
                _, _, _, (where, at), n = entries[i]
                if where == "src":
                    copy_range(src_f, out, shard.data_start + at, shard.data_start + at + n)
                else:
                    copy_range(spool, out, at, at + n)
    return rows, renamed


def write_packed(src, dst, fn, *, select=None, progress=None, note=None, hints=None):
    """Write the safetensors file or checkpoint `src` to `dst`, packed (see the module).

    `fn` as for :func:`~weightshare._io._safetensors_write.rewrite_safetensors`;
    `hints` (name -> dict, filled by `fn` when it is called) gives the layout:
    ``{"axis", "group_size"}`` per group of channels, plus ``"scales"``,
    ``"centroids"``, ``"labels"`` for a scaled layout. Returns the rows.
    """
    src = os.fspath(src)
    note = {"job": "transform", **(note or {})}
    hints = {} if hints is None else hints
    with open_weights(src) as sf:
        if sf.fmt not in ("safetensors", "safetensors_sharded"):
            raise FileFormatError(src, f"is a {sf.fmt} file; packed output is for safetensors "
                                       "files only")
        records = [r for r in sf.records if select is None or select(r)]
        if file_output(sf, src, dst):
            with atomic_output(dst, inputs=(src,), in_place=False) as tmp:
                rows, _ = _write_packed_shard(sf, sf.shards[0], records, fn, note, tmp,
                                              progress, [0, len(records)], src, hints)
            return rows
        out_dir, index_name, src_folder = _output_folder(sf, src, dst, False)
        rows = []
        with atomic_folder(out_dir) as tmp:
            counter, renamed = [0, len(records)], {}
            for shard in sf.shards:
                mine = [r for r in records if sf.place(r)[0] is shard]
                r, ren = _write_packed_shard(sf, shard, mine, fn, note,
                                             os.path.join(tmp, shard.file_name), progress,
                                             counter, src, hints)
                rows += r
                renamed.update(ren)
            written = {s.file_name for s in sf.shards}
            if index_name:
                _write_packed_index(sf, tmp, index_name, rows, note, renamed)
                written.add(index_name)
            _copy_others(src_folder, tmp, written)
    return rows


def _copy_others(src_folder, tmp, written):
    for name in sorted(os.listdir(src_folder)):
        path = os.path.join(src_folder, name)
        if (name in written or name.endswith(INDEX_SUFFIX) or name.endswith(".safetensors")
                or not name.endswith(_COPIED) or not os.path.isfile(path)):
            continue
        shutil.copyfile(path, os.path.join(tmp, name))


def _write_packed_index(sf, tmp, index_name, rows, note, renamed):
    index = dict(sf.index)
    meta = dict(index.get("metadata") or {})
    if any(r.changed for r in rows):
        extra = {"version": PACKED_VERSION}
        if renamed and "total_size" in meta:
            extra["total_size"] = meta["total_size"]
            meta["total_size"] = sum(_packed_bytes(tmp, s.file_name) for s in sf.shards)
        meta[METADATA_KEY] = {**note, "tensors": [r.tensor for r in rows if r.changed],
                              "packed": extra}
        weight_map = {}
        for name, shard in index["weight_map"].items():
            for new in renamed.get(name, [name]):
                weight_map[new] = shard
        index["weight_map"] = weight_map
    index["metadata"] = meta
    with open(os.path.join(tmp, index_name), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2, ensure_ascii=False)
        f.write("\n")


def _packed_bytes(folder, file_name):
    """The data bytes of a written shard (its size less the header)."""
    path = os.path.join(folder, file_name)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
    return os.path.getsize(path) - 8 - n


# ---------------------------------------------------------------------------- reading
def packed_note(shard, fail):
    """The ``"packed"`` object of a shard's weightshare note, checked; None when not packed."""
    meta = shard.metadata or {}
    if METADATA_KEY not in meta:
        return None, None
    try:
        note = json.loads(meta[METADATA_KEY])
    except ValueError:
        return None, None       # a note that is not JSON: not packed by weightshare
    if not isinstance(note, dict) or "packed" not in note:
        return None, None
    packed = note["packed"]
    if not isinstance(packed, dict) or packed.get("version") != PACKED_VERSION:
        fail(f"its weightshare packed metadata has version "
             f"{packed.get('version') if isinstance(packed, dict) else packed!r}; this "
             f"weightshare reads version {PACKED_VERSION}", "__metadata__")
    tensors = packed.get("tensors")
    if not isinstance(tensors, dict):
        fail("its weightshare packed metadata has no \"tensors\" object", "__metadata__")
    return note, packed


def _int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _check_spec(name, spec, shard, fail):
    """The checked (dtype, shape, layout, axis, group_size, bits, scaled) of a packed tensor."""
    if not isinstance(spec, dict):
        fail("its packed metadata is not an object", name)
    st, shape = spec.get("dtype"), spec.get("shape")
    if st not in _FLOAT_ST:
        fail(f"its packed metadata has dtype {st!r}; expected one of {', '.join(_FLOAT_ST)}",
             name)
    if not isinstance(shape, list) or not all(_int(d) and d >= 0 for d in shape):
        fail(f"its packed metadata has shape {shape!r}; a shape is a list of integers >= 0",
             name)
    layout, axis, g = spec.get("layout"), spec.get("axis"), spec.get("group_size")
    bits, scaled = spec.get("bits"), spec.get("scaled")
    if layout not in ("tensor", "channels"):
        fail(f"its packed metadata has layout {layout!r}; expected 'tensor' or 'channels'", name)
    if layout == "channels" and not (_int(axis) and 0 <= axis < len(shape) and _int(g)
                                     and g >= 1):
        fail(f"its packed metadata has axis {axis!r} and group_size {g!r} for a tensor of "
             f"shape {tuple(shape)}", name)
    if not (_int(bits) and 1 <= bits <= 16):
        fail(f"its packed metadata has bits {bits!r}; expected an integer in 1..16", name)
    if not isinstance(scaled, bool) or (scaled and layout != "channels"):
        fail(f"its packed metadata has scaled {scaled!r}", name)
    for suffix in (INDICES, CODEBOOK) + ((SCALE,) if scaled else ()):
        if name + suffix not in shard.entries:
            fail(f"is packed but the file holds no {name + suffix!r}", name)
    if name in shard.entries:
        fail("is packed but also stored dense", name)
    return st, tuple(shape), layout, axis, g, bits, scaled


def _entry_is(e, st, shape, what, fail, name):
    if e.st_dtype != st or tuple(e.shape) != tuple(shape):
        fail(f"its {what} is {e.st_dtype} of shape {tuple(e.shape)}; the packed metadata "
             f"needs {st} of shape {tuple(shape)}", name)


def decode_packed(sf, shard, name, spec, fail):
    """The stored array (storage dtype, bfloat16 as uint16 bits) of packed tensor `name`."""
    st, shape, layout, axis, g, bits, scaled = _check_spec(name, spec, shard, fail)
    n = math.prod(shape)
    ie = shard.entries[name + INDICES]
    if bits < 8:
        _entry_is(ie, "U8", ((n * bits + 7) // 8,), "indices", fail, name)
    else:
        _entry_is(ie, "U8" if bits == 8 else "U16", shape, "indices", fail, name)
    ce = shard.entries[name + CODEBOOK]
    cst = ("F32" if st == "BF16" else st) if scaled else st
    if layout == "tensor":
        if ce.st_dtype != cst or len(ce.shape) != 1 or not 1 <= ce.shape[0] <= 1 << bits:
            fail(f"its codebook is {ce.st_dtype} of shape {tuple(ce.shape)}; the packed "
                 f"metadata needs {cst} of shape (width,), 1 <= width <= {1 << bits}", name)
    else:
        groups = -(-shape[axis] // g) if shape[axis] else 0
        if (ce.st_dtype != cst or len(ce.shape) != 2 or ce.shape[0] != groups
                or not 1 <= ce.shape[1] <= 1 << bits):
            fail(f"its codebook is {ce.st_dtype} of shape {tuple(ce.shape)}; the packed "
                 f"metadata needs {cst} of shape ({groups}, width), 1 <= width <= "
                 f"{1 << bits}", name)
    width = ce.shape[-1]
    raw = _read_entry(shard, ie, fail)
    idx = unpack_fixed(raw.tobytes(), n, bits) if bits < 8 else raw.reshape(-1)
    if idx.size and int(idx.max()) >= width:
        fail(f"holds index {int(idx.max())}, out of range of its codebook of {width} values",
             name)
    book = _read_entry(shard, ce, fail).reshape(ce.shape)
    idx = idx.astype(np.intp).reshape(shape)
    if layout == "tensor":
        return book[idx]
    if scaled:
        se = shard.entries[name + SCALE]
        _entry_is(se, cst, (shape[axis],), "scale", fail, name)
        scale = _read_entry(shard, se, fail)
        return _scaled_dense(st, book, scale, idx, axis, g, shape)
    rows = (np.arange(shape[axis]) // g).reshape((-1,) + (1,) * (len(shape) - 1))
    im = np.moveaxis(idx, axis, 0)
    return np.moveaxis(book[rows, im], 0, axis)


def _read_entry(shard, e, fail):
    storage = e.storage
    count = (e.end - e.begin) // storage.itemsize
    with open(shard.path, "rb") as f:
        f.seek(shard.data_start + e.begin)
        arr = np.fromfile(f, dtype=storage, count=count)
    if arr.size != count:
        fail(f"ends inside the tensor's data ({arr.size} of {count} values)", e.name)
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def _shard_fail(path):
    def fail(message, tensor=None):
        raise FileFormatError(path, " ".join(str(message).split()), tensor)
    return fail


def _decode_values(st, stored):
    if st == "BF16":
        return bf16_to_float32(stored)
    return stored


def read_packed(path):
    """dict name -> dense values of a packed (or plain) safetensors file or checkpoint.

    Names and order are those of the plain output; bfloat16 and float8 as
    exact float32, the others in their dtype.
    """
    out = {}
    with open_weights(path) as sf:
        if sf.fmt not in ("safetensors", "safetensors_sharded"):
            raise FileFormatError(os.fspath(path), f"is a {sf.fmt} file, not a safetensors "
                                                   "file or checkpoint")
        by_name = {r.name: r for r in sf.records}
        for shard in sf.shards:
            fail = _shard_fail(shard.path)
            _, packed = packed_note(shard, fail)
            specs = packed["tensors"] if packed else {}
            for name in _plain_keys(shard, specs, fail):
                if name in specs:
                    stored = decode_packed(sf, shard, name, specs[name], fail)
                    out[name] = _decode_values(specs[name]["dtype"], stored)
                else:
                    out[name] = sf.read(by_name[name])
    return out


def _plain_keys(shard, specs, fail):
    """The tensor names of the plain file, in header order."""
    keys = []
    for key in shard.keys:
        if key == "__metadata__":
            continue
        base = _base(key, specs)
        if base is None:
            keys.append(key)
        elif key.endswith(INDICES):
            keys.append(base)
    for name in specs:
        if name not in keys:
            fail("is named in the packed metadata but the file holds no "
                 f"{name + INDICES!r}", name)
    return keys


def _base(key, specs):
    for suffix in SUFFIXES:
        if key.endswith(suffix) and key[:-len(suffix)] in specs:
            return key[:-len(suffix)]
    return None


# ---------------------------------------------------------------------------- unpacking
def _unpack_shard(sf, shard, out_path):
    """Write the plain file of a packed shard (a byte copy when it is not packed)."""
    fail = _shard_fail(shard.path)
    note, packed = packed_note(shard, fail)
    if packed is None:
        shutil.copyfile(shard.path, out_path)
        return []
    specs = packed["tensors"]
    offsets, data_size = packed.get("offsets"), packed.get("data_size")
    keys = _plain_keys(shard, specs, fail)
    for name in specs:
        _check_spec(name, specs[name], shard, fail)
    if (not isinstance(offsets, dict) or not _int(data_size) or data_size < 0
            or set(offsets) != set(keys)):
        fail("its weightshare packed metadata has no offsets for its tensors", "__metadata__")
    plain = {}
    spans = []
    for name in keys:
        off = offsets[name]
        if name in specs:
            st, shape = specs[name]["dtype"], specs[name]["shape"]
        else:
            e = shard.entries[name]
            st, shape = e.st_dtype, e.shape
        if not (isinstance(off, list) and len(off) == 2 and all(_int(o) for o in off)
                and 0 <= off[0] <= off[1] <= data_size):
            fail(f"its plain data_offsets {off!r} are not [begin, end] inside "
                 f"{data_size} bytes", name)
        if isinstance(shape, list) and all(_int(d) and d >= 0 for d in shape) and \
                math.prod(shape) * _itemsize(st) != off[1] - off[0]:
            fail(f"its plain data_offsets {off!r} do not hold {st} of shape {tuple(shape)}",
                 name)
        plain[name] = Entry(name, st, tuple(shape), off[0], off[1])
        spans.append((off[0], off[1], name))
    spans.sort()
    for (a0, a1, _), (b0, _, b) in zip(spans, spans[1:]):
        if b0 < a1:
            fail("its plain data_offsets overlap another tensor's", b)
    last = max((e.end for e in plain.values()), default=0)
    if not last <= data_size <= last + (1 << 20):
        fail(f"its packed metadata declares {data_size} bytes of data for tensors that end at "
             f"byte {last}", "__metadata__")
    plain_note = {k: v for k, v in note.items() if k != "packed"}
    meta_shard = shard._replace(metadata={k: v for k, v in shard.metadata.items()},
                                entries=plain,
                                keys=tuple(_plain_header_keys(shard, specs)))
    header = _header_bytes(meta_shard, plain_note)
    start = 8 + len(header)
    by_name = {r.name: r for r in sf.records}
    with open(out_path, "wb") as out:
        out.write(struct.pack("<Q", len(header)))
        out.write(header)
        out.truncate(start + data_size)
        with open(shard.path, "rb") as src_f:
            for name, e in plain.items():
                out.seek(start + e.begin)
                if name in specs:
                    stored = decode_packed(sf, shard, name, specs[name], fail)
                    out.write(np.ascontiguousarray(stored).astype(
                        stored.dtype.newbyteorder("<"), copy=False).view(np.uint8).tobytes())
                else:
                    se = shard.entries[name]
                    copy_range(src_f, out, shard.data_start + se.begin,
                                shard.data_start + se.end)
    del by_name
    return list(specs)


def _plain_header_keys(shard, specs):
    keys = []
    for key in shard.keys:
        base = _base(key, specs) if key != "__metadata__" else None
        if base is None:
            keys.append(key)
        elif key.endswith(INDICES):
            keys.append(base)
    return keys


def unpack_checkpoint(src, dst):
    """Write the plain safetensors file or checkpoint of the packed `src` to `dst`.

    Returns the names of the tensors unpacked. A file that is not packed is
    copied as it is.
    """
    src = os.fspath(src)
    with open_weights(src) as sf:
        if sf.fmt not in ("safetensors", "safetensors_sharded"):
            raise FileFormatError(src, f"is a {sf.fmt} file, not a packed safetensors file")
        if file_output(sf, src, dst):
            with atomic_output(dst, inputs=(src,), in_place=False) as tmp:
                return _unpack_shard(sf, sf.shards[0], tmp)
        out_dir, index_name, src_folder = _output_folder(sf, src, dst, False)
        names = []
        with atomic_folder(out_dir) as tmp:
            for shard in sf.shards:
                names += _unpack_shard(sf, shard, os.path.join(tmp, shard.file_name))
            written = {s.file_name for s in sf.shards}
            if index_name:
                _unpack_index(sf, tmp, index_name, set(names))
                written.add(index_name)
            _copy_others(src_folder, tmp, written)
    return names


def _unpack_index(sf, tmp, index_name, names):
    index = dict(sf.index)
    meta = dict(index.get("metadata") or {})
    note = meta.get(METADATA_KEY)
    if isinstance(note, dict) and isinstance(note.get("packed"), dict):
        packed = note["packed"]
        if "total_size" in packed:
            meta["total_size"] = packed["total_size"]
        meta[METADATA_KEY] = {k: v for k, v in note.items() if k != "packed"}
        weight_map = {}
        specs = dict.fromkeys(names)
        for key, shard in index["weight_map"].items():
            base = _base(key, specs)
            if base is None:
                weight_map[key] = shard
            elif key.endswith(INDICES):
                weight_map[base] = shard
        index["weight_map"] = weight_map
        index["metadata"] = meta
    with open(os.path.join(tmp, index_name), "w", encoding="utf-8") as f:
        json.dump(index, f, indent=2, ensure_ascii=False)
        f.write("\n")


def is_packed_file(path):
    """Whether `path` is a safetensors file or checkpoint whose metadata says it is packed."""
    if not is_safetensors(path):
        return False
    try:
        with open_weights(path) as sf:
            for shard in sf.shards:
                note = (shard.metadata or {}).get(METADATA_KEY)
                try:
                    packed = isinstance(note, str) and "packed" in json.loads(note)
                except (ValueError, TypeError):
                    packed = False
                if packed:
                    return True
    except (FileFormatError, OSError):
        return False
    return False
