"""Atomic output (weightshare._io._atomic): all or nothing at the destination, no leftovers."""

import os
import pathlib
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


# ------------------------------------------------------------------ the one writer's checks

def test_an_input_is_refused_as_output_by_path_symlink_or_hard_link(tmp_path):
    from weightshare._io._atomic import check_output
    from weightshare.errors import FileFormatError
    src = tmp_path / "model.png"                # a model, whatever its name
    src.write_bytes(b"model")
    os.symlink(src, tmp_path / "link.png")
    os.link(src, tmp_path / "hard.png")
    for dst in ("model.png", "link.png", "hard.png", "./model.png"):
        with pytest.raises(FileFormatError, match=r"is the input file"):
            check_output(tmp_path / dst, [tmp_path / "other.npz", src])
    assert check_output(tmp_path / "new.png", [src]) == str(tmp_path / "new.png")
    assert src.read_bytes() == b"model"


def test_a_symlink_at_the_output_path_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_bytes(b"precious")
    os.symlink(victim, tmp_path / "out.png")
    with atomic_output(tmp_path / "out.png") as tmp:
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert victim.read_bytes() == b"precious"
    assert not os.path.islink(tmp_path / "out.png")
    assert (tmp_path / "out.png").read_bytes() == b"new"


def test_in_place_follows_a_symlink_and_refuses_a_hard_link(tmp_path):
    from weightshare._io._atomic import check_output
    from weightshare.errors import FileFormatError
    real = tmp_path / "real" / "m.h5"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "m.h5"
    os.symlink(real, link)
    assert check_output(link, [link], in_place=True) == str(real)
    with atomic_output(link, inputs=[link], in_place=True) as tmp:
        assert os.path.dirname(tmp) == str(real.parent)
        with open(tmp, "wb") as f:
            f.write(b"new")
    assert os.path.islink(link) and real.read_bytes() == b"new"
    os.link(real, tmp_path / "hard.h5")
    with pytest.raises(FileFormatError, match=r"m\.h5: has 2 hard links: replacing it in place "):
        check_output(real, [real], in_place=True)


@pytest.mark.parametrize("length", [242, 250, 255])
def test_any_valid_output_name_works(length, tmp_path):
    dst = tmp_path / ("m" * (length - 6) + ".keras")
    with atomic_output(dst) as tmp:
        assert len(os.path.basename(tmp)) <= 255
        open(tmp, "wb").close()
    assert os.listdir(tmp_path) == [dst.name]
    with pytest.raises(OSError, match=r"File name too long"):
        with atomic_output(tmp_path / ("é" * 128 + ".h5")):
            raise AssertionError("refused before any work")      # pragma: no cover


def test_a_full_disk_names_the_output_and_leaves_the_old_file(tmp_path):
    dst = tmp_path / "out.h5"
    dst.write_bytes(b"old")
    with pytest.raises(OSError, match=r"No space left") as info:
        with atomic_output(dst) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"partial")
            # shutil.copyfile names the file it copied from, the input
            raise OSError(28, "No space left on device", "/models/input.h5")
    assert info.value.filename == str(dst) and "not written" in str(info.value)
    assert dst.read_bytes() == b"old" and os.listdir(tmp_path) == ["out.h5"]


def test_files_are_written_only_where_the_writer_gives_the_temporary_path():
    """A guard for "every file weightshare writes goes through the one writer": writing calls
    (open for writing, savefig, copies, h5py in a writing mode, renames) appear only in the
    modules that write into atomic_output's temporary path."""
    import re
    root = os.path.join(pathlib.Path(__file__).resolve().parents[2], "weightshare")
    writes = re.compile(r"""\bopen\([^)]*["'][rwax]*[wax+][rwax+b]*["']|savefig\(|shutil\.copy|"""
                        r"""np\.save|\.tofile\(|os\.(replace|rename)\(|File\([^)]*["'][wax]""")
    allowed = {"_io/_atomic.py", "_io/_writer.py", "_io/_zip.py", "_io/_rebuild.py",
               "_io/_safetensors_write.py", "plot.py",
               "_io/_st_packed.py",        # packed safetensors: into atomic_output's path too
               "_jobs/_pack_file.py"}      # pack/unpack: the same
    found = set()
    for folder, _, names in os.walk(root):
        for name in names:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as f:
                    code = [line for line in f if not line.lstrip().startswith((">>>", "#"))]
                if any(writes.search(line) for line in code):
                    found.add(os.path.relpath(path, root).replace(os.sep, "/"))
    assert found <= allowed, found - allowed
    assert {"_io/_writer.py", "plot.py", "_io/_atomic.py"} <= found    # the pattern still sees them


def test_a_signal_during_the_creation_of_a_temporary_file_waits_until_it_can_be_removed(
        tmp_path, monkeypatch):
    """SIGTERM right after mkstemp (before the clean-up knew the name) left the file behind."""
    import signal
    from weightshare._io import _atomic

    class Stop(Exception):
        pass

    def raise_stop():
        raise Stop

    def stop(signum, frame):              # as the CLI's handler: through unwind_later
        _atomic.unwind_later(raise_stop)

    real = _atomic.temp_path

    def created_then_signalled(*args):
        path = real(*args)
        os.kill(os.getpid(), signal.SIGTERM)      # the worst moment for a signal
        return path

    monkeypatch.setattr(_atomic, "temp_path", created_then_signalled)
    old = signal.signal(signal.SIGTERM, stop)
    try:
        for make in (lambda: _atomic.temp_file(tmp_path, "m.keras", ".h5"),
                     lambda: _atomic.atomic_output(tmp_path / "out.keras")):
            with pytest.raises(Stop):
                with make():
                    pass
            assert os.listdir(tmp_path) == []
    finally:
        signal.signal(signal.SIGTERM, old)
