"""One Keras vocabulary: each piece of Keras knowledge lives once in weightshare._keras
(or, for bfloat16 bits, weightshare._codec._bf16), and its users agree with it.

- the calls of a Functional layer (``inbound_nodes``, Keras 3 and Keras 2), read by
  the forward pass and by the removal graph;
- the name of a layer dict (``config.name`` first), checked against every fixture;
- the model classes, the quantized/LoRA test, the float dtype names;
- bfloat16 bits: the helpers give the bits the old inline expressions gave.
"""

import json
import pathlib
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
import weightshare.files
from weightshare._codec._bf16 import (bf16_bits_of, bf16_is_zero, bf16_to_float32, is_bf16_exact,
                                      is_bf16_storage)
from weightshare._keras import _graph
from weightshare._keras._names import FLOAT_DTYPE_NAMES, MODEL_CLASSES, layer_name
from weightshare._keras._nodes import (Call, io_refs, is_keras2, layer_calls, node_call,
                                       node_offset, tensor_ref)
from weightshare._keras._roles import quantization_of, quantized_or_lora
from weightshare._remove import _rules
from weightshare.forward import layer_weight_counts

FIX = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "keras"
MODEL_FILES = sorted(p for p in FIX.iterdir()
                     if p.suffix == ".keras" or (p.suffix == ".h5" and "weights" not in p.name))


def _config(path):
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("config.json"))
    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
    return json.loads(raw if isinstance(raw, str) else raw.decode())


def _models(config, prefix=""):
    """(path prefix, model dict) of the model and of every nested model."""
    yield prefix, config
    for entry in _graph.layer_list(config):
        if entry["class_name"] in MODEL_CLASSES:
            yield from _models(entry, f"{prefix}{layer_name(entry)}/")


def _kt(name, node=0, tensor=0):
    return {"class_name": "__keras_tensor__",
            "config": {"shape": [None, 4], "keras_history": [name, node, tensor]}}


# =========================================================================== calls
def test_a_keras3_node_gives_positional_keyword_and_all_tensors():
    node = {"args": [[_kt("a"), _kt("b", 1)], "text"],
            "kwargs": {"value": _kt("v"), "mask": [_kt("m")], "training": False,
                       "data": ["a", 0, 0]}}
    call = node_call(node)
    assert call.args == (("a", 0, 0), ("b", 1, 0))
    assert call.kwargs == {"value": ("v", 0, 0), "mask": [_kt("m")], "training": False,
                           "data": ["a", 0, 0]}       # a plain list is data in Keras 3
    assert call.tensors == (("a", 0, 0), ("b", 1, 0), ("v", 0, 0), ("m", 0, 0))


def test_a_keras2_node_gives_its_entries_and_keyword_tensors():
    node = [["q", 0, 0, {"value": ["v", 1, 0], "training": True}], ["k", 2, 1]]
    call = node_call(node)
    assert call == Call((("q", 0, 0), ("k", 2, 1)), {"value": ("v", 1, 0), "training": True},
                        (("q", 0, 0), ("k", 2, 1)))


def test_empty_nodes_are_calls_without_inputs():
    assert node_call({}) == node_call([]) == Call((), {}, ())


@pytest.mark.parametrize("node, why", [
    ("x", "is a str"),
    ([["x", 0]], "has an entry \\['x', 0\\] that is not \\[layer, node_index, tensor_index, "
                 "kwargs\\]"),
    ([["x", 0, 0, {}, 5]], "has an entry .* that is not \\[layer"),
    ([["x", "0", 0]], "has an entry .* that is not \\[layer"),
    ([["x", 0, 0, "kw"]], "has an entry .* that is not \\[layer"),
    ({"args": [{"class_name": "__keras_tensor__", "config": {}}]},
     "has a __keras_tensor__ without a keras_history"),
    ({"args": [], "kwargs": [1]}, "has kwargs that are not an object"),
])
def test_a_malformed_node_is_refused_naming_the_layer(node, why):
    entry = {"class_name": "Dense", "name": "fc", "config": {"name": "fc"},
             "inbound_nodes": [[], node]}
    with pytest.raises(ValueError, match=f"layer 'fc': inbound node 1 {why}"):
        layer_calls(entry)


def test_tensor_ref_reads_plain_lists_only_when_asked():
    assert tensor_ref(_kt("d", 2, 1)) == ("d", 2, 1)
    assert tensor_ref(["d", 0, 0]) is None and tensor_ref(["d", 0, 0], lists=True) == ("d", 0, 0)
    assert tensor_ref(["d", True, 0], lists=True) is None


def test_io_refs_take_one_reference_or_a_list():
    assert io_refs(["x", 0, 0]) == [("x", 0, 0)]
    assert io_refs([["x", 0, 0], ["y", 1, 2]]) == [("x", 0, 0), ("y", 1, 2)]


def _calls_by_producer(path):
    """{(layer path, call): sorted tensor refs of the call}, nested models' node numbers
    counted from their first call in the config (tf-keras counts the model's own call)."""
    config = _config(path)
    keras2, out = is_keras2(config), {}
    for prefix, model in _models(config):
        if model["class_name"] == "Sequential":
            continue
        entries = {layer_name(e): e for e in _graph.layer_list(model)}
        for name, entry in entries.items():
            for i, call in enumerate(layer_calls(entry)):
                refs = call.args + tuple(v for v in call.kwargs.values() if isinstance(v, tuple))
                out[(prefix + name, i)] = sorted(
                    (n, node - node_offset(entries[n], keras2), t) for n, node, t in refs)
    return out


@pytest.mark.parametrize("model", sorted({p.name[3:-6] for p in FIX.glob("k2_*.keras")}))
def test_the_three_producers_configs_are_read_as_the_same_calls(model):
    """Keras 3 (jax, tf) write dict nodes, tf-keras list nodes: one parser, the same graph."""
    calls = {prod: _calls_by_producer(FIX / f"{prod}_{model}.keras")
             for prod in ("k2", "k3", "k3tf")}
    assert calls["k2"] == calls["k3"] == calls["k3tf"]
    assert is_keras2(_config(FIX / f"k2_{model}.keras"))
    assert not is_keras2(_config(FIX / f"k3_{model}.keras"))


def test_the_graph_and_the_forward_pass_read_the_same_calls():
    """Removal's graph takes its inputs from the parser the forward pass runs on."""
    config = _config(FIX / "k3_rm_block_add.keras")
    graph = _graph.build_graph(config)
    for entry in _graph.layer_list(config):
        calls = layer_calls(entry)
        layer = graph.layers[layer_name(entry)]
        assert layer.calls == tuple(tuple(r[0] for r in c.tensors) for c in calls)
        assert layer.refs == tuple(c.tensors for c in calls)


def test_a_keras2_keyword_tensor_feeds_the_forward_pass_and_is_not_a_graph_input():
    """tf-keras writes MultiHeadAttention's value as a keyword list; Keras 3 as a second arg."""
    k2 = next(e for e in _graph.layer_list(_config(FIX / "k2_mha.keras")) if layer_name(e) == "mha")
    k3 = next(e for e in _graph.layer_list(_config(FIX / "k3_mha.keras")) if layer_name(e) == "mha")
    (call2,), (call3,) = layer_calls(k2), layer_calls(k3)
    assert call2.args == call2.tensors == (("seq", 0, 0),)
    assert call2.kwargs == {"value": ("seq", 0, 0)}
    assert call3.args == call3.tensors == (("seq", 0, 0), ("seq", 0, 0)) and call3.kwargs == {}


# =========================================================================== names
def test_layer_name_prefers_the_config_name():
    assert layer_name({"name": "wire", "config": {"name": "own"}}) == "own"
    assert layer_name({"name": "wire", "config": {"name": None}}) == "wire"
    assert layer_name({"name": "wire", "config": [1]}) == "wire"
    assert layer_name({"config": {}}) is None and layer_name({"name": 3}) is None


@pytest.mark.parametrize("path", MODEL_FILES, ids=lambda p: p.name)
def test_keras_writes_one_name_per_layer_and_wires_by_it(path):
    """Every entry that has both names has them equal, and every reference of the wiring
    (inbound nodes, input_layers, output_layers) names a layer by :func:`layer_name`:
    the rule reads every file Keras writes as Keras does."""
    config, both = _config(path), 0
    for _, model in _models(config):
        entries = _graph.layer_list(model)
        names = {layer_name(e) for e in entries}
        for entry in entries:
            if isinstance(entry.get("name"), str) and isinstance(entry["config"].get("name"), str):
                assert entry["name"] == entry["config"]["name"]
                both += 1
        if model["class_name"] == "Sequential":
            continue
        refs = [r for e in entries for c in layer_calls(e) for r in c.args]
        refs += io_refs(model["config"]["input_layers"]) + io_refs(model["config"]["output_layers"])
        assert refs and {r[0] for r in refs} <= names
    assert both or config["class_name"] == "Sequential"


def test_the_forward_pass_names_layers_like_the_reader():
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "Dense", "name": "wire", "config": {"name": "fc", "units": 2}}]}}
    assert layer_weight_counts(cfg) == {"fc": 2}


# =========================================================================== model classes
def _dense(name, units=2):
    return {"class_name": "Dense", "config": {"name": name, "units": units}}


@pytest.mark.parametrize("cls", sorted(MODEL_CLASSES))
def test_every_model_class_is_a_model_to_the_graph_and_the_forward_pass(cls):
    inner = {"class_name": cls, "config": {"name": "inner", "layers": [_dense("fc")]}}
    assert _graph.is_model(inner) and _graph.find_nested(
        {"class_name": "Sequential", "config": {"layers": [inner]}}, "fc") == ("inner",)
    outer = {"class_name": "Sequential", "config": {"name": "m", "layers": [inner, _dense("head")]}}
    assert layer_weight_counts(outer) == {"inner/fc": 2, "head": 2}


@pytest.mark.parametrize("cls", sorted(MODEL_CLASSES))
def test_removal_does_not_cross_any_model_class(cls):
    cfg = {"class_name": "Functional", "config": {"name": "f", "layers": [
        {"class_name": "InputLayer", "name": "x", "inbound_nodes": [],
         "config": {"name": "x", "batch_input_shape": [None, 4]}},
        dict(_dense("a", 4), name="a", inbound_nodes=[[["x", 0, 0, {}]]]),
        {"class_name": cls, "name": "inner", "config": {"name": "inner", "layers": [_dense("fc")]},
         "inbound_nodes": [[["a", 0, 0, {}]]]}],
        "input_layers": [["x", 0, 0]], "output_layers": [["inner", 0, 0]]}}
    shapes = {"a": ((4, 4), (4,))}
    with pytest.raises(_rules.Blocked, match=f"layer 'inner' is a nested model \\({cls}\\)"):
        _rules.plan_removal(_graph.build_graph(cfg), shapes, "a", [0])


def test_the_forward_pass_takes_every_model_class_and_nothing_else():
    for cls in MODEL_CLASSES:
        assert layer_weight_counts({"class_name": cls, "config": {"layers": [_dense("fc")]}}) \
            == {"fc": 2}
    with pytest.raises(ValueError, match="describes a 'Dense', not a Sequential or Functional"):
        layer_weight_counts(_dense("fc"))


# =========================================================================== quantized
QUANT = [
    ({"dtype": "float32", "quantization_config": None}, None),
    ({"dtype": {"class_name": "DTypePolicy", "config": {"name": "mixed_bfloat16"}}}, None),
    ({"dtype": {"class_name": "QuantizedDTypePolicy", "config": {"mode": "int8"}}}, "int8"),
    ({"dtype": {"class_name": "GPTQDTypePolicy", "config": {"mode": "gptq/4/128"}}}, "gptq/4/128"),
    ({"dtype": {"class_name": "QuantizedFloat8DTypePolicy", "config": {"name": "x"}}},
     "QuantizedFloat8DTypePolicy"),
    ({"dtype": "int8_from_float32"}, "int8_from_float32"),
    ({"quantization_config": {"class_name": "Int8QuantizationConfig", "config": {}}},
     "quantization_config"),
    ({"lora_rank": 4, "lora_alpha": 4}, "lora"),
    ({"lora_rank": None}, None),
]


@pytest.mark.parametrize("config, why", QUANT)
def test_quantized_or_lora_extends_the_one_quantized_test(config, why):
    assert quantized_or_lora(config) == why
    mode = quantization_of(config)
    assert mode == (why if why not in ("quantization_config", "lora") else None)


@pytest.mark.parametrize("config, why", [q for q in QUANT if q[1]])
@pytest.mark.parametrize("where", ["producer", "consumer"])
def test_removal_refuses_what_quantized_or_lora_names(config, why, where):
    layers = [("Dense", {"name": "fc1", "units": 4}), ("Dense", {"name": "head", "units": 2})]
    layers[0 if where == "producer" else 1][1].update(config)
    graph = _graph.build_graph({"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 3]}}] +
        [{"class_name": c, "config": cfg} for c, cfg in layers]}})
    shapes = {"fc1": ((3, 4), (4,)), "head": ((4, 2), (2,))}
    name = "fc1" if where == "producer" else "head"
    with pytest.raises(_rules.Blocked, match=f"'{name}' \\(Dense\\) is quantized or has LoRA"):
        _rules.plan_removal(graph, shapes, "fc1", [0])


# =========================================================================== float dtype names
def test_the_float_dtype_names_are_what_the_readers_call_floating_tensors(tmp_path):
    assert weightshare.files.FLOAT_DTYPE_NAMES is FLOAT_DTYPE_NAMES
    seen = {r.dtype for p in ("k3_bf16.keras", "k2_f16.h5", "k3_mixed.weights.h5")
            for r in weightshare.read_weights(FIX / p, values=False)}
    assert seen <= set(FLOAT_DTYPE_NAMES) and {"bfloat16", "float16", "float32"} <= seen
    np.savez(tmp_path / "a.npz", w=np.ones(3), n=np.arange(3, dtype=np.int32))
    records = {r.name: r.dtype for r in weightshare.read_weights(tmp_path / "a.npz")}
    assert records == {"w": "float64", "n": "int32"}
    rows = weightshare.prune_file(tmp_path / "a.npz", tmp_path / "b.npz", sparsity=0.5)
    assert [r.tensor for r in rows] == ["w"]


# =========================================================================== bfloat16 bits
ALL_BF16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def _float32_patterns(n=200_000, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    u[:8] = [0, 0x80000000, 0x7F800000, 0xFF800000, 0x7FC00000, 0x7F800001, 0x3F808000, 0x0000FFFF]
    return u.view(np.float32)


def test_bf16_bits_of_is_the_upper_half_and_inverts_the_widening():
    f = _float32_patterns()
    old = (np.ascontiguousarray(f, dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    np.testing.assert_array_equal(bf16_bits_of(f), old)
    np.testing.assert_array_equal(bf16_bits_of(bf16_to_float32(ALL_BF16)), ALL_BF16)
    minus_two = bf16_bits_of(np.float32(-2.0))
    assert minus_two.shape == () and int(minus_two) == 0xC000
    np.testing.assert_array_equal(bf16_bits_of(f.reshape(400, 500).T), old.reshape(400, 500).T)


def test_is_bf16_exact_tests_the_lower_half():
    f = _float32_patterns()
    np.testing.assert_array_equal(is_bf16_exact(f), (f.view(np.uint32) & 0xFFFF) == 0)
    assert is_bf16_exact(bf16_to_float32(ALL_BF16)).all()
    assert is_bf16_exact(np.float32(1.0)) and not is_bf16_exact(np.float32(1.0 + 2 ** -10))


def test_bf16_is_zero_finds_both_zeros_only():
    zero = bf16_is_zero(ALL_BF16)
    np.testing.assert_array_equal(zero, (ALL_BF16 & 0x7FFF) == 0)
    assert np.flatnonzero(zero).tolist() == [0, 0x8000]
    np.testing.assert_array_equal(bf16_is_zero(ALL_BF16.view("V2")), zero)
    np.testing.assert_array_equal(zero, bf16_to_float32(ALL_BF16) == 0)


def test_is_bf16_storage_is_the_opaque_two_byte_type():
    assert is_bf16_storage(np.dtype("V2")) and is_bf16_storage(ALL_BF16.view("V2").dtype)
    for other in ("u2", "f2", "V4", np.dtype([("a", "u1"), ("b", "u1")])):
        assert not is_bf16_storage(other)
