"""Same-shape rewrites (weightshare._io._writer): storage settings kept, one tensor at a time,
zip members and their settings kept, refusals before anything is written."""

import io
import os
import pathlib
import shutil
import tracemalloc
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare.errors import FileFormatError
from weightshare._io._writer import check_destination

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras"


def storage(ds):
    return (ds.dtype, ds.shape, ds.chunks, ds.compression, ds.compression_opts, ds.shuffle,
            ds.fletcher32, ds.scaleoffset, dict(ds.attrs))


def test_filters_and_chunks_are_kept(tmp_path):
    """Files from other tools may chunk and compress; Keras loads them (KERAS-FORMATS 9.21)."""
    src = tmp_path / "chunked.weights.h5"
    rng = np.random.default_rng(0)
    kernel = rng.normal(size=(64, 32)).astype(np.float32)
    with h5py.File(src, "w") as f:
        g = f.create_group("layers/dense/vars")
        g.attrs["name"] = "fc"
        g.create_dataset("0", data=kernel, chunks=(16, 8), compression="gzip",
                         compression_opts=6, shuffle=True, fletcher32=True)
        g.create_dataset("1", data=np.zeros(32, np.float32), compression="lzf")
    rows = weightshare.cluster_file(src, tmp_path / "o.weights.h5", 4)
    assert [r.tensor for r in rows] == ["fc/kernel"]
    with h5py.File(src) as a, h5py.File(tmp_path / "o.weights.h5") as b:
        for name in ("layers/dense/vars/0", "layers/dense/vars/1"):
            assert storage(a[name]) == storage(b[name])
        np.testing.assert_array_equal(b["layers/dense/vars/0"][()],
                                      weightshare.cluster(kernel, 4).values)
        np.testing.assert_array_equal(b["layers/dense/vars/1"][()], np.zeros(32))


def test_tensors_are_processed_one_at_a_time(tmp_path):
    """Peak memory of a rewrite depends on the largest tensor, not on the file."""
    src = tmp_path / "big.weights.h5"
    n_layers, shape = 24, (256, 256)
    with h5py.File(src, "w") as f:
        for i in range(n_layers):
            g = f.create_group(f"layers/dense{'' if i == 0 else f'_{i}'}/vars")
            g["0"] = np.full(shape, i + 1, np.float32)
            g["1"] = np.zeros(shape[1], np.float32)
    largest = np.prod(shape) * 4

    def halve(record, values):
        return values * np.float32(0.5)
    tracemalloc.start()
    rows = weightshare.transform_file(src, tmp_path / "o.weights.h5", halve,
                                      select=lambda r: r.kind == "kernel")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert len(rows) == n_layers
    assert peak < 3 * largest, f"peak {peak / largest:.1f} x the largest tensor"
    with h5py.File(tmp_path / "o.weights.h5") as f:
        assert f["layers/dense_7/vars/0"][0, 0] == 4.0


def test_bfloat16_is_written_as_opaque_bits_with_its_attribute(tmp_path):
    src = FIX / "k3_bf16.weights.h5"
    rows = weightshare.transform_file(src, tmp_path / "o.weights.h5",
                                      lambda r, v: np.full(v.shape, 1 + 2 ** -8, np.float64),
                                      select=lambda r: r.role == "bias")
    assert rows and all(r.dtype == "bfloat16" for r in rows)
    with h5py.File(src) as a, h5py.File(tmp_path / "o.weights.h5") as b:
        for r in rows:
            loc = r.location
            assert b[loc].dtype == a[loc].dtype and b[loc].dtype.kind == "V"
            assert b[loc].id.get_type().get_class() == h5py.h5t.OPAQUE
            assert dict(b[loc].attrs) == dict(a[loc].attrs) == {"dtype": "bfloat16"}
            # 1 + 2^-8 is a tie between 1.0 (0x3F80, even) and 1.0078125: to even
            assert set(b[loc][()].view(np.uint16).ravel()) == {0x3F80}


def _odd_zip(path):
    """A .keras zip as other tools may write it: deflated, reordered, an extra member, a comment."""
    with zipfile.ZipFile(FIX / "k3_mlp.keras") as zin, zipfile.ZipFile(path, "w") as zout:
        zout.comment = b"written by hand"
        infos = zin.infolist()
        for info in [infos[2], infos[0], infos[1]]:
            new = zipfile.ZipInfo(info.filename, date_time=(2020, 5, 17, 10, 30, 2))
            new.compress_type = zipfile.ZIP_DEFLATED
            new.external_attr = 0o644 << 16
            new.comment = f"member {info.filename}".encode()
            zout.writestr(new, zin.read(info), compresslevel=9)
        zout.writestr("assets/notes.txt", b"kept as it is")


def test_zip_member_order_and_settings_are_kept(tmp_path):
    src, dst = tmp_path / "odd.keras", tmp_path / "out.keras"
    _odd_zip(src)
    rows = weightshare.cluster_file(src, dst, 3)
    assert [r.tensor for r in rows] == ["hidden/kernel", "logits/kernel"]
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        assert b.comment == a.comment == b"written by hand"
        ia, ib = a.infolist(), b.infolist()
        assert [i.filename for i in ib] == [i.filename for i in ia] == [
            "model.weights.h5", "metadata.json", "config.json", "assets/notes.txt"]
        for x, y in zip(ia, ib):
            for key in ("date_time", "compress_type", "external_attr", "create_system", "comment",
                        "flag_bits", "extra"):
                assert getattr(x, key) == getattr(y, key), (x.filename, key)
            if x.filename != "model.weights.h5":
                assert a.read(x) == b.read(y)
                assert x.compress_size == y.compress_size
    after = {r.name: r.value for r in weightshare.read_weights(dst)}
    assert np.unique(after["hidden/kernel"]).size == 3
    # and nothing changes at all when nothing is targeted
    weightshare.transform_file(src, dst, lambda r, v: None)
    assert dst.read_bytes() == src.read_bytes()


def test_npz_members_keep_order_and_settings(tmp_path):
    src, dst = tmp_path / "a.npz", tmp_path / "b.npz"
    np.savez_compressed(src, w=np.linspace(-1, 1, 50, dtype=np.float32), n=np.arange(3),
                        v=np.ones(4, np.float16))
    weightshare.cluster_file(src, dst, 2)
    with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst) as b:
        assert [(i.filename, i.compress_type, i.date_time) for i in a.infolist()] == \
            [(i.filename, i.compress_type, i.date_time) for i in b.infolist()]
        assert a.read("n.npy") == b.read("n.npy")
    with np.load(dst) as z:
        assert z["w"].dtype == np.float32 and np.unique(z["w"]).size == 2
        assert z["v"].dtype == np.float16


@pytest.mark.parametrize("src, dst, in_place, error, match", [
    ("m.keras", "m.keras", False, FileFormatError, r"is the input file"),
    ("m.keras", "o.h5", False, FileFormatError, r"must keep the input's suffix '\.keras'"),
    ("m.weights.h5", "o.h5", False, FileFormatError, r"must keep the input's suffix '\.weights\.h5'"),
    ("m.h5", "o.hdf5", False, FileFormatError, r"must keep the input's suffix '\.h5'"),
    ("m.h5", "sub", False, FileFormatError, r"is a folder"),
    ("m.h5", "nowhere/o.h5", False, FileNotFoundError, r"the output folder does not exist"),
])
def test_check_destination(src, dst, in_place, error, match, tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("m.keras", "m.weights.h5", "m.h5"):
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(error, match=match):
        check_destination(tmp_path / src, tmp_path / dst, in_place)


def test_check_destination_accepts(tmp_path):
    (tmp_path / "m.keras").write_bytes(b"x")
    check_destination(tmp_path / "m.keras", tmp_path / "m.keras", True)
    check_destination(tmp_path / "m.keras", tmp_path / "other.KERAS", False)
    os.link(tmp_path / "m.keras", tmp_path / "hard.keras")
    with pytest.raises(FileFormatError, match=r"is the input file"):
        check_destination(tmp_path / "m.keras", tmp_path / "hard.keras", False)


def test_the_source_is_never_opened_for_writing(tmp_path, monkeypatch):
    src = tmp_path / "m.h5"
    shutil.copy(FIX / "k2_cnn.h5", src)
    os.chmod(src, 0o444)                     # a read-only input works
    opened = []
    real = h5py.File

    def spy(name, mode="r", *args, **kwargs):
        if not isinstance(name, io.IOBase):
            opened.append((os.path.abspath(os.fspath(name)), mode))
        return real(name, mode, *args, **kwargs)
    monkeypatch.setattr(h5py, "File", spy)
    weightshare.cluster_file(src, tmp_path / "o.h5", 4)
    assert all(mode == "r" for path, mode in opened if path == str(src))
    # the copy's contiguous datasets are patched with plain writes: libhdf5 writes nothing
    assert all(mode == "r" for path, mode in opened)
