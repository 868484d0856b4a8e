"""Tests of the Keras file adapters (weightshare.files, weightshare._io) on real-Keras fixtures.

Ground truth is tests/fixtures/keras/manifest.json: every variable Keras wrote,
with its layer, role, shape, dtype and the sha256 of its bytes.
"""

import hashlib
import io
import json
import os
import pathlib
import shutil
import zipfile

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightshare
from weightshare.errors import FileFormatError
from weightshare._io._bf16 import bf16_to_float32, float32_to_bf16_bits

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "keras"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
FILES = sorted(MANIFEST["files"])
ALIASES = {"depthwise_kernel": "kernel"}


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def raw_sha(record):
    v = record.value
    if record.dtype == "bfloat16":
        v = float32_to_bf16_bits(v)
    return hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()


# --------------------------------------------------------------------------- mapping vs Keras itself

@pytest.mark.parametrize("name", FILES)
def test_every_variable_is_found_with_its_layer_role_shape_and_dtype(name):
    entry = MANIFEST["files"][name]
    records = weightshare.read_weights(FIX / name)
    by_sha = {}
    for r in records:
        by_sha.setdefault(raw_sha(r), []).append(r)
    expected = [(layer, w) for layer in entry["layers"] for w in layer["weights"]]
    assert len(records) == len(expected)
    named = entry["format"] != "weights_store" or entry["producer"] != "k2"
    for layer, w in expected:
        found = by_sha.get(w["sha256"])
        assert found, f"{layer['path']}/{w['role']} not found by value"
        r = found[0]
        assert r.shape == tuple(w["shape"])
        assert r.dtype == w["dtype"]
        assert ALIASES.get(r.role, r.role) == ALIASES.get(w["role"], w["role"])
        if named:    # a tf-keras weights store records no layer names at all
            assert r.layer == layer["path"].split("/")[0]


def test_format_detection_is_by_content(tmp_path):
    renamed = tmp_path / "model.bin"
    shutil.copy(FIX / "k3_mlp.weights.h5", renamed)
    assert weightshare.file_format(renamed) == "weights_store"
    shutil.copy(FIX / "k2_mlp.weights_only.h5", tmp_path / "w.h5")
    assert weightshare.file_format(tmp_path / "w.h5") == "legacy_weights"
    assert weightshare.file_format(FIX / "k2_mlp.h5") == "legacy_full"
    assert weightshare.file_format(FIX / "k2_mlp.keras") == "keras_zip"


def test_layers_are_matched_by_name_not_substring():
    records = weightshare.read_weights(FIX / "k3_rnn.keras", values=False)
    kernels = weightshare.select_weights(records, roles=["kernel"])
    assert any(r.role == "recurrent_kernel" for r in kernels)       # kind 'kernel'
    exact = weightshare.select_weights(records, roles=["recurrent_kernel"])
    assert exact and all(r.role == "recurrent_kernel" for r in exact)
    with pytest.raises(ValueError, match=r"no layer named 'lst'; the layers with weights are: "):
        weightshare.select_weights(records, layers=["lst"])
    with pytest.raises(ValueError, match=r"roles \['kern'\] do not exist"):
        weightshare.select_weights(records, roles=["kern"])


def test_npy_and_npz(tmp_path):
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "b.npz", first=a, second=a[0])
    assert [(r.name, r.shape) for r in weightshare.read_weights(tmp_path / "a.npy")] == [("array", (3, 4))]
    rows = weightshare.cluster_file(tmp_path / "b.npz", tmp_path / "c.npz", 2)
    assert [r.tensor for r in rows] == ["first", "second"]
    with np.load(tmp_path / "c.npz") as z:
        assert list(z.files) == ["first", "second"]
        assert np.unique(z["first"]).size == 2 and z["first"].dtype == np.float32


# --------------------------------------------------------------------------- round trips

def walk(h5):
    """{path: (kind, dtype/None, shape, bytes, {attr: (type, value bytes)})} of an HDF5 file."""
    out = {}

    def attrs(obj):
        res = {}
        for name in obj.attrs:
            aid = h5py.h5a.open(obj.id, name.encode())
            buf = np.empty(aid.shape, dtype=aid.dtype)
            if aid.get_space().get_simple_extent_type() != h5py.h5s.NULL:
                aid.read(buf)
            res[name] = (aid.get_type().encode(), repr(buf.tolist()))
        return res

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            data = obj[()]
            out[name] = ("dataset", obj.id.get_type().encode(), obj.shape,
                         np.ascontiguousarray(data).tobytes(), attrs(obj),
                         obj.chunks, obj.compression)
        else:
            out[name] = ("group", attrs(obj))
    visit("/", h5["/"])
    h5.visititems(visit)
    return out


def h5_of(path, fmt):
    if fmt == "keras_zip":
        with zipfile.ZipFile(path) as z:
            return h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def _h5_path(record):
    return record.location.removeprefix("model.weights.h5:").lstrip("/")


def halve_and_zero_row(record, values):
    new = (values * 0.5).astype(values.dtype)
    new.reshape(new.shape[0], -1)[0] = 0
    return new


@pytest.mark.parametrize("name", [n for n in FILES])
def test_roundtrip_changes_exactly_the_targets(name, tmp_path):
    src = FIX / name
    dst = tmp_path / name
    before = sha(src)
    fmt = weightshare.file_format(src)
    expected = {}

    def fn(record, values):
        new = halve_and_zero_row(record, values)
        expected[_h5_path(record)] = new
        return new

    records = weightshare.read_weights(src, values=False)
    changed = weightshare.transform_file(src, dst, fn, select=lambda r: r.kind == "kernel")
    assert sha(src) == before
    assert {r.name for r in changed} == {r.name for r in records if r.kind == "kernel"}
    with h5_of(src, fmt) as a, h5_of(dst, fmt) as b:
        wa, wb = walk(a), walk(b)
    assert wa.keys() == wb.keys()
    written = {_h5_path(r): r for r in weightshare.read_weights(dst)}
    for path in wa:
        if path in expected:
            kind, tid, shape, _, attrs, chunks, comp = wb[path]
            assert (kind, tid, shape, attrs, chunks, comp) == wa[path][:3] + wa[path][4:]
            got, exp = written[path], expected[path]
            if got.dtype == "bfloat16":
                exp = bf16_to_float32(float32_to_bf16_bits(exp))
            np.testing.assert_array_equal(got.value, exp)
        else:
            assert wb[path] == wa[path], path
    if fmt == "keras_zip":
        with zipfile.ZipFile(src) as za, zipfile.ZipFile(dst) as zb:
            ia, ib = za.infolist(), zb.infolist()
            assert [i.filename for i in ia] == [i.filename for i in ib]
            for x, y in zip(ia, ib):
                for key in ("date_time", "compress_type", "external_attr", "create_system", "flag_bits"):
                    assert getattr(x, key) == getattr(y, key), (x.filename, key)
                if x.filename != "model.weights.h5":
                    assert za.read(x) == zb.read(y)


@pytest.mark.parametrize("name", ["k3_mlp.keras", "k2_cnn.h5", "k3_bf16.weights.h5",
                                  "k2_nested.weights_only.h5"])
def test_identity_rewrite_keeps_every_dataset(name, tmp_path):
    src, dst = FIX / name, tmp_path / name
    weightshare.transform_file(src, dst, lambda r, v: None)
    fmt = weightshare.file_format(src)
    with h5_of(src, fmt) as a, h5_of(dst, fmt) as b:
        assert walk(a) == walk(b)


def test_cluster_file_summary_and_result(tmp_path):
    src = FIX / "k3_pruned.keras"
    rows = weightshare.cluster_file(src, tmp_path / "o.keras", 4)
    after = {r.name: r for r in weightshare.read_weights(tmp_path / "o.keras")}
    before = {r.name: r for r in weightshare.read_weights(src)}
    assert [r.tensor for r in rows] == ["fc1/kernel", "fc2/kernel", "head/kernel"]
    for row in rows:
        a, b = after[row.tensor].value, before[row.tensor].value
        assert row.distinct_after == np.unique(a).size <= 4
        assert row.zeros_before == row.zeros_after == np.count_nonzero(b == 0) > 0
        assert np.all(a[b == 0] == 0)
        assert row.sse == pytest.approx(float(np.sum((a.astype(float) - b) ** 2)))
    for name in ("fc1/bias", "fc2/bias", "head/bias"):
        np.testing.assert_array_equal(after[name].value, before[name].value)


def test_cluster_file_per_layer_k_and_per_channel(tmp_path):
    src = FIX / "k2_digits.h5"
    rows = weightshare.cluster_file(src, tmp_path / "o.h5", {"fc1": 16, "out": 4})
    assert {r.tensor: r.k for r in rows} == {"fc1/kernel": 16, "out/kernel": 4}
    rows = weightshare.cluster_file(src, tmp_path / "p.h5", 3, layers=["out"], per_channel=True)
    out = [r for r in weightshare.read_weights(tmp_path / "p.h5") if r.name == "out/kernel"][0]
    assert all(np.unique(out.value[:, j]).size <= 3 for j in range(out.shape[1]))
    assert np.unique(out.value).size > 3


def test_cluster_file_bfloat16_keeps_k_values(tmp_path):
    rows = weightshare.cluster_file(FIX / "k3_bf16.keras", tmp_path / "o.keras", 5)
    after = {r.name: r for r in weightshare.read_weights(tmp_path / "o.keras")}
    for row in rows:
        v = after[row.tensor].value
        assert after[row.tensor].dtype == "bfloat16"
        assert np.unique(v).size <= 5
        np.testing.assert_array_equal(bf16_to_float32(float32_to_bf16_bits(v)), v)


def test_cluster_file_float16(tmp_path):
    weightshare.cluster_file(FIX / "k3_f16.weights.h5", tmp_path / "o.weights.h5", 6)
    for r in weightshare.read_weights(tmp_path / "o.weights.h5"):
        assert r.value.dtype == np.float16
        if r.kind == "kernel":
            assert np.unique(r.value).size <= 6


# --------------------------------------------------------------------------- bfloat16 by bits

def _magnitude(bits):
    """|value| of a float32 bit pattern in exact Python arithmetic (exponent 255 read as 2**128)."""
    exp, mant = (bits >> 23) & 0xFF, bits & 0x7FFFFF
    if exp == 0:
        return mant * 2.0 ** -149
    return (1 + mant / 2 ** 23) * 2.0 ** (exp - 127)


def _reference_bf16_bits(x):
    """Round-to-nearest-even to bfloat16, computed independently, one value at a time."""
    out = []
    for v in np.asarray(x, dtype=np.float32).ravel():
        bits = int(np.float32(v).view(np.uint32))
        if np.isnan(v):
            out.append(0x7FC0)
            continue
        if np.isinf(v):
            out.append(bits >> 16)
            continue
        low = bits & 0xFFFF0000                 # toward zero
        high = low + 0x10000                    # away from zero (may reach infinity)
        mag, down, up = _magnitude(bits), _magnitude(low & 0x7FFFFFFF), _magnitude(high & 0x7FFFFFFF)
        if mag - down < up - mag or (mag - down == up - mag and (low >> 16) % 2 == 0):
            out.append(low >> 16)
        else:
            out.append(high >> 16)
    return np.array(out, dtype=np.uint16)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.4e38, -3.4e38, 1e-40, -1e-45,
                    np.float32(1.0) + np.float32(2**-8), np.float32(1.0) + np.float32(3 * 2**-8),
                    np.float32(1.0) + np.float32(2**-9), 65504.0], dtype=np.float32)


def test_bf16_specials_match_the_reference():
    np.testing.assert_array_equal(float32_to_bf16_bits(SPECIAL), _reference_bf16_bits(SPECIAL))


@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(width=32, allow_nan=False)))
def test_bf16_rounding_matches_the_reference(x):
    np.testing.assert_array_equal(float32_to_bf16_bits(x), _reference_bf16_bits(x))


@given(hnp.arrays(np.uint16, st.integers(1, 64)))
def test_bf16_widening_is_exact_and_reversible(bits):
    wide = bf16_to_float32(bits)
    back = float32_to_bf16_bits(wide)
    nan = np.isnan(wide)
    np.testing.assert_array_equal(back[~nan], bits[~nan])


# --------------------------------------------------------------------------- nothing lost

def _listing(folder):
    return sorted(os.listdir(folder))


def _bad_cases(tmp_path):
    good = (FIX / "k3_mlp.keras").read_bytes()
    cases = {}
    cases["truncated.keras"] = good[: len(good) // 2]
    cases["empty.h5"] = b""
    cases["text.h5"] = b"hello, not a model\n" * 10
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("metadata.json", "{}")
    cases["noconfig.keras"] = buf.getvalue()
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("model.weights.h5", b"x")
    cases["badjson.keras"] = buf.getvalue()
    h5 = tmp_path / "plain.h5"
    with h5py.File(h5, "w") as f:
        f["data"] = np.arange(3.0)
    cases["plain.h5"] = h5.read_bytes()
    h5.unlink()
    legacy = tmp_path / "units.h5"
    shutil.copy(FIX / "k2_mlp.h5", legacy)
    with h5py.File(legacy, "r+") as f:
        cfg = json.loads(f.attrs["model_config"])
        cfg["config"]["layers"][1]["config"]["units"] = 17
        f.attrs["model_config"] = json.dumps(cfg)
    cases["units.h5"] = legacy.read_bytes()
    legacy.unlink()
    return cases


@pytest.mark.parametrize("case, match", [
    ("truncated.keras", r"truncated\.keras: "),
    ("empty.h5", r"empty\.h5: is empty \(0 bytes\)"),
    ("text.h5", r"text\.h5: is not a Keras weights file"),
    ("noconfig.keras", r"noconfig\.keras: is a zip without config\.json"),
    ("badjson.keras", r"badjson\.keras: config\.json: config\.json is not valid JSON"),
    ("plain.h5", r"plain\.h5: is an HDF5 file but not a Keras weights file"),
    ("units.h5", r"units\.h5: /model_weights/hidden/.*kernel.*: layer 'hidden' has units=17 in its "
                 r"config but its kernel has shape \(8, 16\)"),
])
def test_bad_files_fail_cleanly_and_write_nothing(case, match, tmp_path):
    src = tmp_path / "in" / case
    src.parent.mkdir()
    src.write_bytes(_bad_cases(tmp_path / "in")[case])
    before = sha(src), os.stat(src).st_mtime_ns
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(FileFormatError, match=match):
        weightshare.cluster_file(src, out / case, 4)
    assert (sha(src), os.stat(src).st_mtime_ns) == before
    assert _listing(out) == []


def test_destination_rules(tmp_path):
    src = tmp_path / "m.keras"
    shutil.copy(FIX / "k3_mlp.keras", src)
    with pytest.raises(FileFormatError, match=r"is the input file; pass in_place=True"):
        weightshare.cluster_file(src, src, 4)
    with pytest.raises(FileFormatError, match=r"must keep the input's suffix '\.keras'"):
        weightshare.cluster_file(src, tmp_path / "m.h5", 4)
    with pytest.raises(FileNotFoundError, match=r"the output folder does not exist"):
        weightshare.cluster_file(src, tmp_path / "missing" / "m.keras", 4)
    with pytest.raises(FileFormatError, match=r"is a folder"):
        weightshare.cluster_file(src, tmp_path, 4)
    before = sha(src)
    weightshare.cluster_file(src, src, 4, in_place=True)
    assert sha(src) != before
    assert _listing(tmp_path) == ["m.keras"]


def test_existing_output_unchanged_when_a_job_fails(tmp_path):
    dst = tmp_path / "o.keras"
    dst.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"no layer named 'nope'"):
        weightshare.cluster_file(FIX / "k3_mlp.keras", dst, 4, layers=["nope"])
    with pytest.raises(ValueError, match=r"k must be >= 1; got k=0"):
        weightshare.cluster_file(FIX / "k3_mlp.keras", dst, 0)

    def boom(record, values):
        raise ValueError("bad values")
    with pytest.raises(FileFormatError, match=r"k3_mlp\.keras: model\.weights\.h5:/layers/dense/vars/0: "
                                              r"bad values"):
        weightshare.transform_file(FIX / "k3_mlp.keras", dst, boom)
    assert dst.read_bytes() == b"previous"
    assert _listing(tmp_path) == ["o.keras"]


def test_sharded_weights_are_refused_clearly(tmp_path):
    p = tmp_path / "m.weights.json"
    p.write_text("{}")
    with pytest.raises(FileFormatError, match=r"sharded weights are not supported yet"):
        weightshare.read_weights(p)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        weightshare.read_weights("/nonexistent/model.keras")
