"""A deterministic corpus of broken inputs, built from the real-Keras fixtures.

Every :class:`Case` is one input (with the files it needs) and what to run it
with: the commands it applies to, extra arguments per command, what outcome
is acceptable and what an error line must name. ``tests/test_hardening.py``
runs every case through every command that takes a file; this module only
builds them (it never imports weightshare: where the bytes to corrupt lie is
found with h5py's low-level API, see ``regions.py``).

Kinds of cases (``Case.kind``):

- ``truncate``: the fixture cut at many offsets (structure-aware and random);
- ``flip-superblock``, ``flip-header``, ``flip-attribute``, ``flip-data``,
  ``flip-zip``: single-bit flips and bursts in those regions;
- ``special``: empty files, folders, symlink loops, FIFOs, devices, junk;
- ``zip``: missing members, members that are not HDF5, sub-folders, truncated
  central directories, zip bombs, forged sizes, encryption flags;
- ``h5``: HDF5 that is not Keras, ``layer_names``/``weight_names`` that lie,
  configs that disagree with the shapes, string attributes of every encoding,
  links (soft, external, dangling, cycles);
- ``tensor``: NaN, Inf, subnormals, zeros, one value, extreme values, every
  dtype h5py can write, zero-size and forged (huge, unallocated) shapes;
- ``npy``: NumPy files with forged headers or pickles;
- ``arg``: k, sparsity, layers, roles, units, count, inputs, labels;
- ``output``: read-only folder, missing folder, output equal to the input,
  a folder, a symlink to the input, a different suffix;
- ``text``: layer names holding terminal escape sequences, in tables and error lines;
- ``depth``: configs nested past the limit (and at it), chains of 1,200 layers;
- ``regression``: files saved by the fuzzer (``regressions/``);
- ``random``: seeded random mutations (only with ``count`` beyond the
  structured corpus).

Run as a script to write cases to a folder::

    python tests/hardening/corpus.py --out DIR --seed 0 --count 2000

(each case in ``DIR/<id>/`` with a ``case.json`` saying what it is).
"""

import argparse
import dataclasses
import io
import json
import os
import pathlib
import struct
import sys
import warnings
import zipfile
import zlib

import h5py
import numpy as np

if __package__:
    from . import regions as _regions
else:                        # run as a script
    import regions as _regions

__all__ = ["Case", "Dir", "Symlink", "Fifo", "build", "materialize", "COMMANDS", "WRITERS",
           "FIXTURES", "REGRESSIONS", "BASES"]

HERE = pathlib.Path(__file__).resolve().parent
FIXTURES = HERE.parent / "fixtures" / "keras"
REGRESSIONS = HERE / "regressions"
COMMANDS = ("info", "cluster", "prune", "remove", "strip", "report", "compare")
#: commands that write an output file
WRITERS = ("cluster", "prune", "remove", "strip")
#: inputs strip refuses whole (it works on Keras files only)
_NOT_KERAS = (".npy", ".npz", ".safetensors")
WEIGHTS = "model.weights.h5"
CONFIG = "config.json"
#: (fixture, model stem of its compare inputs / architecture, a Dense or Conv layer)
BASES = (
    ("k3_mlp.keras", "k3_mlp", "hidden"),
    ("k3_mlp.weights.h5", "k3_mlp", "hidden"),
    ("k3_mlp.h5", "k3_mlp", "hidden"),
    ("k2_mlp.keras", "k2_mlp", "hidden"),
    ("k2_mlp.h5", "k2_mlp", "hidden"),
    ("k2_mlp.weights_only.h5", "k2_mlp", "hidden"),
    ("k2_mlp.weights.h5", "k2_mlp", "hidden"),
    ("k3tf_cnn.keras", "k3tf_cnn", "conv1"),
    ("k2_cnn.h5", "k2_cnn", "conv1"),
    ("k3_bf16.weights.h5", "k3_bf16", "conv1"),
)


# --------------------------------------------------------------------------- cases
class Dir:
    """A folder where a file is expected."""


@dataclasses.dataclass(frozen=True)
class Symlink:
    """A symbolic link to `target` (relative to the case folder, or absolute)."""
    target: str


class Fifo:
    """A named pipe where a file is expected (reading it would block)."""


@dataclasses.dataclass(frozen=True)
class Case:
    """One broken input and how to run it.

    Attributes
    ----------
    id : str
        Unique, stable, usable as a folder name.
    kind : str
        Category (see the module docstring).
    what : str
        What the case is, in one line.
    files : tuple of (str, object)
        Files of the case folder: bytes, or :class:`Dir`, :class:`Symlink`, :class:`Fifo`.
    input : str
        The file the commands are given (a name in `files`).
    model : str
        Fixture stem whose ``_io.npz`` inputs (and architecture) ``compare`` uses.
    layer : str
        The layer ``remove`` is asked to shrink.
    commands : tuple of str
        Commands the case applies to.
    args : tuple of (str, tuple of str)
        Per command, arguments replacing the default options.
    expect : {"any", "done", "refused"} or tuple of (str, str)
        Acceptable outcomes: exit 0 (done), exit 2 (refused), or either;
        per command as ``((command, expect), ..., ("*", expect))``.
    names : tuple
        What an error line must contain: each item a string or a tuple of
        alternatives; ``{input}``, ``{output}``, ``{folder}`` are replaced
        by the paths of the run.
    output : str
        The output path: ``fresh`` (empty folder), ``existing`` (a previous
        file there), ``readonly``, ``missing`` (folder), ``input``, ``dir``,
        ``link`` (a symlink to the input), ``suffix`` (another suffix),
        ``victimlink`` / ``victimhard`` (a symlink / a hard link to the case's
        ``victim.txt``: replaced, never written through).
    arch : bool
        The input holds an architecture (False for weights-only files and
        arrays: ``remove`` must refuse them, naming the file).
    """

    id: str
    kind: str
    what: str
    files: tuple
    input: str
    model: str = "k3_mlp"
    layer: str = "hidden"
    commands: tuple = COMMANDS
    args: tuple = ()
    expect: str = "any"
    names: tuple = ("{input}",)
    output: str = "fresh"
    arch: bool = True

    def expect_for(self, command):
        """The acceptable outcome of `command`: "any", "done" or "refused"."""
        if isinstance(self.expect, str):
            expect = self.expect
        else:
            table = dict(self.expect)
            expect = table.get(command, table.get("*", "any"))
        if command == "remove" and not self.arch and expect == "done":
            return "refused"
        if command == "strip" and expect == "done" and self.input.endswith(_NOT_KERAS):
            return "refused"
        return expect

    def names_for(self, command):
        """What an error line of `command` must contain (see `names`)."""
        if command == "remove" and not self.arch and self.kind != "arg":
            # remove needs an architecture: it may refuse the input first, or the
            # output for the reason the case is about
            either = ["{input}"]
            for item in self.names:
                either.extend(item if isinstance(item, (tuple, list)) else (item,))
            return (tuple(dict.fromkeys(either)),)
        return self.names

    def args_for(self, command):
        """The case's arguments for `command`, or None for the defaults."""
        for cmd, args in self.args:
            if cmd == command:
                return args
        return None

    def to_json(self):
        """The case's metadata (not its bytes), for ``case.json``."""
        return {"id": self.id, "kind": self.kind, "what": self.what, "input": self.input,
                "model": self.model, "layer": self.layer, "commands": list(self.commands),
                "args": {c: list(a) for c, a in self.args},
                "expect": {c: self.expect_for(c) for c in self.commands},
                "names": {c: [list(n) if isinstance(n, tuple) else n for n in self.names_for(c)]
                          for c in self.commands},
                "output": self.output, "arch": self.arch,
                "files": {n: _describe(c) for n, c in self.files}}


def _describe(content):
    if isinstance(content, bytes):
        return f"{len(content)} bytes"
    if isinstance(content, Symlink):
        return f"symlink to {content.target}"
    return type(content).__name__.lower()


def suffix(name):
    """The suffix the commands see (kept for outputs)."""
    low = name.lower()
    for s in (".weights.h5", ".keras", ".h5", ".hdf5", ".npy", ".npz"):
        if low.endswith(s):
            return s
    return os.path.splitext(low)[1]


def _fixture(name):
    return (FIXTURES / name).read_bytes()


# --------------------------------------------------------------------------- byte helpers
def make_zip(members, compression=zipfile.ZIP_STORED):
    """A zip of (name, bytes) members, with fixed timestamps (deterministic)."""
    bio = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(bio, "w", compression) as z:
        warnings.simplefilter("ignore")        # duplicate names are made on purpose
        for name, content in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            z.writestr(info, content)
    return bio.getvalue()


def zip_members(data):
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return [(i.filename, z.read(i)) for i in z.infolist()]


def edit_h5(data, fn):
    """`data` (an HDF5 file) after ``fn(h5py.File)`` edited it in memory."""
    bio = io.BytesIO(data)
    with h5py.File(bio, "r+") as f:
        fn(f)
    return bio.getvalue()


def new_h5(fn):
    bio = io.BytesIO()
    with h5py.File(bio, "w") as f:
        fn(f)
    return bio.getvalue()


def edit_keras(data, h5=None, config=None):
    """A ``.keras`` zip with its weights member and/or config edited."""
    out = []
    for name, content in zip_members(data):
        if name == WEIGHTS and h5 is not None:
            content = edit_h5(content, h5)
        if name == CONFIG and config is not None:
            content = json.dumps(config(json.loads(content))).encode()
        out.append((name, content))
    return make_zip(out)


def edit_any(name, data, h5=None, config=None):
    """Edit a fixture of any HDF5 format: the zip's member, or the file itself."""
    if name.endswith(".keras"):
        return edit_keras(data, h5=h5, config=config)
    if config is not None:
        def both(f):
            cfg = json.loads(f.attrs["model_config"])
            f.attrs["model_config"] = json.dumps(config(cfg))
            if h5 is not None:
                h5(f)
        return edit_h5(data, both)
    return edit_h5(data, h5)


def first_dataset(f, shape=None):
    """HDF5 path of the first dataset (of `shape`) in visit order."""
    found = []

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset) and (shape is None or obj.shape == shape) and not found:
            found.append(name)
    f.visititems(visit)
    return found[0] if found else None


def kernel_path(name, data):
    """Path of the first kernel (ndim >= 2 dataset) of an HDF5 fixture or .keras member."""
    if name.endswith(".keras"):
        data = dict(zip_members(data))[WEIGHTS]
    found = []
    with h5py.File(io.BytesIO(data), "r") as f:
        def visit(n, obj):
            if isinstance(obj, h5py.Dataset) and obj.ndim >= 2 and not found:
                found.append(n)
        f.visititems(visit)
    return found[0]


def replace_dataset(f, path, data=None, **kwargs):
    """Replace the dataset `path` of `f` by a new one (its attributes are dropped)."""
    del f[path]
    return f.create_dataset(path, data=data, **kwargs)


def _flip(data, positions, masks):
    b = bytearray(data)
    for p, m in zip(positions, masks):
        b[p] ^= m
    return bytes(b)


# --------------------------------------------------------------------------- kinds
class _Builder:
    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.cases = []
        self.ids = set()
        self.n = 0

    def add(self, kind, what, files, input=None, **kw):
        stem = kw.pop("stem", kind)
        cid = f"{kind}-{stem}-{len(self.cases):04d}".replace("/", "_")
        files = tuple(files.items()) if isinstance(files, dict) else tuple(files)
        input = input or files[0][0]
        if "output" not in kw:
            kw["output"] = "existing" if len(self.cases) % 2 else "fresh"
        if "arch" not in kw:
            low = str(stem) + " " + str(input)
            kw["arch"] = not any(s in low for s in (".weights.h5", ".weights_only.h5", ".npy",
                                                    ".npz", "weights.json"))
        self.cases.append(Case(cid, kind, what, files, input, **kw))


def _base_kw(model, layer):
    return {"model": model, "layer": layer}


def truncations(b):
    for name, model, layer in BASES:
        data = _fixture(name)
        n = len(data)
        regions = _regions.file_regions(data)
        offsets = {1, 4, 7, 8, 16, 47, 95, 96, 512, n // 4, n // 2, 3 * n // 4, n - 16, n - 1}
        for kind in ("header", "data", "zip_central", "zip_end", "zip_local"):
            for start, stop in regions.get(kind, [])[:2]:
                offsets.update({start, (start + stop) // 2})
        offsets.update(int(x) for x in b.rng.integers(1, n, 4))
        for off in sorted(o for o in offsets if 0 < o < n):
            b.add("truncate", f"{name} cut to its first {off} of {n} bytes",
                  {"input" + suffix(name): data[:off]}, stem=name, **_base_kw(model, layer))


def bitflips(b):
    plan = {"superblock": (4, 2), "header": (6, 3), "attribute": (4, 2), "data": (3, 2),
            "zip_local": (2, 1), "zip_central": (2, 1), "zip_end": (2, 1), "config": (2, 1)}
    for name, model, layer in BASES:
        data = _fixture(name)
        for kind, ranges in _regions.file_regions(data).items():
            if not ranges:
                continue
            singles, bursts = plan[kind]
            total = sum(stop - start for start, stop in ranges)
            label = "flip-zip" if kind.startswith("zip") or kind == "config" else f"flip-{kind}"
            for i in range(singles + bursts):
                # a position drawn uniformly over the region's bytes
                k = int(b.rng.integers(0, total))
                for start, stop in ranges:
                    if k < stop - start:
                        pos = start + k
                        break
                    k -= stop - start
                if i < singles:
                    bit = int(b.rng.integers(0, 8))
                    new = _flip(data, [pos], [1 << bit])
                    what = f"{name}: bit {bit} of byte {pos} flipped ({kind})"
                else:
                    width = int(b.rng.integers(2, 17))
                    positions = [p for p in range(pos, min(pos + width, len(data)))]
                    masks = [int(m) for m in b.rng.integers(1, 256, len(positions))]
                    new = _flip(data, positions, masks)
                    what = f"{name}: {len(positions)}-byte burst at {pos} ({kind})"
                b.add(label, what, {"input" + suffix(name): new}, stem=name,
                      **_base_kw(model, layer))


def specials(b):
    good = _fixture("k3_mlp.keras")
    for sfx in (".keras", ".h5", ".weights.h5", ".npy", ".npz", ".bin"):
        b.add("special", f"an empty file named *{sfx}", {"empty" + sfx: b""}, expect="refused")
    b.add("special", "a folder named x.keras", {"x.keras": Dir()}, expect="refused")
    b.add("special", "a folder named x.h5", {"x.h5": Dir()}, expect="refused")
    b.add("special", "a symlink loop a.keras -> b.keras -> a.keras",
          [("a.keras", Symlink("b.keras")), ("b.keras", Symlink("a.keras"))], expect="refused")
    b.add("special", "a symlink to itself", {"self.h5": Symlink("self.h5")}, expect="refused")
    b.add("special", "a dangling symlink", {"gone.keras": Symlink("nowhere.keras")},
          expect="refused")
    b.add("special", "a symlink to a good .keras file (followed)",
          [("link.keras", Symlink("real.keras")), ("real.keras", good)], expect="done")
    b.add("special", "a named pipe (FIFO) named x.h5: reading would block", {"x.h5": Fifo()},
          expect="refused")
    b.add("special", "a symlink to /dev/zero named zero.h5 (endless zeros)",
          {"zero.h5": Symlink("/dev/zero")}, expect="refused")
    b.add("special", "a symlink to /dev/null named null.keras", {"null.keras": Symlink("/dev/null")},
          expect="refused")
    rng = np.random.default_rng(1)
    b.add("special", "64 KB of random bytes", {"junk.keras": rng.bytes(65536)}, expect="refused")
    b.add("special", "4 KB of 0xFF", {"ff.h5": b"\xff" * 4096}, expect="refused")
    b.add("special", "a text file", {"hello.h5": b"hello world\n"}, expect="refused")
    b.add("special", "the HDF5 signature then junk",
          {"sig.h5": b"\x89HDF\r\n\x1a\n" + rng.bytes(2000)}, expect="refused")
    b.add("special", "a zip signature then junk", {"sig.keras": b"PK\x03\x04" + rng.bytes(2000)},
          expect="refused")
    b.add("special", "the .npy magic then junk", {"sig.npy": b"\x93NUMPY" + rng.bytes(200)},
          expect="refused")
    b.add("special", "a JSON file named .keras", {"cfg.keras": b'{"class_name": "Sequential"}'},
          expect="refused")
    b.add("special", "a sharded weights index (.weights.json)",
          {"m.weights.json": b'{"weight_map": {"layers/dense/vars": "m_00000.weights.h5"}}'},
          expect="refused")
    b.add("special", "a 1-byte file", {"one.keras": b"P"}, expect="refused")
    b.add("special", "an HDF5 file with a 512-byte user block (valid HDF5)",
          {"ub.weights.h5": _with_userblock(_fixture("k3_mlp.weights.h5"))})


def _with_userblock(store):
    def copy(f):
        with h5py.File(io.BytesIO(store), "r") as src:
            for key in src:
                src.copy(src[key], f, name=key)
            for k, v in src.attrs.items():
                f.attrs[k] = v
    bio = io.BytesIO()
    with h5py.File(bio, "w", userblock_size=512) as f:
        copy(f)
    return bio.getvalue()


def zips(b):
    for name, model, layer in (("k3_mlp.keras", "k3_mlp", "hidden"),
                               ("k3tf_cnn.keras", "k3tf_cnn", "conv1")):
        data = _fixture(name)
        members = zip_members(data)
        d = dict(members)
        kw = dict(stem=name, model=model, layer=layer)
        b.add("zip", f"{name} without config.json",
              {"m.keras": make_zip([m for m in members if m[0] != CONFIG])}, expect="refused", **kw)
        b.add("zip", f"{name} without model.weights.h5",
              {"m.keras": make_zip([m for m in members if m[0] != WEIGHTS])}, expect="refused", **kw)
        b.add("zip", f"{name} whose model.weights.h5 is text, not HDF5",
              {"m.keras": make_zip([(n, b"not hdf5\n" if n == WEIGHTS else c) for n, c in members])},
              expect="refused", **kw)
        b.add("zip", f"{name} whose model.weights.h5 is empty",
              {"m.keras": make_zip([(n, b"" if n == WEIGHTS else c) for n, c in members])},
              expect="refused", **kw)
        b.add("zip", f"{name} whose model.weights.h5 is a legacy .h5 model",
              {"m.keras": make_zip([(n, _fixture("k3_mlp.h5") if n == WEIGHTS else c)
                                    for n, c in members])}, expect="refused", **kw)
        b.add("zip", f"{name} with its members in a sub-folder",
              {"m.keras": make_zip([("model/" + n, c) for n, c in members])}, expect="refused",
              **kw)
        b.add("zip", f"{name} with config.json that is not JSON",
              {"m.keras": make_zip([(n, b"{not json" if n == CONFIG else c) for n, c in members])},
              expect="refused", names=("{input}", "config.json"), **kw)
        b.add("zip", f"{name} with config.json holding a list",
              {"m.keras": make_zip([(n, b"[1, 2]" if n == CONFIG else c) for n, c in members])},
              expect="refused", **kw)
        b.add("zip", f"{name} with config.json that is not UTF-8",
              {"m.keras": make_zip([(n, b'{"a": "\xff\xfe"}' if n == CONFIG else c)
                                    for n, c in members])}, expect="refused", **kw)
        b.add("zip", f"{name} with config.json nested 100000 deep",
              {"m.keras": make_zip([(n, b"[" * 100000 + b"]" * 100000 if n == CONFIG else c)
                                    for n, c in members])}, expect="refused", **kw)
        b.add("zip", f"{name} with config.json an empty object",
              {"m.keras": make_zip([(n, b"{}" if n == CONFIG else c) for n, c in members])}, **kw)
        b.add("zip", f"{name} with model.weights.npz instead of .h5",
              {"m.keras": make_zip([("model.weights.npz" if n == WEIGHTS else n, c)
                                    for n, c in members])}, expect="refused", **kw)
        b.add("zip", f"{name} with two config.json members",
              {"m.keras": make_zip(members + [(CONFIG, d[CONFIG])])}, **kw)
        b.add("zip", f"{name} with an extra member (assets/) (valid)",
              {"m.keras": make_zip(members + [("assets/vocab.txt", b"a\nb\n")])}, expect="done",
              **kw)
        b.add("zip", f"{name} deflated (valid)",
              {"m.keras": make_zip(members, zipfile.ZIP_DEFLATED)}, expect="done", **kw)
        b.add("zip", f"{name} with its weights member deflated and padded to 24 MB of zeros "
              "(ratio about 200)",
              {"m.keras": _padded_deflate(members, 24 << 20)}, **kw)
        cd = data.rfind(b"PK\x01\x02")
        first_cd = data.find(b"PK\x01\x02")
        for cut in (first_cd + 10, first_cd + 46, cd + 20, len(data) - 10):
            b.add("zip", f"{name} cut at {cut} (inside the central directory or end record)",
                  {"m.keras": data[:cut]}, expect="refused", **kw)
        b.add("zip", f"{name} whose weights member claims 4 GiB (a zip bomb by its size field)",
              {"m.keras": _forge_size(data, WEIGHTS, 1 << 40)}, expect="refused", **kw)
        b.add("zip", f"{name} whose weights member claims 2**31 bytes, past the end of the file",
              {"m.keras": _forge_size(data, WEIGHTS, (1 << 31) - 1)}, expect="refused", **kw)
        b.add("zip", f"{name} whose weights member claims fewer bytes than it has",
              {"m.keras": _forge_size(data, WEIGHTS, 100)}, expect="refused", **kw)
        b.add("zip", f"{name} with the encryption flag set on every member",
              {"m.keras": _set_flag(data, 0x1)}, expect="refused", **kw)
        b.add("zip", f"{name} whose weights member claims compression method 99",
              {"m.keras": _set_method(data, WEIGHTS, 99)}, expect="refused", **kw)
    b.add("zip", "a deflate bomb: 256 MB of zeros as model.weights.h5 (about 1000:1)",
          {"bomb.keras": make_zip([(CONFIG, dict(zip_members(_fixture("k3_mlp.keras")))[CONFIG]),
                                   (WEIGHTS, bytes(256 << 20))], zipfile.ZIP_DEFLATED)},
          expect="refused")
    b.add("zip", "a deflate bomb inside a .npz (64 MB of zeros in one member)",
          {"bomb.npz": make_zip([("w.npy", _npy_header("<f4", (16 << 20,)) + bytes(64 << 20))],
                                zipfile.ZIP_DEFLATED)}, expect="refused")
    b.add("zip", "an empty zip named .keras", {"e.keras": make_zip([])}, expect="refused")


def _padded_deflate(members, pad):
    rng = np.random.default_rng(2)
    filler = bytearray(pad)
    filler[::97] = rng.bytes(len(filler[::97]))      # keep the ratio well under 1000
    return make_zip([(n, c + bytes(filler) if n == WEIGHTS else c) for n, c in members],
                    zipfile.ZIP_DEFLATED)


def _zip_records(data, member):
    """Offsets of `member`'s local header and central directory entry."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        info = z.getinfo(member)
    local = info.header_offset
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        n_name = struct.unpack("<H", data[pos + 28:pos + 30])[0]
        if data[pos + 46:pos + 46 + n_name] == member.encode():
            return local, pos
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise KeyError(member)


def _forge_size(data, member, size):
    """Claim `size` uncompressed (and for stored members compressed) bytes for `member`."""
    local, central = _zip_records(data, member)
    b = bytearray(data)
    size32 = min(size, 0xFFFFFFFF - 1)
    struct.pack_into("<I", b, local + 22, size32)
    struct.pack_into("<I", b, central + 24, size32)
    method = struct.unpack("<H", data[local + 8:local + 10])[0]
    if method == 0 and size >= (1 << 31):     # a huge stored member would be past the end
        struct.pack_into("<I", b, local + 18, size32)
        struct.pack_into("<I", b, central + 20, size32)
    elif method == 0:
        struct.pack_into("<I", b, local + 18, size32)
        struct.pack_into("<I", b, central + 20, size32)
    return bytes(b)


def _set_flag(data, flag):
    b = bytearray(data)
    for sig, off in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        pos = data.find(sig)
        while pos >= 0:
            struct.pack_into("<H", b, pos + off, struct.unpack("<H", data[pos + off:pos + off + 2])[0]
                             | flag)
            pos = data.find(sig, pos + 4)
    return bytes(b)


def _set_method(data, member, method):
    local, central = _zip_records(data, member)
    b = bytearray(data)
    struct.pack_into("<H", b, local + 8, method)
    struct.pack_into("<H", b, central + 10, method)
    return bytes(b)


def _npy_header(descr, shape, fortran=False, version=(1, 0)):
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    if version == (1, 0):
        pad = 64 - (10 + len(header) + 1) % 64
        header = header + b" " * pad + b"\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
    pad = 64 - (12 + len(header) + 1) % 64
    header = header + b" " * pad + b"\n"
    return b"\x93NUMPY" + bytes(version) + struct.pack("<I", len(header)) + header


def npys(b):
    w = np.random.default_rng(3).normal(size=(8, 16)).astype(np.float32)
    bio = io.BytesIO()
    np.save(bio, w)
    good = bio.getvalue()
    arrays = (("compare", "refused"), ("*", "done"))   # no architecture to run
    b.add("npy", "a valid .npy", {"w.npy": good}, expect=arrays)
    b.add("npy", "a .npy whose header claims shape (2**20, 2**20) float32 (4 TiB)",
          {"w.npy": _npy_header("<f4", (1 << 20, 1 << 20)) + w.tobytes()}, expect="refused")
    b.add("npy", "a .npy whose header claims more values than it has",
          {"w.npy": _npy_header("<f4", (16, 16)) + w.tobytes()}, expect="refused")
    b.add("npy", "a .npy holding pickled objects",
          {"o.npy": _npy_header("|O", (2,)) + b"\x80\x04N."}, expect="refused")
    b.add("npy", "a .npy with a header that is not a dict",
          {"h.npy": b"\x93NUMPY\x01\x00" + struct.pack("<H", 6) + b"[1,2]\n"}, expect="refused")
    b.add("npy", "a .npy of format version 9.0",
          {"v.npy": b"\x93NUMPY\x09\x00" + good[8:]}, expect="refused")
    b.add("npy", "a .npy of big-endian float64 (valid)",
          {"be.npy": _npy_header(">f8", (8, 16)) + w.astype(">f8").tobytes()}, expect=arrays)
    b.add("npy", "a .npy of int32 weights", {"i.npy": _npy_header("<i4", (8, 16)) +
                                             w.astype("<i4").tobytes()})
    b.add("npy", "a .npy of complex64", {"c.npy": _npy_header("<c8", (8, 16)) +
                                         w.astype("<c8").tobytes()})
    b.add("npy", "a .npy of shape (0, 16)", {"z.npy": _npy_header("<f4", (0, 16))})
    b.add("npy", "a .npz with a member that is not .npy",
          {"m.npz": make_zip([("w.npy", good), ("notes.txt", b"hi")])})
    b.add("npy", "a .npz whose member claims shape (2**30, 16)",
          {"m.npz": make_zip([("w.npy", _npy_header("<f4", (1 << 30, 16)) + w.tobytes())])},
          expect="refused")
    b.add("npy", "a valid .npz of two arrays", {"m.npz": make_zip([("a.npy", good), ("b.npy", good)])},
          expect=arrays)


# ---- safetensors
def _st(header, data=b""):
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


def _st_entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


def safetensors_cases(b):
    """Headers no library writes (built by hand on purpose), and indexes that lie."""
    w = np.random.default_rng(4).normal(size=(8, 16)).astype("<f4")
    arrays = (("compare", "refused"), ("*", "done"))   # no architecture to run
    good = _st({"w.weight": _st_entry(shape=(8, 16), offsets=(0, w.nbytes))}, w.tobytes())
    b.add("safetensors", "a valid .safetensors", {"m.safetensors": good}, expect=arrays,
          arch=False)
    bad = {
        "a header length past the end of the file": struct.pack("<Q", 1 << 40) + b"{}",
        "a header of 200 MB declared": struct.pack("<Q", 200_000_000) + b"{}" + bytes(64),
        "a header that is JSON but not an object": _st(b"[1]"),
        "a header that is not JSON": _st(b"{oops"),
        "overlapping data_offsets": _st({"a": _st_entry(), "b": _st_entry(offsets=(4, 12))},
                                        bytes(16)),
        "data_offsets with the end before the beginning": _st({"a": _st_entry(offsets=(8, 0))},
                                                              bytes(8)),
        "data_offsets past the end": _st({"a": _st_entry(offsets=(0, 8))}, bytes(4)),
        "a shape whose byte size disagrees with its offsets": _st(
            {"a": _st_entry(shape=(1 << 40, 1 << 20), offsets=(0, 8))}, bytes(8)),
        "a tensor name twice": _st(b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}'
                                   b', "a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}}',
                                   bytes(16)),
        "a __metadata__ that is not string -> string": _st(
            {"__metadata__": {"k": [1]}, "a": _st_entry()}, bytes(8)),
        "an unknown dtype": _st({"a": _st_entry(dtype="C128")}, bytes(8)),
        "a header nested 10,000 levels": _st(b"[" * 10000 + b"]" * 10000),
    }
    for what, data in bad.items():
        b.add("safetensors", f"a .safetensors with {what}", {"m.safetensors": data},
              expect="refused", arch=False)
    index = "model.safetensors.index.json"
    shard = _st({"a.weight": _st_entry(shape=(8, 16), offsets=(0, w.nbytes))}, w.tobytes())
    b.add("safetensors", "an index naming a shard that is missing",
          {index: json.dumps({"weight_map": {"a.weight": "s1.safetensors"}}).encode()},
          input=index, expect="refused", arch=False)
    both = _st({"a.weight": _st_entry(shape=(8, 16), offsets=(0, w.nbytes)),
                "b.weight": _st_entry(shape=(8, 16), offsets=(w.nbytes, 2 * w.nbytes))},
               w.tobytes() * 2)
    b.add("safetensors", "an index whose shards both hold a tensor",
          {index: json.dumps({"weight_map": {"a.weight": "s1.safetensors",
                                             "b.weight": "s2.safetensors"}}).encode(),
           "s1.safetensors": shard, "s2.safetensors": both}, input=index, expect="refused",
          arch=False)
    b.add("safetensors", "an index naming a shard outside its folder",
          {index: json.dumps({"weight_map": {"a.weight": "../s1.safetensors"}}).encode()},
          input=index, expect="refused", arch=False)
    b.add("safetensors", "an index whose tensors are not those of the shard",
          {index: json.dumps({"weight_map": {"b.weight": "s1.safetensors"}}).encode(),
           "s1.safetensors": shard}, input=index, expect="refused", arch=False)
    # packed files (cluster --packed) whose packed metadata lies: the file commands read them as
    # the plain safetensors files they are (weightshare.load_packed refuses them:
    # tests/_jobs/test_packed.py)
    idx = np.arange(128, dtype=np.uint8) % 16
    packed_idx = np.packbits(np.unpackbits(idx[:, None], axis=1)[:, 4:].reshape(-1)).tobytes()
    book = np.linspace(-1, 1, 4).astype("<f4").tobytes()
    spec = {"dtype": "F32", "shape": [8, 16], "layout": "tensor", "axis": None,
            "group_size": None, "bits": 4, "scaled": False}
    for what, packed in {
            "indices out of range of its codebook": {"version": 1, "tensors": {"w": spec}},
            "a spec that lies about the shape": {"version": 1, "tensors": {
                "w": {**spec, "shape": [1 << 30, 1 << 30]}}},
            "packed metadata of an unknown version": {"version": 7, "tensors": []}}.items():
        meta = {"weightshare": json.dumps({"job": "cluster", "packed": packed})}
        data = _st({"__metadata__": meta, "d.weight": _st_entry(shape=(8, 16), offsets=(0, 512)),
                    "w.ws_codebook": _st_entry(shape=(4,), offsets=(512, 528)),
                    "w.ws_indices": _st_entry("U8", shape=(64,), offsets=(528, 592))},
                   w.tobytes() + book + packed_idx)     # d.weight: a dense kernel
        b.add("safetensors", f"a packed .safetensors with {what}", {"m.safetensors": data},
              expect="any", arch=False)


# ---- HDF5 structure
def h5_structure(b):
    def add(what, name, data, **kw):
        kw.setdefault("stem", name)
        b.add("h5", what, {"input" + suffix(name): data}, **kw)

    add("an HDF5 file with no objects", "x.h5", new_h5(lambda f: None), expect="refused")
    add("an HDF5 file with one root dataset", "x.h5",
        new_h5(lambda f: f.create_dataset("x", data=np.ones(3))), expect="refused")
    add("an HDF5 file with groups and datasets, not Keras", "x.h5",
        new_h5(lambda f: f.create_dataset("a/b/c", data=np.ones((4, 4)))), expect="refused")
    add("an HDF5 file whose 'layers' is a dataset", "x.weights.h5",
        new_h5(lambda f: f.create_dataset("layers", data=np.ones(3))), expect="refused")
    add("an HDF5 file with model_weights but no layer_names", "x.h5",
        new_h5(lambda f: f.create_group("model_weights/dense")), expect="refused")

    legacy = [("k2_mlp.h5", "/model_weights"), ("k3_mlp.h5", "/model_weights"),
              ("k2_mlp.weights_only.h5", "/")]
    for name, root in legacy:
        data = _fixture(name)
        model = name.split(".")[0]

        def grp(f, root=root):
            return f[root]

        def ln(values, root=root):
            return lambda f: grp(f, root).attrs.__setitem__("layer_names", values)
        kw = dict(model=model, stem=name)
        add(f"{name}: layer_names also lists a group that does not exist", name,
            edit_h5(data, lambda f: grp(f).attrs.__setitem__(
                "layer_names", _blist(list(grp(f).attrs["layer_names"]) + [b"ghost"]))),
            expect="refused", names=("{input}", "ghost"), **kw)
        add(f"{name}: layer_names only lists a group that does not exist", name,
            edit_h5(data, ln(np.array([b"ghost"]))), expect="refused", names=("{input}", "ghost"),
            **kw)
        add(f"{name}: layer_names empty (float64 array of shape (0,))", name,
            edit_h5(data, ln(np.zeros(0))), **kw)
        add(f"{name}: layer_names as vlen UTF-8 strings", name,
            edit_h5(data, ln(np.array(["hidden", "logits"], dtype=h5py.string_dtype("utf-8")))),
            **kw)
        add(f"{name}: layer_names as fixed-length |S8", name,
            edit_h5(data, ln(np.array([b"hidden", b"logits"], dtype="S8"))), **kw)
        add(f"{name}: layer_names as a scalar string", name, edit_h5(data, ln("hidden")), **kw)
        add(f"{name}: layer_names as integers", name, edit_h5(data, ln(np.array([1, 2]))),
            expect="refused", names=("{input}", "layer_names"), **kw)
        add(f"{name}: layer_names with non-UTF-8 bytes", name,
            edit_h5(data, ln(np.array([b"hid\xffden", b"logits"], dtype="S9"))),
            expect="refused", names=("{input}", "layer_names"), **kw)
        add(f"{name}: layer_names as a 2-D string array", name,
            edit_h5(data, ln(np.array([[b"hidden"], [b"logits"]], dtype="S8"))), **kw)
        add(f"{name}: layer_names split as layer_names0, layer_names1 (Keras chunking)", name,
            edit_h5(data, lambda f: (grp(f).attrs.__delitem__("layer_names"),
                                     grp(f).attrs.__setitem__("layer_names0", np.array([b"hidden"])),
                                     grp(f).attrs.__setitem__("layer_names1", np.array([b"logits"])))),
            expect="done", **kw)
        add(f"{name}: layer_names lists 'hidden' twice", name,
            edit_h5(data, ln(np.array([b"hidden", b"hidden", b"logits"]))), **kw)

        def wn(fn, root=root):
            def edit(f):
                g = grp(f, root)["hidden"]
                g.attrs["weight_names"] = fn([_b(v) for v in g.attrs["weight_names"]])
            return edit
        add(f"{name}: weight_names longer than the datasets", name,
            edit_h5(data, wn(lambda v: _blist(v + [b"hidden/ghost:0"]))), expect="refused",
            names=("{input}", "ghost"), **kw)
        add(f"{name}: weight_names shorter than the datasets (bias not listed)", name,
            edit_h5(data, wn(lambda v: _blist(v[:1]))), **kw)
        add(f"{name}: weight_names empty", name, edit_h5(data, wn(lambda v: np.zeros(0))), **kw)
        add(f"{name}: weight_names lists the kernel twice", name,
            edit_h5(data, wn(lambda v: _blist(v[:1] + v[:1]))), **kw)
        add(f"{name}: weight_names as integers", name,
            edit_h5(data, wn(lambda v: np.arange(len(v)))), expect="refused",
            names=("{input}", "weight_names"), **kw)
        add(f"{name}: weight_names naming a group", name,
            edit_h5(data, wn(lambda v: _blist([v[0].rsplit(b"/", 1)[0]]))),
            expect="refused", **kw)

        def kernel_link(kind, root=root):
            def edit(f):
                g = grp(f, root)["hidden"]
                path = [n for n in _names(g) if n.endswith("kernel:0") or n.endswith("kernel")][0]
                if kind == "soft-dangling":
                    del g[path]
                    g[path] = h5py.SoftLink("/nowhere")
                elif kind == "soft":
                    target = g[path].name
                    g.move(path, path + "_moved")
                    g[path] = h5py.SoftLink(target + "_moved")
                elif kind == "external":
                    del g[path]
                    g[path] = h5py.ExternalLink("victim.h5", "/kernel")
                elif kind == "group":
                    del g[path]
                    g.create_group(path)
            return edit
        add(f"{name}: the hidden kernel is a dangling soft link", name,
            edit_h5(data, kernel_link("soft-dangling")), expect="refused", **kw)
        add(f"{name}: the hidden kernel is a soft link to the moved dataset", name,
            edit_h5(data, kernel_link("soft")), **kw)
        add(f"{name}: the hidden kernel is a group", name, edit_h5(data, kernel_link("group")),
            expect="refused", **kw)
        victim = new_h5(lambda f: f.create_dataset("kernel", data=np.full((8, 16), 0.25, "f4")))
        b.add("h5", f"{name}: the hidden kernel is an external link to another file (which must "
              "not be written)", {"input" + suffix(name): edit_h5(data, kernel_link("external")),
                                  "victim.h5": victim}, **kw)
        if root == "/model_weights":
            def cfg(fn):
                def edit(f):
                    c = json.loads(f.attrs["model_config"])
                    fn(c)
                    f.attrs["model_config"] = json.dumps(c)
                return edit
            add(f"{name}: model_config says units=17 for a kernel of 16 columns", name,
                edit_h5(data, cfg(lambda c: c["config"]["layers"][-2]["config"].update(units=17))),
                expect="refused", names=("{input}", "kernel"), **kw)
            add(f"{name}: model_config says units='16' (a string)", name,
                edit_h5(data, cfg(lambda c: c["config"]["layers"][-2]["config"].update(units="16"))),
                **kw)
            add(f"{name}: model_config says units=-1", name,
                edit_h5(data, cfg(lambda c: c["config"]["layers"][-2]["config"].update(units=-1))),
                **kw)
            add(f"{name}: model_config layers is a dict", name,
                edit_h5(data, cfg(lambda c: c["config"].update(layers={"a": 1}))), **kw)
            add(f"{name}: model_config layers holds numbers", name,
                edit_h5(data, cfg(lambda c: c["config"].update(layers=[1, 2, 3]))), **kw)
            add(f"{name}: model_config is not JSON", name,
                edit_h5(data, lambda f: f.attrs.__setitem__("model_config", "{not json")),
                expect="refused", names=("{input}", "model_config"), **kw)
            add(f"{name}: model_config is an integer", name,
                edit_h5(data, lambda f: f.attrs.__setitem__("model_config", 7)),
                expect="refused", names=("{input}", "model_config"), **kw)
            add(f"{name}: model_config is fixed-length bytes", name,
                edit_h5(data, lambda f: f.attrs.__setitem__(
                    "model_config", np.bytes_(f.attrs["model_config"].encode()
                                              if isinstance(f.attrs["model_config"], str)
                                              else f.attrs["model_config"]))), expect="done", **kw)
            add(f"{name}: model_config with non-UTF-8 bytes", name,
                edit_h5(data, lambda f: f.attrs.__setitem__("model_config", np.bytes_(b"{\xff}"))),
                expect="refused", names=("{input}", "model_config"), **kw)
            add(f"{name}: keras_version is an integer", name,
                edit_h5(data, lambda f: f.attrs.__setitem__("keras_version", 3)), **kw)
            add(f"{name}: a hard-link cycle (model_weights/hidden/loop -> model_weights)", name,
                edit_h5(data, lambda f: f["model_weights/hidden"].__setitem__(
                    "loop", f["model_weights"])), **kw)

    store = _fixture("k3_mlp.weights.h5")
    kw = dict(model="k3_mlp", stem="k3_mlp.weights.h5")

    def st(what, fn, **extra):
        add(f"k3_mlp.weights.h5: {what}", "k3_mlp.weights.h5", edit_h5(store, fn), **kw, **extra)
    st("a vars group with a non-digit entry",
       lambda f: f.create_dataset("layers/dense/vars/x", data=np.ones(2)), expect="refused",
       names=("{input}", "vars"))
    st("vars/0 is a group", lambda f: (f.__delitem__("layers/dense/vars/0"),
                                       f.create_group("layers/dense/vars/0")), expect="refused",
       names=("{input}", "vars/0"))
    st("vars numbered 0, 1, 5", lambda f: f.move("layers/dense/vars/1", "layers/dense/vars/5"))
    st("a third variable in a Dense layer", lambda f: f.create_dataset(
        "layers/dense/vars/2", data=np.ones(16, "f4")), expect="refused", names=("{input}", "dense"))
    st("vars@name is an integer", lambda f: f["layers/dense/vars"].attrs.__setitem__("name", 5))
    st("vars@name with non-UTF-8 bytes",
       lambda f: f["layers/dense/vars"].attrs.__setitem__("name", np.bytes_(b"\xff\xfe")))
    st("a stray dataset at the root", lambda f: f.create_dataset("stray", data=np.ones(3)),
       expect="refused", names=("{input}", "stray"))
    st("a hard-link cycle (layers/dense/loop -> layers)",
       lambda f: f["layers/dense"].__setitem__("loop", f["layers"]))
    st("groups nested 3000 deep under layers/dense",
       lambda f: f.create_group("layers/dense/" + "/".join(["g"] * 3000)))
    st("an optimizer group holding junk", lambda f: f.create_dataset("optimizer/vars/0",
                                                                     data=np.array([b"x"])))
    st("layers/dense is a soft link to layers/dense_1",
       lambda f: (f.__delitem__("layers/dense"),
                  f["layers"].__setitem__("dense", h5py.SoftLink("/layers/dense_1"))))
    victim = new_h5(lambda f: f.create_dataset("k", data=np.full((8, 16), 0.25, "f4")))
    b.add("h5", "k3_mlp.weights.h5: vars/0 is an external link to another file (which must not "
          "be written)", {"input.weights.h5": edit_h5(store, lambda f: (
              f.__delitem__("layers/dense/vars/0"),
              f["layers/dense/vars"].__setitem__("0", h5py.ExternalLink("victim.h5", "/k")))),
              "victim.h5": victim}, **kw)
    keras = _fixture("k3_mlp.keras")
    for what, fn in (
            ("config.json says units=17 for a kernel of 16 columns",
             lambda c: c["config"]["layers"][1]["config"].update(units=17)),
            ("config.json has no layers", lambda c: c["config"].pop("layers")),
            ("config.json layers hold strings", lambda c: c["config"].update(layers=["a", "b"])),
            ("config.json says the first Dense is a Conv2D",
             lambda c: c["config"]["layers"][1].update(class_name="Conv2D")),
            ("config.json layer class is a number",
             lambda c: c["config"]["layers"][1].update(class_name=7)),
            ("config.json layer dtype policy is int8-quantized",
             lambda c: c["config"]["layers"][1]["config"].update(
                 dtype={"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8"}})),
            ("config.json names two layers 'hidden'",
             lambda c: c["config"]["layers"][2]["config"].update(name="hidden"))):
        add(f"k3_mlp.keras: {what}", "k3_mlp.keras", edit_keras(keras, config=lambda c, fn=fn:
                                                                (fn(c), c)[1]),
            model="k3_mlp", stem="k3_mlp.keras",
            **({"expect": "refused", "names": ("{input}", "kernel")} if "units=17" in what else {}))


def _b(value):
    return value.encode() if isinstance(value, str) else bytes(value)


def _blist(values):
    """A list of names as a vlen ASCII array (how tf-keras writes them)."""
    return np.array([_b(v) for v in values], dtype=h5py.string_dtype("ascii"))


def _names(group):
    out = []
    group.visit(out.append)
    return out


# ---- tensors
_VALUES = {
    "one NaN": lambda w: _set(w, (0, 0), np.nan),
    "all NaN": lambda w: np.full_like(w, np.nan),
    "one +Inf": lambda w: _set(w, (1, 2), np.inf),
    "one -Inf": lambda w: _set(w, (2, 1), -np.inf),
    "NaN and Inf": lambda w: _set(_set(w, (0, 0), np.nan), (0, 1), np.inf),
    "all subnormal": lambda w: (w * np.float32(1e-39)).astype(w.dtype),
    "half the smallest subnormal": lambda w: np.where(w > 0, np.float32(1.4e-45), w).astype(w.dtype),
    "all zeros": lambda w: np.zeros_like(w),
    "all -0.0": lambda w: np.full_like(w, -0.0),
    "a single value": lambda w: np.full_like(w, 0.37),
    "two values": lambda w: np.where(w > 0, 1.0, -1.0).astype(w.dtype),
    "+-3.4e38 (float32 extremes)": lambda w: np.where(w > 0, 3.4e38, -3.4e38).astype(w.dtype),
    "max float32 and the smallest subnormal": lambda w: np.where(
        w > 0, np.float32(3.4028235e38), np.float32(1.4e-45)).astype(w.dtype),
}
_DTYPES = {
    "float16": lambda w: w.astype("<f2"),
    "float16 extremes +-65504": lambda w: np.where(w > 0, 65504, -65504).astype("<f2"),
    "float64": lambda w: w.astype("<f8"),
    "float64 +-1e308": lambda w: np.where(w > 0, 1e308, -1e308),
    "big-endian float32": lambda w: w.astype(">f4"),
    "int32": lambda w: (w * 100).astype("<i4"),
    "int8": lambda w: (w * 100).astype("i1"),
    "uint8": lambda w: (np.abs(w) * 100).astype("u1"),
    "bool": lambda w: w > 0,
    "complex64": lambda w: w.astype("<c8"),
    "fixed-length strings |S4": lambda w: np.full(w.shape, b"abcd", dtype="S4"),
    "vlen strings": lambda w: np.array([["s"] * w.shape[1]] * w.shape[0],
                                       dtype=h5py.string_dtype()),
    "a compound dtype": lambda w: np.zeros(w.shape, dtype=[("a", "<f4"), ("b", "<i4")]),
    "opaque 4-byte void": lambda w: np.frombuffer(w.tobytes(), dtype="V4").reshape(w.shape),
    "2-byte void (read as bfloat16)": lambda w: np.frombuffer(
        (w.view("<u4") >> 16).astype("<u2").tobytes(), dtype="V2").reshape(w.shape),
}
_SHAPES = {
    "shape (0, C) where C is the kernel's column count": lambda w: np.zeros((0, w.shape[-1]), w.dtype),
    "shape (R, 0)": lambda w: np.zeros((w.shape[0], 0), w.dtype),
    "a scalar": lambda w: np.array(0.5, w.dtype),
    "1-D, the kernel flattened": lambda w: w.reshape(-1),
    "an extra axis of 1": lambda w: w[..., None],
}
#: bases of the tensor cases: (fixture, model)
_TENSOR_BASES = (("k3_mlp.weights.h5", "k3_mlp"), ("k2_mlp.h5", "k2_mlp"),
                 ("k3_mlp.h5", "k3_mlp"), ("k3_mlp.keras", "k3_mlp"),
                 ("k2_mlp.weights_only.h5", "k2_mlp"))


def _set(w, index, value):
    w = np.array(w)
    w[index] = value
    return w


def tensors(b):
    for name, model in _TENSOR_BASES:
        data = _fixture(name)
        kpath = kernel_path(name, data)
        kw = dict(model=model, stem=name)
        for group in (_VALUES, _DTYPES, _SHAPES):
            for what, fn in group.items():
                def edit(f, fn=fn):
                    w = f[kpath][()]
                    replace_dataset(f, kpath, fn(w))
                new = edit_any(name, data, h5=edit)
                b.add("tensor", f"{name}: the first kernel ({kpath}) holds {what}",
                      {"input" + suffix(name): new}, **kw)

        def forged(f):
            cols = f[kpath].shape[-1]
            replace_dataset(f, kpath, shape=(1 << 26, cols), dtype="f4", chunks=(1024, cols),
                            fillvalue=0.5)
        b.add("tensor", f"{name}: the first kernel claims shape (2**26, C): many GB, never written "
              "(forged shape)", {"input" + suffix(name): edit_any(name, data, h5=forged)},
              expect="refused", names=("{input}", kpath.rsplit("/", 1)[-1]), **kw)

        def bomb(f):
            cols = f[kpath].shape[-1]
            ds = replace_dataset(f, kpath, shape=(1 << 22, cols), dtype="f4", chunks=(1 << 16, cols),
                                 compression="gzip", compression_opts=9)
            block = np.zeros((1 << 16, cols), "f4")
            for i in range(0, 1 << 22, 1 << 16):
                ds[i:i + (1 << 16)] = block
        if name in ("k3_mlp.weights.h5", "k2_mlp.h5"):
            b.add("tensor", f"{name}: the first kernel is (2**22, C) gzip-compressed zeros: "
                  "256 MB from a few hundred KB (HDF5 deflate bomb)",
                  {"input" + suffix(name): edit_any(name, data, h5=bomb)},
                  expect="refused", names=("{input}", kpath.rsplit("/", 1)[-1]), **kw)

        def chunked(f):
            w = f[kpath][()]
            replace_dataset(f, kpath, w, chunks=(1, w.shape[-1]), compression="gzip")
        b.add("tensor", f"{name}: the first kernel chunked and gzip-compressed (valid)",
              {"input" + suffix(name): edit_any(name, data, h5=chunked)}, expect="done", **kw)


# ---- arguments
def arguments(b):
    store = ("k3_mlp.weights.h5", _fixture("k3_mlp.weights.h5"))
    keras = ("k3_mlp.keras", _fixture("k3_mlp.keras"))
    legacy = ("k2_mlp.h5", _fixture("k2_mlp.h5"))

    def add(what, base, command, args, expect, names=(), **kw):
        name, data = base
        b.add("arg", f"{name}: {command} {' '.join(args)}: {what}",
              {"input" + suffix(name): data}, commands=(command,), args=((command, tuple(args)),),
              expect=expect, names=names, model=name.split(".")[0], stem=command, **kw)

    for base in (store, keras, legacy):
        for k, expect, names in (("0", "refused", ("k",)), ("1", "done", ()), ("2", "done", ()),
                                 ("100000", "done", ()), ("-1", "refused", ("k",)),
                                 ("-100000000000000000000", "refused", ("k",)),
                                 ("1000000000000000000000000000000", "any", ("k",)),
                                 ("x", "refused", ("-k",)), ("2.5", "refused", ("-k",)),
                                 ("hidden=0", "refused", ("k",)), ("nosuch=4", "refused", ("nosuch",)),
                                 ("hidden=4,logits=2", "done", ())):
            add(f"k={k}", base, "cluster", ["-k", k], expect, names)
    for method in ("auto", "optimal", "lloyd"):
        add(f"huge k with method {method}", store, "cluster",
            ["-k", "1000000000000", "--method", method], "any", ("k",))
        add(f"k above the distinct values, per channel, method {method}", store, "cluster",
            ["-k", "100000", "--per-channel", "--method", method], "done")
    for init in ("random", "forgy", "kmeans++", "density"):
        add(f"huge k with lloyd from {init}", store, "cluster",
            ["-k", "1000000000000", "--method", "lloyd", "--init", init, "--seed", "0"], "any",
            ("k",))
    add("unknown layer", store, "cluster", ["-k", "4", "--layers", "nosuch"], "refused", ("nosuch",))
    add("unknown role", store, "cluster", ["-k", "4", "--roles", "nosuch"], "refused", ("nosuch",))
    add("every role", legacy, "cluster", ["-k", "3", "--roles", "all"], "done")
    add("negative seed", store, "cluster", ["-k", "4", "--method", "lloyd", "--init", "random",
                                            "--seed", "-1"], "refused", (("seed", "random_state"),))
    for s, expect in (("0", "done"), ("0.5", "done"), ("0.999", "done"), ("-0.1", "refused"),
                      ("1", "refused"), ("1.5", "refused"), ("nan", "refused"),
                      ("inf", "refused"), ("-inf", "refused"), ("x", "refused")):
        add(f"sparsity={s}", store, "prune", ["--sparsity", s], expect, ("sparsity",))
    add("unknown layer", store, "prune", ["--sparsity", "0.5", "--layers", "nosuch"], "refused",
        ("nosuch",))
    for base in (keras, legacy):
        for extra, expect, names in ((["--layer", "nosuch", "--count", "1"], "refused", ("nosuch",)),
                                     (["--layer", "hidden", "--count", "0"], "refused", ("count",)),
                                     (["--layer", "hidden", "--count", "-1"], "refused", ("count",)),
                                     (["--layer", "hidden", "--count", "16"], "refused", ("count",)),
                                     (["--layer", "hidden", "--count", "100000000000000000000"],
                                      "refused", ("count",)),
                                     (["--layer", "hidden", "--count", "15"], "done", ()),
                                     (["--layer", "hidden", "--units", "999"], "refused", ("units",)),
                                     (["--layer", "hidden", "--units", "-1"], "refused", ("units",)),
                                     (["--layer", "hidden", "--units", "0,0"], "refused", ("units",)),
                                     (["--layer", "hidden", "--units", "x"], "refused", ("units",)),
                                     (["--layer", "hidden", "--units", "3,5"], "done", ()),
                                     (["--layer", "logits", "--count", "1"], "any", ("logits",)),
                                     (["--layer", "", "--count", "1"], "refused", ("layer",))):
            add("remove", base, "remove", extra, expect, names)
    other = ("k3_cnn.keras", _fixture("k3_cnn.keras"))
    add("compare with a missing original", store, "report", ["--compare", "{folder}/none.keras"],
        "refused", ("none.keras",))
    b.add("arg", "report --compare with another model (tensor names differ)",
          [("input.keras", keras[1]), ("other.keras", other[1])], commands=("report",),
          args=(("report", ("--compare", "{case}/other.keras")),), expect="refused",
          names=("compare",), stem="report")
    add("compare with itself", keras, "report", ["--compare", "{input}"], "done")
    rng = np.random.default_rng(4)

    def npy(arr):
        bio = io.BytesIO()
        np.save(bio, arr, allow_pickle=True)
        return bio.getvalue()
    x = np.load(FIXTURES / "k3_mlp_io.npz")["x"]
    inputs = {
        "inputs of the wrong width": (npy(x[:, :5]), "refused"),
        "inputs holding NaN": (npy(_set(x, (0, 0), np.nan)), "any"),
        "inputs holding Inf": (npy(_set(x, (0, 0), np.inf)), "any"),
        "no input rows": (npy(x[:0]), "refused"),
        "1-D inputs": (npy(x[0]), "any"),
        "inputs of strings": (npy(np.array([["a"] * 8] * 4)), "refused"),
        "inputs of pickled objects": (npy(np.array([None, 1], dtype=object)), "refused"),
        "inputs of 1e308": (npy(np.full_like(x, 1e308, dtype=np.float64)), "any"),
        "inputs that are a .keras file": (keras[1], "refused"),
        "inputs as an empty file": (b"", "refused"),
        "inputs of 10 million rows claimed by the header": (
            _npy_header("<f4", (10_000_000, 8)) + x.tobytes(), "refused"),
    }
    for what, (content, expect) in inputs.items():
        b.add("arg", f"compare --inputs: {what}", [("input.keras", keras[1]), ("x.npy", content)],
              commands=("compare",), args=(("compare", ("--inputs", "{case}/x.npy")),),
              expect=expect, names=("x.npy",), stem="compare")
    b.add("arg", "compare --inputs: a missing file", [("input.keras", keras[1])],
          commands=("compare",), args=(("compare", ("--inputs", "{case}/none.npy")),),
          expect="refused", names=("none.npy",), stem="compare")
    b.add("arg", "compare --inputs: an .npz without x", [("input.keras", keras[1]),
                                                         ("x.npz", make_zip([("a.npy", npy(x)),
                                                                             ("b.npy", npy(x))]))],
          commands=("compare",), args=(("compare", ("--inputs", "{case}/x.npz")),),
          expect="refused", names=("x.npz",), stem="compare")
    for what, lab, expect in (("labels of the wrong length", np.arange(3), "refused"),
                              ("float labels", np.array([0.5, 1, 2, 3]), "refused"),
                              ("negative labels", np.array([-1, 0, 1, 2]), "any"),
                              ("labels as strings", np.array(["a", "b", "c", "d"]), "refused")):
        b.add("arg", f"compare --labels: {what}",
              [("input.keras", keras[1]), ("x.npy", npy(x)), ("y.npy", npy(lab))],
              commands=("compare",), args=(("compare", ("--inputs", "{case}/x.npy",
                                                        "--labels", "{case}/y.npy")),),
              expect=expect, names=("labels",), stem="compare")
    del rng


def outputs(b):
    bases = (("k3_mlp.keras", "k3_mlp"), ("k2_mlp.h5", "k2_mlp"), ("k3_mlp.weights.h5", "k3_mlp"))
    for name, model in bases:
        data = _fixture(name)
        for mode, what, names in (
                ("readonly", "the output folder is read-only", (("{output}", "{folder}"),)),
                ("missing", "the output folder does not exist", (("{output}", "{folder}"),)),
                ("input", "the output is the input", ("{input}",)),
                ("dir", "the output is an existing folder", ("{output}",)),
                ("link", "the output is a symlink to the input", ("{output}",)),
                ("suffix", "the output has another suffix", ("{output}",))):
            b.add("output", f"{name}: {what}", {"input" + suffix(name): data}, commands=WRITERS,
                  output=mode, expect="refused", names=names, model=model, stem=mode)
        b.add("output", f"{name}: a previous file at the output path is replaced",
              {"input" + suffix(name): data}, commands=WRITERS, output="existing",
              expect="any", model=model, stem="existing")


def regressions(b):
    """Cases saved by the fuzzer (``regressions/<name>``, with ``<name>.json`` saying what)."""
    if not REGRESSIONS.is_dir():
        return
    for path in sorted(REGRESSIONS.iterdir()):
        if path.suffix in (".json", ".md") or path.name.startswith("."):
            continue
        meta = {}
        side = path.with_name(path.name + ".json")
        if side.exists():
            meta = json.loads(side.read_text())
        b.add("regression", meta.get("what", f"fuzzer input {path.name}"),
              {"input" + suffix(path.name): path.read_bytes()}, model=meta.get("model", "k3_mlp"),
              layer=meta.get("layer", "hidden"), stem=path.stem.replace(".", "_"))


def random_mutations(b, count):
    """`count` seeded random truncations, flips, overwrites and splices of the bases."""
    datas = [(name, model, layer, _fixture(name)) for name, model, layer in BASES]
    for _ in range(count):
        name, model, layer, data = datas[int(b.rng.integers(0, len(datas)))]
        new = bytearray(data)
        ops = []
        for _ in range(int(b.rng.integers(1, 4))):
            op = int(b.rng.integers(0, 4))
            pos = int(b.rng.integers(0, len(new)))
            if op == 0:
                new[pos] ^= 1 << int(b.rng.integers(0, 8))
                ops.append(f"flip@{pos}")
            elif op == 1:
                n = int(b.rng.integers(1, 64))
                new[pos:pos + n] = b.rng.bytes(len(new[pos:pos + n]))
                ops.append(f"overwrite {n}@{pos}")
            elif op == 2:
                del new[pos:]
                new = new or bytearray(b"\0")
                ops.append(f"cut@{pos}")
            else:
                n = int(b.rng.integers(1, 256))
                new[pos:pos] = bytes(new[max(0, pos - n):pos])
                ops.append(f"repeat {n}@{pos}")
        b.add("random", f"{name}: {', '.join(ops)}", {"input" + suffix(name): bytes(new)},
              model=model, layer=layer, stem=name)


def output_links(b):
    """Links at the output path to a file the run must not touch (the case's victim.txt)."""
    for name, model in (("k3_mlp.keras", "k3_mlp"), ("k2_mlp.h5", "k2_mlp"),
                        ("k3_mlp.weights.h5", "k3_mlp")):
        for mode, what in (("victimlink", "a symlink to another file"),
                           ("victimhard", "a hard link to another file")):
            b.add("output", f"{name}: the output is {what}: replaced, never written through",
                  {"input" + suffix(name): _fixture(name), "victim.txt": b"precious\n"},
                  commands=WRITERS, output=mode, expect="any", model=model, stem=mode)


def _stored_elsewhere(kind, path, ref, shape=None, dtype=None):
    """An edit replacing dataset `path` by one whose data is in the file `ref` (not copied)."""
    def edit(f):
        old = f[path]
        shape_, dtype_ = shape or old.shape, dtype or old.dtype
        del f[path]
        if kind == "external":
            f.create_dataset(path, shape=shape_, dtype=dtype_,
                             external=[(ref, 0, h5py.h5f.UNLIMITED)])
        else:
            layout = h5py.VirtualLayout(shape_, dtype_)
            layout[...] = h5py.VirtualSource(ref, "k", shape=shape_)
            f.create_virtual_dataset(path, layout)
    return edit


def _last_vector(name, data):
    """Path of the last 1-D dataset in visit order (a bias or an optimizer slot: no command here
    targets it)."""
    if name.endswith(".keras"):
        data = dict(zip_members(data))[WEIGHTS]
    found = []
    with h5py.File(io.BytesIO(data), "r") as f:
        f.visititems(lambda n, obj: found.append(n) if isinstance(obj, h5py.Dataset) and
                     obj.ndim == 1 else None)
    return found[-1]


def _chunk_past_end(data):
    """HDF5 `data` plus 2 MiB of padding and a gzip-chunked dataset ``/stray`` written last,
    whose one chunk's B-tree key is forged to claim 1 MiB: past the end of the file."""
    def edit(f):
        f.create_dataset("padding", data=np.zeros(1 << 19, "f4"))
        ds = f.create_dataset("stray", shape=(1024, 16), dtype="f4", chunks=(1024, 16),
                              compression="gzip")
        ds[...] = 0.5
    new = bytearray(edit_h5(data, edit))
    with h5py.File(io.BytesIO(bytes(new)), "r") as f:
        real = f["stray"].id.get_chunk_info(0).size
    key = struct.pack("<II", real, 0) + bytes(24)      # chunk size, filter mask, offsets
    i = new.find(key)
    assert i > 0 and new.count(key) == 1
    new[i:i + 4] = struct.pack("<I", 1 << 20)
    return bytes(new)


def hostile_storage(b):
    """Datasets whose data is stored in another file: HDF5 external storage and virtual datasets.

    libhdf5 follows both: a reader would take the other file's bytes as
    weights and a rewrite would write its values there. The victims are files
    of the case folder named relatively (the commands run in the case folder:
    see the harness), so that the harness's check of the case folder proves
    they keep their bytes and that no file is created; every command must
    refuse naming the dataset. An untargeted dataset is refused too (the
    output would still reference the victim), and external storage in
    /dev/zero declared as 8 GiB is refused without allocating it. A chunk
    placed past the end of the file (libhdf5 allocates its claimed size, and
    crashes when ``remove`` copies it) is refused too.
    """
    for name, model, layer in BASES:
        data = _fixture(name)
        kpath = kernel_path(name, data)
        kw = dict(model=model, layer=layer, stem=name, expect="refused")
        with h5py.File(io.BytesIO(dict(zip_members(data))[WEIGHTS] if name.endswith(".keras")
                                  else data), "r") as f:
            values = f[kpath][()]
        victim_h5 = new_h5(lambda f: f.create_dataset("k", data=values))
        for kind, victim, content in (("external", "victim.bin", values.tobytes()),
                                      ("virtual", "victim.h5", victim_h5)):
            what = "external storage in" if kind == "external" else "a virtual dataset over"
            b.add("h5", f"{name}: the first kernel ({kpath}) is {what} {victim}, a file of the "
                  "case folder (which must not be read or written)",
                  {"input" + suffix(name): edit_any(name, data, h5=_stored_elsewhere(
                      kind, kpath, victim)), victim: content},
                  names=("{input}", kpath), **kw)
        last = _last_vector(name, data)
        b.add("h5", f"{name}: an untargeted dataset ({last}) is external storage in victim.bin, "
              "which the output would still reference", {
                  "input" + suffix(name): edit_any(name, data, h5=_stored_elsewhere(
                      "external", last, "victim.bin")), "victim.bin": bytes(8 << 10)},
              names=("{input}", last), **kw)
    for name, model, layer in (("k2_mlp.h5", "k2_mlp", "hidden"),
                               ("k3_mlp.keras", "k3_mlp", "hidden")):
        data = _fixture(name)
        if name.endswith(".keras"):
            new = make_zip([(n, _chunk_past_end(c) if n == WEIGHTS else c)
                            for n, c in zip_members(data)])
        else:
            new = _chunk_past_end(data)
        b.add("h5", f"{name}: a stray chunked dataset whose one chunk claims 1 MiB, past the "
              "end of the file (libhdf5 crashes copying it)",
              {"input" + suffix(name): new}, model=model, layer=layer, stem=name,
              expect="refused", names=("{input}", "stray"))
    for name, model, layer in BASES[:2]:
        data = _fixture(name)
        kpath = kernel_path(name, data)
        b.add("h5", f"{name}: the first kernel is external storage in /dev/zero declared "
              "(2**20, 2**11) float32: 8 GiB that the file does not hold",
              {"input" + suffix(name): edit_any(name, data, h5=_stored_elsewhere(
                  "external", kpath, "/dev/zero", shape=(1 << 20, 1 << 11), dtype="f4"))},
              model=model, layer=layer, stem=name, expect="refused", names=("{input}", kpath))


# ---- hostile text and depth: escape sequences in names, deep and long configs, huge values
#: a layer name a terminal would act on: set the window title (OSC ... BEL), erase the line
#: (CSI 2K), carriage return, newline, a C1 CSI, DEL and a right-to-left override
EVIL = "hid\x1b]0;owned\x07den\x1b[2K\r\n\x9b31m\x7f\u202e"
#: weightshare's limit on the nesting of a model config (weightshare._base._json.MAX_DEPTH)
CONFIG_DEPTH = 100


def _swap(obj, old, new):
    """`obj` (parsed JSON) with every string equal to `old` replaced by `new` (iterative)."""
    root = [obj]
    stack = [(root, 0)]
    while stack:
        parent, key = stack.pop()
        value = parent[key]
        if value == old:
            parent[key] = new
        elif isinstance(value, dict):
            stack.extend((value, k) for k in value)
        elif isinstance(value, list):
            stack.extend((value, i) for i in range(len(value)))
    return root[0]


def _rename_segments(values, old, new):
    out = ["/".join(new if s == old else s for s in _b(v).decode().split("/")) for v in values]
    return np.array(out, dtype=h5py.string_dtype("utf-8"))


def rename_layer(name, data, old, new):
    """Fixture `name` with its layer `old` called `new` everywhere: config, groups, attributes."""
    def h5(f):
        groups = []
        f.visititems(lambda p, o: groups.append(p) if isinstance(o, h5py.Group)
                     and p.rsplit("/", 1)[-1] == old else None)
        for p in sorted(groups, key=lambda p: -p.count("/")):       # deepest first
            head = p.rsplit("/", 1)[0] + "/" if "/" in p else ""
            f.move(p, head + new)
        objs = [f]
        f.visititems(lambda p, o: objs.append(o))
        for o in objs:
            for key in ("layer_names", "weight_names"):
                if key in o.attrs and o.attrs[key].size:
                    o.attrs[key] = _rename_segments(o.attrs[key], old, new)
            if "name" in o.attrs and _b(o.attrs["name"]).decode() == old:
                o.attrs["name"] = new
    config = None if name.endswith("weights.h5") or ".weights_only." in name \
        else (lambda cfg: _swap(cfg, old, new))
    return edit_any(name, data, h5=h5, config=config)


def units_mismatch(name, data, layer_name):
    """Fixture `name` with 'hidden' renamed `layer_name` and its config saying units=3."""
    def three(cfg):
        for entry in cfg["config"]["layers"]:
            if entry["config"].get("name") == layer_name:
                entry["config"]["units"] = 3
        return cfg
    return edit_any(name, rename_layer(name, data, "hidden", layer_name), config=three)


def with_config_text(name, data, fn):
    """Fixture `name` (``.keras`` or legacy ``.h5``) with its config text replaced by ``fn(text)``."""
    if name.endswith(".keras"):
        return make_zip([(n, fn(c.decode()).encode() if n == CONFIG else c)
                         for n, c in zip_members(data)])
    return edit_h5(data, lambda f: f.attrs.__setitem__("model_config",
                                                       fn(_b(f.attrs["model_config"]).decode())))


def deep_config(name, data, total):
    """The fixture with a list nested in the first Dense layer's config: `total` levels in all.

    The top-level model dict is level 1; its ``config`` 2, ``layers`` 3, the
    layer 4, the layer's ``config`` 5, so the list adds ``total - 5`` levels.
    """
    mark = "__deep_mark__"

    def put(cfg):
        for entry in cfg["config"]["layers"]:
            if entry.get("class_name") == "Dense":
                entry["config"]["deep"] = mark
                return cfg
    levels = total - 5
    text = json.dumps(put(json.loads(_config_text(name, data))))
    return with_config_text(name, data, lambda _: text.replace(
        json.dumps(mark), "[" * levels + "]" * levels))


def _config_text(name, data):
    if name.endswith(".keras"):
        return dict(zip_members(data))[CONFIG].decode()
    with h5py.File(io.BytesIO(data), "r") as f:
        return _b(f.attrs["model_config"]).decode()


def long_chain(name, data, n, after="hidden", functional=False):
    """The Sequential fixture with `n` linear Activation layers right after layer `after`.

    With `functional`, the model is rewritten as a Functional model (Keras 3
    ``inbound_nodes``) holding the same layers: a chain of calls.
    """
    def edit(cfg):
        layers = cfg["config"]["layers"]
        at = next(i for i, e in enumerate(layers) if (e.get("config") or {}).get("name") == after)
        acts = [{"module": "keras.layers", "class_name": "Activation",
                 "config": {"name": f"act_{i}", "trainable": True, "dtype": "float32",
                            "activation": "linear"}, "registered_name": None}
                for i in range(n)]
        layers[at + 1:at + 1] = acts
        if functional:
            prev = None
            for e in layers:
                e["name"] = e["config"]["name"]
                e["inbound_nodes"] = [] if prev is None else [{"args": [{
                    "class_name": "__keras_tensor__",
                    "config": {"shape": None, "dtype": "float32", "keras_history": [prev, 0, 0]}}],
                    "kwargs": {}}]
                prev = e["name"]
            cfg["class_name"] = "Functional"
            cfg["config"]["input_layers"] = [[layers[0]["name"], 0, 0]]
            cfg["config"]["output_layers"] = [[prev, 0, 0]]
        return cfg
    return edit_any(name, data, config=edit)


def set_kernel(name, data, values=None, layer="hidden", **kwargs):
    """The fixture with the kernel of `layer` replaced (by `values`, or a dataset of `kwargs`)."""
    path = [p for p in _names_of(name, data) if p.rsplit("/", 1)[-1] in ("0", "kernel:0", "kernel")
            and layer in p.split("/")]
    if not path:    # a Keras 3 store: layers/dense/vars/0 is named by the vars' 'name' attribute
        path = [kernel_path(name, data)]
    return edit_any(name, data, h5=lambda f: replace_dataset(f, path[0], values, **kwargs))


def _names_of(name, data):
    if name.endswith(".keras"):
        data = dict(zip_members(data))[WEIGHTS]
    with h5py.File(io.BytesIO(data), "r") as f:
        return _names(f)


def hostile_text_and_depth(b):
    """Escape sequences in names; configs nested deep; 1,200-layer chains; huge finite values."""
    bases = (("k3_mlp.keras", "k3_mlp"), ("k3_mlp.h5", "k3_mlp"), ("k2_mlp.h5", "k2_mlp"),
             ("k3_mlp.weights.h5", "k3_mlp"), ("k2_mlp.weights_only.h5", "k2_mlp"))
    for name, model in bases:
        data = _fixture(name)
        b.add("text", f"{name}: layer 'hidden' renamed to {EVIL!r} (terminal escape sequences)",
              {"input" + suffix(name): rename_layer(name, data, "hidden", EVIL)}, model=model,
              layer=EVIL, stem=name, expect=(("compare", "any"), ("*", "done")))
    for name, model in bases[1:3]:
        data = _fixture(name)
        ghost = EVIL.replace("hid", "ghost")

        def ln(f, ghost=ghost):
            g = f["model_weights"]
            g.attrs["layer_names"] = np.array(list(g.attrs["layer_names"]) + [ghost],
                                              dtype=h5py.string_dtype("utf-8"))
        b.add("text", f"{name}: layer_names lists a missing group named with escape sequences "
              "(the error line)", {"input.h5": edit_h5(data, ln)}, model=model, stem=name,
              expect="refused")

        def wn(f):
            g = f["model_weights/hidden"]
            g.attrs["weight_names"] = np.array(list(g.attrs["weight_names"]) + [f"hidden/{EVIL}"],
                                               dtype=h5py.string_dtype("utf-8"))
        b.add("text", f"{name}: weight_names lists a missing weight named with escape sequences",
              {"input.h5": edit_h5(data, wn)}, model=model, stem=name, expect="refused")
        b.add("text", f"{name}: layer {EVIL!r} whose config says units=3 (the error line names "
              "the dataset, escape sequences and all)",
              {"input.h5": units_mismatch(name, data, EVIL)}, model=model, layer=EVIL, stem=name,
              expect="refused")
    for name, model in (("k3_mlp.keras", "k3_mlp"), ("k2_mlp.h5", "k2_mlp")):
        data = _fixture(name)
        for total, expect in ((CONFIG_DEPTH, "done"), (CONFIG_DEPTH + 1, "refused"),
                              (500, "refused"), (5000, "refused"), (100_000, "refused")):
            b.add("depth", f"{name}: config nested {total} levels deep (limit {CONFIG_DEPTH})",
                  {"input" + suffix(name): deep_config(name, data, total)}, model=model,
                  stem=name, expect=(("compare", "any"), ("*", expect)),
                  names=("{input}", (CONFIG, "model_config")) if expect == "refused" else ())
        for functional in (False, True):
            b.add("depth", f"{name}: 1,200 linear Activation layers after 'hidden' "
                  f"({'Functional' if functional else 'Sequential'})",
                  {"input" + suffix(name): long_chain(name, data, 1200, functional=functional)},
                  model=model, stem=name, expect="done")
    rng = np.random.default_rng(17)
    huge = {
        "normal * 1e160": rng.normal(size=(8, 16)) * 1e160,
        "normal * 1e300": rng.normal(size=(8, 16)) * 1e300,
        "uniform in +-1.7e308": rng.uniform(-1.0, 1.0, size=(8, 16)) * 1.7e308,
        "1e300, 1e-300 and zeros": np.where(rng.normal(size=(8, 16)) > 0, 1e300, 1e-300)
        * (rng.normal(size=(8, 16)) > -0.5) * rng.normal(size=(8, 16)),
    }
    for name, model in (("k3_mlp.weights.h5", "k3_mlp"), ("k2_mlp.h5", "k2_mlp"),
                        ("k3_mlp.keras", "k3_mlp")):
        data = _fixture(name)
        for what, w in huge.items():
            b.add("tensor", f"{name}: the kernel of 'hidden' holds float64 {what}",
                  {"input" + suffix(name): set_kernel(name, data, w)}, model=model,
                  stem=name, expect=(("compare", "any"), ("*", "done")))
    for name, model in (("k2_mlp.h5", "k2_mlp"), ("k3_mlp.keras", "k3_mlp")):
        data = _fixture(name)

        def units(cfg):
            for entry in cfg["config"]["layers"]:
                if entry["config"].get("name") == "hidden":
                    entry["config"]["units"] = 1 << 30
            return cfg
        zero = set_kernel(name, data, shape=(0, 1 << 30), dtype="f4")
        b.add("tensor", f"{name}: the kernel of 'hidden' is declared (0, 2**30) and its config "
              "says 2**30 units (stores nothing, names a billion units)",
              {"input" + suffix(name): edit_any(name, zero, config=units)}, model=model,
              stem=name, expect=(("remove", "refused"), ("*", "any")))


# ---- bombs and long scans (issue 17): every decompression bounded, no scan an input makes long
def deflate_run(byte, n, chunk=1 << 20):
    """A raw deflate stream of `n` copies of `byte` (`n` a multiple of `chunk`), made in a few
    milliseconds: one compressed chunk repeated (a full flush restarts the stream's window)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(byte * chunk) + c.flush(zlib.Z_FULL_FLUSH)
    return block * (n // chunk) + zlib.compressobj(9, zlib.DEFLATED, -15).flush()


def raw_member(name, data, method=zipfile.ZIP_STORED, crc=None, size=None):
    """A member for :func:`raw_zip`: `data` as stored; `crc` and `size` (decoded) as claimed."""
    return (name, method, data, zlib.crc32(data) if crc is None else crc,
            len(data) if size is None else size)


def raw_zip(members):
    """A zip of :func:`raw_member` members written as given (forged sizes, wrong CRCs, streams
    deflated beforehand): local headers, central directory, end record; no zipfile checks."""
    out, central = bytearray(), bytearray()
    for name, method, data, crc, size in members:
        offset, raw = len(out), name.encode()
        out += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0x21, crc, len(data),
                           size, len(raw), 0) + raw + data
        central += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0x21, crc,
                               len(data), size, len(raw), 0, 0, 0, 0, 0, offset) + raw
    return bytes(out + central + struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(members),
                                             len(members), len(central), len(out), 0))


def _raw_keras(name, replace=None, extra=()):
    """The members of fixture `name` as :func:`raw_member` tuples, some replaced, some added."""
    replace = replace or {}
    out = [replace.get(n) or raw_member(n, c) for n, c in zip_members(_fixture(name))]
    return out + list(extra)


def bomb_member(name, mib, size=None, byte=b" "):
    """`name` deflated from `mib` MiB of `byte` (CRC and size claimed: of that, or `size`)."""
    n = mib << 20
    crc = 0
    block = byte * (1 << 20)
    for _ in range(mib):
        crc = zlib.crc32(block, crc)
    return raw_member(name, deflate_run(byte, n), zipfile.ZIP_DEFLATED, crc,
                      n if size is None else size)


def many_members(n, duplicate=None):
    """`n` empty members ``assets/<i>`` (and `duplicate` again at the end)."""
    extra = [raw_member(f"assets/{i}", b"") for i in range(n)]
    return extra + ([raw_member(duplicate, b"")] if duplicate else [])


def heap_objects(n, size=0):
    """`n` global heap objects (index 1, `size` bytes of data each), 16-byte aligned."""
    one = struct.pack("<HH4xQ", 1, 0, size) + bytes((size + 7) & ~7)
    return one * n


def heap_collection(objects):
    """A global heap collection (version 1, 8-byte lengths) holding the bytes `objects`."""
    return b"GCOL\x01\0\0\0" + struct.pack("<Q", 16 + len(objects)) + objects


def damage_first_heap(data, size):
    """`data` with the free-space object of its first global heap collection claiming `size`."""
    start = data.find(b"GCOL\x01")
    end = start + struct.unpack_from("<Q", data, start + 8)[0]
    pos = start + 16
    while pos + 16 <= end:
        index, obj_size = struct.unpack_from("<H6xQ", data, pos)
        if index == 0:
            break
        pos += 16 + ((obj_size + 7) & ~7)
    b = bytearray(data)
    struct.pack_into("<Q", b, pos + 8, size)
    return bytes(b)


def bombs_and_scans(b):
    """Decompression bombs (true and forged sizes), many members, heap floods and damaged heaps."""
    name, kw = "k3_mlp.keras", dict(model="k3_mlp", layer="hidden")
    members = dict(zip_members(_fixture(name)))

    def keras(stem, what, replace=None, extra=(), kind="zip", **more):
        b.add(kind, f"{name} {what}", {"m.keras": raw_zip(_raw_keras(name, replace, extra))},
              stem=stem, **kw, **more)
    keras("config_bomb", "whose config.json is a deflate bomb: 32 MiB of spaces in 32 kB",
          {CONFIG: bomb_member(CONFIG, 32)}, expect="refused", names=("{input}", CONFIG))
    keras("config_forged", "whose config.json claims its real size but inflates to 32 MiB",
          {CONFIG: bomb_member(CONFIG, 32, len(members[CONFIG]))}, expect="refused",
          names=("{input}", CONFIG))
    keras("metadata_bomb", "whose metadata.json is a deflate bomb: 32 MiB of spaces in 32 kB",
          {"metadata.json": bomb_member("metadata.json", 32)}, expect="refused",
          names=("{input}", "metadata.json"))
    keras("asset_bomb", "with an asset deflated from 32 MiB of zeros (copied, never inflated)",
          extra=[bomb_member("assets/zeros", 32, byte=b"\0")], expect="done")
    keras("many_dup", "with 60,000 more members, one of them twice",
          extra=many_members(60000, "assets/7"), expect="refused", names=("{input}", "assets/7"))
    keras("many", "with 20,000 more (empty) members (valid)", extra=many_members(20000),
          expect="done")
    b.add("zip", f"{name} whose stored config.json claims 3 MB: it runs over the next members",
          {"m.keras": _forge_size(_fixture(name), CONFIG, 3 << 20)}, expect="refused",
          names=("{input}", CONFIG), stem="overlap", **kw)
    flood = heap_collection(heap_objects(1)) * 150000
    keras("heap_gcol", "whose weights member is followed by 4 MiB of GCOL (valid)",
          {WEIGHTS: raw_member(WEIGHTS, members[WEIGHTS] + b"GCOL" * (1 << 20))}, kind="h5",
          expect="done")
    keras("heap_flood", "whose weights member is followed by 150,000 global heap collections",
          {WEIGHTS: raw_member(WEIGHTS, members[WEIGHTS] + flood)}, kind="h5", expect="refused",
          names=("{input}", WEIGHTS))
    for fixture, model in (("k3_mlp.weights.h5", "k3_mlp"), ("k2_mlp.h5", "k2_mlp")):
        data = _fixture(fixture)
        more = dict(model=model, layer="hidden", stem=fixture)
        for what, tail, expect in (
                ("4 MiB of GCOL (signatures, no collection)", b"GCOL" * (1 << 20), "done"),
                ("150,000 global heap collections of one object each", flood, "refused"),
                ("a global heap collection of 300,000 empty objects",
                 heap_collection(heap_objects(300000)), "refused"),
                ("a global heap collection of 100,000 small objects",
                 heap_collection(heap_objects(100000, 5)), "done")):
            b.add("h5", f"{fixture} followed by {what}", {"input" + suffix(fixture): data + tail},
                  expect=expect, **more)
        for size, what in ((0, "0 bytes (libhdf5 loops forever)"),
                           ((1 << 64) - 8, "2**64 - 8 bytes (wraps around)"),
                           (1 << 20, "1 MiB, past the end of its collection")):
            b.add("h5", f"{fixture} whose first global heap's free space claims {what}",
                  {"input" + suffix(fixture): damage_first_heap(data, size)}, expect="refused",
                  **more)


def build(seed=0, count=None):
    """The corpus: a list of :class:`Case`.

    Parameters
    ----------
    seed : int
        Seeds the random offsets and flip positions (the structured cases do
        not depend on it).
    count : int, optional
        Number of cases: the structured corpus is cut to it, or topped up
        with seeded random mutations.
    """
    b = _Builder(seed)
    for kind in (specials, truncations, bitflips, zips, npys, safetensors_cases, h5_structure, tensors, arguments,
                 outputs, regressions, output_links, hostile_storage, hostile_text_and_depth,
                 bombs_and_scans):
        kind(b)
    if count is not None and count > len(b.cases):
        random_mutations(b, count - len(b.cases))
    return b.cases if count is None else b.cases[:count]


def materialize(case, folder):
    """Write the files of `case` into `folder` (created); returns the input's path."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in case.files:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, Dir):
            path.mkdir()
        elif isinstance(content, Symlink):
            os.symlink(content.target, path)
        elif isinstance(content, Fifo):
            os.mkfifo(path)
    return folder / case.input


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write the hardening corpus to a folder.")
    parser.add_argument("--out", required=True, help="folder to write the cases to")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=None,
                        help="number of cases (default: the structured corpus)")
    args = parser.parse_args(argv)
    out = pathlib.Path(args.out)
    cases = build(args.seed, args.count)
    index = []
    for case in cases:
        materialize(case, out / case.id)
        (out / case.id / "case.json").write_text(json.dumps(case.to_json(), indent=1))
        index.append({"id": case.id, "kind": case.kind, "what": case.what})
    (out / "index.json").write_text(json.dumps(index, indent=1))
    kinds = {}
    for case in cases:
        kinds[case.kind] = kinds.get(case.kind, 0) + 1
    print(f"{len(cases)} cases in {out}: " + ", ".join(f"{k} {n}" for k, n in kinds.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
