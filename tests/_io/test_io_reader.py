"""Format detection and the dataset -> (layer, class, role) mapping (weightshare._io._reader,
weightshare._keras._roles), on variants of real fixtures that Keras itself does not write.

The fixtures cover what Keras 3 and tf-keras write (tests/test_files.py checks
every one against the manifest); these variants cover what older Keras, other
tools, and broken or unsupported files contain: quantized layers, custom
classes, configs that disagree with the weights, Keras 2.0 weight names,
split ``layer_names`` attributes, sharded and zipped oddities.
"""

import json
import pathlib
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare._keras._roles import (class_from_group, kind_of, output_axis, quantization_of,
                                       store_roles)
from weightshare.errors import FileFormatError

from edits import edit_keras, edit_legacy, layer_cfg, set_model_config

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras"


def names(path):
    return [r.name for r in weightshare.read_weights(path, values=False)]


# --------------------------------------------------------------------------- detection

def test_store_without_layers_group_is_detected(tmp_path):
    p = tmp_path / "odd.bin"
    with h5py.File(p, "w") as f:
        f.create_group("vars")
        f["dense/vars/0"] = np.ones((2, 3), np.float32)
        f["dense/vars/1"] = np.ones(3, np.float32)
    assert weightshare.file_format(p) == "weights_store"
    assert [(r.name, r.layer_class, r.role) for r in weightshare.read_weights(p)] == [
        ("dense/kernel", "Dense", "kernel"), ("dense/bias", "Dense", "bias")]


@pytest.mark.parametrize("content, match", [
    (json.dumps({"metadata": {}, "weight_map": {"/layers/dense/vars": ["a_00000.weights.h5"]}}),
     r"sharded weights are not supported yet"),
    ('  {"not": "an index"}', r"is a JSON file, not a Keras weights file"),
])
def test_json_files_are_recognised_by_content(content, match, tmp_path):
    p = tmp_path / "index.h5"
    p.write_text(content)
    with pytest.raises(FileFormatError, match=match):
        weightshare.read_weights(p)


def test_a_folder_is_refused(tmp_path):
    with pytest.raises(FileFormatError, match=r"is a folder, not a weights file"):
        weightshare.read_weights(tmp_path)


@pytest.mark.parametrize("members, match", [
    ({"model/config.json": "{}", "model/model.weights.h5": b"x"}, r"members sit in a sub-folder"),
    ({"config.json": "{}", "model.weights.npz": b"x"}, r"model\.weights\.npz, which is not supported"),
    ({"config.json": "{}", "metadata.json": "{}"}, r"a \.keras zip without model\.weights\.h5"),
    ({"config.json": "[1, 2]", "model.weights.h5": b"x"}, r"config\.json does not hold a model"),
])
def test_zip_oddities(members, match, tmp_path):
    p = tmp_path / "m.keras"
    with zipfile.ZipFile(p, "w") as z:
        for name, data in members.items():
            z.writestr(name, data)
    with pytest.raises(FileFormatError, match=match):
        weightshare.read_weights(p)


def test_a_deflated_keras_zip_reads_like_the_stored_one(tmp_path):
    p = tmp_path / "deflated.keras"
    with zipfile.ZipFile(FIX / "k3_cnn.keras") as zin, \
            zipfile.ZipFile(p, "w", compression=zipfile.ZIP_DEFLATED) as zout:
        for info in reversed(zin.infolist()):
            zout.writestr(info.filename, zin.read(info))
    a, b = weightshare.read_weights(FIX / "k3_cnn.keras"), weightshare.read_weights(p)
    assert [r._replace(value=None) for r in a] == [r._replace(value=None) for r in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.value, y.value)


def test_pickled_numpy_files_are_refused_without_unpickling(tmp_path):
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FileFormatError, match=r"holds Python objects, not numbers"):
        weightshare.read_weights(tmp_path / "o.npy")
    np.savez(tmp_path / "o.npz", good=np.ones(2), bad=np.array([None], dtype=object))
    with pytest.raises(FileFormatError, match=r"o\.npz: bad\.npy: holds Python objects"):
        weightshare.read_weights(tmp_path / "o.npz")


# --------------------------------------------------------------------------- refusals

QUANTIZED_POLICIES = [
    {"module": "keras.dtype_policies", "class_name": "QuantizedDTypePolicy",
     "config": {"mode": "int8", "source_name": "float32"}, "registered_name": None},   # Keras 3.15
    {"module": "keras.dtype_policies", "class_name": "Int4DTypePolicy",
     "config": {"mode": "int4/128", "source_name": "float32"}, "registered_name": None},
    {"module": "keras", "class_name": "DTypePolicy",
     "config": {"name": "int8_from_float32"}, "registered_name": None},                # Keras 3.1-3.3
    "float8_from_mixed_bfloat16",
]


@pytest.mark.parametrize("policy", QUANTIZED_POLICIES)
def test_quantized_layers_are_refused(policy, tmp_path):
    def quantize(cfg):
        layer_cfg(cfg, "logits")["config"]["dtype"] = policy
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "q.keras", config=quantize)
    with pytest.raises(FileFormatError, match=r"q\.keras: model\.weights\.h5:/layers/dense_1: layer "
                                              r"'logits' is quantized \(.+\); quantized Keras layers "
                                              r"are not supported"):
        weightshare.read_weights(p)
    h = edit_legacy(FIX / "k3_mlp.h5", tmp_path / "q.h5", lambda f: set_model_config(f, quantize))
    with pytest.raises(FileFormatError, match=r"q\.h5: /model_weights/logits: layer 'logits' is "
                                              r"quantized"):
        weightshare.cluster_file(h, tmp_path / "o.h5", 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["q.h5", "q.keras"]


def test_a_quantized_bare_store_is_refused_by_its_variable_count(tmp_path):
    # Keras 3.15 int8 Dense stores kernel (int8), bias, kernel_scale
    p = tmp_path / "q.weights.h5"
    with h5py.File(p, "w") as f:
        f["layers/dense/vars/0"] = np.ones((8, 4), np.int8)
        f["layers/dense/vars/1"] = np.zeros(4, np.float32)
        f["layers/dense/vars/2"] = np.ones(4, np.float32)
        f["layers/dense/vars"].attrs["name"] = "fc1"
    with pytest.raises(FileFormatError, match=r"/layers/dense/vars: layer 'fc1' stores 3 variables, "
                                              r"which a Dense \(from its group name\) does not have"):
        weightshare.read_weights(p)


@pytest.mark.parametrize("policy, mode", [
    ("float32", None), ("mixed_float16", None), ("bfloat16", None), (None, None),
    ({"class_name": "DTypePolicy", "config": {"name": "float16"}}, None),
    ({"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8"}}, "int8"),
    ({"class_name": "GPTQDTypePolicy", "config": {"mode": "gptq/4/128"}}, "gptq/4/128"),
    ("int8_from_float32", "int8_from_float32"), ("int8", "int8"),
])
def test_quantization_of(policy, mode):
    assert quantization_of({"dtype": policy}) == mode


def test_unknown_classes_get_var_roles_and_are_not_guessed(tmp_path):
    def rename_class(cfg):
        e = layer_cfg(cfg, "hidden")
        e["class_name"], e["registered_name"] = "MyDense", "Custom>MyDense"

    def rename_groups(f):
        f.move("layers/dense", "layers/my_dense")
        f.move("layers/dense_1", "layers/dense")
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "c.keras", config=rename_class, h5=rename_groups)
    records = weightshare.read_weights(p, values=False)
    assert [(r.name, r.layer_class, r.role, r.kind) for r in records] == [
        ("hidden/var0", "MyDense", "var0", "other"), ("hidden/var1", "MyDense", "var1", "other"),
        ("logits/kernel", "Dense", "kernel", "kernel"), ("logits/bias", "Dense", "bias", "bias")]
    rows = weightshare.cluster_file(p, tmp_path / "o.keras", 2)
    assert [r.tensor for r in rows] == ["logits/kernel"]
    with pytest.raises(ValueError, match=r"layer 'hidden' has no weight with roles \['kernel'\]; its "
                                         r"weights are: var0, var1"):
        weightshare.cluster_file(p, tmp_path / "o.keras", 2, layers=["hidden"])
    rows = weightshare.cluster_file(p, tmp_path / "o.keras", 2, layers=["hidden"], roles=["var0"])
    assert [r.tensor for r in rows] == ["hidden/var0"]


def test_a_config_that_misses_a_layer_is_refused(tmp_path):
    def drop_logits(cfg):
        cfg["config"]["layers"] = [e for e in cfg["config"]["layers"]
                                   if e["config"].get("name") != "logits"]
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "m.keras", config=drop_logits)
    with pytest.raises(FileFormatError, match=r"m\.keras: model\.weights\.h5:/layers/dense_1/vars/0: "
                                              r"holds 2 variable\(s\) that no layer of config\.json "
                                              r"accounts for"):
        weightshare.read_weights(p)


def test_a_config_whose_names_disagree_with_the_store_is_refused(tmp_path):
    def swap(cfg):
        a, b = layer_cfg(cfg, "hidden"), layer_cfg(cfg, "logits")
        a["config"]["name"], b["config"]["name"] = "logits", "hidden"
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "m.keras", config=swap)
    with pytest.raises(FileFormatError, match=r"store group /layers/dense belongs to layer 'hidden', "
                                              r"but the config puts layer 'logits' there"):
        weightshare.read_weights(p)


def test_a_variable_count_the_class_cannot_have_is_refused(tmp_path):
    def extra(f):
        f["layers/dense/vars/2"] = np.zeros(16, np.float32)
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "m.keras", h5=extra)
    with pytest.raises(FileFormatError, match=r"model\.weights\.h5:/layers/dense/vars: layer 'hidden' "
                                              r"stores 3 variables, which a Dense \(from the config\)"):
        weightshare.read_weights(p)


def test_a_kernel_whose_shape_disagrees_with_the_config_is_refused(tmp_path):
    def units(cfg):
        layer_cfg(cfg, "logits")["config"]["units"] = 5
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "m.keras", config=units)
    with pytest.raises(FileFormatError, match=r"model\.weights\.h5:/layers/dense_1/vars/0: layer "
                                              r"'logits' has units=5 in its config but its kernel has "
                                              r"shape \(16, 4\)"):
        weightshare.read_weights(p)


@pytest.mark.parametrize("edit, match", [
    (lambda f: f["model_weights"].attrs.__setitem__("layer_names", np.array([b"hidden", b"gone"])),
     r"/model_weights: layer_names lists 'gone' but there is no such group"),
    (lambda f: f["model_weights/hidden"].attrs.__setitem__(
        "weight_names", np.array([b"hidden/kernel:0", b"hidden/nope:0"])),
     r"/model_weights/hidden: weight_names lists 'hidden/nope:0' but there is no such dataset"),
    (lambda f: f["model_weights/hidden"].attrs.__setitem__(
        "weight_names", np.array([b"hidden/kernel:0", b"hidden/kernel:0"])),
     r"/model_weights/hidden: weight_names lists 'hidden/kernel:0' twice"),
    (lambda f: f.attrs.__setitem__("model_config", "{not json"),
     r"/@model_config: the model_config attribute is not JSON"),
])
def test_broken_legacy_files(edit, match, tmp_path):
    p = edit_legacy(FIX / "k2_mlp.h5", tmp_path / "b.h5", edit)
    with pytest.raises(FileFormatError, match=r"b\.h5: " + match):
        weightshare.read_weights(p)


# --------------------------------------------------------------------------- older and odder layouts

def test_keras_2_0_weight_names_with_stale_prefixes(tmp_path):
    """Keras 2.0.5 wrote 'batch_normalization_1_1/gamma:0' in group 'batch_normalization_1'."""
    def stale(f):
        g = f["model_weights/bn1"]
        old = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
        new = [n.replace("bn1/", "bn1_1/") for n in old]
        for a, b in zip(old, new):
            g.move(a, b)
        g.attrs["weight_names"] = np.array([n.encode() for n in new])
    p = edit_legacy(FIX / "k2_cnn.h5", tmp_path / "old.h5", stale)
    records = {r.name: r for r in weightshare.read_weights(p)}
    original = {r.name: r for r in weightshare.read_weights(FIX / "k2_cnn.h5")}
    assert records.keys() == original.keys()
    assert records["bn1/gamma"].location == "/model_weights/bn1/bn1_1/gamma:0"
    assert records["bn1/gamma"].path == "bn1"
    np.testing.assert_array_equal(records["bn1/gamma"].value, original["bn1/gamma"].value)


def test_split_layer_names_read_like_one_attribute(tmp_path):
    def split(f):
        layer_names = f.attrs["layer_names"]
        del f.attrs["layer_names"]
        f.attrs["layer_names0"] = layer_names[:1]
        f.attrs["layer_names1"] = layer_names[1:]
    p = edit_legacy(FIX / "k2_mlp.weights_only.h5", tmp_path / "s.h5", split)
    assert weightshare.file_format(p) == "legacy_weights"
    assert names(p) == names(FIX / "k2_mlp.weights_only.h5") == [
        "hidden/kernel", "hidden/bias", "logits/kernel", "logits/bias"]
    rows = weightshare.cluster_file(p, tmp_path / "o.h5", 3)
    assert [r.tensor for r in rows] == ["hidden/kernel", "logits/kernel"]
    with h5py.File(tmp_path / "o.h5") as f:
        assert "layer_names" not in f.attrs and "layer_names1" in f.attrs


def test_legacy_bidirectional_weights_keep_forward_and_backward_apart():
    for name in ("k2_rnn.h5", "k3_rnn.h5", "k2_rnn.weights_only.h5"):
        got = [n for n in names(FIX / name) if n.startswith("bilstm/")]
        assert got == [f"bilstm/{d}_lstm/lstm_cell/{role}" for d in ("forward", "backward")
                       for role in ("kernel", "recurrent_kernel", "bias")], name


def test_model_level_variables_are_mapped(tmp_path):
    def own(f):
        g = f["model_weights/top_level_model_weights"]
        g["scale"] = np.float32(2.0)
        g.attrs["weight_names"] = np.array([b"scale"])
    p = edit_legacy(FIX / "k3_mlp.h5", tmp_path / "t.h5", own)
    assert names(p)[-1] == "top_level_model_weights/scale"

    def root_vars(f):
        f["vars/0"] = np.ones(3, np.float32)
    p = edit_keras(FIX / "k3_mlp.keras", tmp_path / "t.keras", h5=root_vars)
    last = weightshare.read_weights(p, values=False)[-1]
    assert (last.name, last.layer, last.role, last.location) == \
        ("mlp/var0", "mlp", "var0", "model.weights.h5:/vars/0")


def test_a_subclassed_model_store(tmp_path):
    """Attribute sub-objects at the root, one of them a model with its own layers."""
    p = tmp_path / "sub.weights.h5"
    with h5py.File(p, "w") as f:
        f.create_group("vars").attrs["name"] = "hed"
        f["block1/layers/conv2d/vars/0"] = np.ones((3, 3, 1, 4), np.float32)
        f["block1/layers/conv2d/vars/1"] = np.zeros(4, np.float32)
        f["block1/layers/conv2d_1/vars/0"] = np.ones((3, 3, 4, 4), np.float32)
        f.create_group("block1/vars").attrs["name"] = "block1"
        f["dsn1/vars/0"] = np.ones((1, 1, 4, 1), np.float32)
        f["optimizer/vars/0"] = np.int64(3)
    records = weightshare.read_weights(p, values=False)
    assert [(r.name, r.layer, r.layer_class, r.role) for r in records] == [
        ("block1/conv2d/kernel", "block1", "Conv2D", "kernel"),
        ("block1/conv2d/bias", "block1", "Conv2D", "bias"),
        ("block1/conv2d_1/kernel", "block1", "Conv2D", "kernel"),
        ("dsn1/var0", "dsn1", None, "var0")]
    # the same store inside a .keras whose config is a subclassed model (no layer list)
    k = tmp_path / "sub.keras"
    with zipfile.ZipFile(k, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "3.15.1"}))
        z.writestr("config.json", json.dumps({"class_name": "HED", "registered_name": "x>HED",
                                              "config": {"name": "hed"}}))
        z.write(p, "model.weights.h5")
    assert [r.name for r in weightshare.read_weights(k, values=False)] == [r.name for r in records]


def test_a_bare_tf_keras_store_uses_group_names_and_classes():
    records = weightshare.read_weights(FIX / "k2_mha.weights.h5", values=False)
    mha = [r for r in records if r.layer == "multi_head_attention"]
    assert [r.name for r in mha][:2] == ["multi_head_attention/_key_dense/kernel",
                                         "multi_head_attention/_key_dense/bias"]
    assert {r.kind for r in mha} == {"kernel", "bias"}


# --------------------------------------------------------------------------- the role table

@pytest.mark.parametrize("cls, config, n, roles", [
    ("Dense", {}, 2, ["kernel", "bias"]),
    ("Dense", {"use_bias": False}, 1, ["kernel"]),
    ("Conv2D", {}, 1, ["kernel"]),
    ("BatchNormalization", {}, 4, ["gamma", "beta", "moving_mean", "moving_variance"]),
    ("BatchNormalization", {"scale": False}, 3, ["beta", "moving_mean", "moving_variance"]),
    ("BatchNormalization", {"center": False}, 3, ["gamma", "moving_mean", "moving_variance"]),
    ("BatchNormalization", {}, 3, ["var0", "moving_mean", "moving_variance"]),   # ambiguous
    ("BatchNormalization", {"scale": False, "center": False}, 2, ["moving_mean", "moving_variance"]),
    ("LayerNormalization", {"center": False}, 1, ["gamma"]),
    ("SeparableConv2D", {}, 3, ["depthwise_kernel", "pointwise_kernel", "bias"]),
    ("Embedding", {}, 1, ["embeddings"]),
    ("PReLU", {}, 1, ["alpha"]),
    ("EinsumDense", {"bias_axes": None}, 1, ["kernel"]),
    ("MyLayer", {}, 3, ["var0", "var1", "var2"]),
    (None, {}, 2, ["var0", "var1"]),
    ("Dense", {}, 3, None),                     # quantized Dense: kernel, bias, kernel_scale
    ("Embedding", {}, 2, None),
])
def test_store_roles(cls, config, n, roles):
    assert store_roles(cls, config, [(2, 2)] * n) == roles


@pytest.mark.parametrize("cls, sub, tf_keras, roles", [
    ("LSTM", "cell", False, ["kernel", "recurrent_kernel", "bias"]),
    ("Bidirectional", "forward_layer/cell", False, ["kernel", "recurrent_kernel", "bias"]),
    ("MultiHeadAttention", "query_dense", False, ["kernel", "bias"]),
    ("MultiHeadAttention", "_query_dense", True, ["kernel", "bias"]),
    ("Custom", "thing", False, ["var0", "var1", "var2"][:2]),
])
def test_store_roles_of_sub_objects(cls, sub, tf_keras, roles):
    assert store_roles(cls, {}, [(2, 2)] * len(roles), sub=sub, tf_keras=tf_keras) == roles


def test_tf_keras_calls_the_depthwise_kernel_depthwise_kernel():
    assert store_roles("DepthwiseConv2D", {}, [(3, 3, 8, 1), (8,)], tf_keras=True) == \
        ["depthwise_kernel", "bias"]
    assert store_roles("DepthwiseConv2D", {}, [(3, 3, 8, 1), (8,)]) == ["kernel", "bias"]


@pytest.mark.parametrize("group, cls", [
    ("dense", "Dense"), ("dense_12", "Dense"), ("conv2d_transpose_1", "Conv2DTranspose"),
    ("batch_normalization", "BatchNormalization"), ("lstm_3", "LSTM"),
    ("multi_head_attention", "MultiHeadAttention"), ("my_layer", None), ("p_re_lu", "PReLU"),
])
def test_class_from_group(group, cls):
    assert class_from_group(group) == cls


@pytest.mark.parametrize("role, kind", [
    ("kernel", "kernel"), ("recurrent_kernel", "kernel"), ("depthwise_kernel", "kernel"),
    ("pointwise_kernel", "kernel"), ("embeddings", "kernel"), ("bias", "bias"),
    ("gamma", "normalization"), ("moving_variance", "normalization"), ("alpha", "other"),
    ("var0", "other"), ("kernel_scale", "other"),
])
def test_kind_of(role, kind):
    assert kind_of(role) == kind


@pytest.mark.parametrize("cls, role, ndim, axis", [
    ("Dense", "kernel", 2, 1), ("Conv2D", "kernel", 4, 3), ("Conv2DTranspose", "kernel", 4, 2),
    ("DepthwiseConv2D", "kernel", 4, 2), ("SeparableConv2D", "depthwise_kernel", 4, 2),
    ("SeparableConv2D", "pointwise_kernel", 4, 3), ("Embedding", "embeddings", 2, 1),
    ("LSTM", "recurrent_kernel", 2, 1), ("MultiHeadAttention", "kernel", 3, 2), ("Dense", "bias", 1, 0),
])
def test_output_axis(cls, role, ndim, axis):
    assert output_axis(cls, role, ndim) == axis
