"""weightshare._calibrate._stats: the input statistics equal a direct computation.

The second moment of the input that multiplies each weight, and the mean output change
E[x] (W - W_q), are checked against im2col patches built by hand (explicit loops over
positions) and against the forward pass's own kernels (`_forward._nn`).
"""

import itertools

import numpy as np
import pytest

from weightshare._calibrate._stats import bias_shift, input_stats
from weightshare._forward import _nn


def _same_pads(n, k, s):
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return total // 2, out


def _patches_2d(x, k, stride, padding):
    """im2col by loops: (batch * positions, kh, kw, c) patches of a 2-D convolution."""
    b, h, w, c = x.shape
    if padding == "same":
        (ph, oh), (pw, ow) = _same_pads(h, k[0], stride), _same_pads(w, k[1], stride)
    else:
        ph = pw = 0
        oh, ow = (h - k[0]) // stride + 1, (w - k[1]) // stride + 1
    out = []
    for n in range(b):
        for i in range(oh):
            for j in range(ow):
                p = np.zeros(k + (c,))
                for a, bb in itertools.product(range(k[0]), range(k[1])):
                    r, q = i * stride + a - ph, j * stride + bb - pw
                    if 0 <= r < h and 0 <= q < w:
                        p[a, bb] = x[n, r, q]
                out.append(p)
    return np.array(out)


def test_dense_second_moment_and_mean_per_input_feature():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(7, 3, 5))          # (batch, time, features): E over batch and time
    st = input_stats("Dense", {}, (5, 4), x)
    flat = x.reshape(-1, 5)
    np.testing.assert_allclose(st.importance[:, 0], (flat ** 2).mean(axis=0))
    np.testing.assert_allclose(st.mean, flat.mean(axis=0))
    assert st.importance.shape == (5, 1)


@pytest.mark.parametrize("stride, padding", [(1, "same"), (2, "same"), (2, "valid")])
def test_conv2d_second_moment_is_that_of_the_im2col_patch_entries(stride, padding):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 6, 3)) + 0.5
    cfg = {"strides": [stride, stride], "padding": padding}
    st = input_stats("Conv2D", cfg, (3, 3, 3, 4), x)
    p = _patches_2d(x, (3, 3), stride, padding)
    np.testing.assert_allclose(st.importance[..., 0], (p ** 2).mean(axis=0))
    np.testing.assert_allclose(st.mean, p.mean(axis=0))


def test_grouped_conv_importance_follows_each_output_channel_group():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 4, 4)) * np.array([1.0, 2.0, 3.0, 4.0])
    st = input_stats("Conv2D", {"groups": 2, "padding": "valid"}, (1, 1, 2, 6), x)
    sq = (x.reshape(-1, 4) ** 2).mean(axis=0)
    assert st.importance.shape == (1, 1, 2, 6)
    np.testing.assert_allclose(st.importance[0, 0, :, :3], np.repeat(sq[:2, None], 3, 1))
    np.testing.assert_allclose(st.importance[0, 0, :, 3:], np.repeat(sq[2:, None], 3, 1))


def test_embedding_importance_is_the_token_frequency():
    ids = np.array([[0, 2, 2], [2, 1, 0]])
    st = input_stats("Embedding", {}, (4, 3), ids)
    np.testing.assert_allclose(st.importance[:, 0], [2 / 6, 1 / 6, 3 / 6, 0.0])
    assert st.mean is None


@pytest.mark.parametrize("cls, kshape, cfg", [
    ("Conv2D", (3, 3, 3, 4), {"strides": [2, 2], "padding": "same"}),
    ("Conv2D", (2, 2, 2, 6), {"padding": "valid", "groups": 2, "dilation_rate": [2, 2]}),
    ("Conv1D", (3, 4, 2), {"padding": "causal"}),
    ("DepthwiseConv2D", (3, 3, 4, 2), {"padding": "same"}),
])
def test_bias_shift_is_the_mean_output_change_of_the_convolution(cls, kshape, cfg):
    """E[x] (W - W_q), summed per output channel, equals the mean over the batch and every
    output position of conv(x, W - W_q): the forward pass's own kernel, padding included."""
    rng = np.random.default_rng(3)
    rank = len(kshape) - 2
    c_in = kshape[-2] * int(cfg.get("groups", 1)) if not cls.startswith("Depthwise") \
        else kshape[-2]
    x = rng.normal(size=(3,) + (7,) * rank + (c_in,)) + 1.0
    delta = rng.normal(size=kshape)
    st = input_stats(cls, cfg, kshape, x)
    strides = tuple(cfg.get("strides", [1] * rank))
    dil = tuple(cfg.get("dilation_rate", [1] * rank))
    if cls.startswith("Depthwise"):
        y = _nn.depthwise_conv(x, delta, strides, dil, cfg["padding"])
    else:
        y = _nn.conv(x, delta, strides, dil, cfg["padding"], int(cfg.get("groups", 1)))
    want = y.reshape(-1, y.shape[-1]).mean(axis=0)
    np.testing.assert_allclose(bias_shift(cls, cfg, st.mean, delta), want, atol=1e-12)


def test_depthwise_importance_per_offset_and_channel():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 5, 3))
    st = input_stats("DepthwiseConv2D", {"padding": "same"}, (3, 3, 3, 2), x)
    p = _patches_2d(x, (3, 3), 1, "same")
    np.testing.assert_allclose(st.importance[..., 0], (p ** 2).mean(axis=0))
    assert st.importance.shape == (3, 3, 3, 1)


def test_dense_bias_shift_is_the_mean_output_change():
    rng = np.random.default_rng(5)
    x, delta = rng.normal(size=(9, 4)) + 2.0, rng.normal(size=(4, 3))
    st = input_stats("Dense", {}, delta.shape, x)
    np.testing.assert_allclose(bias_shift("Dense", {}, st.mean, delta), (x @ delta).mean(axis=0))
