"""pack_file / unpack_file: byte-identical round trips, and refusals that write nothing."""

import gzip
import os
import pathlib
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightshare
from weightshare.errors import FileFormatError
from weightshare._io import _regions
from weightshare._jobs import _wsz

ROOT = next(p for p in pathlib.Path(__file__).resolve().parents if (p / "weightshare").is_dir())
FIXTURES = sorted(p for p in (ROOT / "tests" / "fixtures").rglob("*") if p.is_file())
DIGITS = weightshare.examples.path("digits.keras")


def _reads(path):
    try:
        weightshare.read_weights(path, values=False)
    except FileFormatError:
        return False
    return True


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: str(p.relative_to(ROOT / "tests")))
def test_unpack_of_pack_is_the_file_byte_for_byte(path, tmp_path):
    packed, out = tmp_path / "p.wsz", tmp_path / ("out" + path.suffix)
    if not _reads(path):            # what info refuses, pack refuses too, writing nothing
        with pytest.raises(FileFormatError):
            weightshare.pack_file(path, packed)
        assert os.listdir(tmp_path) == []
        return
    if path.name.endswith(".safetensors.index.json"):
        with pytest.raises(FileFormatError, match="sharded safetensors checkpoint; pack packs"):
            weightshare.pack_file(path, packed)
        assert os.listdir(tmp_path) == []
        return
    p = weightshare.pack_file(path, packed)
    assert p.size_after == packed.stat().st_size and p.size_before == path.stat().st_size
    assert p.tensor_bytes + p.skeleton_bytes == p.size_before
    u = weightshare.unpack_file(packed, out)
    assert out.read_bytes() == path.read_bytes()
    assert u.size_after == p.size_before and sorted(os.listdir(tmp_path)) == sorted(
        [packed.name, out.name])


def test_every_format_has_tensor_regions(tmp_path):
    """The regions are found in every format (else pack would only xz the file)."""
    seen = {}
    np.save(tmp_path / "w.npy", np.ones((3, 4), np.float16))    # the .npy fixture holds int64
    fix = ROOT / "tests" / "fixtures"
    for path in [fix / "keras" / "k3_mlp.keras", fix / "keras" / "k3_mlp.weights.h5",
                 fix / "keras" / "k2_mlp.h5", fix / "keras" / "k2_mlp.weights_only.h5",
                 fix / "keras" / "digits_test.npz",
                 fix / "safetensors" / "numpy_dtypes.safetensors",
                 tmp_path / "w.npy"]:
        fmt, regions = _regions.tensor_regions(path)
        seen[fmt] = seen.get(fmt, 0) + len(regions)
    assert set(seen) == {"keras_zip", "weights_store", "legacy_full", "legacy_weights",
                         "npy", "npz", "safetensors"}
    assert all(n > 0 for n in seen.values()), seen


def test_a_clustered_pruned_tensor_packs_below_gzip(tmp_path):
    rng = np.random.default_rng(0)
    w = rng.normal(size=16).astype(np.float32)[rng.integers(0, 16, (256, 512))]
    w[rng.random(w.shape) < 0.75] = 0.0
    np.save(tmp_path / "w.npy", w)
    p = weightshare.pack_file(tmp_path / "w.npy", tmp_path / "w.wsz")
    gz = len(gzip.compress((tmp_path / "w.npy").read_bytes(), 9))
    counts = np.unique(w, return_counts=True)[1]
    floor = float(np.sum(counts * np.log2(w.size / counts))) / 8 + 17 * 4
    assert p.size_after < 0.65 * gz
    assert p.size_after < 1.05 * floor + 200       # header, table, skeleton


def test_dry_run_writes_nothing(tmp_path):
    p = weightshare.pack_file(DIGITS, tmp_path / "d.wsz", dry_run=True)
    assert p.dry_run and p.size_after > 0 and os.listdir(tmp_path) == []
    weightshare.pack_file(DIGITS, tmp_path / "d.wsz")
    u = weightshare.unpack_file(tmp_path / "d.wsz", tmp_path / "d.keras", dry_run=True)
    assert u.dry_run and u.size_after == os.path.getsize(DIGITS)
    assert os.listdir(tmp_path) == ["d.wsz"]


@pytest.mark.parametrize("codec", sorted(_wsz.CODECS))
def test_every_codec_streams_in_small_steps(codec, tmp_path, monkeypatch):
    """Every skeleton codec, read a few bytes at a time, tensors cut in small pieces."""
    monkeypatch.setattr(_wsz, "_STEP", 7)
    monkeypatch.setattr(_wsz, "MAX_PIECE_BYTES", 96)
    data = pathlib.Path(DIGITS).read_bytes()
    regions = _wsz.cut(_regions.tensor_regions(DIGITS)[1], len(data))
    assert max(r[1] for r in regions) <= 96
    packed, _ = _wsz.build(memoryview(data), regions, codec)
    pieces = []
    _wsz.stream(packed, "p.wsz", pieces.append)
    assert b"".join(pieces) == data and max(map(len, pieces)) <= 96


def test_pack_refuses_what_it_cannot_rebuild(tmp_path, monkeypatch):
    real = _wsz.build

    def wrong(view, regions, codec):        # a container of other bytes
        other = bytearray(view)
        other[-1] ^= 1
        return real(memoryview(bytes(other)), regions, codec)
    monkeypatch.setattr("weightshare._jobs._pack_file.build", wrong)
    with pytest.raises(FileFormatError, match="byte for byte"):
        weightshare.pack_file(DIGITS, tmp_path / "d.wsz")
    assert os.listdir(tmp_path) == []


def test_the_input_is_never_the_output(tmp_path):
    packed = tmp_path / "d.wsz"
    weightshare.pack_file(DIGITS, packed)
    with pytest.raises(FileFormatError, match="is the input file"):
        weightshare.unpack_file(packed, packed)
    with pytest.raises(FileFormatError, match="is a folder"):
        weightshare.pack_file(tmp_path, tmp_path / "x.wsz")


# --------------------------------------------------------------------------- hostile packs

@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    weightshare.pack_file(DIGITS, folder / "d.wsz")
    return (folder / "d.wsz").read_bytes()


def _refused(tmp_path, data, match):
    src = tmp_path / "bad.wsz"
    src.write_bytes(data)
    with pytest.raises(FileFormatError, match=match) as err:
        weightshare.unpack_file(src, tmp_path / "out.keras")
    assert str(src) in str(err.value) and "\n" not in str(err.value)
    assert os.listdir(tmp_path) == ["bad.wsz"]


@pytest.mark.parametrize("keep", [0, 3, 50, 80, 5000, -1])
def test_a_truncated_pack_is_refused(keep, good, tmp_path):
    _refused(tmp_path, good[:keep] if keep >= 0 else good[:-1],
             "truncated|not a weightshare pack|damaged")


def test_a_bit_flip_anywhere_is_refused(good, tmp_path):
    rng = np.random.default_rng(1)
    for at in [0, 5, 20, 80, 100, len(good) // 2, len(good) - 10, len(good) - 1,
               *rng.integers(0, len(good), 6)]:
        bad = bytearray(good)
        bad[int(at)] ^= 1 << int(rng.integers(0, 8))
        _refused(tmp_path, bytes(bad), "damaged|not a weightshare pack")
        (tmp_path / "bad.wsz").unlink()


def test_a_foreign_file_is_refused(tmp_path):
    _refused(tmp_path, pathlib.Path(DIGITS).read_bytes(), "is not a weightshare pack")
    (tmp_path / "bad.wsz").unlink()
    _refused(tmp_path, b"", "is not a weightshare pack")


def _forge(good, **fields):
    """`good` with header fields replaced and every CRC-32 made right again."""
    names = ("magic", "version", "codec", "reserved", "file_size", "skeleton_size",
             "skeleton_stored", "n_regions", "reserved2", "sha256", "crc")
    values = dict(zip(names, struct.unpack_from("<4sBBHQQQII32sI", good)))
    values.update(fields)
    head = struct.pack("<4sBBHQQQII32s", *[values[n] for n in names[:-1]])
    body = head + struct.pack("<I", zlib.crc32(head)) + good[_wsz.HEADER_SIZE:-4]
    return body + struct.pack("<I", zlib.crc32(body))


def test_forged_sizes_are_refused_before_anything_is_allocated(good, tmp_path):
    _refused(tmp_path, _forge(good, file_size=1 << 50), "declares a file of")
    (tmp_path / "bad.wsz").unlink()
    _refused(tmp_path, _forge(good, n_regions=1 << 30), "regions")
    (tmp_path / "bad.wsz").unlink()
    _refused(tmp_path, _forge(good, version=9), "version 9")
    (tmp_path / "bad.wsz").unlink()
    _refused(tmp_path, _forge(good, codec=7), "codec")
    (tmp_path / "bad.wsz").unlink()
    _refused(tmp_path, _forge(good, skeleton_size=10), "add up|damaged")


# --------------------------------------------------------------------------- layouts

def test_every_hdf5_layout_round_trips_and_plain_floats_are_regions(tmp_path):
    """Chunked, deflated, compact, big-endian, float16 and integer datasets, written by h5py."""
    import h5py
    rng = np.random.default_rng(3)
    codebook = rng.normal(size=8).astype(np.float32)
    path = tmp_path / "m.weights.h5"
    with h5py.File(path, "w") as f:
        v = f.create_group("layers/dense/vars")
        v.create_dataset("0", data=codebook[rng.integers(0, 8, (64, 64))], chunks=(16, 64))
        v.create_dataset("1", data=codebook[rng.integers(0, 8, (64, 64))], compression="gzip")
        v.create_dataset("2", data=np.arange(4, dtype=np.float32))      # small: compact?
        v.create_dataset("3", data=codebook[rng.integers(0, 8, 512)].astype(">f4"))
        v.create_dataset("4", data=rng.normal(size=300).astype(np.float16))
        v.create_dataset("5", data=np.arange(100, dtype=np.int64))
    fmt, regions = _regions.tensor_regions(path)
    assert fmt == "weights_store"
    sizes = sorted(length for _, length, _ in regions)
    assert sizes.count(16 * 64 * 4) == 4 and 512 * 4 in sizes and 300 * 2 in sizes
    assert 64 * 64 * 4 not in sizes and 800 not in sizes      # deflated, integers: skeleton
    p = weightshare.pack_file(path, tmp_path / "m.wsz")
    weightshare.unpack_file(tmp_path / "m.wsz", tmp_path / "back.weights.h5")
    assert (tmp_path / "back.weights.h5").read_bytes() == path.read_bytes()
    assert p.size_after < p.size_before / 3


def test_a_compressed_and_stripped_output_round_trips(tmp_path):
    weightshare.strip_file(DIGITS, tmp_path / "s.keras", compress=True)
    weightshare.pack_file(tmp_path / "s.keras", tmp_path / "s.wsz")
    weightshare.unpack_file(tmp_path / "s.wsz", tmp_path / "back.keras")
    assert (tmp_path / "back.keras").read_bytes() == (tmp_path / "s.keras").read_bytes()


def test_unpack_dispatches_on_the_magic(tmp_path, monkeypatch):
    """Another container registers its unpacker by its first bytes."""
    from weightshare._jobs import _pack_file
    calls = []
    monkeypatch.setitem(_pack_file._UNPACKERS, b"OTHR",
                        lambda src, dst, dry_run: calls.append((src, dst, dry_run)) or "done")
    (tmp_path / "x.othr").write_bytes(b"OTHR and more")
    assert weightshare.unpack_file(tmp_path / "x.othr", tmp_path / "y", dry_run=True) == "done"
    assert calls == [(str(tmp_path / "x.othr"), str(tmp_path / "y"), True)]


def test_dst_is_needed_unless_dry_run(tmp_path):
    assert weightshare.pack_file(DIGITS, dry_run=True).dst is None
    with pytest.raises(ValueError, match="dst=None"):
        weightshare.pack_file(DIGITS)
    with pytest.raises(TypeError, match="dry_run"):
        weightshare.pack_file(DIGITS, tmp_path / "x.wsz", dry_run="yes")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("dtype", ["<f4", "<f2", "<f8"])
@pytest.mark.parametrize("dist", ["laplace", "uniform"])
def test_unclustered_floats_are_byte_planes_no_larger_than_default_deflate(dtype, dist):
    """Unclustered pieces of up to ``_BOTH_WAYS`` values are stored as byte planes (kind
    PLANES), deflated both ways and the smaller kept: never larger than zlib's default."""
    rng, n = np.random.default_rng(0), _wsz._BOTH_WAYS
    x = rng.laplace(0, 0.05, n) if dist == "laplace" else rng.uniform(-0.1, 0.1, n)
    data, item = x.astype(dtype).tobytes(), np.dtype(dtype).itemsize
    kind, stored = _wsz.encode_piece(memoryview(data), item)
    assert kind == _wsz.PLANES
    assert _wsz._region(stored, kind, item, len(data)) == data
    assert len(stored) <= len(zlib.compress(_wsz._planes(data, item), 6))


@pytest.mark.parametrize("dist", ["laplace", "normal", "t"])
def test_long_unclustered_float32_pieces_are_run_length_deflated(dist):
    """Longer pieces are only run-length deflated: on float32 that is no larger than the
    default strategy (and much faster: docs/files.md), and the bytes come back."""
    rng, n = np.random.default_rng(1), 3 * _wsz._BOTH_WAYS + 11
    x = {"laplace": lambda: rng.laplace(0, 0.05, n), "normal": lambda: rng.normal(0, 0.05, n),
         "t": lambda: 0.02 * rng.standard_t(3, n)}[dist]().astype("<f4")
    data = x.tobytes()
    kind, stored = _wsz.encode_piece(memoryview(data), 4)
    assert kind == _wsz.PLANES and stored == _wsz._rle(_wsz._planes(data, 4))
    assert _wsz._region(stored, kind, 4, len(data)) == data
    assert len(stored) <= len(zlib.compress(_wsz._planes(data, 4), 6))


@given(x=hnp.arrays(st.sampled_from(["<f2", "<f4", "<f8"]), st.integers(0, 3000),
                    elements=st.floats(-1e3, 1e3, width=16)))
def test_every_piece_gives_back_its_bytes(x):
    data = x.tobytes()
    kind, stored = _wsz.encode_piece(memoryview(data), x.itemsize)
    assert _wsz._region(stored, kind, x.itemsize, len(data)) == data
