"""String attributes of every encoding, Keras' snake_case, and the zip member window
(weightshare._io._common)."""

import io
import zipfile

import h5py
import numpy as np
import pytest

from weightshare._io._common import MemberWindow, decode_str, member_data_offset, str_list_attr
from weightshare._keras._names import snake_case

NAMES = ["dense", "batch_normalization_1", "ünïcode"]


def _write_attr(obj, name, values, kind):
    """Write a list-of-strings attribute the way one of the Keras/h5py writers does."""
    if kind == "vlen-utf8":
        obj.attrs.create(name, values, dtype=h5py.string_dtype("utf-8"))
    elif kind == "vlen-ascii":     # tf-keras 2.21 (h5py 3.14) writes layer_names like this
        obj.attrs.create(name, [v.encode("utf-8") for v in values], dtype=h5py.string_dtype("ascii"))
    elif kind == "fixed-nullpad":  # Keras 2.0-2.2 (h5py 2.x): |S<n>
        obj.attrs[name] = np.array([v.encode("utf-8") for v in values])
    elif kind == "empty-float64":  # a layer without weights
        obj.attrs[name] = np.zeros(0)
    else:
        raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["vlen-utf8", "vlen-ascii", "fixed-nullpad"])
def test_list_attributes_of_every_encoding(kind, tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        _write_attr(f, "layer_names", NAMES, kind)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert str_list_attr(f, "layer_names") == NAMES


def test_empty_lists_and_absent_attributes(tmp_path):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        _write_attr(f, "weight_names", [], "empty-float64")
        f.attrs.create("empty_str", [], dtype=h5py.string_dtype())
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert str_list_attr(f, "weight_names") == []
        assert str_list_attr(f, "empty_str") == []
        assert str_list_attr(f, "layer_names") is None


@pytest.mark.parametrize("kind", ["vlen-utf8", "vlen-ascii", "fixed-nullpad"])
def test_split_attributes_are_joined_in_order(kind, tmp_path):
    # Keras splits a list attribute above 64,512 bytes into name0, name1, ...
    names = [f"layer_{i}" for i in range(25)]
    with h5py.File(tmp_path / "a.h5", "w") as f:
        for i, start in enumerate(range(0, 25, 10)):
            _write_attr(f, f"layer_names{i}", names[start:start + 10], kind)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert str_list_attr(f, "layer_names") == names


@pytest.mark.parametrize("kind", ["vlen-utf8", "vlen-ascii", "fixed"])
def test_scalar_string_attributes(kind, tmp_path):
    text = '{"class_name": "Sequential", "name": "ünï"}'
    with h5py.File(tmp_path / "a.h5", "w") as f:
        if kind == "fixed":
            f.attrs["model_config"] = np.bytes_(text.encode("utf-8"))
        else:
            dt = h5py.string_dtype("utf-8" if kind == "vlen-utf8" else "ascii")
            f.attrs.create("model_config", text.encode("utf-8") if kind == "vlen-ascii" else text,
                           dtype=dt)
    with h5py.File(tmp_path / "a.h5", "r") as f:
        assert decode_str(f.attrs["model_config"]) == text


@pytest.mark.parametrize("value, expected", [
    (b"abc", "abc"), (np.bytes_(b"abc"), "abc"), ("abc", "abc"), (np.array(b"x"), "x"),
    (np.array("y"), "y"), ("ünï".encode(), "ünï"),
])
def test_decode_str(value, expected):
    assert decode_str(value) == expected


@pytest.mark.parametrize("value", [3, 1.5, np.zeros(2), None])
def test_decode_str_refuses_non_strings(value):
    with pytest.raises(TypeError, match=r"not a string"):
        decode_str(value)


@pytest.mark.parametrize("cls, snake", [
    ("Dense", "dense"), ("Conv2D", "conv2d"), ("DepthwiseConv2D", "depthwise_conv2d"),
    ("Conv2DTranspose", "conv2d_transpose"), ("PReLU", "p_re_lu"), ("InputLayer", "input_layer"),
    ("LSTM", "lstm"), ("GRU", "gru"), ("MultiHeadAttention", "multi_head_attention"),
    ("BatchNormalization", "batch_normalization"), ("EinsumDense", "einsum_dense"),
    ("Sequential", "sequential"), ("SeparableConv2D", "separable_conv2d"),
    ("My-Layer!", "my_layer"),
])
def test_snake_case_is_keras(cls, snake):
    assert snake_case(cls) == snake


def test_member_window_reads_a_stored_member_in_place():
    payload = bytes(range(256)) * 40
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("first.txt", b"hello")
        z.writestr("data.bin", payload)
    buf.seek(0)
    with zipfile.ZipFile(buf) as z:
        info = z.getinfo("data.bin")
    start = member_data_offset(buf, info)
    w = MemberWindow(buf, start, info.file_size)
    assert w.read() == payload
    w.seek(100)
    assert w.read(10) == payload[100:110] and w.tell() == 110
    w.seek(-5, 2)
    assert w.read() == payload[-5:]
    assert w.read(10) == b""
    with pytest.raises(ValueError, match=r"bad local header"):
        member_data_offset(buf, _shifted(info))


def _shifted(info):
    other = zipfile.ZipInfo(info.filename)
    other.header_offset = info.header_offset + 3
    return other
