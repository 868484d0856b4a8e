"""Zip re-writing (weightshare._io._zip): order, ZipInfo settings and stored bytes are kept."""

import io
import pathlib
import zipfile

import pytest

from weightshare._io._zip import clone_info, write_zip

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras"


def make_zip(path):
    members = [("z_last_name_first.json", zipfile.ZIP_STORED, b'{"a": 1}'),
               ("config.json", zipfile.ZIP_DEFLATED, b'{"layers": []}' * 50),
               ("model.weights.h5", zipfile.ZIP_STORED, bytes(range(256)) * 8),
               ("assets/vocab.txt", zipfile.ZIP_BZIP2, b"the\nof\nand\n" * 30)]
    with zipfile.ZipFile(path, "w") as z:
        z.comment = b"zip comment"
        for i, (name, method, data) in enumerate(members):
            info = zipfile.ZipInfo(name, date_time=(1980 + i, 1 + i, 1, 0, 0, 0))
            info.compress_type = method
            info.external_attr = (0o600 + i) << 16
            info.create_system = 0 if i % 2 else 3
            info.comment = name.encode()
            info.extra = b"\xfe\xca\x02\x00hi"     # an unknown extra field (id 0xcafe)
            z.writestr(info, data, compresslevel=1 if method == zipfile.ZIP_DEFLATED else None)
    return members


def settings(info):
    return (info.filename, info.date_time, info.compress_type, info.external_attr,
            info.create_system, info.comment, info.extra, info.CRC, info.file_size)


@pytest.mark.parametrize("replacement", [None, "bytes", "file"])
def test_members_keep_order_settings_and_stored_bytes(replacement, tmp_path):
    src, dst = tmp_path / "a.keras", tmp_path / "b.keras"
    members = make_zip(src)
    new = b"\x00new weights" * 10
    replace = {}
    if replacement == "bytes":
        replace["model.weights.h5"] = new
    elif replacement == "file":
        (tmp_path / "w.h5").write_bytes(new)
        replace["model.weights.h5"] = str(tmp_path / "w.h5")
    with zipfile.ZipFile(src) as z:
        write_zip(z, dst, replace)
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        assert b.testzip() is None and b.comment == a.comment
        ia, ib = a.infolist(), b.infolist()
        assert [i.filename for i in ib] == [m[0] for m in members]
        for x, y in zip(ia, ib):
            if x.filename in replace:
                assert b.read(y) == new
                assert settings(x)[:7] == settings(y)[:7]
                continue
            assert settings(x) == settings(y)
            assert x.compress_size == y.compress_size
            assert a.read(x) == b.read(y)
    if not replace:
        assert dst.read_bytes() == src.read_bytes()


def test_clone_info_copies_the_settings():
    with zipfile.ZipFile(FIX / "k3_mlp.keras") as z:
        for info in z.infolist():
            new = clone_info(info)
            for key in ("filename", "date_time", "compress_type", "comment", "extra",
                        "create_system", "create_version", "extract_version", "external_attr",
                        "internal_attr"):
                assert getattr(new, key) == getattr(info, key), key


def test_a_truncated_member_is_an_error(tmp_path):
    src = tmp_path / "a.zip"
    make_zip(src)
    with zipfile.ZipFile(src) as z:
        infos = z.infolist()
    raw = src.read_bytes()
    cut = infos[2].header_offset + 60                 # inside model.weights.h5's data
    broken = io.BytesIO(raw)
    with zipfile.ZipFile(broken) as z:
        broken.truncate(cut)
        with pytest.raises((zipfile.BadZipFile, ValueError, EOFError)):
            write_zip(z, tmp_path / "b.zip", {})
