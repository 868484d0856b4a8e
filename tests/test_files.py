"""Tests of the public file API (weightshare.files) on real-Keras fixtures.

Ground truth is tests/fixtures/keras/manifest.json: every variable Keras wrote,
with its layer path, class, role, shape, dtype and the sha256 of its bytes.
The private modules behind it are tested in tests/_io/.
"""

import collections
import hashlib
import io
import json
import os
import pathlib
import shutil
import stat
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare.errors import FileFormatError
from weightshare._codec._bf16 import bf16_to_float32, float32_to_bf16_bits

FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "keras"
MANIFEST = json.loads((FIX / "manifest.json").read_text())
FILES = sorted(MANIFEST["files"])
#: tf-keras names the DepthwiseConv kernel depthwise_kernel, Keras 3 kernel
ALIASES = {"depthwise_kernel": "kernel"}
KERNEL_LIKE = {"kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings"}


def sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def raw_sha(record):
    """sha256 of a tensor's stored bytes (bfloat16 as its 2-byte patterns), as the manifest."""
    v = record.value
    if record.dtype == "bfloat16":
        v = float32_to_bf16_bits(v)
    return hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()


def h5_of(path):
    """The HDF5 file of a Keras file (the weights member of a .keras zip)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def h5_bytes(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return z.read("model.weights.h5")
    return pathlib.Path(path).read_bytes()


def dataset_path(record):
    return record.location.removeprefix("model.weights.h5:")


# --------------------------------------------------------------------------- mapping vs Keras itself

@pytest.mark.parametrize("name", FILES)
def test_every_variable_is_found_with_its_layer_class_role_shape_and_dtype(name):
    entry = MANIFEST["files"][name]
    records = weightshare.read_weights(FIX / name)
    expected = [(layer, w) for layer in entry["layers"] for w in layer["weights"]]
    # the same tensors, byte for byte, nothing more (optimizer state is not a weight)
    assert collections.Counter(map(raw_sha, records)) == collections.Counter(
        w["sha256"] for _, w in expected)
    by_sha = {raw_sha(r): r for r in records}
    # a tf-keras weights store records no layer names; a legacy weights-only file no classes
    names_known = not (entry["format"] == "weights_store" and entry["producer"] == "k2")
    classes_known = entry["format"] != "legacy_weights"
    for layer, w in expected:
        r = by_sha[w["sha256"]]
        assert r.shape == tuple(w["shape"])
        assert r.dtype == w["dtype"]
        assert ALIASES.get(r.role, r.role) == ALIASES.get(w["role"], w["role"])
        assert (r.kind == "kernel") == (w["role"] in KERNEL_LIKE)
        if names_known:
            assert r.layer == layer["path"].split("/")[0]
            if classes_known:      # without a config a nested model is not known as one
                assert r.path == layer["path"]
                assert r.name.startswith(layer["path"] + "/")
        if classes_known:
            assert r.layer_class == layer["class_name"]
    assert len({r.name for r in records}) == len(records)
    with h5_of(FIX / name) as h5:
        for r in records:
            assert isinstance(h5[dataset_path(r)], h5py.Dataset)


@pytest.mark.parametrize("name", FILES)
def test_metadata_only_read_matches_the_full_read(name):
    full = weightshare.read_weights(FIX / name)
    meta = weightshare.read_weights(FIX / name, values=False)
    assert [r._replace(value=None) for r in full] == meta
    assert all(r.value is None for r in meta)
    for r in full:
        assert r.value.shape == r.shape
        assert r.value.dtype == (np.float32 if r.dtype == "bfloat16" else np.dtype(r.dtype))


def test_read_weights_values_must_be_a_flag():
    with pytest.raises(TypeError, match=r"values must be True or False; got 'no'"):
        weightshare.read_weights(FIX / "k3_mlp.keras", values="no")


def test_records_are_frozen():
    r = weightshare.read_weights(FIX / "k3_mlp.keras", values=False)[0]
    with pytest.raises(AttributeError):
        r.role = "bias"


def test_format_detection_is_by_content(tmp_path):
    cases = {"k3_mlp.weights.h5": "weights_store", "k2_mlp.weights_only.h5": "legacy_weights",
             "k2_mlp.h5": "legacy_full", "k2_mlp.keras": "keras_zip", "k3_mlp.keras": "keras_zip"}
    for i, (name, fmt) in enumerate(cases.items()):
        renamed = tmp_path / f"model{i}.bin"
        shutil.copy(FIX / name, renamed)
        assert weightshare.file_format(renamed) == fmt, name
    np.save(tmp_path / "a.npy", np.ones(3, np.float32))
    os.replace(tmp_path / "a.npy", tmp_path / "a.keras")
    assert weightshare.file_format(tmp_path / "a.keras") == "npy"


def test_roles_and_layers_are_matched_exactly_never_as_substrings():
    records = weightshare.read_weights(FIX / "k3_rnn.keras", values=False)
    kernels = weightshare.select_weights(records)     # the kernel-like kind
    assert {r.role for r in kernels} == {"kernel", "recurrent_kernel"}
    exact = weightshare.select_weights(records, roles=["recurrent_kernel"])
    assert exact and {r.role for r in exact} == {"recurrent_kernel"}
    with pytest.raises(ValueError, match=r"no layer named 'lst'; the layers with weights are: "
                                         r"lstm, gru, bilstm, head"):
        weightshare.select_weights(records, layers=["lst"])
    with pytest.raises(ValueError, match=r"roles \['kern'\] do not exist"):
        weightshare.select_weights(records, roles=["kern"])
    digits = weightshare.read_weights(FIX / "k3_pruned.keras", values=False)
    with pytest.raises(ValueError, match=r"no layer named 'fc'"):
        weightshare.select_weights(digits, layers="fc")
    assert [r.name for r in weightshare.select_weights(digits, layers="fc1", roles="all")] == \
        ["fc1/kernel", "fc1/bias"]


def test_nested_layers_are_addressed_by_their_path():
    records = weightshare.read_weights(FIX / "k3_nested.keras", values=False)
    inner = weightshare.select_weights(records, layers=["inner"], roles=["all"])
    assert [r.name for r in inner] == ["inner/dense/kernel", "inner/dense/bias",
                                       "inner/dense_1/kernel", "inner/dense_1/bias"]
    one = weightshare.select_weights(records, layers=["inner/dense_1"])
    assert [r.name for r in one] == ["inner/dense_1/kernel"]
    # 'dense' is a layer of the nested model, not a top-level layer: no substring fallback
    with pytest.raises(ValueError, match=r"no layer named 'dense'"):
        weightshare.select_weights(records, layers=["dense"])


def test_a_named_layer_without_the_roles_asked_is_an_error():
    records = weightshare.read_weights(FIX / "k3_cnn.keras", values=False)
    with pytest.raises(ValueError, match=r"layer 'bn1' has no weight with roles \['kernel'\]; its "
                                         r"weights are: gamma, beta, moving_mean, moving_variance"):
        weightshare.select_weights(records, layers=["bn1"])
    assert len(weightshare.select_weights(records, layers=["bn1"], roles=["normalization"])) == 4


@pytest.mark.parametrize("kwargs, error, match", [
    ({"roles": []}, TypeError, r"roles must be role names"),
    ({"roles": [1]}, TypeError, r"roles must be role names"),
    ({"layers": [1]}, TypeError, r"layers must be layer names"),
])
def test_select_weights_bad_arguments(kwargs, error, match):
    records = weightshare.read_weights(FIX / "k3_mlp.keras", values=False)
    with pytest.raises(error, match=match):
        weightshare.select_weights(records, **kwargs)


def test_npy_and_npz(tmp_path):
    a = np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4)
    np.save(tmp_path / "a.npy", a)
    np.savez(tmp_path / "b.npz", first=a, second=a[0], labels=np.arange(4))
    assert [(r.name, r.shape) for r in weightshare.read_weights(tmp_path / "a.npy")] == [("array", (3, 4))]
    rows = weightshare.cluster_file(tmp_path / "b.npz", tmp_path / "c.npz", 2)
    assert [r.tensor for r in rows] == ["first", "second"]      # integer arrays are never clustered
    with np.load(tmp_path / "c.npz") as z:
        assert list(z.files) == ["first", "second", "labels"]
        assert np.unique(z["first"]).size == 2 and z["first"].dtype == np.float32
        np.testing.assert_array_equal(z["labels"], np.arange(4))
    rows = weightshare.cluster_file(tmp_path / "a.npy", tmp_path / "d.npy", 3)
    assert rows[0].distinct_after == 3 and np.load(tmp_path / "d.npy").dtype == np.float32


# --------------------------------------------------------------------------- round trips

def walk(h5):
    """{path: description} of every group and dataset: HDF5 types, bytes, attributes, storage."""
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
            out[name] = ("dataset", obj.id.get_type().encode(), obj.shape,
                         np.ascontiguousarray(obj[()]).tobytes(), attrs(obj),
                         obj.chunks, obj.compression, obj.shuffle, obj.fletcher32)
        else:
            out[name] = ("group", attrs(obj), list(obj))
    visit("/", h5["/"])
    h5.visititems(visit)
    return out


def halve_and_zero_row(record, values):
    new = (values * 0.5).astype(values.dtype)
    new.reshape(new.shape[0], -1)[0] = 0
    return new


def data_ranges(path, locations):
    """Byte mask of the HDF5 file (or zip member) covering the data of the given datasets."""
    raw = h5_bytes(path)
    mask = np.zeros(len(raw), bool)
    with h5_of(path) as h5:
        for loc in locations:
            ds = h5[loc]
            start = ds.id.get_offset()
            mask[start:start + ds.id.get_storage_size()] = True
    return np.frombuffer(raw, np.uint8), mask


def zip_settings(path):
    with zipfile.ZipFile(path) as z:
        return [(i.filename, i.date_time, i.compress_type, i.external_attr, i.create_system,
                 i.flag_bits, i.extra, i.comment) for i in z.infolist()]


@pytest.mark.parametrize("name", FILES)
def test_roundtrip_changes_exactly_the_targets(name, tmp_path):
    src, dst = FIX / name, tmp_path / name
    before = (sha(src), os.stat(src).st_mtime_ns)
    expected = {}

    def fn(record, values):
        new = halve_and_zero_row(record, values)
        expected[dataset_path(record)] = new
        return new

    records = weightshare.read_weights(src, values=False)
    rows = weightshare.transform_file(src, dst, fn, select=lambda r: r.kind == "kernel")
    assert (sha(src), os.stat(src).st_mtime_ns) == before
    assert [r.tensor for r in rows] == [r.name for r in records if r.kind == "kernel"]
    assert all(r.changed for r in rows)
    with h5_of(src) as a, h5_of(dst) as b:
        wa, wb = walk(a), walk(b)
    assert wa.keys() == wb.keys()
    written = {dataset_path(r): r for r in weightshare.read_weights(dst)}
    for path in wa:
        key = "/" + path.lstrip("/")
        if key in expected:
            # same HDF5 type, shape, attributes and storage; the values asked for
            assert wb[path][:3] + wb[path][4:] == wa[path][:3] + wa[path][4:]
            got, exp = written[key], expected[key]
            if got.dtype == "bfloat16":
                exp = bf16_to_float32(float32_to_bf16_bits(exp))
            np.testing.assert_array_equal(got.value, exp)
            assert got.value.dtype == exp.dtype
        else:
            assert wb[path] == wa[path], path
    # at the byte level: the file differs only inside the targeted datasets' data
    a_bytes, mask = data_ranges(src, expected)
    b_bytes, _ = data_ranges(dst, expected)
    assert a_bytes.size == b_bytes.size
    np.testing.assert_array_equal(a_bytes[~mask], b_bytes[~mask])
    if zipfile.is_zipfile(src):
        assert zip_settings(src) == zip_settings(dst)
        with zipfile.ZipFile(src) as za, zipfile.ZipFile(dst) as zb:
            for x in za.infolist():
                if x.filename != "model.weights.h5":
                    assert za.read(x) == zb.read(x.filename)


@pytest.mark.parametrize("name", FILES)
def test_identity_rewrite_reproduces_the_file_byte_for_byte(name, tmp_path):
    src, dst = FIX / name, tmp_path / name
    rows = weightshare.transform_file(src, dst, lambda r, v: None)
    assert dst.read_bytes() == src.read_bytes()
    assert len(rows) == len(weightshare.read_weights(src, values=False))
    assert not any(r.changed for r in rows)
    assert all(r.values_changed == 0 and r.zeros_before == r.zeros_after for r in rows)


def test_returning_the_same_values_changes_no_bit(tmp_path):
    src, dst = FIX / "k3_bf16.keras", tmp_path / "o.keras"
    rows = weightshare.transform_file(src, dst, lambda r, v: v)
    assert all(r.changed and r.values_changed == 0 for r in rows)
    assert h5_bytes(dst) == h5_bytes(src)


def test_transform_summary_counts(tmp_path):
    src = FIX / "k3_pruned.keras"
    before = {r.name: r.value for r in weightshare.read_weights(src)}

    def fn(record, values):
        out = values.copy()
        out[np.abs(out) < 0.05] = 0
        return out
    rows = weightshare.transform_file(src, tmp_path / "o.keras", fn,
                                      select=lambda r: r.layer == "fc1")
    assert [r.tensor for r in rows] == ["fc1/kernel", "fc1/bias"]
    for row in rows:
        v = before[row.tensor]
        assert row.size == v.size and row.shape == v.shape and row.dtype == "float32"
        assert row.zeros_before == np.count_nonzero(v == 0)
        newly = (np.abs(v) < 0.05) & (v != 0)
        assert row.zeros_after == row.zeros_before + np.count_nonzero(newly)
        assert row.values_changed == np.count_nonzero(newly)
        assert row.to_dict()["shape"] == list(v.shape)


def test_fn_sees_the_stored_dtype_and_the_result_is_cast(tmp_path):
    seen = {}

    def fn(record, values):
        seen[record.name] = values.dtype
        return values.astype(np.float64) * 3     # float64 in, float16 stored
    weightshare.transform_file(FIX / "k3_f16.weights.h5", tmp_path / "o.weights.h5", fn,
                               select=lambda r: r.kind == "kernel")
    assert set(seen.values()) == {np.dtype(np.float16)}
    before = {r.name: r.value for r in weightshare.read_weights(FIX / "k3_f16.weights.h5")}
    for r in weightshare.read_weights(tmp_path / "o.weights.h5"):
        if r.name in seen:
            assert r.value.dtype == np.float16
            np.testing.assert_array_equal(r.value, (before[r.name].astype(np.float64) * 3)
                                          .astype(np.float16))


def test_progress_is_called_once_per_tensor(tmp_path):
    calls = []
    weightshare.transform_file(FIX / "k3_cnn.keras", tmp_path / "o.keras", lambda r, v: None,
                               progress=lambda done, total, r: calls.append((done, total, r.name)))
    names = [r.name for r in weightshare.read_weights(FIX / "k3_cnn.keras", values=False)]
    assert calls == [(i + 1, len(names), n) for i, n in enumerate(names)]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"fn": "nope"}, TypeError, r"fn must be callable; got str"),
    ({"select": 3}, TypeError, r"select must be callable or None; got int"),
    ({"progress": "bar"}, TypeError, r"progress must be callable or None; got str"),
    ({"in_place": "no"}, TypeError, r"in_place must be True or False; got 'no'"),
])
def test_transform_file_bad_arguments(kwargs, error, match, tmp_path):
    args = {"fn": lambda r, v: None, **kwargs}
    with pytest.raises(error, match=match):
        weightshare.transform_file(FIX / "k3_mlp.keras", tmp_path / "o.keras", args.pop("fn"),
                                   **args)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- cluster_file

def test_cluster_file_summary_and_result(tmp_path):
    src = FIX / "k3_pruned.keras"
    rows = weightshare.cluster_file(src, tmp_path / "o.keras", 4)
    after = {r.name: r for r in weightshare.read_weights(tmp_path / "o.keras")}
    before = {r.name: r for r in weightshare.read_weights(src)}
    assert [r.tensor for r in rows] == ["fc1/kernel", "fc2/kernel", "head/kernel"]
    for row in rows:
        a, b = after[row.tensor].value, before[row.tensor].value
        assert (row.layer, row.role, row.shape, row.dtype, row.k) == \
            (row.tensor.split("/")[0], "kernel", b.shape, "float32", 4)
        assert row.distinct_before == np.unique(b).size
        assert row.distinct_after == np.unique(a).size == 4
        assert row.zeros_before == row.zeros_after == np.count_nonzero(b == 0) > 0
        assert np.all(a[b == 0] == 0)
        assert row.sse == pytest.approx(float(np.sum((a.astype(float) - b) ** 2)), rel=1e-12)
        assert row.to_dict()["shape"] == list(b.shape)
    for name in ("fc1/bias", "fc2/bias", "head/bias"):
        np.testing.assert_array_equal(after[name].value, before[name].value)


def test_cluster_file_equals_the_array_api(tmp_path):
    src = FIX / "k2_digits.h5"
    weightshare.cluster_file(src, tmp_path / "o.h5", 8, method="optimal")
    before = {r.name: r.value for r in weightshare.read_weights(src)}
    for r in weightshare.read_weights(tmp_path / "o.h5"):
        if r.kind == "kernel":
            expected = weightshare.cluster(before[r.name], 8, method="optimal").values
            np.testing.assert_array_equal(r.value, expected)


def test_cluster_file_default_targets_every_kernel_like_weight(tmp_path):
    rows = weightshare.cluster_file(FIX / "k3_rnn.keras", tmp_path / "o.keras", 3)
    records = weightshare.read_weights(FIX / "k3_rnn.keras", values=False)
    assert [r.tensor for r in rows] == [r.name for r in records
                                        if r.role in ("kernel", "recurrent_kernel")]
    rows = weightshare.cluster_file(FIX / "k3_mha.keras", tmp_path / "m.keras", 3)
    assert [r.tensor for r in rows] == ["mha/key_dense/kernel", "mha/output_dense/kernel",
                                        "mha/query_dense/kernel", "mha/value_dense/kernel",
                                        "head/kernel"]
    rows = weightshare.cluster_file(FIX / "k2_emb.h5", tmp_path / "e.h5", 3)
    assert [r.tensor for r in rows] == ["embed/embeddings", "head/kernel"]
    rows = weightshare.cluster_file(FIX / "k3_zoo.keras", tmp_path / "z.keras", 3,
                                    roles=["bias", "alpha"])
    assert [r.role for r in rows] == ["bias", "alpha", "bias", "bias"]


def test_cluster_file_per_layer_k(tmp_path):
    src = FIX / "k2_digits.h5"
    rows = weightshare.cluster_file(src, tmp_path / "o.h5", {"fc1": 16, "out": 4})
    assert {r.tensor: (r.k, r.distinct_after) for r in rows} == {"fc1/kernel": (16, 16),
                                                                 "out/kernel": (4, 4)}
    fc2 = [r.value for r in weightshare.read_weights(tmp_path / "o.h5") if r.name == "fc2/kernel"]
    np.testing.assert_array_equal(fc2[0], [r.value for r in weightshare.read_weights(src)
                                           if r.name == "fc2/kernel"][0])
    rows = weightshare.cluster_file(FIX / "k3_nested.keras", tmp_path / "n.keras",
                                    {"inner/dense": 2, "head": 3})
    assert [(r.tensor, r.k) for r in rows] == [("inner/dense/kernel", 2), ("head/kernel", 3)]


@pytest.mark.parametrize("name, tensor, axis", [
    ("k2_digits.h5", "out/kernel", -1),               # Dense: output units
    ("k3_cnn.keras", "conv1/kernel", -1),             # Conv2D: filters
    ("k3_cnn.keras", "dw/kernel", -2),                # DepthwiseConv2D: input channel
    ("k2_cnn.h5", "dw/depthwise_kernel", -2),
    ("k3_zoo.keras", "deconv/kernel", -2),            # Conv2DTranspose: (kh, kw, filters, in)
    ("k3_zoo.keras", "sep/pointwise_kernel", -1),
    ("k3_emb.keras", "embed/embeddings", -1),
])
def test_cluster_file_per_channel_axis(name, tensor, axis, tmp_path):
    dst = tmp_path / name
    layer = tensor.split("/")[0]
    weightshare.cluster_file(FIX / name, dst, 2, layers=[layer], per_channel=True)
    before = [r for r in weightshare.read_weights(FIX / name) if r.name == tensor][0].value
    after = [r for r in weightshare.read_weights(dst) if r.name == tensor][0].value
    expected = weightshare.cluster(before, 2, axis=axis % before.ndim).values
    np.testing.assert_array_equal(after, expected)
    moved = np.moveaxis(after, axis, 0).reshape(after.shape[axis], -1)
    assert all(np.unique(row).size <= 2 for row in moved)


def test_cluster_file_random_state_is_reproducible(tmp_path):
    src = FIX / "k2_digits.h5"
    for name in ("a.h5", "b.h5"):
        weightshare.cluster_file(src, tmp_path / name, 5, method="lloyd", init="random",
                                 random_state=7)
    assert h5_bytes(tmp_path / "a.h5") == h5_bytes(tmp_path / "b.h5")


def test_cluster_file_bfloat16_keeps_k_values(tmp_path):
    rows = weightshare.cluster_file(FIX / "k3_bf16.keras", tmp_path / "o.keras", 5)
    after = {r.name: r for r in weightshare.read_weights(tmp_path / "o.keras")}
    assert rows
    for row in rows:
        v = after[row.tensor].value
        assert after[row.tensor].dtype == row.dtype == "bfloat16"
        assert np.unique(v).size == row.distinct_after <= 5
        np.testing.assert_array_equal(bf16_to_float32(float32_to_bf16_bits(v)), v)


def test_cluster_file_float16(tmp_path):
    weightshare.cluster_file(FIX / "k3_f16.weights.h5", tmp_path / "o.weights.h5", 6)
    for r in weightshare.read_weights(tmp_path / "o.weights.h5"):
        assert r.value.dtype == np.float16
        if r.kind == "kernel":
            assert np.unique(r.value).size <= 6


@pytest.mark.parametrize("kwargs, error, match", [
    ({"k": 0}, ValueError, r"k must be >= 1; got k=0"),
    ({"k": 2.5}, TypeError, r"k must be an int >= 1 or a mapping"),
    ({"k": True}, TypeError, r"k must be an int >= 1 or a mapping"),
    ({"k": {"fc1": 0}}, ValueError, r"k\['fc1'\] must be >= 1"),
    ({"k": {"fc9": 4}}, ValueError, r"k names layer 'fc9', which has no targeted weights; "
                                    r"targeted layers: fc1, fc2, out"),
    ({"k": {"fc1": 4}, "layers": ["fc2"]}, ValueError, r"k names layer 'fc1'"),
    ({"layers": ["fc"]}, ValueError, r"no layer named 'fc'; the layers with weights are: fc1, fc2, out"),
    ({"roles": ["kern"]}, ValueError, r"roles \['kern'\] do not exist"),
    ({"method": "fast"}, ValueError, r"method must be one of"),
    ({"init": "zeros"}, ValueError, r"init must be one of"),
    ({"random_state": -1}, ValueError, r"random_state must be >= 0"),
    ({"keep_zeros": "yes"}, TypeError, r"keep_zeros must be True or False; got 'yes'"),
    ({"per_channel": 1}, TypeError, r"per_channel must be True or False; got 1"),
    ({"in_place": None}, TypeError, r"in_place must be True or False; got None"),
])
def test_cluster_file_bad_arguments_write_nothing(kwargs, error, match, tmp_path):
    args = {"k": 4, **kwargs}
    with pytest.raises(error, match=match):
        weightshare.cluster_file(FIX / "k2_digits.h5", tmp_path / "o.h5", args.pop("k"), **args)
    assert list(tmp_path.iterdir()) == []


def test_k_is_checked_even_when_nothing_is_targeted(tmp_path):
    np.save(tmp_path / "i.npy", np.arange(4))
    with pytest.raises(ValueError, match=r"k must be >= 1"):
        weightshare.cluster_file(tmp_path / "i.npy", tmp_path / "o.npy", 0)
    assert weightshare.cluster_file(tmp_path / "i.npy", tmp_path / "o.npy", 2) == []
    assert (tmp_path / "o.npy").read_bytes() == (tmp_path / "i.npy").read_bytes()


# --------------------------------------------------------------------------- nothing lost

def _bad_cases(tmp_path):
    good = (FIX / "k3_mlp.keras").read_bytes()
    cases = {"truncated.keras": good[: len(good) // 2], "empty.h5": b"",
             "text.h5": b"hello, not a model\n" * 10}
    h5 = (FIX / "k2_mlp.h5").read_bytes()
    cases["truncated.h5"] = h5[: len(h5) * 2 // 3]
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("metadata.json", "{}")
    cases["noconfig.keras"] = buf.getvalue()
    with zipfile.ZipFile(buf := io.BytesIO(), "w") as z:
        z.writestr("config.json", "{not json")
        z.writestr("model.weights.h5", b"x")
    cases["badjson.keras"] = buf.getvalue()
    plain = tmp_path / "plain.h5"
    with h5py.File(plain, "w") as f:
        f["data"] = np.arange(3.0)
    cases["plain.h5"] = plain.read_bytes()
    plain.unlink()
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
    ("truncated.h5", r"truncated\.h5: "),
    ("empty.h5", r"empty\.h5: is empty \(0 bytes\)"),
    ("text.h5", r"text\.h5: is not a Keras weights file"),
    ("noconfig.keras", r"noconfig\.keras: is a zip without config\.json"),
    ("badjson.keras", r"badjson\.keras: config\.json: config\.json is not valid JSON"),
    ("plain.h5", r"plain\.h5: is an HDF5 file but not a Keras weights file"),
    ("units.h5", r"units\.h5: /model_weights/hidden/hidden/kernel:0: layer 'hidden' has units=17 "
                 r"in its config but its kernel has shape \(8, 16\)"),
])
def test_bad_files_fail_cleanly_and_write_nothing(case, match, tmp_path):
    src = tmp_path / "in" / case
    src.parent.mkdir()
    src.write_bytes(_bad_cases(tmp_path / "in")[case])
    before = sha(src), os.stat(src).st_mtime_ns
    out = tmp_path / "out"
    out.mkdir()
    for job in (lambda: weightshare.cluster_file(src, out / case, 4),
                lambda: weightshare.transform_file(src, out / case, lambda r, v: None),
                lambda: weightshare.read_weights(src)):
        with pytest.raises(FileFormatError, match=match) as info:
            job()
        assert info.value.path == str(src)
        assert "\n" not in str(info.value)
    assert (sha(src), os.stat(src).st_mtime_ns) == before
    assert sorted(os.listdir(out)) == []


def test_destination_rules(tmp_path):
    src = tmp_path / "m.keras"
    shutil.copy(FIX / "k3_mlp.keras", src)
    os.chmod(src, 0o640)
    with pytest.raises(FileFormatError, match=r"is the input file; pass in_place=True"):
        weightshare.cluster_file(src, src, 4)
    with pytest.raises(FileFormatError, match=r"is the input file"):
        weightshare.cluster_file(src, tmp_path / "." / "m.keras", 4)
    with pytest.raises(FileFormatError, match=r"must keep the input's suffix '\.keras'"):
        weightshare.cluster_file(src, tmp_path / "m.h5", 4)
    with pytest.raises(FileNotFoundError, match=r"the output folder does not exist"):
        weightshare.cluster_file(src, tmp_path / "missing" / "m.keras", 4)
    with pytest.raises(FileFormatError, match=r"is a folder"):
        weightshare.cluster_file(src, tmp_path, 4)
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]
    before = sha(src)
    weightshare.cluster_file(src, src, 4, in_place=True)
    assert sha(src) != before
    assert stat.S_IMODE(os.stat(src).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["m.keras"]
    assert all(np.unique(r.value).size <= 4 for r in weightshare.read_weights(src)
               if r.kind == "kernel")


def test_existing_output_unchanged_when_a_job_fails(tmp_path):
    dst = tmp_path / "o.keras"
    dst.write_bytes(b"previous")
    with pytest.raises(ValueError, match=r"no layer named 'nope'"):
        weightshare.cluster_file(FIX / "k3_mlp.keras", dst, 4, layers=["nope"])

    def boom(record, values):
        if record.role == "bias":
            raise ValueError("bad values")
    with pytest.raises(FileFormatError, match=r"k3_mlp\.keras: model\.weights\.h5:/layers/dense/vars/1: "
                                              r"bad values"):
        weightshare.transform_file(FIX / "k3_mlp.keras", dst, boom)
    with pytest.raises(FileFormatError, match=r"/layers/dense/vars/0: fn returned shape \(3,\); "
                                              r"the tensor has shape \(8, 16\)"):
        weightshare.transform_file(FIX / "k3_mlp.keras", dst, lambda r, v: np.zeros(3))
    with pytest.raises(FileFormatError, match=r"fn returned <U1 values"):
        weightshare.transform_file(FIX / "k3_mlp.keras", dst, lambda r, v: np.full(v.shape, "a"))
    assert dst.read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["o.keras"]


@pytest.mark.parametrize("ext", [".keras", ".weights.h5", ".h5", ".safetensors"])
def test_an_argument_a_tensor_cannot_take_is_not_a_file_error(ext, tmp_path):
    """k=1 on a tensor holding zeros (kept zero) is the caller's argument, not a bad file."""
    src = {".keras": FIX / "k3_mlp.keras", ".weights.h5": FIX / "k3_mlp.weights.h5",
           ".h5": FIX / "k2_mlp.h5",
           ".safetensors": FIX.parent / "safetensors" / "tiny_bert" / "model.safetensors"}[ext]
    pruned = tmp_path / ("pruned" + ext)
    weightshare.prune_file(src, pruned, sparsity=0.5)
    dst = tmp_path / ("out" + ext)
    with pytest.raises(ValueError, match=r"k=1 cannot hold the fixed zero") as info:
        weightshare.cluster_file(pruned, dst, 1)
    assert not isinstance(info.value, FileFormatError)
    assert isinstance(info.value, weightshare.errors.TensorArgumentError)
    assert any(str(info.value).startswith(r.name + ": ") for r in weightshare.read_weights(pruned))
    assert not dst.exists() and sorted(os.listdir(tmp_path)) == [pruned.name]


def test_an_interrupted_run_leaves_nothing(tmp_path):
    def interrupt(record, values):
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        weightshare.transform_file(FIX / "k3_cnn.keras", tmp_path / "o.keras", interrupt)
    assert list(tmp_path.iterdir()) == []


def test_sharded_weights_are_refused_clearly(tmp_path):
    p = tmp_path / "m.weights.json"
    p.write_text("{}")
    with pytest.raises(FileFormatError, match=r"sharded weights are not supported yet"):
        weightshare.read_weights(p)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        weightshare.read_weights("/nonexistent/model.keras")


def test_distinct_counts_are_exact_for_float16(tmp_path):
    """NumPy 2.4's AVX-512 float16 sort can return unsorted output (so np.unique counts some
    values twice); the summary counts must not depend on it."""
    from weightshare.files import _distinct
    rng = np.random.default_rng(1)
    values = np.array([-1.5, -0.25, -0.000375, 0.25, 1.0], np.float16)
    for _ in range(50):
        a = rng.choice(values, size=int(rng.integers(16, 5000)))
        assert _distinct(a) == len(set(a.tolist()))
    rows = weightshare.cluster_file(FIX / "k3_f16.keras", tmp_path / "o.keras", 5)
    before = {r.name: r.value for r in weightshare.read_weights(FIX / "k3_f16.keras")}
    after = {r.name: r.value for r in weightshare.read_weights(tmp_path / "o.keras")}
    for row in rows:
        assert row.distinct_before == len(set(before[row.tensor].ravel().tolist()))
        assert row.distinct_after == len(set(after[row.tensor].ravel().tolist())) <= 5
        assert row.sse == pytest.approx(float(np.sum((after[row.tensor].astype(np.float64)
                                                      - before[row.tensor]) ** 2)), rel=1e-12)
