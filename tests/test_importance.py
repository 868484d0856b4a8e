"""cluster_file(importance=..., calibration=..., bias_correction=...): weighted clustering of
real-Keras fixtures, bias correction's exact invariant, and every refusal writing nothing."""

import os
import pathlib
import warnings

import numpy as np
import pytest

import weightshare
from weightshare.errors import FileFormatError

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = weightshare.examples.path("digits.keras")
X = np.load(weightshare.examples.path("digits_test.npz"))["X_test"]


def values(path):
    return {r.name: r.value.astype(np.float64) for r in weightshare.read_weights(path)}


def relu(x):
    return np.maximum(x, 0.0)


# --------------------------------------------------------------------------- bias correction

def test_bias_correction_keeps_the_mean_output_of_a_one_layer_model(tmp_path):
    """The exact invariant: on the calibration inputs, the clustered layer's mean
    pre-activation equals the original's (up to the float32 rounding of the bias)."""
    before = values(DIGITS)
    out = tmp_path / "c.keras"
    rows = weightshare.cluster_file(DIGITS, out, 3, layers=["fc1"], calibration=X)
    after = values(out)
    mean_before = (X @ before["fc1/kernel"] + before["fc1/bias"]).mean(axis=0)
    mean_after = (X @ after["fc1/kernel"] + after["fc1/bias"]).mean(axis=0)
    np.testing.assert_allclose(mean_after, mean_before, rtol=0, atol=1e-5)
    assert [(r.importance, r.bias_correction) for r in rows] == [("calibration", "corrected")]
    # without bias correction the mean does move, and the bias is the file's
    weightshare.cluster_file(DIGITS, out, 3, layers=["fc1"], calibration=X,
                             bias_correction=False)
    plain = values(out)
    drift = (X @ plain["fc1/kernel"] + plain["fc1/bias"]).mean(axis=0) - mean_before
    assert np.abs(drift).max() > 1e-3
    np.testing.assert_array_equal(plain["fc1/bias"], before["fc1/bias"])


def test_each_layer_is_corrected_on_the_outputs_of_the_compressed_layers_before_it(tmp_path):
    before = values(DIGITS)
    out = tmp_path / "c.keras"
    weightshare.cluster_file(DIGITS, out, 4, calibration=X)
    w = values(out)
    h = relu(relu(X @ w["fc1/kernel"] + w["fc1/bias"]) @ w["fc2/kernel"] + w["fc2/bias"])
    np.testing.assert_allclose((h @ w["out/kernel"] + w["out/bias"]).mean(axis=0),
                               (h @ before["out/kernel"] + before["out/bias"]).mean(axis=0),
                               rtol=0, atol=1e-5)


def test_calibration_importance_is_the_second_moment_of_the_layer_input(tmp_path):
    """The first layer sees the calibration inputs: calibration gives the same file as
    importance = E[x_j^2] per input row, given by hand."""
    a, b = tmp_path / "a.keras", tmp_path / "b.keras"
    weightshare.cluster_file(DIGITS, a, 4, layers=["fc1"], calibration=X,
                             bias_correction=False, method="optimal")
    rows = weightshare.cluster_file(DIGITS, b, 4, layers=["fc1"], method="optimal",
                                    importance={"fc1/kernel": (X ** 2).mean(axis=0)[:, None]})
    assert rows[0].importance == "file"
    assert a.read_bytes() == b.read_bytes()
    plain = weightshare.cluster_file(DIGITS, None, 4, layers=["fc1"], method="optimal",
                                     dry_run=True)
    assert plain[0].importance is None and plain[0].sse < rows[0].sse   # sse: the plain SSE


def test_conv_depthwise_and_a_layer_without_bias(tmp_path):
    src = FIX / "k3_cnn.keras"
    x = np.load(FIX / "k3_cnn_io.npz")["x"]
    rows = weightshare.cluster_file(src, tmp_path / "c.keras", 4, calibration=x)
    got = {r.tensor: (r.importance, r.bias_correction, r.distinct_after <= 4) for r in rows}
    assert got == {"conv1/kernel": ("calibration", "corrected", True),
                   "dw/kernel": ("calibration", "corrected", True),
                   "pw/kernel": ("calibration", "no bias", True),
                   "head/kernel": ("calibration", "corrected", True)}


def test_embedding_is_weighted_by_token_frequency(tmp_path):
    src = FIX / "k3_emb.keras"
    x = np.load(FIX / "k3_emb_io.npz")["x"]
    rows = weightshare.cluster_file(src, tmp_path / "c.keras", 3, calibration=x)
    got = {r.tensor: (r.importance, r.bias_correction) for r in rows}
    assert got["embed/embeddings"] == ("calibration", "no bias")
    assert got["head/kernel"] == ("calibration", "corrected")


def test_layers_the_pass_does_not_weight_are_clustered_plainly(tmp_path):
    src = FIX / "k3_zoo.keras"
    x = np.load(FIX / "k3_zoo_io.npz")["x"]
    rows = weightshare.cluster_file(src, tmp_path / "c.keras", 4, calibration=x)
    got = {r.tensor: r.importance for r in rows}
    assert got["head/kernel"] == "calibration"
    assert any(v is None for v in got.values())             # separable, transposed conv
    assert [r.tensor for r in rows] == [r.tensor for r in
                                        weightshare.cluster_file(src, None, 4, dry_run=True)]


def test_inputs_that_are_always_zero_cost_nothing_and_warn_nothing(tmp_path):
    x = X.copy()
    x[:, :8] = 0.0                                          # the first 8 inputs never fire
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for per_channel in (False, True):
            weightshare.cluster_file(DIGITS, tmp_path / "c.keras", 3, calibration=x,
                                     per_channel=per_channel)
        src, xc = FIX / "k3_cnn.keras", np.load(FIX / "k3_cnn_io.npz")["x"].copy()
        xc[..., 0] = 0.0
        weightshare.cluster_file(src, tmp_path / "d.keras", 3, calibration=xc, per_channel=True)


def test_cluster_with_zero_importance_warns_nothing_and_fits_the_rest():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(40, 6))
    sw = np.ones_like(w)
    sw[:, 2] = 0.0                      # a whole channel of zero importance
    sw[::3] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in ("auto", "optimal", "lloyd"):
            res = weightshare.cluster(w, 3, sample_weight=sw, method=method, axis=1)
            assert np.unique(res.values[:, 2]).size <= 3
            res = weightshare.cluster(w, 3, sample_weight=sw, method=method)
            assert np.unique(res.values).size <= 3


# --------------------------------------------------------------------------- importance files

def test_importance_from_an_npz_file_any_format(tmp_path):
    imp = tmp_path / "imp.npz"
    np.savez(imp, **{"fc2/kernel": np.arange(64.0)[:, None]})
    rows = weightshare.cluster_file(DIGITS, tmp_path / "c.keras", 4, importance=imp)
    assert [(r.tensor, r.importance) for r in rows] == [
        ("fc1/kernel", None), ("fc2/kernel", "file"), ("out/kernel", None)]
    st = ROOT / "tests" / "fixtures" / "safetensors" / "numpy_dtypes.safetensors"
    name = next(r.name for r in weightshare.read_weights(st, values=False)
                if r.dtype == "float32" and len(r.shape) >= 1)
    shape = next(r.shape for r in weightshare.read_weights(st, values=False) if r.name == name)
    rows = weightshare.cluster_file(st, tmp_path / "c.safetensors", 2, layers=None,
                                    roles=("all",), importance={name: np.ones(shape)})
    assert {r.tensor: r.importance for r in rows}[name] == "file"


BAD_IMPORTANCE = [
    ({"fc1/kernel": -np.ones((64, 1))}, r"fc1/kernel: importance must be >= 0"),
    ({"fc1/kernel": np.full((64, 1), np.nan)}, r"fc1/kernel: importance must be finite"),
    ({"fc1/kernel": np.zeros((64, 64))}, r"fc1/kernel: importance is zero everywhere"),
    ({"fc1/kernel": np.ones((63, 1))}, r"fc1/kernel: has shape \(63, 1\), which does not "
                                       r"broadcast to the tensor's shape \(64, 64\)"),
    ({"fc1/kernel": np.ones((2, 64, 64))}, r"has shape \(2, 64, 64\), which does not broadcast"),
    ({"fc1/bias": np.ones(64)}, r"names 'fc1/bias', which is not a tensor this job clusters"),
]


@pytest.mark.parametrize("arrays, message", BAD_IMPORTANCE)
def test_bad_importance_names_the_file_and_the_tensor_and_writes_nothing(arrays, message,
                                                                         tmp_path):
    imp, out = tmp_path / "imp.npz", tmp_path / "c.keras"
    np.savez(imp, **arrays)
    with pytest.raises(FileFormatError, match=message) as info:
        weightshare.cluster_file(DIGITS, out, 4, importance=imp)
    assert str(info.value).startswith(f"{imp}: ") and "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message.replace(r"fc1/kernel: ", "")):
        weightshare.cluster_file(DIGITS, out, 4, importance=arrays)
    assert not out.exists() and os.listdir(tmp_path) == ["imp.npz"]


def test_importance_of_a_layer_left_out_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"names 'fc1/kernel', which is not a tensor this job "
                                         r"clusters; targeted tensors: out/kernel"):
        weightshare.cluster_file(DIGITS, tmp_path / "c.keras", 4, layers=["out"],
                                 importance={"fc1/kernel": np.ones((64, 1))})


# --------------------------------------------------------------------------- calibration errors

BAD_CALIBRATION = [
    (lambda: X[:, :10], r"calibration( \(\S+\))?: inputs must have shape \(batch, 64\)"),
    (lambda: np.where(np.arange(64) == 3, np.nan, X), r"calibration inputs must be finite; "
                                                      r"found \d+ NaN"),
    (lambda: X[0], r"have shape \(64,\); they need a batch axis"),
]


@pytest.mark.parametrize("make, message", BAD_CALIBRATION)
def test_bad_calibration_inputs_are_one_line_and_write_nothing(make, message, tmp_path):
    inputs, out = tmp_path / "inputs.npy", tmp_path / "c.keras"
    np.save(inputs, make())
    with pytest.raises(ValueError, match=message) as info:
        weightshare.cluster_file(DIGITS, out, 4, calibration=inputs)
    assert "inputs.npy" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message):
        weightshare.cluster_file(DIGITS, out, 4, calibration=make())
    assert not out.exists()


def test_a_model_the_forward_pass_cannot_run_names_the_layer(tmp_path):
    src = ROOT / "tests" / "fixtures" / "skips" / "k3_attention.keras"
    with pytest.raises(FileFormatError, match=r"k3_attention\.keras: calibration: the NumPy "
                                              r"forward pass does not support 1 layer\(s\): "
                                              r"attention \(Attention"):
        weightshare.cluster_file(src, tmp_path / "c.keras", 4, calibration=np.zeros((2, 3, 4)))
    assert os.listdir(tmp_path) == []


def test_a_file_without_architecture_cannot_be_calibrated(tmp_path):
    src = FIX / "k3_mlp.weights.h5"
    with pytest.raises(FileFormatError, match=r"k3_mlp\.weights\.h5: holds no model "
                                              r"architecture"):
        weightshare.cluster_file(src, tmp_path / "c.weights.h5", 4,
                                 calibration=np.zeros((2, 8)))
    assert os.listdir(tmp_path) == []


def test_importance_and_calibration_exclude_each_other(tmp_path):
    with pytest.raises(ValueError, match="give importance or calibration, not both"):
        weightshare.cluster_file(DIGITS, tmp_path / "c.keras", 4, calibration=X,
                                 importance={"fc1/kernel": np.ones((64, 1))})
    with pytest.raises(TypeError, match="bias_correction must be"):
        weightshare.cluster_file(DIGITS, tmp_path / "c.keras", 4, calibration=X,
                                 bias_correction="no")


def test_a_targeted_bias_is_corrected_then_clustered(tmp_path):
    out = tmp_path / "c.keras"
    rows = weightshare.cluster_file(DIGITS, out, 4, roles=("kernel", "bias"), calibration=X)
    assert [(r.tensor, r.importance, r.bias_correction) for r in rows] == [
        ("fc1/kernel", "calibration", "corrected"), ("fc1/bias", None, None),
        ("fc2/kernel", "calibration", "corrected"), ("fc2/bias", None, None),
        ("out/kernel", "calibration", "corrected"), ("out/bias", None, None)]
    w = values(out)
    assert all(np.unique(w[f"{n}/bias"]).size <= 4 for n in ("fc1", "fc2", "out"))
    # what was clustered is the corrected bias: the same as clustering it by hand
    only = tmp_path / "k.keras"
    weightshare.cluster_file(DIGITS, only, 4, calibration=X)
    np.testing.assert_array_equal(
        w["out/bias"], weightshare.cluster(values(only)["out/bias"].astype(np.float32), 4).values)
