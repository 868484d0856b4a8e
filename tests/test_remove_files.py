"""weightshare.remove_units on the real-Keras fixtures (h5py only; no Keras here).

Every ``rm_*`` pattern in ``.keras`` and legacy ``.h5`` from k3, k3tf and k2:
the summary, the new shapes and their content (``np.delete`` of the original
along the documented axis), the config edits, every other dataset and every
attribute byte-identical with its HDF5 type, the zip members and ZipInfo, the
input unchanged (sha256 and mtime). Then optimizer slots (trained, mixed,
digits), the blockers (nothing written, no temp file left), weights-only
files, bad arguments, atomic writes and the CLI. The proof in real Keras is
``tests/test_remove_keras.py``.
"""

import hashlib
import io
import json
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare import remove_units
from weightshare.cli import main
from weightshare.errors import FileFormatError

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
MANIFEST = json.load(open(os.path.join(FIX, "manifest.json")))["files"]
PRODUCERS = ("k3", "k3tf", "k2")
FORMATS = (".keras", ".h5")


def flat(s, c, removed):
    """Flatten rows of channels `removed` with `s` positions of `c` channels."""
    return [p * c + r for p in range(s) for r in removed]


# (model, layer, units) -> expected changes: (layer, role, axis, removed indices, new shape)
PATTERNS = {
    ("rm_dense_dense", "fc1", (1, 5, 9, 13)): [
        ("fc1", "kernel", 1, None, (8, 12)), ("fc1", "bias", 0, None, (12,)),
        ("fc2", "kernel", 0, None, (12, 16))],
    ("rm_dense_dense", "fc2", (0,)): [
        ("fc2", "kernel", 1, None, (16, 15)), ("fc2", "bias", 0, None, (15,)),
        ("head", "kernel", 0, None, (15, 4))],
    ("rm_dense_bn_dense", "fc1", (0, 3, 4)): [
        ("fc1", "kernel", 1, None, (8, 13)), ("fc1", "bias", 0, None, (13,)),
        ("bn1", "gamma", 0, None, (13,)), ("bn1", "beta", 0, None, (13,)),
        ("bn1", "moving_mean", 0, None, (13,)), ("bn1", "moving_variance", 0, None, (13,)),
        ("head", "kernel", 0, None, (13, 4))],
    ("rm_dense_dropout_act_dense", "fc1", (2, 7)): [
        ("fc1", "kernel", 1, None, (8, 14)), ("fc1", "bias", 0, None, (14,)),
        ("head", "kernel", 0, None, (14, 4))],
    ("rm_conv_bn_relu_conv", "conv1", (1, 6)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 6)), ("conv1", "bias", 0, None, (6,)),
        ("bn1", "gamma", 0, None, (6,)), ("bn1", "beta", 0, None, (6,)),
        ("bn1", "moving_mean", 0, None, (6,)), ("bn1", "moving_variance", 0, None, (6,)),
        ("conv2", "kernel", 2, None, (3, 3, 6, 8))],
    ("rm_conv_pool_conv", "conv1", (0, 7)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 6)), ("conv1", "bias", 0, None, (6,)),
        ("conv2", "kernel", 2, None, (3, 3, 6, 8))],
    ("rm_conv_pool_conv", "conv2", (3,)): [
        ("conv2", "kernel", 3, None, (3, 3, 8, 7)), ("conv2", "bias", 0, None, (7,)),
        ("head", "kernel", 0, flat(16, 8, [3]), (112, 4))],
    ("rm_conv_dw_conv", "conv1", (3, 4, 5)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 5)), ("conv1", "bias", 0, None, (5,)),
        ("dw1", "kernel", 2, None, (3, 3, 5, 1)), ("dw1", "bias", 0, None, (5,)),
        ("conv2", "kernel", 2, None, (1, 1, 5, 8))],
    ("rm_conv_flatten_dense", "conv1", (2, 5)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 6)), ("conv1", "bias", 0, None, (6,)),
        ("head", "kernel", 0, flat(36, 8, [2, 5]), (216, 4))],
    ("rm_conv_gap_dense", "conv1", (1,)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 7)), ("conv1", "bias", 0, None, (7,)),
        ("head", "kernel", 0, None, (7, 4))],
    ("cnn", "conv1", (2,)): [
        ("conv1", "kernel", 3, None, (3, 3, 3, 7)), ("conv1", "bias", 0, None, (7,)),
        ("bn1", "gamma", 0, None, (7,)), ("bn1", "beta", 0, None, (7,)),
        ("bn1", "moving_mean", 0, None, (7,)), ("bn1", "moving_variance", 0, None, (7,)),
        ("dw", "kernel", 2, None, (3, 3, 7, 1)), ("dw", "bias", 0, None, (7,)),
        ("bn2", "gamma", 0, None, (7,)), ("bn2", "beta", 0, None, (7,)),
        ("bn2", "moving_mean", 0, None, (7,)), ("bn2", "moving_variance", 0, None, (7,)),
        ("pw", "kernel", 2, None, (1, 1, 7, 8))],
    ("cnn", "pw", (0, 5)): [
        ("pw", "kernel", 3, None, (1, 1, 8, 6)), ("head", "kernel", 0, flat(16, 8, [0, 5]), (96, 4))],
}
CASES = [(p, model, layer, units, ext) for (model, layer, units) in PATTERNS
         for p in PRODUCERS for ext in FORMATS]


# =========================================================================== helpers
def sha256(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def stamp(path):
    st = os.stat(path)
    return sha256(path), st.st_mtime_ns, st.st_size


def open_weights(path):
    """The weights HDF5 of a model file (the zip member, read into memory, or the file)."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return h5py.File(io.BytesIO(z.read("model.weights.h5")), "r")
    return h5py.File(path, "r")


def read_config(path):
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    with h5py.File(path, "r") as h:
        raw = h.attrs["model_config"]
        return json.loads(raw.decode() if isinstance(raw, bytes) else raw)


def datasets(h5):
    out = {}
    h5.visititems(lambda n, o: out.__setitem__("/" + n, o) if isinstance(o, h5py.Dataset) else None)
    return out


def groups(h5):
    out = {"/": h5["/"]}
    h5.visititems(lambda n, o: out.__setitem__("/" + n, o) if isinstance(o, h5py.Group) else None)
    return out


def attr_types(obj):
    """{name: (type class, vlen?, cset, size, shape, value bytes)} with the HDF5 types."""
    out = {}
    for name in obj.attrs:
        aid = h5py.h5a.open(obj.id, name.encode())
        tid = aid.get_type()
        is_str = isinstance(tid, h5py.h5t.TypeStringID)
        out[name] = (type(tid).__name__, is_str and tid.is_variable_str(),
                     tid.get_cset() if is_str else None, tid.get_size(), aid.shape)
    return out


def layer_hashes(fname, layer):
    for entry in MANIFEST[fname]["layers"]:
        if entry["name"] == layer:
            return {w["sha256"] for w in entry["weights"]}
    raise KeyError(layer)


def array_hash(a):
    a = np.asarray(a)
    if a.dtype.kind == "V":
        a = a.view(np.uint16)
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def assert_same_tree_except(src, dst, changed):
    """Every dataset not in `changed` is byte-identical with the same dtype, layout and attrs;
    every group and attribute exists in both with the same HDF5 types and values."""
    sd, dd = datasets(src), datasets(dst)
    assert set(sd) == set(dd)
    for path, ds in sd.items():
        out = dd[path]
        assert out.dtype == ds.dtype, path
        assert attr_types(out) == attr_types(ds), path
        if path in changed:
            continue
        assert out.shape == ds.shape and out[()].tobytes() == ds[()].tobytes(), path
        assert out.chunks == ds.chunks and out.compression == ds.compression, path
    sg, dg = groups(src), groups(dst)
    assert set(sg) == set(dg)
    for path, g in sg.items():
        assert attr_types(dg[path]) == attr_types(g), path
        for name in g.attrs:
            if name == "model_config":
                continue
            a, b = g.attrs[name], dg[path].attrs[name]
            assert np.array_equal(np.asarray(a), np.asarray(b)), (path, name)


@pytest.fixture
def out_dir(tmp_path):
    d = tmp_path / "out"
    d.mkdir()
    return d


def only(folder, names):
    assert sorted(os.listdir(folder)) == sorted(names)


# =========================================================================== patterns
@pytest.mark.parametrize("producer, model, layer, units, ext", CASES)
def test_pattern_shapes_content_config_and_untouched_bytes(producer, model, layer, units, ext, out_dir):
    fname = f"{producer}_{model}{ext}"
    src = os.path.join(FIX, fname)
    before = stamp(src)
    dst = out_dir / f"small{ext}"
    res = remove_units(src, dst, layer=layer, units=list(units))
    expected = PATTERNS[(model, layer, units)]

    # the summary
    assert res.removed == tuple(sorted(units)) and res.layer == layer
    assert res.units_after == res.units_before - len(units)
    got = {(t.layer, t.role): t.new_shape for t in res.tensors}
    assert got == {(lay, role): shape for lay, role, _, _, shape in expected}
    assert res.optimizer == "none" and res.warnings == ()
    assert res.params_before == MANIFEST[fname]["n_params"]
    shrink = sum(int(np.prod(t.old_shape)) - int(np.prod(t.new_shape)) for t in res.tensors)
    assert res.params_after == res.params_before - shrink > 0
    assert res.path[0] == layer and json.loads(json.dumps(res.to_dict()))["removed"] == list(res.removed)

    # the content: np.delete of the original along the documented axis
    with open_weights(src) as s, open_weights(dst) as d:
        for (lay, role, axis, removed, shape), t in zip(expected, res.tensors):
            assert (t.layer, t.role) == (lay, role)
            old = s[t.dataset][()]
            assert array_hash(old) in layer_hashes(fname, lay), f"{t.dataset} is not {lay}.{role}"
            gone = list(units) if removed is None else removed
            want = np.delete(old, gone, axis=axis)
            assert d[t.dataset].shape == shape
            assert d[t.dataset][()].tobytes() == want.tobytes()
        assert_same_tree_except(s, d, {t.dataset for t in res.tensors})

    # the config
    cfg = read_config(dst)
    layers = {(e.get("config") or {}).get("name"): e for e in cfg["config"]["layers"]}
    key = "units" if "fc" in layer else "filters"
    assert layers[layer]["config"][key] == res.units_after
    consumers = {t.layer: t.new_shape for t in res.tensors if t.layer != layer and t.role == "kernel"
                 and layers[t.layer]["class_name"] in ("Dense", "Conv2D")}
    for name in res.path[1:]:
        bc = layers[name].get("build_config")
        if not bc:   # .keras configs record input shapes; legacy Keras 3 configs don't
            continue
        if name in consumers:
            kernel = consumers[name]
            assert bc["input_shape"][-1] == (kernel[0] if len(kernel) == 2 else kernel[-2]), name
        else:        # pass-through layers (all fixtures have depth_multiplier 1)
            assert bc["input_shape"][-1] == res.units_after, name
    original = read_config(src)
    assert len(original["config"]["layers"]) == len(cfg["config"]["layers"])
    assert [e["class_name"] for e in original["config"]["layers"]] == \
        [e["class_name"] for e in cfg["config"]["layers"]]

    # the container
    if ext == ".keras":
        with zipfile.ZipFile(src) as zs, zipfile.ZipFile(dst) as zd:
            a, b = zs.infolist(), zd.infolist()
            assert [i.filename for i in a] == [i.filename for i in b]
            for i, j in zip(a, b):
                assert (i.compress_type, i.date_time, i.external_attr, i.create_system, i.flag_bits) == \
                       (j.compress_type, j.date_time, j.external_attr, j.create_system, j.flag_bits)
            assert zs.read("metadata.json") == zd.read("metadata.json")
    else:
        with h5py.File(src, "r") as s, h5py.File(dst, "r") as d:
            assert attr_types(s) == attr_types(d)
            assert s.attrs["model_config"] != d.attrs["model_config"]
    assert stamp(src) == before
    only(out_dir, [dst.name])


def test_config_records_new_input_shapes_downstream(out_dir):
    src = os.path.join(FIX, "k2_rm_dense_dropout_act_dense.keras")
    res = remove_units(src, out_dir / "o.keras", layer="fc1", units=[0, 1, 2])
    layers = {e["config"]["name"]: e for e in read_config(out_dir / "o.keras")["config"]["layers"]}
    assert layers["fc1"]["config"]["units"] == 13
    for name in ("drop1", "act1", "head"):
        assert layers[name]["build_config"]["input_shape"] == [None, 13]
    assert layers["fc1"]["build_config"]["input_shape"] == [None, 8]
    assert "head.build_config.input_shape[-1]: 16 -> 13" in res.config
    src = os.path.join(FIX, "k3_rm_conv_flatten_dense.keras")
    remove_units(src, out_dir / "f.keras", layer="conv1", units=[7])
    layers = {e["config"]["name"]: e for e in read_config(out_dir / "f.keras")["config"]["layers"]}
    assert layers["flatten"]["build_config"]["input_shape"] == [None, 6, 6, 7]
    assert layers["head"]["build_config"]["input_shape"] == [None, 252]


def test_config_json_only_changes_where_it_must(out_dir):
    src = os.path.join(FIX, "k3_rm_dense_bn_dense.keras")
    remove_units(src, out_dir / "o.keras", layer="fc1", units=[4])
    a, b = read_config(src), read_config(out_dir / "o.keras")
    a["config"]["layers"][1]["config"]["units"] = 15
    for i in (2, 3):
        a["config"]["layers"][i]["build_config"]["input_shape"] = [None, 15]
    assert a == b


def test_functional_keras_tensor_shapes_are_updated(tmp_path):
    """A Keras 3 Functional config records the shape of each input tensor; those change too."""
    cfg = read_config(os.path.join(FIX, "k3_rm_block_add.keras"))
    assert cfg["class_name"] == "Functional"
    from weightshare._keras import _graph
    from weightshare._remove import _rules
    layers = cfg["config"]["layers"]
    # fc_a -> head directly (drop fc_b and add): a Functional chain
    head = layers[4]
    head["inbound_nodes"][0]["args"][0]["config"]["keras_history"] = ["fc_a", 0, 0]
    cfg["config"]["layers"] = [layers[0], layers[1], head]
    graph = _graph.build_graph(cfg)
    _rules.plan_removal(graph, {"fc_a": ((8, 16), (16,)), "head": ((16, 4), (4,))}, "fc_a", [0, 1])
    assert head["inbound_nodes"][0]["args"][0]["config"]["shape"] == [None, 14]
    assert head["build_config"]["input_shape"] == [None, 14]


@pytest.mark.parametrize("fname", ["k3_f16.keras", "k3_f16.h5", "k2_f16.keras", "k2_f16.h5",
                                   "k3_bf16.keras", "k3tf_bf16.keras"])
def test_float16_and_bfloat16_keep_their_dtype_and_markers(fname, out_dir):
    src = os.path.join(FIX, fname)
    ext = ".keras" if fname.endswith(".keras") else ".h5"
    res = remove_units(src, out_dir / f"o{ext}", layer="fc1", units=[0, 7])
    assert {(t.layer, t.role) for t in res.tensors} == {("fc1", "kernel"), ("fc1", "bias"),
                                                        ("head", "kernel")}
    with open_weights(src) as s, open_weights(out_dir / f"o{ext}") as d:
        assert_same_tree_except(s, d, {t.dataset for t in res.tensors})
        for t in res.tensors:
            assert d[t.dataset].dtype == s[t.dataset].dtype
            assert dict(d[t.dataset].attrs) == dict(s[t.dataset].attrs)   # bfloat16 marker kept


@pytest.mark.parametrize("by", ["l1", "l2"])
def test_count_picks_the_smallest_norms_of_the_producer_kernel(by, out_dir):
    src = os.path.join(FIX, "k3_pruned.keras")
    res = remove_units(src, out_dir / "o.keras", layer="fc1", count=5, by=by)
    with open_weights(src) as h:
        kernel = h["/layers/dense/vars/0"][()].astype(np.float64)
    norms = np.abs(kernel).sum(axis=0) if by == "l1" else np.sqrt((kernel ** 2).sum(axis=0))
    want = sorted(np.argsort(norms, kind="stable")[:5].tolist())
    assert list(res.removed) == want and res.by == by
    assert np.allclose(res.norms, norms[want])
    assert max(res.norms) <= min(np.delete(norms, want))


def test_count_ties_go_to_the_lower_index():
    from weightshare.remove import _choose
    kernel = np.array([[1.0, 0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0, -1.0]], dtype=np.float32)
    # norms l1: 1, 0, 2, 0, 2 -> two zero columns, then column 0; tie at 2 between 2 and 4
    assert _choose(kernel, 2, "l1")[0] == (1, 3)
    assert _choose(kernel, 3, "l1")[0] == (0, 1, 3)
    assert _choose(kernel, 4, "l1")[0] == (0, 1, 2, 3)
    conv = np.zeros((3, 3, 2, 4), np.float32)
    conv[..., 2] = 1.0
    assert _choose(conv, 3, "l2")[0] == (0, 1, 3)


def test_output_really_shrinks(out_dir):
    for fname, layer, n in [("k3_digits.keras", "fc1", 16), ("k2_digits.h5", "fc1", 16),
                            ("k3_rm_conv_flatten_dense.keras", "conv1", 4)]:
        src = os.path.join(FIX, fname)
        dst = out_dir / fname
        res = remove_units(src, dst, layer=layer, count=n)
        removed_bytes = 4 * (res.params_before - res.params_after)
        assert os.path.getsize(dst) < os.path.getsize(src) - removed_bytes // 2, fname
    for fname in sorted(os.listdir(FIX)):
        if fname.endswith(".h5") and "_rm_dense_dense" in fname and "weights" not in fname:
            dst = out_dir / fname
            remove_units(os.path.join(FIX, fname), dst, layer="fc1", units=[0, 1, 2, 3])
            assert os.path.getsize(dst) < os.path.getsize(os.path.join(FIX, fname))


# =========================================================================== optimizer state
OPT_FILES = ["k3_trained.keras", "k3_trained.h5", "k3tf_trained.keras", "k3tf_trained.h5",
             "k2_trained.keras", "k2_trained.h5", "k3_mixed.keras", "k3_mixed.h5",
             "k3tf_mixed.keras", "k3tf_mixed.h5", "k2_mixed.keras", "k2_mixed.h5",
             "k3_digits.keras", "k2_digits.h5"]


@pytest.mark.parametrize("fname", OPT_FILES)
def test_optimizer_slots_are_sliced_like_their_variables(fname, out_dir):
    src = os.path.join(FIX, fname)
    ext = ".keras" if fname.endswith(".keras") else ".h5"
    units = [0, 5, 6]
    res = remove_units(src, out_dir / f"o{ext}", layer="fc1", units=units)
    assert res.optimizer == "sliced" and res.warnings == ()
    slots = [t for t in res.tensors if t.layer == "optimizer"]
    copies = 2 if "mixed" in fname and ext == ".keras" else 1   # LossScaleOptimizer: outer + inner
    # m and v for fc1.kernel, fc1.bias and the consumer's kernel, per stored copy
    assert len(slots) == 6 * copies
    roles = sorted({t.role for t in slots})
    assert roles == ["slot of fc1.bias", "slot of fc1.kernel", f"slot of {res.path[-1]}.kernel"]
    opt_hashes = {o["sha256"] for o in MANIFEST[fname]["optimizer"]}
    with open_weights(src) as s, open_weights(out_dir / f"o{ext}") as d:
        for t in slots:
            old = s[t.dataset][()]
            assert array_hash(old) in opt_hashes, t.dataset
            axis = {"slot of fc1.kernel": 1, "slot of fc1.bias": 0}.get(t.role, 0)
            assert d[t.dataset][()].tobytes() == np.delete(old, units, axis=axis).tobytes()
        assert_same_tree_except(s, d, {t.dataset for t in res.tensors})


def test_unidentifiable_optimizer_state_is_dropped_with_a_warning(out_dir, monkeypatch, capsys):
    from weightshare._remove import _optimizer
    monkeypatch.setattr(_optimizer, "match_slots", lambda *a: None)
    for fname, group in [("k3_trained.keras", "optimizer"), ("k2_trained.h5", "optimizer_weights")]:
        src = os.path.join(FIX, fname)
        ext = os.path.splitext(fname)[1]
        res = remove_units(src, out_dir / f"o{ext}", layer="fc1", units=[1])
        assert res.optimizer == "dropped"
        assert len(res.warnings) == 1 and "optimizer state dropped" in res.warnings[0]
        assert all(t.layer != "optimizer" for t in res.tensors)
        with open_weights(out_dir / f"o{ext}") as d:
            assert group not in d
    code = main(["remove", os.path.join(FIX, "k3_trained.keras"), "-o", str(out_dir / "c.keras"),
                 "--layer", "fc1", "--units", "1"])
    err = capsys.readouterr().err
    assert code == 0 and err.count("\n") == 1 and "warning: optimizer state dropped" in err


# =========================================================================== refusals
BLOCKERS = [
    ("rm_block_add", "fc_a", "merge layer 'add' (Add)"),
    ("rm_block_add", "fc_b", "merge layer 'add' (Add)"),
    ("rm_block_concat", "fc_a", "merge layer 'concat' (Concatenate)"),
    ("rm_block_concat", "fc_b", "merge layer 'concat' (Concatenate)"),
    ("nested", "shared", "layer 'shared' is shared (called 2 times)"),
    ("nested", "dense", "inside the nested model 'inner'"),
    ("nested", "inner", "layer 'inner' (Sequential) has no units to remove; removal starts at a Dense"),
    ("rnn", "lstm", "layer 'lstm' (LSTM) has no units to remove"),
    ("mha", "mha", "layer 'mha' (MultiHeadAttention) has no units to remove"),
    ("mha", "head", "the output of 'head' is a model output"),
    ("zoo_seq", "conv1d", "layer 'srnn' (SimpleRNN) is a recurrent layer"),
    ("mlp", "logits", "the output of 'logits' is a model output"),
    ("emb", "embed", "layer 'embed' (Embedding) has no units to remove"),
]


@pytest.mark.parametrize("producer", PRODUCERS)
@pytest.mark.parametrize("ext", FORMATS)
@pytest.mark.parametrize("model, layer, match", BLOCKERS)
def test_blockers_are_refused_naming_the_layer_and_nothing_is_written(model, layer, match, ext,
                                                                     producer, out_dir):
    src = os.path.join(FIX, f"{producer}_{model}{ext}")
    before = stamp(src)
    with pytest.raises(FileFormatError) as info:
        remove_units(src, out_dir / f"o{ext}", layer=layer, units=[0])
    msg = str(info.value)
    assert match in msg and msg.endswith("nothing was written") and "\n" not in msg
    assert msg.startswith(src)
    only(out_dir, [])
    assert stamp(src) == before


@pytest.mark.parametrize("fname", ["k3_rm_dense_dense.weights.h5", "k2_rm_dense_dense.weights.h5",
                                   "k2_rm_dense_dense.weights_only.h5", "k3tf_mlp.weights.h5"])
def test_weights_only_files_need_the_architecture(fname, out_dir):
    with pytest.raises(FileFormatError, match="holds weights only.*needs the architecture"):
        remove_units(os.path.join(FIX, fname), out_dir / "o.h5", layer="fc1", units=[0])
    only(out_dir, [])


def test_not_a_model_file(tmp_path, out_dir):
    p = tmp_path / "x.keras"
    p.write_bytes(b"hello")
    with pytest.raises(FileFormatError, match="is not a Keras model file"):
        remove_units(p, out_dir / "o.keras", layer="fc1", units=[0])
    z = tmp_path / "z.keras"
    with zipfile.ZipFile(z, "w") as f:
        f.writestr("readme.txt", "no")
    with pytest.raises(FileFormatError, match="without config.json"):
        remove_units(z, out_dir / "o.keras", layer="fc1", units=[0])
    with pytest.raises(FileNotFoundError):
        remove_units(tmp_path / "missing.keras", out_dir / "o.keras", layer="fc1", units=[0])
    only(out_dir, [])


def test_store_group_that_belongs_to_another_layer_is_refused(tmp_path, out_dir):
    """vars@name must agree with the config's layer at that store position (Keras 3.15 files)."""
    src = os.path.join(FIX, "k3_rm_dense_dense.keras")
    bad = tmp_path / "bad.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(bad, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == "config.json":
                cfg = json.loads(data)
                layers = cfg["config"]["layers"]
                layers[1]["config"]["name"], layers[2]["config"]["name"] = "fc2", "fc1"
                data = json.dumps(cfg).encode()
            zout.writestr(info, data)
    with pytest.raises(FileFormatError, match="belongs to layer 'fc1'"):
        remove_units(bad, out_dir / "o.keras", layer="fc1", units=[0])


# =========================================================================== arguments
SRC = os.path.join(FIX, "k3_rm_dense_dense.keras")
BAD_ARGS = [
    (dict(layer="fc1", units=[16]), ValueError, r"units \[16\] are out of range for layer 'fc1' with 16 units"),
    (dict(layer="fc1", units=[-1]), ValueError, "out of range"),
    (dict(layer="fc1", units=[1, 1]), ValueError, r"units repeats \[1\]"),
    (dict(layer="fc1", units=list(range(16))), ValueError, "lists all 16 units"),
    (dict(layer="fc1", units=[]), ValueError, "units must not be empty"),
    (dict(layer="fc1", units=[1.5]), TypeError, "units must hold integers; got 1.5"),
    (dict(layer="fc1", units=[True]), TypeError, "units must hold integers"),
    (dict(layer="fc1", units="1,2"), TypeError, "units must be a sequence"),
    (dict(layer="fc1", count=0), ValueError, "count must be >= 1; got count=0"),
    (dict(layer="fc1", count=16), ValueError, "count=16 would remove all 16 units"),
    (dict(layer="fc1", count=2.0), TypeError, "count must be an integer"),
    (dict(layer="fc1", units=[1], count=2), TypeError, "exactly one of units= and count="),
    (dict(layer="fc1"), TypeError, "exactly one of units= and count="),
    (dict(layer="fc1", count=2, by="l3"), ValueError, r"by must be one of \['l1', 'l2'\]; got 'l3'"),
    (dict(layer="fc9", units=[0]), ValueError, "layer='fc9' is not a layer of .*layers with units: fc1, fc2, head"),
    (dict(layer="", units=[0]), TypeError, "layer must be a layer name"),
    (dict(layer=3, units=[0]), TypeError, "layer must be a layer name"),
    (dict(layer="fc1", units=[0], in_place="yes"), TypeError, "in_place must be True or False"),
]


@pytest.mark.parametrize("kwargs, exc, match", BAD_ARGS)
def test_bad_arguments(kwargs, exc, match, out_dir):
    with pytest.raises(exc, match=match):
        remove_units(SRC, out_dir / "o.keras", **kwargs)
    only(out_dir, [])


def test_destination_rules(out_dir, tmp_path):
    with pytest.raises(TypeError, match="dst is required"):
        remove_units(SRC, layer="fc1", units=[0])
    with pytest.raises(ValueError, match="is the input file; pass in_place=True"):
        remove_units(SRC, SRC, layer="fc1", units=[0])
    with pytest.raises(ValueError, match=r"must end in \.keras like the input"):
        remove_units(SRC, out_dir / "o.h5", layer="fc1", units=[0])
    with pytest.raises(ValueError, match=r"must end in \.h5 or \.hdf5"):
        remove_units(os.path.join(FIX, "k2_rm_dense_dense.h5"), out_dir / "o.weights.h5",
                     layer="fc1", units=[0])
    with pytest.raises(ValueError, match="in_place=True replaces src"):
        remove_units(SRC, out_dir / "o.keras", layer="fc1", units=[0], in_place=True)
    with pytest.raises(ValueError, match="is a folder"):
        remove_units(SRC, out_dir, layer="fc1", units=[0])
    with pytest.raises(TypeError, match="dst must be a path"):
        remove_units(SRC, 5, layer="fc1", units=[0])
    with pytest.raises(FileNotFoundError, match="the output folder does not exist"):
        remove_units(SRC, out_dir / "missing" / "o.keras", layer="fc1", units=[0])
    only(out_dir, [])


@pytest.mark.parametrize("fname", ["k3_rm_conv_gap_dense.keras", "k2_rm_conv_gap_dense.h5"])
def test_in_place_replaces_the_file_atomically(fname, tmp_path):
    p = tmp_path / fname
    shutil.copy(os.path.join(FIX, fname), p)
    os.chmod(p, 0o640)
    res = remove_units(p, layer="conv1", units=[0, 1], in_place=True)
    assert res.dst == str(p) and res.units_after == 6
    assert sorted(os.listdir(tmp_path)) == [fname]
    assert oct(os.stat(p).st_mode & 0o777) == oct(0o640)
    with open_weights(p) as h:
        assert any(ds.shape == (3, 3, 3, 6) for ds in datasets(h).values())
    res2 = remove_units(p, p, layer="conv1", units=[0], in_place=True)
    assert res2.units_before == 6 and res2.units_after == 5


def test_in_place_follows_a_symlink_and_refuses_hard_links(tmp_path, capsys):
    """--in-place on a symlink replaced the link by a file, leaving the model unchanged."""
    real = tmp_path / "store" / "m.keras"
    real.parent.mkdir()
    shutil.copy(SRC, real)
    link = tmp_path / "m.keras"
    os.symlink(real, link)
    res = remove_units(link, layer="fc1", units=[0], in_place=True)
    assert res.dst == str(real) and os.path.islink(link)
    assert remove_units(link, layer="fc1", units=[0], in_place=True).units_before == 15
    assert main(["remove", str(link), "--in-place", "--layer", "fc1", "--units", "0"]) == 0
    assert f"-> {real}" in capsys.readouterr().out
    only(real.parent, ["m.keras"])
    os.link(real, tmp_path / "hard.keras")
    with pytest.raises(ValueError, match=r"m\.keras: has 2 hard links"):
        remove_units(real, layer="fc1", units=[0], in_place=True)


def test_out_of_memory_names_the_file_and_the_layer(out_dir, monkeypatch, capsys):
    from weightshare._remove import _rules

    def no_memory(*args):
        raise MemoryError
    monkeypatch.setattr(_rules, "apply_slices", no_memory)
    assert main(["remove", SRC, "-o", str(out_dir / "o.keras"), "--layer", "fc1", "--units",
                 "0"]) == 2
    assert capsys.readouterr().err == (f"weightshare remove: error: {SRC}: out of memory removing "
                                       "units of layer 'fc1' (nothing was written)\n")
    only(out_dir, [])


def test_a_failed_write_leaves_nothing_and_keeps_an_existing_output(out_dir, monkeypatch):
    from weightshare._io import _rebuild
    dst = out_dir / "o.keras"
    dst.write_bytes(b"previous")

    def boom(*args, exc=OSError(28, "No space left on device")):
        raise exc

    monkeypatch.setattr(_rebuild, "write_zip", boom)
    with pytest.raises(OSError, match="No space left on device: the output was not written") \
            as info:                                # a full disk is not the input's fault
        remove_units(SRC, dst, layer="fc1", units=[0])
    assert info.value.filename == str(dst)
    only(out_dir, ["o.keras"])
    assert dst.read_bytes() == b"previous"
    monkeypatch.setattr(_rebuild, "rebuild_h5", lambda *a: boom(exc=OSError(5, "I/O error")))
    with pytest.raises(FileFormatError, match="writing failed"):
        remove_units(os.path.join(FIX, "k2_rm_dense_dense.h5"), out_dir / "o.h5", layer="fc1",
                     units=[0])
    only(out_dir, ["o.keras"])


def test_output_permissions_follow_the_umask(out_dir):
    old = os.umask(0o027)
    try:
        remove_units(SRC, out_dir / "o.keras", layer="fc1", units=[0])
    finally:
        os.umask(old)
    assert oct(os.stat(out_dir / "o.keras").st_mode & 0o777) == oct(0o640)


def test_importing_weightshare_does_not_import_h5py():
    import subprocess
    import sys
    code = "import sys, weightshare; print('h5py' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# =========================================================================== CLI
def test_cli_table(out_dir, capsys):
    code = main(["remove", SRC, "-o", str(out_dir / "o.keras"), "--layer", "fc1", "--units", "1,5,9"])
    out = capsys.readouterr().out
    assert code == 0
    assert "layer fc1: 16 -> 13 units (removed 3: 1, 5, 9)" in out
    assert "fc1    kernel  (8, 16)   (8, 13)" in out
    assert "config: fc1.units: 16 -> 13" in out and "parameters: 484 -> 409" in out
    assert "optimizer state: none" in out


def test_cli_json(out_dir, capsys):
    code = main(["remove", SRC, "-o", str(out_dir / "o.keras"), "--layer", "fc2", "--count", "4",
                 "--by", "l2", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["units_after"] == 12 and doc["by"] == "l2" and len(doc["removed"]) == 4
    assert doc["tensors"][0] == {"layer": "fc2", "role": "kernel", "dataset": "/layers/dense_1/vars/0",
                                 "old_shape": [16, 16], "new_shape": [16, 12]}


def run_cli(argv):
    """main() returns the exit code; argparse usage errors raise SystemExit(2)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv, match", [
    (["--layer", "fc_a", "--units", "1"], "merge layer 'add' (Add)"),
    (["--layer", "fc_a", "--units", "99"], "out of range"),
    (["--layer", "fc_a", "--units", "a,b"], "expected comma-separated integers"),
    (["--layer", "fc_a"], "one of the arguments --units --count is required"),
    (["--layer", "fc_a", "--count", "2", "--by", "l9"], "invalid choice: 'l9'"),
])
def test_cli_errors_are_one_line_and_exit_2(argv, match, out_dir, capsys):
    src = os.path.join(FIX, "k3_rm_block_add.keras")
    code = run_cli(["remove", src, "-o", str(out_dir / "o.keras"), *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and match in err
    only(out_dir, [])


def test_cli_in_place_and_missing_output(tmp_path, capsys):
    p = tmp_path / "m.h5"
    shutil.copy(os.path.join(FIX, "k3_rm_dense_bn_dense.h5"), p)
    assert main(["remove", str(p), "--layer", "fc1", "--units", "0", "--in-place"]) == 0
    assert "layer fc1: 16 -> 15 units" in capsys.readouterr().out
    assert main(["remove", str(p), "--layer", "fc1", "--units", "0"]) == 2
    assert "give -o OUT (or --in-place" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["m.h5"]


def test_remove_is_public():
    assert weightshare.remove_units is remove_units
    assert set(weightshare.REMOVE_BY) == {"l1", "l2"}


# =========================================================================== other writers' files
def test_deflated_keras_zip_is_read_and_rewritten_deflated(tmp_path, out_dir):
    src = tmp_path / "deflated.keras"
    with zipfile.ZipFile(SRC) as zin, zipfile.ZipFile(src, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            data = zin.read(info)
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    res = remove_units(src, out_dir / "o.keras", layer="fc1", units=[3])
    with zipfile.ZipFile(out_dir / "o.keras") as z:
        assert [i.compress_type for i in z.infolist()] == [zipfile.ZIP_DEFLATED] * 3
    with open_weights(out_dir / "o.keras") as h:
        assert h[res.tensors[0].dataset].shape == (8, 15)


def test_chunked_gzip_datasets_keep_their_filters(tmp_path, out_dir):
    """Files from other tools may use chunks and filters; re-created datasets keep them."""
    src = tmp_path / "gz.h5"
    shutil.copy(os.path.join(FIX, "k2_rm_dense_dense.h5"), src)
    with h5py.File(src, "r+") as h:
        for path in ("model_weights/fc1/fc1/kernel:0", "model_weights/fc2/fc2/kernel:0"):
            data = h[path][()]
            del h[path]
            h.create_dataset(path, data=data, chunks=(4, 16), compression="gzip", shuffle=True,
                             fletcher32=True)
    res = remove_units(src, out_dir / "o.h5", layer="fc1", units=[0, 1, 2, 3, 4])
    with h5py.File(src, "r") as s, h5py.File(out_dir / "o.h5", "r") as d:
        k1, k2 = d["model_weights/fc1/fc1/kernel:0"], d["model_weights/fc2/fc2/kernel:0"]
        assert k1.shape == (8, 11) and k1.chunks == (4, 11)
        assert k2.shape == (11, 16) and k2.chunks == (4, 16)
        for ds in (k1, k2):
            assert (ds.compression, ds.shuffle, ds.fletcher32) == ("gzip", True, True)
        assert np.array_equal(k1[()], np.delete(s["model_weights/fc1/fc1/kernel:0"][()], range(5), 1))
    assert res.units_after == 11


def test_fixed_length_string_attributes_keep_their_type(tmp_path, out_dir):
    """Keras 2.0-era files store names as fixed-length strings; the model_config is rewritten
    with the same (widened) fixed-length type."""
    src = tmp_path / "old.h5"
    shutil.copy(os.path.join(FIX, "k2_rm_dense_bn_dense.h5"), src)
    with h5py.File(src, "r+") as h:
        cfg = h.attrs["model_config"]
        h.attrs["model_config"] = np.bytes_(cfg if isinstance(cfg, bytes) else cfg.encode())
        names = [n.encode() for n in h["model_weights"].attrs["layer_names"]]
        h["model_weights"].attrs["layer_names"] = np.array(names, dtype=f"S{max(map(len, names))}")
    remove_units(src, out_dir / "o.h5", layer="fc1", units=[0])
    with h5py.File(src, "r") as s, h5py.File(out_dir / "o.h5", "r") as d:
        a = attr_types(d)["model_config"]
        assert a[:3] == attr_types(s)["model_config"][:3] and a[1] is False   # fixed-length
        assert json.loads(d.attrs["model_config"])["config"]["layers"][1]["config"]["units"] == 15
        assert attr_types(d["model_weights"]) == attr_types(s["model_weights"])
        assert list(d["model_weights"].attrs["layer_names"]) == list(s["model_weights"].attrs["layer_names"])


def test_bfloat16_norms_are_read_by_their_bits():
    from weightshare.remove import _as_float
    bits = np.array([0x3F80, 0xC000, 0x0000, 0x3E80], dtype=np.uint16)   # 1, -2, 0, 0.25
    assert _as_float(bits.view("V2")).tolist() == [1.0, -2.0, 0.0, 0.25]


def test_optimizer_state_without_per_variable_slots_is_kept(out_dir, monkeypatch):
    """An optimizer with only scalars (plain SGD) has nothing to slice: its state is kept as is."""
    from weightshare._remove import _optimizer
    monkeypatch.setattr(_optimizer, "match_slots", lambda slots, *a: [None] * len(slots))
    src = os.path.join(FIX, "k2_trained.h5")
    res = remove_units(src, out_dir / "o.h5", layer="fc1", units=[1])
    assert res.optimizer == "kept" and res.warnings == ()
    with open_weights(src) as s, open_weights(out_dir / "o.h5") as d:
        assert_same_tree_except(s, d, {t.dataset for t in res.tensors})
