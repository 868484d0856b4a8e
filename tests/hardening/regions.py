"""Byte regions of a Keras file, found with h5py's low-level API, for targeted corruption.

An HDF5 file is cut into the regions the hardening corpus flips bits in:

- ``superblock``: the file signature, versions, sizes and root addresses
  (the bytes before the root group's object header);
- ``header``: every object header (``h5py.h5o.get_info(obj.id).addr`` and
  its ``hdr.space.total`` bytes): link, dataspace, datatype, layout and
  attribute messages;
- ``attribute``: the bytes of string attribute values (``layer_names``,
  ``weight_names``, ``model_config``, ``vars@name``, ...), found by searching
  the file for the encoded value (vlen strings live in the global heap);
- ``data``: the raw data of every dataset (``ds.id.get_offset()`` and its
  storage size; the chunks of a chunked dataset).

For a ``.keras`` zip the weights member is located with the zip's own local
header, so the regions of the HDF5 file inside it are given as offsets in the
zip file (Keras stores the member uncompressed). The zip's own structures
(local headers, central directory, end record, ``config.json``) are regions
too. Only numpy, h5py and the standard library are used: the corpus never
asks weightshare where things are.
"""

import io
import struct
import zipfile

import h5py
import numpy as np

__all__ = ["h5_regions", "zip_regions", "file_regions", "weights_member_offset"]


def _attr_values(obj):
    """Encoded byte strings of the string attributes of `obj`."""
    out = []
    for name in obj.attrs:
        try:
            value = obj.attrs[name]
        except (OSError, TypeError, ValueError):
            continue
        for v in np.asarray(value, dtype=object).reshape(-1):
            if isinstance(v, str):
                v = v.encode("utf-8")
            if isinstance(v, (bytes, np.bytes_)) and len(v) >= 3:
                out.append(bytes(v))
    return out


def h5_regions(data):
    """Regions of an HDF5 file given as bytes: {kind: [(start, stop), ...]}.

    Parameters
    ----------
    data : bytes
        The whole HDF5 file.

    Returns
    -------
    dict of str to list of (int, int)
        ``superblock``, ``header``, ``attribute`` and ``data`` half-open
        byte ranges, each sorted and clipped to the file.
    """
    regions = {"superblock": [], "header": [], "attribute": [], "data": []}
    values = []
    with h5py.File(io.BytesIO(data), "r") as f:
        objects = [f]
        f.visititems(lambda name, obj: objects.append(obj))
        for obj in objects:
            info = h5py.h5o.get_info(obj.id)
            regions["header"].append((info.addr, info.addr + max(16, info.hdr.space.total)))
            values.extend(_attr_values(obj))
            if isinstance(obj, h5py.Dataset):
                regions["data"].extend(_data_ranges(obj))
        root = h5py.h5o.get_info(f.id).addr
    regions["superblock"].append((0, max(8, min(root, 96))))
    for v in dict.fromkeys(values):
        start = data.find(v)
        while start >= 0:
            regions["attribute"].append((start, start + len(v)))
            start = data.find(v, start + len(v))
    n = len(data)
    return {k: sorted((a, min(b, n)) for a, b in v if a < n and b > a) for k, v in regions.items()}


def _data_ranges(ds):
    dsid = ds.id
    if ds.chunks is None:
        off = dsid.get_offset()
        size = dsid.get_storage_size()
        return [(off, off + size)] if off is not None and size else []
    out = []
    for i in range(dsid.get_num_chunks()):
        c = dsid.get_chunk_info(i)
        if c.byte_offset is not None and c.size:
            out.append((c.byte_offset, c.byte_offset + c.size))
    return out


def weights_member_offset(data, member="model.weights.h5"):
    """(start, size) of an uncompressed zip member's bytes in the zip `data`, or None."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        try:
            info = z.getinfo(member)
        except KeyError:
            return None
        if info.compress_type != zipfile.ZIP_STORED:
            return None
        head = data[info.header_offset:info.header_offset + 30]
        n_name, n_extra = struct.unpack("<HH", head[26:30])
        return info.header_offset + 30 + n_name + n_extra, info.file_size


def zip_regions(data):
    """Regions of a zip: local headers, member data, central directory, end record."""
    regions = {"zip_local": [], "zip_central": [], "zip_end": [], "config": []}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        infos = z.infolist()
        for info in infos:
            head = data[info.header_offset:info.header_offset + 30]
            n_name, n_extra = struct.unpack("<HH", head[26:30])
            start = info.header_offset + 30 + n_name + n_extra
            regions["zip_local"].append((info.header_offset, start))
            if info.filename == "config.json":
                regions["config"].append((start, start + info.compress_size))
    end = data.rfind(b"PK\x05\x06")
    cd = struct.unpack("<I", data[end + 16:end + 20])[0]
    regions["zip_central"].append((cd, end))
    regions["zip_end"].append((end, len(data)))
    return regions


def safetensors_regions(data):
    """The 8-byte length and the JSON header of a safetensors file; the rest is data."""
    n = struct.unpack("<Q", data[:8])[0]
    return {"header": [(0, 8 + n)], "data": [(8 + n, len(data))]}


def file_regions(data):
    """Regions of a file (HDF5, ``.keras`` zip or safetensors), as offsets into `data`."""
    if data[8:9] == b"{" and data[:4] != b"PK\x03\x04" and data[:8] != b"\x89HDF\r\n\x1a\n":
        return safetensors_regions(data)
    if data[:4] == b"PK\x03\x04":
        regions = zip_regions(data)
        member = weights_member_offset(data)
        if member is not None:
            start, size = member
            inner = h5_regions(data[start:start + size])
            for kind, ranges in inner.items():
                regions[kind] = [(a + start, b + start) for a, b in ranges]
        return regions
    return h5_regions(data)
