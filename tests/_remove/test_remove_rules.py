"""Structured removal on arrays: the planner, the graph reader and the optimizer-slot matcher.

No files here. A tiny NumPy forward pass (channels-last, float64) runs small
Sequential models; the Hypothesis property is the issue's: removing units whose
outgoing weights are all zero leaves the model's function unchanged. The
zeroing is computed by this file's own index rules (not by the planner), so
the property checks the planner against an independent statement of the
layout rules (BatchNormalization, DepthwiseConv with a depth multiplier,
Flatten's channel-last order, pooling, padding, global pooling).
"""

import copy

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from weightshare._keras import _graph
from weightshare._remove import _optimizer, _rules

# =========================================================================== forward pass
EPS = 1e-3


def _pad_same(x, kh, kw):
    ph, pw = kh - 1, kw - 1
    return np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def conv2d(x, kernel, bias, padding):
    kh, kw = kernel.shape[:2]
    if padding == "same":
        x = _pad_same(x, kh, kw)
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros(x.shape[:1] + (h, w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            out += np.einsum("nhwc,cf->nhwf", x[:, i:i + h, j:j + w, :], kernel[i, j])
    return out + (0 if bias is None else bias)


def depthwise2d(x, kernel, bias, padding):
    kh, kw, c, dm = kernel.shape
    if padding == "same":
        x = _pad_same(x, kh, kw)
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    out = np.zeros(x.shape[:1] + (h, w, c, dm))
    for i in range(kh):
        for j in range(kw):
            out += x[:, i:i + h, j:j + w, :, None] * kernel[i, j]
    out = out.reshape(out.shape[:3] + (c * dm,))  # channel c, multiplier m -> c*dm + m
    return out + (0 if bias is None else bias)


def maxpool2(x):
    n, h, w, c = x.shape
    x = x[:, :h // 2 * 2, :w // 2 * 2]
    return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


ACT = {"linear": lambda v: v, "relu": lambda v: np.maximum(v, 0), "tanh": np.tanh,
       "sigmoid": lambda v: 1 / (1 + np.exp(-v))}


def forward(layers, weights, x):
    """Run a list of (class_name, config) on x with weights {name: [arrays]}."""
    for cls, cfg in layers:
        w = weights.get(cfg["name"], [])
        if cls == "Dense":
            x = ACT[cfg.get("activation", "linear")](x @ w[0] + (w[1] if len(w) > 1 else 0))
        elif cls == "Conv2D":
            x = ACT[cfg.get("activation", "linear")](
                conv2d(x, w[0], w[1] if len(w) > 1 else None, cfg["padding"]))
        elif cls == "DepthwiseConv2D":
            x = ACT[cfg.get("activation", "linear")](
                depthwise2d(x, w[0], w[1] if len(w) > 1 else None, cfg["padding"]))
        elif cls == "BatchNormalization":
            gamma, beta, mean, var = w
            x = (x - mean) / np.sqrt(var + EPS) * gamma + beta
        elif cls in ("ReLU",):
            x = np.maximum(x, 0)
        elif cls == "Activation":
            x = ACT[cfg["activation"]](x)
        elif cls == "Dropout":
            pass
        elif cls == "MaxPooling2D":
            x = maxpool2(x)
        elif cls == "ZeroPadding2D":
            x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        elif cls == "Flatten":
            x = x.reshape(x.shape[0], -1)
        elif cls == "GlobalAveragePooling2D":
            x = x.mean(axis=(1, 2))
        elif cls == "GlobalMaxPooling2D":
            x = x.max(axis=(1, 2))
        else:  # pragma: no cover
            raise AssertionError(cls)
    return x


def sequential_config(input_shape, layers):
    entries = [{"class_name": "InputLayer",
                "config": {"name": "input", "batch_shape": [None, *input_shape]}}]
    entries += [{"class_name": cls, "config": dict(cfg)} for cls, cfg in layers]
    return {"class_name": "Sequential", "config": {"name": "m", "layers": entries}}


def plan_for(input_shape, layers, weights, producer, removed):
    graph = _graph.build_graph(sequential_config(input_shape, layers))
    shapes = {name: tuple(a.shape for a in ws) for name, ws in weights.items()}
    return _rules.plan_removal(graph, shapes, producer, removed), graph


def shrink(weights, plan):
    out = {name: [a.copy() for a in ws] for name, ws in weights.items()}
    for (name, i), slices in plan.slices.items():
        out[name][i] = _rules.apply_slices(out[name][i], slices)
    return out


# =========================================================================== model strategies
@st.composite
def dense_models(draw):
    """Input(d) -> Dense(n) -> [BN] [Dropout] [Activation] -> Dense(m) [-> Dense]."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    d, n, m = draw(st.integers(1, 5)), draw(st.integers(2, 9)), draw(st.integers(1, 4))
    act = draw(st.sampled_from(["linear", "relu", "tanh"]))
    layers = [("Dense", {"name": "fc1", "units": n, "activation": act})]
    weights = {"fc1": [rng.normal(size=(d, n)), rng.normal(size=n)]}
    if draw(st.booleans()):
        layers.append(("BatchNormalization", {"name": "bn", "axis": draw(st.sampled_from([-1, [1]]))}))
        weights["bn"] = [rng.normal(size=n), rng.normal(size=n), rng.normal(size=n),
                         rng.uniform(0.1, 2, size=n)]
    if draw(st.booleans()):
        layers.append(("Dropout", {"name": "drop", "rate": 0.5}))
    if draw(st.booleans()):
        layers.append(("Activation", {"name": "act", "activation": "sigmoid"}))
    layers.append(("Dense", {"name": "head", "units": m}))
    weights["head"] = [rng.normal(size=(n, m)), rng.normal(size=m)]
    x = rng.normal(size=(3, d))
    return (d,), layers, weights, x, "fc1", n


@st.composite
def conv_models(draw):
    """Input(h,w,c) -> Conv2D(f) -> [BN] [ReLU] -> one middle -> one tail."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    h, w, c = draw(st.integers(4, 6)), draw(st.integers(4, 6)), draw(st.integers(1, 3))
    f = draw(st.integers(2, 6))
    k = draw(st.sampled_from([1, 3]))
    pad = draw(st.sampled_from(["same", "valid"]))
    use_bias = draw(st.booleans())
    layers = [("Conv2D", {"name": "conv1", "filters": f, "padding": pad, "use_bias": use_bias})]
    weights = {"conv1": [rng.normal(size=(k, k, c, f))] + ([rng.normal(size=f)] if use_bias else [])}
    if draw(st.booleans()):
        layers.append(("BatchNormalization", {"name": "bn", "axis": draw(st.sampled_from([-1, [3]]))}))
        weights["bn"] = [rng.normal(size=f), rng.normal(size=f), rng.normal(size=f),
                         rng.uniform(0.1, 2, size=f)]
    if draw(st.booleans()):
        layers.append(("ReLU", {"name": "relu"}))
    channels = f
    middle = draw(st.sampled_from(["none", "pool", "pad", "dw"]))
    if middle == "pool":
        layers.append(("MaxPooling2D", {"name": "pool"}))
    elif middle == "pad":
        layers.append(("ZeroPadding2D", {"name": "zpad"}))
    elif middle == "dw":
        dm = draw(st.integers(1, 3))
        layers.append(("DepthwiseConv2D", {"name": "dw", "padding": "same", "depth_multiplier": dm,
                                           "activation": "relu"}))
        weights["dw"] = [rng.normal(size=(3, 3, f, dm)), rng.normal(size=f * dm)]
        channels = f * dm
    tail = draw(st.sampled_from(["conv", "flatten", "gap", "gmp"]))
    x = rng.normal(size=(2, h, w, c))
    if tail == "conv":
        layers.append(("Conv2D", {"name": "conv2", "filters": 3, "padding": "same"}))
        weights["conv2"] = [rng.normal(size=(3, 3, channels, 3)), rng.normal(size=3)]
    elif tail == "flatten":
        layers.append(("Flatten", {"name": "flatten"}))
        pre = forward(layers, weights, x)          # to know the flattened length
        layers.append(("Dense", {"name": "head", "units": 2}))
        weights["head"] = [rng.normal(size=(pre.shape[1], 2)), rng.normal(size=2)]
    else:
        layers.append(("GlobalAveragePooling2D" if tail == "gap" else "GlobalMaxPooling2D",
                       {"name": "gpool"}))
        layers.append(("Dense", {"name": "head", "units": 2}))
        weights["head"] = [rng.normal(size=(channels, 2)), rng.normal(size=2)]
    return (h, w, c), layers, weights, x, "conv1", f


def zero_outgoing(layers, weights, removed, x):
    """Zero the consumer weights that read the removed units (this test's own rules)."""
    out = {name: [a.copy() for a in ws] for name, ws in weights.items()}
    rows = np.asarray(sorted(removed))
    channels = None
    for cls, cfg in layers[1:]:
        name = cfg["name"]
        if cls == "DepthwiseConv2D":
            dm = weights[name][0].shape[-1]
            rows = np.asarray([r * dm + m for r in rows for m in range(dm)])
        elif cls == "Flatten":
            pre = forward(layers[:layers.index((cls, cfg))], weights, x)
            channels = pre.shape[-1]
            positions = pre.shape[1] * pre.shape[2]
            rows = np.asarray([s * channels + r for s in range(positions) for r in rows])
        elif cls == "Dense":
            out[name][0][rows, :] = 0
            return out
        elif cls == "Conv2D":
            out[name][0][..., rows, :] = 0
            return out
    raise AssertionError("no consumer")  # pragma: no cover


def check_removal_preserves_function(model, data):
    input_shape, layers, weights, x, producer, n = model
    removed = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1)))
    zeroed = zero_outgoing(layers, weights, removed, x)
    plan, graph = plan_for(input_shape, layers, zeroed, producer, removed)
    small = shrink(zeroed, plan)
    y_ref = forward(layers, zeroed, x)
    y_small = forward(layers, small, x)
    np.testing.assert_allclose(y_small, y_ref, rtol=1e-10, atol=1e-10)
    # and the producer really lost the units
    assert small[producer][0].shape[-1] == n - len(removed)
    # the planner's own notion of "outgoing weights" is the same as this file's
    for (name, i), (axis, gone) in plan.zero.items():
        sel = [slice(None)] * weights[name][i].ndim
        sel[axis] = gone
        assert not np.any(zeroed[name][i][tuple(sel)])


# =========================================================================== the property
@given(dense_models(), st.data())
def test_removing_units_with_zero_outgoing_weights_keeps_the_function_dense_hypo(model, data):
    check_removal_preserves_function(model, data)


@given(conv_models(), st.data())
def test_removing_filters_with_zero_outgoing_weights_keeps_the_function_conv_hypo(model, data):
    check_removal_preserves_function(model, data)


@given(dense_models(), st.data())
def test_planned_shapes_match_the_sliced_arrays_hypo(model, data):
    input_shape, layers, weights, x, producer, n = model
    removed = sorted(data.draw(st.sets(st.integers(0, n - 1), min_size=1, max_size=n - 1)))
    plan, graph = plan_for(input_shape, layers, weights, producer, removed)
    small = shrink(weights, plan)
    assert graph.layers[producer].config["units"] == n - len(removed)
    for (name, i), slices in plan.slices.items():
        assert sum(a.shape != b.shape for a, b in zip(weights[name], small[name])) >= 1
        assert small[name][i].shape.count(n - len(removed)) >= 1


# =========================================================================== toys
def test_flatten_mapping_channel_c_owns_features_c_plus_kC():
    rng = np.random.default_rng(0)
    layers = [("Conv2D", {"name": "conv1", "filters": 4, "padding": "valid"}),
              ("Flatten", {"name": "flatten"}), ("Dense", {"name": "head", "units": 2})]
    weights = {"conv1": [rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4)],
               "head": [rng.normal(size=(2 * 2 * 4, 2)), rng.normal(size=2)]}
    plan, _ = plan_for((4, 4, 2), layers, weights, "conv1", [1])
    (axis, gone), = [v for k, v in plan.zero.items() if k == ("head", 0)]
    assert axis == 0 and gone.tolist() == [1, 5, 9, 13]
    assert plan.slices[("head", 0)][0].keep.tolist() == [0, 2, 3, 4, 6, 7, 8, 10, 11, 12, 14, 15]


def test_depthwise_multiplier_removes_c_times_m_block():
    rng = np.random.default_rng(1)
    layers = [("Conv2D", {"name": "conv1", "filters": 3, "padding": "same"}),
              ("DepthwiseConv2D", {"name": "dw", "padding": "same", "depth_multiplier": 2}),
              ("Conv2D", {"name": "conv2", "filters": 2, "padding": "same"})]
    weights = {"conv1": [rng.normal(size=(1, 1, 1, 3)), rng.normal(size=3)],
               "dw": [rng.normal(size=(3, 3, 3, 2)), rng.normal(size=6)],
               "conv2": [rng.normal(size=(1, 1, 6, 2)), rng.normal(size=2)]}
    plan, _ = plan_for((4, 4, 1), layers, weights, "conv1", [1])
    assert plan.slices[("dw", 0)][0] == (2, plan.slices[("dw", 0)][0].keep)
    assert plan.slices[("dw", 0)][0].keep.tolist() == [0, 2]
    assert plan.slices[("dw", 1)][0].keep.tolist() == [0, 1, 4, 5]
    assert plan.slices[("conv2", 0)][0].keep.tolist() == [0, 1, 4, 5]
    assert plan.path == ("conv1", "dw", "conv2") and plan.consumers == ("conv2",)


def test_config_edits_units_and_every_downstream_input_shape():
    cfg = sequential_config((8,), [("Dense", {"name": "fc1", "units": 4}),
                                   ("BatchNormalization", {"name": "bn"}),
                                   ("Dense", {"name": "head", "units": 2})])
    for entry in cfg["config"]["layers"][2:]:
        entry["build_config"] = {"input_shape": [None, 4]}
    graph = _graph.build_graph(cfg)
    shapes = {"fc1": ((8, 4), (4,)), "bn": ((4,),) * 4, "head": ((4, 2), (2,))}
    plan = _rules.plan_removal(graph, shapes, "fc1", [0, 3])
    layers = cfg["config"]["layers"]
    assert layers[1]["config"]["units"] == 2
    assert layers[2]["build_config"]["input_shape"] == [None, 2]
    assert layers[3]["build_config"]["input_shape"] == [None, 2]
    assert plan.edits == ("fc1.units: 4 -> 2", "bn.build_config.input_shape[-1]: 4 -> 2",
                          "head.build_config.input_shape[-1]: 4 -> 2")


# =========================================================================== refusals
def _functional(layers):
    """layers: list of (class, name, inputs, extra config)."""
    entries = []
    for cls, name, inputs, extra in layers:
        nodes = [] if cls == "InputLayer" else [[[src, 0, 0, {}] for src in inputs]]
        cfg = dict(extra, name=name)
        if cls == "InputLayer":
            cfg["batch_input_shape"] = [None, 4]
        entries.append({"class_name": cls, "config": cfg, "name": name, "inbound_nodes": nodes})
    out = [layers[-1][1], 0, 0]
    return {"class_name": "Functional", "config": {"name": "f", "layers": entries,
                                                   "input_layers": [["x", 0, 0]],
                                                   "output_layers": [out]}}


DENSE = {"units": 4}
REFUSALS = [
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Dense", "b", ["x"], DENSE),
      ("Add", "add", ["a", "b"], {}), ("Dense", "head", ["add"], DENSE)], "a", "merge layer 'add' (Add)"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Dense", "b", ["x"], DENSE),
      ("Concatenate", "cat", ["a", "b"], {}), ("Dense", "head", ["cat"], DENSE)], "a", "'cat' (Concatenate)"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Multiply", "mul", ["a", "a"], {}),
      ("Dense", "head", ["mul"], DENSE)], "a", "'mul'"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("LSTM", "lstm", ["a"], {}),
      ("Dense", "head", ["lstm"], DENSE)], "a", "layer 'lstm' (LSTM) is a recurrent layer"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Sequential", "inner", ["a"], {"layers": []}),
      ("Dense", "head", ["inner"], DENSE)], "a", "layer 'inner' is a nested model"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("MyLayer", "mine", ["a"], {}),
      ("Dense", "head", ["mine"], DENSE)], "a", "layer 'mine' (MyLayer) is not a layer class"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("LayerNormalization", "ln", ["a"], {}),
      ("Dense", "head", ["ln"], DENSE)], "a", "'ln' (LayerNormalization) normalizes across"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Dense", "head", ["a"], DENSE)],
     "head", "the output of 'head' is a model output"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], {"units": 4, "activation": "softmax"}),
      ("Dense", "head", ["a"], DENSE)], "a", "activation 'softmax'"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE),
      ("Activation", "sm", ["a"], {"activation": "softmax"}), ("Dense", "head", ["sm"], DENSE)],
     "a", "layer 'sm' (Activation) has activation 'softmax'"),
    ([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE), ("Dropout", "drop", ["a"], {}),
      ("Dense", "b", ["x"], DENSE), ("Add", "sum", ["drop", "b"], {}), ("Dense", "head", ["sum"], DENSE)],
     "a", "merge layer 'sum' (Add) ties the units of 'drop'"),
]


@pytest.mark.parametrize("layers, producer, match", REFUSALS)
def test_blocked_removals_name_the_blocking_layer(layers, producer, match):
    cfg = _functional(layers)
    graph = _graph.build_graph(cfg)
    shapes = {name: ((4, 4), (4,)) for cls, name, _, _ in layers if cls == "Dense"}
    with pytest.raises(_rules.Blocked, match=match.replace("(", r"\(").replace(")", r"\)")):
        _rules.plan_removal(graph, shapes, producer, [1])


def test_shared_consumer_is_refused():
    cfg = _functional([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE),
                       ("Dense", "s", ["a"], DENSE), ("Dense", "head", ["s"], DENSE)])
    entries = cfg["config"]["layers"]
    entries[2]["inbound_nodes"].append([["x", 0, 0, {}]])     # s called a second time
    graph = _graph.build_graph(cfg)
    shapes = {n: ((4, 4), (4,)) for n in ("a", "s", "head")}
    with pytest.raises(_rules.Blocked, match=r"layer 's' \(Dense\) is shared \(called 2 times\)"):
        _rules.plan_removal(graph, shapes, "a", [0])


def test_a_use_hidden_in_call_kwargs_blocks():
    cfg = _functional([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE),
                       ("Dense", "b", ["x"], DENSE), ("Dense", "head", ["b"], DENSE)])
    cfg["config"]["layers"][3]["inbound_nodes"][0][0][3] = {"mask": ["a", 0, 0]}
    graph = _graph.build_graph(cfg)
    shapes = {n: ((4, 4), (4,)) for n in ("a", "b", "head")}
    with pytest.raises(_rules.Blocked, match="uses the output of 'a' in a way"):
        _rules.plan_removal(graph, shapes, "a", [0])


def test_bn_on_another_axis_is_refused():
    layers = [("Conv2D", {"name": "conv1", "filters": 4, "padding": "same"}),
              ("BatchNormalization", {"name": "bn", "axis": [1]}),
              ("Conv2D", {"name": "conv2", "filters": 2, "padding": "same"})]
    weights = {"conv1": [np.ones((1, 1, 1, 4)), np.ones(4)], "bn": [np.ones(4)] * 4,
               "conv2": [np.ones((1, 1, 4, 2)), np.ones(2)]}
    with pytest.raises(_rules.Blocked, match="normalizes axis 1"):
        plan_for((4, 4, 1), layers, weights, "conv1", [0])


def test_fan_out_to_two_consumers_slices_both():
    cfg = _functional([("InputLayer", "x", [], {}), ("Dense", "a", ["x"], DENSE),
                       ("Dense", "b", ["a"], DENSE), ("Dense", "c", ["a"], DENSE),
                       ("Add", "sum", ["b", "c"], {})])
    graph = _graph.build_graph(cfg)
    shapes = {n: ((4, 4), (4,)) for n in ("a", "b", "c")}
    plan = _rules.plan_removal(graph, shapes, "a", [2])
    assert set(plan.consumers) == {"b", "c"}
    assert plan.slices[("b", 0)][0].axis == 0 and plan.slices[("c", 0)][0].keep.tolist() == [0, 1, 3]


def test_wrong_variable_count_is_refused_with_the_layer_name():
    layers = [("Dense", {"name": "fc1", "units": 4}), ("Dense", {"name": "head", "units": 2})]
    weights = {"fc1": [np.ones((3, 4)), np.ones(4), np.ones(4)], "head": [np.ones((4, 2))] * 2}
    with pytest.raises(_rules.Blocked, match=r"layer 'fc1' \(Dense\) holds 3 variable\(s\)"):
        plan_for((3,), layers, weights, "fc1", [0])


# =========================================================================== graph reader
def test_keras3_functional_inbound_nodes_are_parsed():
    tensor = {"class_name": "__keras_tensor__", "config": {"shape": [None, 8], "keras_history": ["x", 0, 0]}}
    cfg = {"class_name": "Functional", "config": {
        "layers": [{"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [None, 8]},
                    "inbound_nodes": []},
                   {"class_name": "Dense", "name": "d", "config": {"name": "d"},
                    "inbound_nodes": [{"args": [tensor], "kwargs": {}}]}],
        "input_layers": ["x", 0, 0], "output_layers": ["d", 0, 0]}}
    g = _graph.build_graph(cfg)
    assert g.kind == "Functional" and g.consumers["x"] == ("d",) and g.outputs == {"d"}
    assert g.in_rank["d"] == 2


def test_keras20_sequential_list_config_and_batch_input_shape():
    cfg = {"class_name": "Sequential", "config": [
        {"class_name": "Dense", "config": {"name": "a", "batch_input_shape": [None, 3]}},
        {"class_name": "Dense", "config": {"name": "b"}}]}
    g = _graph.build_graph(cfg)
    assert g.consumers["a"] == ("b",) and g.outputs == {"b"} and g.in_rank["b"] == 2


@pytest.mark.parametrize("cfg, match", [
    ({"class_name": "Sequential"}, "no layer list"),
    ({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {}}]}}, "no name"),
    ({"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {"name": "a"}},
                                                        {"class_name": "Dense", "config": {"name": "a"}}]}},
     "repeats layer names"),
    ({"class_name": "Weird", "config": {"layers": []}}, "neither Sequential nor Functional"),
])
def test_bad_configs_raise_value_error(cfg, match):
    with pytest.raises(ValueError, match=match):
        _graph.build_graph(cfg)


def test_find_nested_names_the_container():
    cfg = {"class_name": "Functional", "config": {"layers": [
        {"class_name": "Sequential", "config": {"name": "inner", "layers": [
            {"class_name": "Dense", "config": {"name": "deep"}}]}}]}}
    assert _graph.find_nested(cfg, "deep") == ("inner",)
    assert _graph.find_nested(cfg, "nope") is None


# =========================================================================== optimizer slots
@pytest.mark.parametrize("slots, variables, changed, expected", [
    # Keras 3 Adam: iteration, learning_rate, then (m, v) per variable
    ([(), (), (8, 16), (8, 16), (16,), (16,), (16, 4), (16, 4), (4,), (4,)],
     [(8, 16), (16,), (16, 4), (4,)], {0, 1, 2}, [None, None, 0, 0, 1, 1, 2, 2, 3, 3]),
    # tf-keras: iteration only
    ([(), (8, 16), (8, 16), (16,), (16,)], [(8, 16), (16,)], {0}, [None, 0, 0, 1, 1]),
    # SGD with momentum: one slot each
    ([(), (), (3, 4), (4,)], [(3, 4), (4,)], {0, 1}, [None, None, 0, 1]),
    # blocks layout is found when the interleaved one does not fit
    ([(), (3, 4), (4,), (3, 4), (4,)], [(3, 4), (4,)], {0, 1}, [None, 0, 1, 0, 1]),
    # no slots at all (plain SGD)
    ([(), ()], [(3, 4)], {0}, [None, None]),
    # nothing fits: None
    ([(), (5,), (5,)], [(3, 4)], {0}, None),
    # count not a multiple: None
    ([(), (3, 4), (3, 4), (3, 4)], [(3, 4), (4,)], {0}, None),
    # same shapes everywhere, both layouts fit and disagree on the changed variable: None
    ([(), (4,), (4,), (4,), (4,)], [(4,), (4,)], {0}, None),
])
def test_match_slots(slots, variables, changed, expected):
    assert _optimizer.match_slots(slots, variables, changed) == expected


def test_apply_slices_returns_a_new_contiguous_array():
    a = np.arange(12.0).reshape(3, 4)
    out = _rules.apply_slices(a, [_rules.Slice(1, np.array([0, 2])), _rules.Slice(0, np.array([1]))])
    assert out.tolist() == [[4.0, 6.0]] and out.flags.c_contiguous
    assert not np.shares_memory(out, a)
    assert copy.deepcopy(a).tolist() == np.arange(12.0).reshape(3, 4).tolist()
