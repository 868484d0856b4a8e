"""Atomic output (weightshare._io._atomic): all or nothing at the destination, no leftovers."""

import os
import stat

import pytest

from weightshare._io._atomic import atomic_output, temp_path


def test_success_replaces_the_destination(tmp_path):
    dst = tmp_path / "out.keras"
    dst.write_bytes(b"old")
    with atomic_output(dst) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path)        # same folder: os.replace is atomic
        assert os.path.basename(tmp).startswith(".out.keras.")
        assert dst.read_bytes() == b"old"                   # untouched until the end
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert dst.read_bytes() == b"new"
    assert sorted(os.listdir(tmp_path)) == ["out.keras"]


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyboardInterrupt(), OSError(28, "No space")])
def test_failure_leaves_the_destination_and_no_temporary_file(exc, tmp_path):
    dst = tmp_path / "out.h5"
    dst.write_bytes(b"old")
    with pytest.raises(type(exc)):
        with atomic_output(dst) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"partial")
            raise exc
    assert dst.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["out.h5"]


def test_failure_without_a_previous_file_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_output(tmp_path / "new.h5"):
            raise RuntimeError
    assert os.listdir(tmp_path) == []


def test_permissions_follow_the_umask_or_the_replaced_input(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_output(tmp_path / "a.h5") as tmp:
            open(tmp, "wb").close()
        assert stat.S_IMODE(os.stat(tmp_path / "a.h5").st_mode) == 0o640
    finally:
        os.umask(old)
    src = tmp_path / "b.h5"
    src.write_bytes(b"x")
    os.chmod(src, 0o604)
    with atomic_output(src, mode_from=src) as tmp:
        open(tmp, "wb").close()
    assert stat.S_IMODE(os.stat(src).st_mode) == 0o604


def test_temp_path_is_a_new_hidden_file(tmp_path):
    a, b = temp_path(tmp_path, "m.keras", ".h5"), temp_path(tmp_path, "m.keras", ".h5")
    assert a != b and os.path.getsize(a) == 0
    assert os.path.basename(a).startswith(".m.keras.") and a.endswith(".h5")
