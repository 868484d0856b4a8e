"""Re-writing a zip (``.keras``) member by member with each member's own ZipInfo settings."""

import os
import shutil
import zipfile

__all__ = ["clone_info", "write_zip"]

_CHUNK = 1 << 20


def clone_info(info):
    new = zipfile.ZipInfo(info.filename, date_time=info.date_time)
    for key in ("compress_type", "comment", "extra", "create_system", "create_version",
                "extract_version", "external_attr", "internal_attr"):
        setattr(new, key, getattr(info, key))
    if hasattr(info, "_compresslevel"):
        new._compresslevel = info._compresslevel
    return new


def write_zip(src_zip, dst_path, replace):
    """Re-write the zip `src_zip` (an open ZipFile) to `dst_path`.

    `replace` maps member names to new content: ``bytes`` or the path of a
    file to stream. Members keep their order and ZipInfo settings.
    """
    with zipfile.ZipFile(dst_path, "w") as out:
        out.comment = src_zip.comment
        for info in src_zip.infolist():
            new = clone_info(info)
            content = replace.get(info.filename)
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
