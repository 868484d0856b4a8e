"""Re-writing a zip (``.keras``) member by member with each member's own ZipInfo settings.

Members that are not replaced are copied as they are stored: their local
header is rebuilt from the original ZipInfo and their compressed bytes are
copied verbatim, so a deflated member keeps its exact bytes whatever
compressor and level wrote it. Replaced members are compressed with the
original member's method.
"""

import os
import shutil
import zipfile

from ._common import member_data_offset

__all__ = ["clone_info", "write_zip"]

_CHUNK = 1 << 20
_ENCRYPTED = 0x1
_DATA_DESCRIPTOR = 0x8


def clone_info(info):
    """A new ZipInfo with `info`'s name, date, method, comment, extra field and attributes."""
    new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    for key in ("compress_type", "comment", "extra", "create_system", "create_version",
                "extract_version", "external_attr", "internal_attr"):
        setattr(new, key, getattr(info, key))
    for key in ("_compresslevel", "compress_level"):
        if hasattr(info, key):
            setattr(new, key, getattr(info, key))
    return new


def _can_copy_raw(out, info):
    return (not info.flag_bits & _ENCRYPTED
            and all(hasattr(out, a) for a in ("fp", "start_dir", "filelist", "NameToInfo",
                                               "_writecheck"))
            and hasattr(info, "FileHeader"))


def _copy_raw(out, src_fp, info):
    """Append member `info` of the zip open on `src_fp` to `out` without recompressing it."""
    new = clone_info(info)
    new.flag_bits = info.flag_bits & ~_DATA_DESCRIPTOR     # sizes are known: no descriptor
    new.CRC, new.compress_size, new.file_size = info.CRC, info.compress_size, info.file_size
    zip64 = max(info.file_size, info.compress_size) > zipfile.ZIP64_LIMIT
    start = member_data_offset(src_fp, info)
    out.fp.seek(out.start_dir)
    new.header_offset = out.fp.tell()
    out._writecheck(new)
    out._didModify = True
    out.fp.write(new.FileHeader(zip64))
    src_fp.seek(start)
    left = info.compress_size
    while left:
        block = src_fp.read(min(_CHUNK, left))
        if not block:
            raise zipfile.BadZipFile(f"{info.filename}: the member's data is truncated")
        out.fp.write(block)
        left -= len(block)
    out.start_dir = out.fp.tell()
    out.filelist.append(new)
    out.NameToInfo[new.filename] = new


def write_zip(src_zip, dst_path, replace, deflate=()):
    """Re-write the zip `src_zip` (an open ZipFile) to `dst_path`.

    `replace` maps member names to new content: ``bytes`` or the path of a
    file to stream. Members keep their order and ZipInfo settings; the
    others keep their stored bytes. Members named in `deflate` are written
    deflated (level 9) instead of with their own method.
    """
    with zipfile.ZipFile(dst_path, "w") as out:
        out.comment = src_zip.comment
        for info in src_zip.infolist():
            content = replace.get(info.filename)
            if content is None and info.filename not in deflate and _can_copy_raw(out, info):
                _copy_raw(out, src_zip.fp, info)
                continue
            new = clone_info(info)
            if info.filename in deflate:
                new.compress_type = zipfile.ZIP_DEFLATED
                new._compresslevel = 9
            if isinstance(content, bytes):
                size = len(content)
            elif content is not None:
                size = os.path.getsize(content)
            else:
                size = info.file_size
            with out.open(new, "w", force_zip64=size > zipfile.ZIP64_LIMIT) as w:
                if isinstance(content, bytes):
                    w.write(content)
                elif content is not None:
                    with open(content, "rb") as f:
                        shutil.copyfileobj(f, w, _CHUNK)
                else:
                    with src_zip.open(info) as r:
                        shutil.copyfileobj(r, w, _CHUNK)
