"""strip_file and compress=True on files written by real Keras (tests/fixtures/keras, *_trained: Adam, one step).

- strip: no optimizer dataset, no training_config / compile_config in the output; every other
  dataset's bytes, every attribute with its HDF5 type, and the other zip members are the input's;
  the output is smaller; a file without optimizer state is written unchanged and says so;
  anything not a Keras file is refused with nothing written;
- compress: every floating-point dataset worth deflating is chunked with deflate and no shuffle;
  every dataset holds the input's bytes; attributes keep their HDF5 types; the output is smaller;
- the command line: ``weightshare strip`` and ``--compress``/``--strip`` on cluster and prune.
"""

import io
import json
import os
import pathlib
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare.cli import main
from weightshare.errors import FileFormatError

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
TRAINED = ["k3_trained.keras", "k2_trained.keras", "k3_trained.h5", "k2_trained.h5",
           "k3_trained.weights.h5", "k2_trained.weights.h5", "k3tf_trained.keras"]
COMPILE_STATE = ("optimizer", "optimizer_weights", "metrics")


def _h5(path):
    """The HDF5 file of a Keras file (the weights member of a .keras), opened read-only."""
    if zipfile.is_zipfile(path):
        return h5py.File(io.BytesIO(zipfile.ZipFile(path).read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def _dump(h5):
    """{path: (kind, bytes or None, {attr: (HDF5 type, value bytes)})} of every object."""
    out = {}

    def attrs(obj):
        res = {}
        for name in obj.attrs:
            aid = h5py.h5a.open(obj.id, name.encode())
            res[name] = (aid.get_type().dtype.str, aid.get_type().get_class(),
                         repr(obj.attrs[name]))
        return res

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = ("dataset", obj.dtype.str, np.ascontiguousarray(obj[()]).tobytes(),
                         attrs(obj))
        else:
            out[name] = ("group", attrs(obj))
    h5.visititems(visit)
    out["/"] = ("root", attrs(h5))
    return out


def _is_compile_state(path):
    return path.split("/")[0] in COMPILE_STATE


@pytest.mark.parametrize("name", TRAINED)
def test_strip_leaves_out_optimizer_and_compile_config_and_keeps_the_rest(name, tmp_path):
    src, out = FIX / name, tmp_path / ("s_" + name)
    res = weightshare.strip_file(src, out)
    assert res.stripped and res.optimizer_tensors > 0
    with _h5(src) as a, _h5(out) as b:
        before, after = _dump(a), _dump(b)
    assert not any(_is_compile_state(p) for p in after)
    kept = {p: v for p, v in before.items() if not _is_compile_state(p)}
    if "training_config" in kept["/"][1]:
        del kept["/"][1]["training_config"]
        assert res.config_removed == ("training_config",)
    assert after == kept             # bytes of every dataset, attributes with their types
    assert os.path.getsize(out) < os.path.getsize(src)
    assert res.size_after == os.path.getsize(out)
    if name.endswith(".keras"):
        za, zb = zipfile.ZipFile(src), zipfile.ZipFile(out)
        assert [i.filename for i in za.infolist()] == [i.filename for i in zb.infolist()]
        for ia, ib in zip(za.infolist(), zb.infolist()):
            assert (ia.date_time, ia.compress_type, ia.external_attr) == \
                (ib.date_time, ib.compress_type, ib.external_attr)
        assert za.read("metadata.json") == zb.read("metadata.json")
        cfg_a, cfg_b = json.loads(za.read("config.json")), json.loads(zb.read("config.json"))
        assert "compile_config" in cfg_a and "compile_config" not in cfg_b
        del cfg_a["compile_config"]
        assert cfg_a == cfg_b


def test_stripped_weights_read_back_identical(tmp_path):
    out = tmp_path / "s.keras"
    weightshare.strip_file(FIX / "k3_trained.keras", out)
    a = weightshare.read_weights(FIX / "k3_trained.keras")
    b = weightshare.read_weights(out)
    assert [(r.name, r.value.tobytes()) for r in a] == [(r.name, r.value.tobytes()) for r in b]


def test_a_file_without_optimizer_state_is_written_unchanged_and_says_so(tmp_path, capsys):
    src, out = FIX / "k2_trained.weights_only.h5", tmp_path / "s.h5"
    res = weightshare.strip_file(src, out)
    assert not res.stripped and res.dropped == () and res.config_removed == ()
    assert out.read_bytes() == src.read_bytes()
    assert main(["strip", str(src), "-o", str(tmp_path / "t.h5")]) == 0
    assert "nothing to strip" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["k3_trained_io.npz", "../safetensors/numpy_dtypes.safetensors"])
def test_strip_refuses_what_is_not_a_keras_file_and_writes_nothing(name, tmp_path):
    out = tmp_path / ("x" + pathlib.Path(name).suffix)
    with pytest.raises(FileFormatError, match="Keras files only"):
        weightshare.strip_file(FIX / name, out)
    with pytest.raises(FileFormatError, match="Keras files only"):
        weightshare.cluster_file(FIX / name, out, 4, compress=True)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["k3_trained.keras", "k2_trained.h5", "k3_trained.weights.h5",
                                  "k3_bf16.keras", "k2_f16.h5"])
def test_compress_deflates_floats_without_shuffle_and_keeps_every_byte(name, tmp_path):
    src, out = FIX / name, tmp_path / ("c_" + name)
    weightshare.cluster_file(src, out, 4, random_state=0)
    comp = tmp_path / ("cc_" + name)
    weightshare.cluster_file(src, comp, 4, random_state=0, compress=True)
    with _h5(out) as a, _h5(comp) as b:
        assert _dump(a) == _dump(b)
        deflated = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and obj.compression:
                assert obj.compression == "gzip" and not obj.shuffle
                deflated.append(obj.size)
        b.visititems(visit)
    assert deflated and max(deflated) >= 64
    assert os.path.getsize(comp) < os.path.getsize(out)


def test_compress_keeps_the_weights_member_stored_and_deflates_the_config(tmp_path):
    out = tmp_path / "c.keras"
    weightshare.strip_file(FIX / "k3_trained.keras", out, compress=True)
    infos = {i.filename: i.compress_type for i in zipfile.ZipFile(out).infolist()}
    assert infos == {"metadata.json": zipfile.ZIP_STORED, "config.json": zipfile.ZIP_DEFLATED,
                     "model.weights.h5": zipfile.ZIP_STORED}


def test_prune_with_strip_and_compress_keeps_the_pruned_values(tmp_path):
    plain, small = tmp_path / "p.keras", tmp_path / "ps.keras"
    weightshare.prune_file(FIX / "k3_trained.keras", plain, sparsity=0.5)
    weightshare.prune_file(FIX / "k3_trained.keras", small, sparsity=0.5, compress=True,
                           strip=True)
    a, b = weightshare.read_weights(plain), weightshare.read_weights(small)
    assert [(r.name, r.value.tobytes()) for r in a] == [(r.name, r.value.tobytes()) for r in b]
    assert os.path.getsize(small) < os.path.getsize(plain) / 2


def test_cli_strip_and_compress_flags(tmp_path, capsys):
    out = tmp_path / "s.keras"
    assert main(["strip", str(FIX / "k3_trained.keras"), "-o", str(out), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["stripped"] and got["dropped"] == ["/optimizer"] and got["optimizer_tensors"] == 10
    digits = weightshare.examples.path("digits.keras")
    for cmd, extra in (("cluster", ["-k", "8"]), ("prune", ["--sparsity", "0.5"])):
        small = tmp_path / f"{cmd}.keras"
        assert main([cmd, digits, "-o", str(small), "--compress", "--strip", "--quiet",
                     *extra]) == 0
        assert "file size: 104487 -> " in capsys.readouterr().out
        assert os.path.getsize(small) < os.path.getsize(digits) / 4


def test_strip_in_place_and_the_flags_are_checked(tmp_path):
    work = tmp_path / "m.h5"
    work.write_bytes((FIX / "k3_trained.h5").read_bytes())
    assert weightshare.strip_file(work, work, in_place=True).stripped
    assert not weightshare.strip_file(work, work, in_place=True).stripped
    with pytest.raises(TypeError, match="compress"):
        weightshare.strip_file(work, tmp_path / "o.h5", compress="yes")
    with pytest.raises(FileFormatError, match="input"):
        weightshare.strip_file(work, work)
