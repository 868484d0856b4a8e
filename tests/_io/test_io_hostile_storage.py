"""Hostile HDF5 storage: a model file is read only from its own bytes (issue 17, item 1).

A dataset whose data lives in another file -- HDF5 external raw storage
(h5py ``external=``), a virtual dataset (``VirtualLayout``) whose source is
another file, an external link -- must never be read or written: opened
through h5py, ``info``/``report``/``compare`` would read the other file as
weights, and a rewrite would write the clustered or pruned values into it.
Every such file is refused at open time, in one line naming the file and the
dataset, by every command and by the Python API; the victim files keep their
bytes, and no output or temporary file is left. The hostile files are real
fixtures with one dataset replaced; victims sit at absolute paths and at
paths relative to the working directory (and to the file's folder, where a
virtual dataset's sources are looked up first).
"""

import hashlib
import io
import os
import pathlib
import re
import shutil
import struct
import subprocess
import sys
import time
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare.cli import main
from weightshare.errors import FileFormatError

#: a bound on cases that took 7 s to minutes before their fix and take well under a second
#: now; loose enough for a loaded 2-core machine running tests in parallel
QUICK = 3.0

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
WEIGHTS = "model.weights.h5"
#: .weights.h5, legacy .h5 of Keras 3 and 2, Keras 2 weights-only .h5, .keras of Keras 3 and 2
FORMATS = ("k3_mlp.weights.h5", "k3_mlp.h5", "k2_mlp.h5", "k2_mlp.weights_only.h5",
           "k3_mlp.keras", "k2_mlp.keras")
ORIGINAL = {"k3": "k3_mlp.keras", "k2": "k2_mlp.keras"}
#: what the refusal says, for each way of keeping data outside the file
REFUSAL = re.compile(r"stores its data outside the file \(HDF5 external storage\)|is a virtual "
                     r"dataset|is an external link")


def _suffix(name):
    for s in (".weights.h5", ".keras", ".h5"):
        if name.endswith(s):
            return s
    raise ValueError(name)


def _location(name, tensor):
    """The HDF5 path of `tensor` in fixture `name` (inside the weights member of a .keras)."""
    rec = {r.name: r for r in weightshare.read_weights(FIX / name, values=False)}[tensor]
    return rec.location[len(WEIGHTS) + 1:] if name.endswith(".keras") else rec.location


def _edit(name, dst, fn):
    """Copy fixture `name` to `dst`, ``fn(h5py.File)`` applied to its HDF5 (or .keras member)."""
    if not name.endswith(".keras"):
        shutil.copyfile(FIX / name, dst)
        with h5py.File(dst, "r+") as f:
            fn(f)
        return
    with zipfile.ZipFile(FIX / name) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == WEIGHTS:
                bio = io.BytesIO(data)
                with h5py.File(bio, "r+") as f:
                    fn(f)
                data = bio.getvalue()
            zout.writestr(info, data)


def _external(path, ref, shape=None, dtype=None):
    """An edit replacing dataset `path` by one stored in the file `ref` (external raw storage)."""
    def edit(f):
        old = f[path]
        del f[path]
        f.create_dataset(path, shape=shape or old.shape, dtype=dtype or old.dtype,
                         external=[(ref, 0, h5py.h5f.UNLIMITED)])
    return edit


def _virtual(path, ref):
    """An edit replacing dataset `path` by a virtual dataset whose source is ``ref:/k``."""
    def edit(f):
        old = f[path]
        shape, dtype = old.shape, old.dtype
        del f[path]
        layout = h5py.VirtualLayout(shape, dtype)
        layout[...] = h5py.VirtualSource(ref, "k", shape=shape)
        f.create_virtual_dataset(path, layout)
    return edit


def _link(path, ref):
    """An edit replacing dataset `path` by an external link to ``ref:/k``."""
    def edit(f):
        del f[path]
        f[path] = h5py.ExternalLink(ref, "/k")
    return edit


def _victim(kind, where, values):
    """Write a victim file at `where` holding `values` (raw bytes, or an HDF5 file with /k)."""
    if kind == "external":
        where.write_bytes(np.ascontiguousarray(values).tobytes())
    else:
        with h5py.File(where, "w") as f:
            f.create_dataset("k", data=values)


EDITS = {"external": _external, "virtual": _virtual, "link": _link}


def _sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _tree(folder):
    """{relative path: sha256} of every file under `folder`."""
    out = {}
    for dirpath, _, files in os.walk(folder):
        for f in files:
            p = pathlib.Path(dirpath, f)
            out[str(p.relative_to(folder))] = _sha(p)
    return out


class Hostile:
    """A hostile copy of a fixture and its victim, laid out in `root`.

    relative: the file, the victim and the output folder are named relative
    to `root`, the working directory (the victim's name in the file is
    relative); otherwise they are absolute and the working directory is an
    empty folder elsewhere.
    """

    def __init__(self, root, name, kind, tensor="hidden/kernel", relative=False):
        self.root, self.name, self.kind = root, name, kind
        self.location = _location(name, tensor)
        (root / "out").mkdir()
        (root / "victims").mkdir()
        victim = root / "victims" / "victim.bin"
        values = {r.name: r.value for r in weightshare.read_weights(FIX / name)}[tensor]
        _victim(kind, victim, values)
        ref = "victims/victim.bin" if relative else str(victim)
        base = pathlib.Path() if relative else root
        self.input = base / ("hostile" + _suffix(name))
        self.output = base / "out" / ("out" + _suffix(name))
        _edit(name, root / self.input.name, EDITS[kind](self.location, ref))
        self.cwd = root if relative else root / "elsewhere"
        self.cwd.mkdir(exist_ok=True)
        self.before = _tree(root)

    def argv(self, command, io_npz):
        i, o = str(self.input), str(self.output)
        original = str(FIX / ORIGINAL[self.name[:2]])
        return {"info": ["info", i],
                "cluster": ["cluster", i, "-o", o, "-k", "2"],
                "prune": ["prune", i, "-o", o, "--sparsity", "0.5"],
                "remove": ["remove", i, "-o", o, "--layer", "hidden", "--count", "1"],
                "report": ["report", i],
                "report-compare": ["report", original, "--compare", i],
                "compare": ["compare", original, i, "--inputs", io_npz],
                "compare-original": ["compare", i, original, "--inputs", io_npz]}[command]

    def check_untouched(self):
        assert _tree(self.root) == self.before     # victim, input: same bytes; no output, no temp


COMMANDS = ("info", "cluster", "prune", "remove", "report", "report-compare", "compare",
            "compare-original")


@pytest.fixture(scope="module")
def io_npz(tmp_path_factory):
    """The k3_mlp inputs as a .npy file for compare --inputs."""
    path = tmp_path_factory.mktemp("inputs") / "x.npy"
    with np.load(FIX / "k3_mlp_io.npz") as z:
        np.save(path, z["x"])
    return str(path)


def _one_line_of(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def _one_line(err, h):
    line = _one_line_of(err)
    assert str(h.input) in line and h.location in line, line
    return line


@pytest.mark.parametrize("relative", [False, True], ids=["absolute", "relative"])
@pytest.mark.parametrize("kind", ["external", "virtual"])
@pytest.mark.parametrize("name", FORMATS)
def test_every_command_refuses_without_touching_the_victim(tmp_path, monkeypatch, capsys, io_npz,
                                                           name, kind, relative):
    h = Hostile(tmp_path, name, kind, relative=relative)
    monkeypatch.chdir(h.cwd)
    for command in COMMANDS:
        rc = main(h.argv(command, io_npz))
        out, err = capsys.readouterr()
        assert rc == 2, (command, out, err)
        assert REFUSAL.search(_one_line(err, h)), err
        h.check_untouched()


@pytest.mark.parametrize("kind", ["external", "virtual", "link"])
@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5", "k3_mlp.weights.h5"])
def test_an_untargeted_dataset_is_refused_too(tmp_path, monkeypatch, capsys, io_npz, name, kind):
    """logits/bias is targeted by no command here: the output would still reference the victim."""
    h = Hostile(tmp_path, name, kind, tensor="logits/bias", relative=True)
    monkeypatch.chdir(h.cwd)
    for command in ("info", "cluster", "prune", "remove"):
        rc = main(h.argv(command, io_npz))
        _, err = capsys.readouterr()
        assert rc == 2, (command, err)
        assert REFUSAL.search(_one_line(err, h)), err
        h.check_untouched()


@pytest.mark.parametrize("kind", ["external", "virtual"])
@pytest.mark.parametrize("name", ["k3_mlp.keras", "k3_mlp.h5", "k2_mlp.weights_only.h5"])
def test_python_api_refuses(tmp_path, monkeypatch, name, kind):
    h = Hostile(tmp_path, name, kind, relative=True)
    monkeypatch.chdir(h.cwd)
    src, dst = h.input, h.output
    original = FIX / ORIGINAL[name[:2]]
    with np.load(FIX / "k3_mlp_io.npz") as z:
        x = z["x"]
    calls = [lambda: weightshare.read_weights(src, values=False),
             lambda: weightshare.read_weights(src),
             lambda: weightshare.file_format(src),
             lambda: weightshare.cluster_file(src, dst, 2),
             lambda: weightshare.prune_file(src, dst, sparsity=0.5),
             lambda: weightshare.transform_file(src, dst, lambda r, v: v),
             lambda: weightshare.remove_units(src, dst, layer="hidden", count=1),
             lambda: weightshare.load_tensors(src),
             lambda: weightshare.report(src),
             lambda: weightshare.compare_models(original, src, x)]
    for call in calls:
        with pytest.raises(FileFormatError) as e:
            call()
        assert e.value.path == str(src) and h.location in str(e.value.dataset), str(e.value)
        assert REFUSAL.search(str(e.value)), str(e.value)
        h.check_untouched()


def test_a_real_process_refuses_and_leaves_the_victim(tmp_path):
    h = Hostile(tmp_path, "k3_mlp.keras", "external", relative=True)
    res = subprocess.run([sys.executable, "-m", "weightshare", "cluster", str(h.input), "-o",
                          str(h.output), "-k", "2"], cwd=h.cwd, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    assert res.returncode == 2, res.stderr
    line = _one_line(res.stderr, h)
    assert line.startswith("weightshare cluster: error: ") and REFUSAL.search(line), line
    h.check_untouched()


def _dev_zero(name, dst):
    """Fixture `name` whose hidden kernel is 8 GiB of external storage in /dev/zero."""
    path = _location(name, "hidden/kernel")
    _edit(name, dst, _external(path, "/dev/zero", shape=(1 << 20, 1 << 11), dtype="f4"))
    return path


@pytest.mark.parametrize("name", ["k3_mlp.weights.h5", "k3_mlp.keras"])
def test_dev_zero_is_refused_before_allocating(tmp_path, name):
    dst = tmp_path / ("zero" + _suffix(name))
    path = _dev_zero(name, dst)
    t = time.perf_counter()
    for call in (lambda: weightshare.read_weights(dst), lambda: weightshare.report(dst),
                 lambda: weightshare.cluster_file(dst, tmp_path / ("o" + _suffix(name)), 2)):
        with pytest.raises(FileFormatError, match=REFUSAL) as e:
            call()
        assert path in e.value.dataset
    assert time.perf_counter() - t < QUICK
    assert sorted(os.listdir(tmp_path)) == [dst.name]


def test_dev_zero_under_an_address_space_limit(tmp_path):
    """In a real process limited to 1 GiB more than it starts with: refused, not a MemoryError."""
    dst = tmp_path / "zero.weights.h5"
    path = _dev_zero("k3_mlp.weights.h5", dst)
    code = ("import resource, sys\n"
            "from weightshare.cli import main\n"
            "import h5py, numpy\n"
            "vm = int(open('/proc/self/statm').read().split()[0]) * resource.getpagesize()\n"
            "resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))\n"
            "sys.exit(main(sys.argv[1:]))\n")
    res = subprocess.run([sys.executable, "-c", code, "report", str(dst)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2, res.stderr
    assert path in res.stderr and REFUSAL.search(res.stderr) and "Memory" not in res.stderr


# --------------------------------------------------------------------------- defence in depth
@pytest.fixture
def readers_blind(monkeypatch):
    """The readers' storage checks switched off: what the writers check on their own."""
    from weightshare._io import _container, _reader
    monkeypatch.setattr(_container, "check_storage", lambda *a, **k: None)
    monkeypatch.setattr(_reader, "check_dataset", lambda *a, **k: None)


@pytest.mark.parametrize("kind", ["external", "virtual"])
@pytest.mark.parametrize("name", ["k3_mlp.weights.h5", "k2_mlp.h5", "k3_mlp.keras"])
def test_the_rewriter_checks_again_before_writing(tmp_path, monkeypatch, readers_blind, name,
                                                  kind):
    h = Hostile(tmp_path, name, kind, relative=True)
    monkeypatch.chdir(h.cwd)
    for call in (lambda: weightshare.cluster_file(h.input, h.output, 2),
                 lambda: weightshare.prune_file(h.input, h.output, sparsity=0.5)):
        with pytest.raises(FileFormatError, match=REFUSAL) as e:
            call()
        assert h.location in e.value.dataset
        h.check_untouched()


@pytest.mark.parametrize("whole_file", [True, False], ids=["file", "dataset"])
@pytest.mark.parametrize("tensor", ["hidden/kernel", "logits/bias"])
@pytest.mark.parametrize("kind", ["external", "virtual"])
@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_mlp.h5"])
def test_the_rebuild_checks_again_before_writing(tmp_path, monkeypatch, readers_blind, name, kind,
                                                 tensor, whole_file):
    """remove re-creates hidden/kernel (its creation properties name the external file) and
    copies logits/bias (H5Ocopy keeps the reference): both refused, by the check of the whole
    source or, without it, by the check of each dataset."""
    from weightshare._io import _rebuild
    if not whole_file:
        monkeypatch.setattr(_rebuild, "check_storage", lambda *a, **k: None)
    h = Hostile(tmp_path, name, kind, tensor=tensor, relative=True)
    monkeypatch.chdir(h.cwd)
    with pytest.raises(FileFormatError) as e:
        weightshare.remove_units(h.input, h.output, layer="hidden", count=1)
    assert e.value.path == str(h.input) and h.location in e.value.dataset, str(e.value)
    h.check_untouched()


# --------------------------------------------------------------------------- allocation bounds
def _forged_chunk(dst, shape, chunks, size):
    """k3_mlp.weights.h5 whose hidden kernel is chunked (gzip), its first chunk only written,
    and the B-tree key of that chunk forged to claim `size` stored bytes."""
    path = _location("k3_mlp.weights.h5", "hidden/kernel")
    shutil.copyfile(FIX / "k3_mlp.weights.h5", dst)
    with h5py.File(dst, "r+") as f:
        del f[path]
        ds = f.create_dataset(path, shape=shape, dtype="f4", chunks=chunks, compression="gzip")
        ds[:chunks[0]] = 0.25
        real = ds.id.get_chunk_info(0).size
    data = bytearray(dst.read_bytes())
    key = struct.pack("<II", real, 0) + bytes(8 * (len(shape) + 1))   # size, mask, offsets
    assert data.count(key) == 1
    i = data.find(key)
    data[i:i + 4] = struct.pack("<I", size)
    dst.write_bytes(bytes(data))
    with h5py.File(dst, "r") as f:
        assert f[path].id.get_storage_size() == size
    return path


@pytest.mark.parametrize("shape", [(1 << 26, 16), (1 << 10, 16)], ids=["4GiB", "64KiB"])
def test_a_forged_chunk_size_does_not_count_as_stored(tmp_path, shape):
    """A chunk index claiming 2 GiB stored in a file of 20 KB: the claim is not what the file
    holds. Counted as stored, it let a 4 GiB shape be allocated; and libhdf5 allocates a
    chunk's claimed size to read it."""
    dst = tmp_path / "forged.weights.h5"
    path = _forged_chunk(dst, shape, (min(shape[0], 1 << 16), 16), 0x7FFFFFF0)
    t = time.perf_counter()
    for call in (lambda: weightshare.read_weights(dst, values=False),
                 lambda: weightshare.cluster_file(dst, tmp_path / "o.weights.h5", 2)):
        with pytest.raises(FileFormatError, match="claims to store 2147483632 bytes of data in "
                                                  "a file of") as e:
            call()
        assert e.value.dataset == path
    assert time.perf_counter() - t < QUICK
    assert sorted(os.listdir(tmp_path)) == [dst.name]


def test_the_shape_is_bounded_by_the_file_not_by_the_claim(tmp_path):
    """check_dataset itself (the open-time walk switched off): a 4 GiB shape over a chunk index
    claiming 2 GiB is refused against the file's size."""
    from weightshare._io._h5check import check_dataset
    dst = tmp_path / "forged.weights.h5"
    path = _forged_chunk(dst, (1 << 26, 16), (1 << 16, 16), 0x7FFFFFF0)
    with h5py.File(dst, "r") as f:
        with pytest.raises(FileFormatError, match="which claims 4294967296 bytes of data but "
                                                  "stores only"):
            check_dataset(f[path], f, str(dst), path, os.path.getsize(dst))


def test_an_unread_forged_dataset_is_refused_before_remove_copies_it(tmp_path):
    """remove copies the datasets it does not read with H5Ocopy, which reads each chunk into a
    buffer of the size the chunk index claims."""
    dst = tmp_path / "stray.h5"
    shutil.copyfile(FIX / "k2_mlp.h5", dst)
    with h5py.File(dst, "r+") as f:
        ds = f.create_dataset("stray", shape=(1 << 10, 16), dtype="f4", chunks=(1 << 10, 16),
                              compression="gzip")
        ds[...] = 0.5
        real = ds.id.get_chunk_info(0).size
    data = bytearray(dst.read_bytes())
    key = struct.pack("<II", real, 0) + bytes(24)
    assert data.count(key) == 1
    i = data.find(key)
    data[i:i + 4] = struct.pack("<I", 0x7FFFFFF0)
    dst.write_bytes(bytes(data))
    with pytest.raises(FileFormatError, match="claims to store 2147483632 bytes") as e:
        weightshare.remove_units(dst, tmp_path / "o.h5", layer="hidden", count=1)
    assert e.value.dataset == "/stray"
    assert sorted(os.listdir(tmp_path)) == ["stray.h5"]


# --------------------------------------------------------------------------- what is never opened
def test_a_virtual_dataset_over_a_fifo_is_refused_without_opening_it(tmp_path):
    """With an unlimited mapping libhdf5 opens the sources to tell the dataset's shape: asking
    for it would block on a FIFO (or read any file). The layout is looked at first."""
    os.mkfifo(tmp_path / "fifo")
    dst = tmp_path / "vds.weights.h5"
    path = _location("k3_mlp.weights.h5", "hidden/kernel")
    unlimited = h5py.h5s.UNLIMITED

    def edit(f):
        del f[path]
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        spaces = []
        for _ in range(2):
            space = h5py.h5s.create_simple((8, 16), (unlimited, 16))
            space.select_hyperslab((0, 0), (unlimited, 1), (8, 16), (8, 16))
            spaces.append(space)
        dcpl.set_virtual(spaces[0], str(tmp_path / "fifo").encode(), b"k", spaces[1])
        h5py.h5d.create(f[path.rsplit("/", 1)[0]].id, b"0", h5py.h5t.IEEE_F32LE, spaces[0],
                        dcpl=dcpl)
    _edit("k3_mlp.weights.h5", dst, edit)
    res = subprocess.run([sys.executable, "-m", "weightshare", "info", str(dst)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=10,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2 and path in res.stderr and "is a virtual dataset" in res.stderr, \
        res.stderr


def test_a_soft_link_through_an_external_link_is_refused_at_the_external_link(tmp_path,
                                                                             monkeypatch):
    """The walk follows hard links only: a soft link's target is inside the file, or goes
    through an external link that the walk meets and refuses first."""
    monkeypatch.chdir(tmp_path)
    _victim("link", tmp_path / "victim.h5", np.ones((8, 16), "f4"))
    before = _sha(tmp_path / "victim.h5")
    dst = tmp_path / "soft.weights.h5"
    path = _location("k3_mlp.weights.h5", "hidden/kernel")

    def edit(f):
        del f[path]
        f["elsewhere"] = h5py.ExternalLink("victim.h5", "/")
        f[path] = h5py.SoftLink("/elsewhere/k")
    _edit("k3_mlp.weights.h5", dst, edit)
    for call in (lambda: weightshare.read_weights(dst),
                 lambda: weightshare.cluster_file(dst, tmp_path / "o.weights.h5", 2)):
        with pytest.raises(FileFormatError, match="is an external link") as e:
            call()
        assert e.value.dataset == "/elsewhere"
    assert _sha(tmp_path / "victim.h5") == before
    assert sorted(os.listdir(tmp_path)) == ["soft.weights.h5", "victim.h5"]


def test_a_chunk_past_the_end_is_refused_before_remove_copies_it(tmp_path):
    """A chunk claiming 1 MB at 100 bytes before the end of a 2 MB file (a valid total): H5Ocopy
    of that dataset (remove copies what it does not change) crashes the process with a double
    free. Run as a real process, so that a regression fails the test instead of pytest."""
    dst = tmp_path / "stray.h5"
    shutil.copyfile(FIX / "k2_mlp.h5", dst)
    with h5py.File(dst, "r+") as f:
        f.create_dataset("padding", data=np.zeros(1 << 19, "f4"))
        ds = f.create_dataset("stray", shape=(1 << 10, 16), dtype="f4", chunks=(1 << 10, 16),
                              compression="gzip")
        ds[...] = 0.5
        real = ds.id.get_chunk_info(0).size
    data = bytearray(dst.read_bytes())
    key = struct.pack("<II", real, 0) + bytes(24)
    assert data.count(key) == 1
    i = data.find(key)
    data[i:i + 4] = struct.pack("<I", 1 << 20)
    dst.write_bytes(bytes(data))
    with h5py.File(dst, "r") as f:
        assert f["stray"].id.get_storage_size() < dst.stat().st_size
    res = subprocess.run([sys.executable, "-m", "weightshare", "remove", str(dst), "-o",
                          str(tmp_path / "o.h5"), "--layer", "hidden", "--count", "1"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 2, res.stderr
    assert "/stray: has a chunk of 1048576 bytes at byte" in _one_line_of(res.stderr)
    assert sorted(os.listdir(tmp_path)) == ["stray.h5"]


# --------------------------------------------------------------------------- damaged heap
#: a tf-keras 2 legacy .h5 with one bit flipped in the global heap holding its root
#: attributes (the fuzzer's find; the corpus replays it through every command)
DAMAGED_HEAP = ROOT / "tests" / "hardening" / "regressions" / "fuzz-591328083d18.h5"


@pytest.mark.parametrize("job", ["disk_usage", "strip_compress", "cluster_compress"])
def test_an_attribute_libhdf5_cannot_read_is_refused_naming_the_file(job, tmp_path):
    src = tmp_path / "model.h5"
    shutil.copy(DAMAGED_HEAP, src)
    before = src.read_bytes()
    out = tmp_path / "out.h5"
    run = {"disk_usage": lambda: weightshare.disk_usage(src),
           "strip_compress": lambda: weightshare.strip_file(src, out, compress=True),
           "cluster_compress": lambda: weightshare.cluster_file(src, out, 4, compress=True)}[job]
    with pytest.raises(FileFormatError, match="Expected global heap object size") as info:
        run()
    assert str(src) in str(info.value)
    assert src.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["model.h5"]
