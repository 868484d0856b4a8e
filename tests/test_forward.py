"""weightshare.forward: the NumPy forward pass against naive references, toys and real Keras.

The kernels (convolutions, pooling) are checked against slow loop references
on random shapes; whole models against the predictions real Keras made for
every fixture (tests/fixtures/keras/*_io.npz, ``y``).
"""

import itertools
import json
import math
import os

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from weightshare._forward import _nn
from weightshare.compare import read_model
from weightshare.forward import SUPPORTED, forward, layer_weight_counts, unsupported_layers

FIX = os.path.join(os.path.dirname(__file__), "fixtures", "keras")
#: relative tolerance (max |ours - keras| / max |keras|) by the precision Keras computed in
TOLERANCE = {"float32": 1e-5, "float16": 3e-3, "bfloat16": 2e-2}


# --------------------------------------------------------------------------- slow references

def _ref_pad(n, k, s, d, padding):
    k_eff = (k - 1) * d + 1
    if padding == "valid":
        return 0, (n - k_eff) // s + 1
    if padding == "causal":
        return k_eff - 1, (n - 1) // s + 1
    out = math.ceil(n / s)
    return max((out - 1) * s + k_eff - n, 0) // 2, out


def ref_conv2d(x, w, s, d, padding, depthwise=False):
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    (ph, oh), (pw, ow) = _ref_pad(h, kh, s[0], d[0], padding), _ref_pad(wd, kw, s[1], d[1], padding)
    c_out = c * w.shape[3] if depthwise else w.shape[3]
    out = np.zeros((n, oh, ow, c_out))
    for b, i, j in itertools.product(range(n), range(oh), range(ow)):
        for a, e in itertools.product(range(kh), range(kw)):
            y, z = i * s[0] + a * d[0] - ph, j * s[1] + e * d[1] - pw
            if 0 <= y < h and 0 <= z < wd:
                if depthwise:
                    out[b, i, j] += (x[b, y, z][:, None] * w[a, e]).reshape(-1)
                else:
                    out[b, i, j] += x[b, y, z] @ w[a, e]
    return out


def ref_pool2d(x, size, s, padding, mode):
    n, h, wd, c = x.shape
    (ph, oh), (pw, ow) = _ref_pad(h, size[0], s[0], 1, padding), _ref_pad(wd, size[1], s[1], 1, padding)
    out = np.zeros((n, oh, ow, c))
    for i, j in itertools.product(range(oh), range(ow)):
        ys = [y for y in range(i * s[0] - ph, i * s[0] - ph + size[0]) if 0 <= y < h]
        zs = [z for z in range(j * s[1] - pw, j * s[1] - pw + size[1]) if 0 <= z < wd]
        win = x[:, ys][:, :, zs]
        out[:, i, j] = win.max(axis=(1, 2)) if mode == "max" else win.mean(axis=(1, 2))
    return out


def ref_conv2d_transpose(x, w, s, padding):
    n, h, wd, _ = x.shape
    kh, kw, c_out, _ = w.shape
    full = np.zeros((n, (h - 1) * s[0] + kh, (wd - 1) * s[1] + kw, c_out))
    for i, j, a, e in itertools.product(range(h), range(wd), range(kh), range(kw)):
        full[:, i * s[0] + a, j * s[1] + e] += x[:, i, j] @ w[a, e].T
    if padding == "valid":
        return full
    th, tw = full.shape[1] - h * s[0], full.shape[2] - wd * s[1]
    return full[:, th // 2:th // 2 + h * s[0], tw // 2:tw // 2 + wd * s[1]]


conv_cases = st.fixed_dictionaries({
    "h": st.integers(1, 7), "w": st.integers(1, 7), "c": st.integers(1, 3), "out": st.integers(1, 3),
    "kh": st.integers(1, 3), "kw": st.integers(1, 3), "sh": st.integers(1, 3), "sw": st.integers(1, 3),
    "d": st.sampled_from([(1, 1), (2, 1), (1, 2)]), "padding": st.sampled_from(["valid", "same"]),
    "seed": st.integers(0, 2**16)})


@settings(max_examples=60)
@given(case=conv_cases)
def test_conv2d_matches_the_loop_reference(case):
    rng = np.random.default_rng(case["seed"])
    d = case["d"] if case["sh"] == 1 and case["sw"] == 1 else (1, 1)   # Keras: no stride with dilation
    k_eff = [(case["kh"] - 1) * d[0] + 1, (case["kw"] - 1) * d[1] + 1]
    if case["padding"] == "valid" and (case["h"] < k_eff[0] or case["w"] < k_eff[1]):
        return
    x = rng.normal(size=(2, case["h"], case["w"], case["c"]))
    w = rng.normal(size=(case["kh"], case["kw"], case["c"], case["out"]))
    s = (case["sh"], case["sw"])
    np.testing.assert_allclose(_nn.conv(x, w, s, d, case["padding"]),
                               ref_conv2d(x, w, s, d, case["padding"]), atol=1e-12)
    np.testing.assert_allclose(_nn.depthwise_conv(x, w, s, d, case["padding"]),
                               ref_conv2d(x, w, s, d, case["padding"], depthwise=True), atol=1e-12)


@settings(max_examples=60)
@given(case=conv_cases, mode=st.sampled_from(["max", "avg"]))
def test_pooling_matches_the_loop_reference(case, mode):
    size, s = (case["kh"], case["kw"]), (case["sh"], case["sw"])
    if case["padding"] == "valid" and (case["h"] < size[0] or case["w"] < size[1]):
        return
    x = np.random.default_rng(case["seed"]).normal(size=(2, case["h"], case["w"], case["c"]))
    np.testing.assert_allclose(_nn.pool(x, size, s, case["padding"], mode),
                               ref_pool2d(x, size, s, case["padding"], mode), atol=1e-12)


@settings(max_examples=40)
@given(case=conv_cases)
def test_conv_transpose_matches_the_scatter_reference(case):
    if case["kh"] < case["sh"] or case["kw"] < case["sw"]:
        return
    rng = np.random.default_rng(case["seed"])
    x = rng.normal(size=(2, case["h"], case["w"], case["c"]))
    w = rng.normal(size=(case["kh"], case["kw"], case["out"], case["c"]))
    s = (case["sh"], case["sw"])
    np.testing.assert_allclose(_nn.conv_transpose(x, w, s, (1, 1), case["padding"]),
                               ref_conv2d_transpose(x, w, s, case["padding"]), atol=1e-12)


@pytest.mark.parametrize("args, want", [
    ((5, 3, 2, 1, "same"), ((1, 1), 3)),      # out 3: (3-1)*2 + 3 - 5 = 2 -> 1 before, 1 after
    ((6, 3, 2, 1, "same"), ((0, 1), 3)),      # total 1: the extra pixel goes after
    ((8, 3, 1, 2, "same"), ((2, 2), 8)),      # dilated kernel spans 5
    ((7, 3, 2, 1, "valid"), ((0, 0), 3)),
    ((6, 3, 1, 2, "causal"), ((4, 0), 6)),
])
def test_padding_rule(args, want):
    assert _nn.pad_amounts(*args) == want


def test_activations_by_hand():
    x = np.array([-4.0, -1.0, 0.0, 1.0, 4.0])
    np.testing.assert_allclose(_nn.activation("relu")(x), [0, 0, 0, 1, 4])
    np.testing.assert_allclose(_nn.activation("gelu")(np.array([1.0])),
                               [0.5 * (1 + math.erf(1 / math.sqrt(2)))])
    np.testing.assert_allclose(_nn.activation("hard_sigmoid")(x), [0, 1 / 3, 0.5, 2 / 3, 1])
    np.testing.assert_allclose(_nn.activation("hard_sigmoid", keras2=True)(x), [0, 0.3, 0.5, 0.7, 1])
    np.testing.assert_allclose(_nn.activation("softmax")(np.log([[1.0, 3.0]])), [[0.25, 0.75]])
    assert _nn.activation_name({"class_name": "function", "config": "tanh"}) == "tanh"


# --------------------------------------------------------------------------- graphs by hand

def _dense(name, units, act="linear", bias=True):
    return {"class_name": "Dense", "config": {"name": name, "units": units, "activation": act,
                                              "use_bias": bias}}


def _k3_node(*refs):
    return [{"args": [[{"class_name": "__keras_tensor__", "config": {"keras_history": list(r)}}
                       for r in refs]] if len(refs) > 1 else
             [{"class_name": "__keras_tensor__", "config": {"keras_history": list(refs[0])}}],
             "kwargs": {}}]


def test_functional_shared_layer_and_merge_keras3_format():
    # y = concat(fc(x), fc(fc(x))) with fc shared (called twice), then add of the halves
    layers = [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [None, 2]},
         "inbound_nodes": []},
        dict(_dense("fc", 2, bias=False), name="fc",
             inbound_nodes=_k3_node(("x", 0, 0)) + _k3_node(("fc", 0, 0))),
        {"class_name": "Add", "name": "add", "config": {"name": "add"},
         "inbound_nodes": _k3_node(("fc", 0, 0), ("fc", 1, 0))},
    ]
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers,
                                                  "input_layers": ["x", 0, 0],
                                                  "output_layers": ["add", 0, 0]}}
    w = np.array([[0.0, 1.0], [1.0, 0.0]])                 # swaps the two entries
    y = forward(cfg, {"fc": [w]}, np.array([[1.0, 2.0]]))
    np.testing.assert_array_equal(y, [[3.0, 3.0]])           # [2, 1] + [1, 2]


def test_functional_keras2_format_with_two_outputs():
    layers = [
        {"class_name": "InputLayer", "name": "x", "config": {"name": "x",
                                                             "batch_input_shape": [None, 2]},
         "inbound_nodes": []},
        dict(_dense("a", 1, bias=False), name="a", inbound_nodes=[[["x", 0, 0, {}]]]),
        dict(_dense("b", 1, act="relu", bias=False), name="b", inbound_nodes=[[["x", 0, 0, {}]]]),
    ]
    cfg = {"class_name": "Functional", "config": {"name": "m", "layers": layers,
                                                  "input_layers": [["x", 0, 0]],
                                                  "output_layers": [["a", 0, 0], ["b", 0, 0]]}}
    ya, yb = forward(cfg, {"a": [np.ones((2, 1))], "b": [-np.ones((2, 1))]}, np.array([[1.0, 2.0]]))
    assert ya.tolist() == [[3.0]] and yb.tolist() == [[0.0]]


def test_batches_are_processed_in_chunks_with_the_same_result():
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [_dense("fc", 3, "tanh")]}}
    rng = np.random.default_rng(0)
    w = {"fc": [rng.normal(size=(4, 3)), rng.normal(size=3)]}
    x = rng.normal(size=(2500, 4))
    np.testing.assert_allclose(forward(cfg, w, x), np.tanh(x @ w["fc"][0] + w["fc"][1]))


def test_unsupported_layers_are_all_named():
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
        {"class_name": "Lambda", "config": {"name": "f"}},
        {"class_name": "Conv2D", "config": {"name": "c", "data_format": "channels_first"}},
        {"class_name": "Dense", "config": {"name": "d", "units": 1, "activation": "my_act"}},
        _dense("ok", 1)]}}
    with pytest.raises(ValueError, match=r"does not support 3 layer\(s\) of this model: f \(Lambda\), "
                                         r"c \(Conv2D: data_format='channels_first'\), "
                                         r"d \(Dense: activation='my_act'\)"):
        forward(cfg, {}, np.zeros((1, 1)))


@pytest.mark.parametrize("weights, match", [
    ({}, "no arrays for layer 'fc', which holds 2"),
    ({"fc": [np.ones((2, 1))]}, "layer 'fc' holds 2 arrays in its config; got 1"),
    ({"fc": [np.ones((3, 1)), np.ones(1)]}, "layer 'fc' \\(Dense\\): ValueError: matmul"),
])
def test_bad_weights_are_named(weights, match):
    cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [_dense("fc", 1)]}}
    with pytest.raises(ValueError, match=match):
        forward(cfg, weights, np.zeros((1, 2)))


@pytest.mark.parametrize("config, exc, match", [
    ({"layers": []}, TypeError, "must be a Keras model config"),
    ({"class_name": "Dense", "config": {}}, ValueError, "not a Sequential or Functional"),
    ("{not json", ValueError, "not valid JSON"),
])
def test_bad_configs(config, exc, match):
    with pytest.raises(exc, match=match):
        forward(config, {}, np.zeros((1, 1)))


# --------------------------------------------------------------------------- real Keras

def _legacy_h5(path):
    """Config and {layer path: arrays} of a legacy full .h5 file (an independent reader).

    Top-level layers keep their weights under their name; a nested model's weights
    are grouped by the sub-layer name in each weight's HDF5 name.
    """
    with h5py.File(path, "r") as h:
        cfg = json.loads(h.attrs["model_config"])
        groups = h["model_weights"]
        counts = layer_weight_counts(cfg)
        weights = {}
        for name in groups.attrs["layer_names"]:
            name = name.decode() if isinstance(name, bytes) else name
            g = groups[name]
            names = [n.decode() if isinstance(n, bytes) else n for n in g.attrs["weight_names"]]
            for wname in names:
                key = name if name in counts else f"{name}/{wname.split(':')[0].split('/')[-2]}"
                weights.setdefault(key, []).append(np.array(g[wname]))
    return cfg, weights


def _manifest():
    with open(os.path.join(FIX, "manifest.json")) as f:
        return json.load(f)["files"]


def _compute_dtype(entry):
    dtypes = {w["dtype"] for layer in entry["layers"] for w in layer["weights"]}
    if entry["model"] == "mixed":
        return "float16"
    return "bfloat16" if "bfloat16" in dtypes else "float16" if "float16" in dtypes else "float32"


LEGACY = sorted(name for name, e in _manifest().items()
                if e["format"] == "legacy_full" and e["model"] != "bf16")


@pytest.mark.parametrize("name", LEGACY)
def test_forward_matches_keras_predictions_legacy_h5(name):
    entry = _manifest()[name]
    cfg, weights = _legacy_h5(os.path.join(FIX, name))
    io = np.load(os.path.join(FIX, entry["io"]))
    y = forward(cfg, weights, io["x"])
    rel = np.max(np.abs(y - io["y"])) / np.max(np.abs(io["y"]))
    assert rel <= TOLERANCE[_compute_dtype(entry)], f"{name}: relative error {rel:.2e}"


ALL_FILES = sorted(_manifest())


@pytest.mark.parametrize("name", ALL_FILES)
def test_forward_matches_keras_predictions_every_file(name):
    """Every fixture file, read by weightshare.files: weights-only files take the
    architecture of the same model's .keras file. tf-keras .weights.h5 stores hold no
    layer names and must be refused with a message saying so."""
    entry = _manifest()[name]
    arch = os.path.join(FIX, f"{entry['producer']}_{entry['model']}.keras")
    if entry["format"] == "weights_store" and entry["producer"] == "k2":
        with pytest.raises(ValueError, match="stores no layer names"):
            read_model(os.path.join(FIX, name), architecture=arch)
        return
    cfg, weights = read_model(os.path.join(FIX, name), architecture=arch)
    io = np.load(os.path.join(FIX, entry["io"]))
    y = forward(cfg, weights, io["x"])
    rel = np.max(np.abs(y - io["y"])) / np.max(np.abs(io["y"]))
    assert rel <= TOLERANCE[_compute_dtype(entry)], f"{name}: relative error {rel:.2e}"


def test_weights_only_file_needs_an_architecture():
    with pytest.raises(ValueError, match="weights-only file holds no architecture"):
        read_model(os.path.join(FIX, "k3_mlp.weights.h5"))


def test_every_fixture_layer_class_is_supported():
    for name in LEGACY:
        cfg, _ = _legacy_h5(os.path.join(FIX, name))
        assert unsupported_layers(cfg) == [], name


def test_supported_list():
    for cls in ("Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
                "BatchNormalization", "Activation", "MaxPooling1D", "MaxPooling2D",
                "AveragePooling1D", "AveragePooling2D", "Flatten", "Dropout", "Embedding",
                "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
                "GlobalMaxPooling2D", "ZeroPadding2D", "Add", "Concatenate"):
        assert cls in SUPPORTED


# --------------------------------------------------------------------------- comparing outputs

from weightshare.compare import compare_models, compare_outputs  # noqa: E402


def test_compare_outputs_by_hand():
    a = np.array([[2.0, 1.0, 0.0], [0.0, 1.0, 3.0], [1.0, 0.0, 0.5], [0.0, 2.0, 1.0]])
    b = np.array([[2.0, 1.5, 0.0], [0.0, 3.5, 3.0], [1.0, 0.0, 1.5], [0.0, 2.0, 1.0]])
    r = compare_outputs(a, b, labels=np.array([0, 2, 2, 1]))
    assert (r.n, r.output_shape) == (4, (4, 3))
    assert r.top1_agreement == 0.5                       # rows 1 and 2 changed their top class
    assert (r.accuracy_original, r.accuracy_new) == (0.75, 0.75)
    assert r.max_abs_diff == 2.5 and r.mean_abs_diff == pytest.approx(4.0 / 12)
    onehot = np.eye(3)[[0, 2, 2, 1]]
    assert compare_outputs(a, b, labels=onehot).accuracy_new == 0.75


def test_compare_single_unit_outputs_are_binary_decisions():
    probs_a, probs_b = np.array([[0.2], [0.7]]), np.array([[0.6], [0.9]])
    assert compare_outputs(probs_a, probs_b).top1_agreement == 0.5     # threshold 0.5
    logits_a, logits_b = np.array([[-1.0], [2.0]]), np.array([[0.6], [0.9]])
    assert compare_outputs(logits_a, logits_b).top1_agreement == 0.5   # threshold 0


def test_compare_per_position_outputs():
    a = np.zeros((2, 5, 3))
    a[..., 0] = 1
    b = a.copy()
    b[0, 4] = [0, 0, 2]
    r = compare_outputs(a, b, labels=np.zeros((2, 5), int))
    assert r.n == 10 and r.top1_agreement == 0.9 and r.accuracy_new == 0.9


@pytest.mark.parametrize("args, kwargs, match", [
    ((np.zeros((2, 3)), np.zeros((3, 3))), {}, "same shape"),
    ((np.zeros(3), np.zeros(3)), {}, "shape \\(batch, ..., classes\\)"),
    ((np.zeros((2, 3)), np.zeros((2, 3))), {"labels": [0, 1, 2]}, "labels must have shape \\(2,\\)"),
    ((np.zeros((2, 3)), np.zeros((2, 3))), {"labels": [0.5, 1.0]}, "integer classes"),
])
def test_compare_bad_arguments(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        compare_outputs(*args, **kwargs)


def test_compare_models_on_a_fixture_against_itself_and_a_perturbed_copy():
    name = "k2_digits.h5"
    cfg, w = _legacy_h5(os.path.join(FIX, name))
    test = np.load(os.path.join(FIX, "digits_test.npz"))
    same = compare_models((cfg, w), (cfg, w), test["X_test"], labels=test["y_test"])
    assert same.top1_agreement == 1.0 and same.max_abs_diff == 0.0
    assert same.accuracy_original == pytest.approx(_manifest()[name]["extra"]["test_accuracy"])
    noisy = {k: [a + 0.05 * np.random.default_rng(0).normal(size=a.shape) for a in v]
             for k, v in w.items()}
    r = compare_models((cfg, w), (cfg, noisy), test["X_test"], labels=test["y_test"])
    assert 0.5 < r.top1_agreement < 1.0 and r.max_abs_diff > 0
