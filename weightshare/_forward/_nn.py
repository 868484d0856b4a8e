"""NumPy kernels of the forward pass: activations, convolutions, pooling, recurrences.

Channels-last layout throughout (Keras' default): (batch, *spatial, channels).
Convolutions and pooling loop over the kernel's offsets (a few) and do one
strided slice and one matrix product per offset, so the work is vectorised
over the batch, the positions and the channels. Padding follows Keras
(TensorFlow's rule): 'same' pads ``max((ceil(n/s) - 1) s + (k - 1) d + 1 - n, 0)``
in all, the smaller half before.

Prior validation is assumed: the graph module checks classes and weights.
"""

import itertools
import math

import numpy as np

__all__ = ["ACTIVATIONS", "activation", "conv", "depthwise_conv", "conv_transpose", "pool",
           "pad_amounts", "simple_rnn", "lstm", "gru"]


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _softmax(x, axis=-1):
    e = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


_erf = np.vectorize(math.erf, otypes=[np.float64])


def _gelu(x):
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def _elu(x, alpha=1.0):
    return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))


def _selu(x):
    return 1.0507009873554805 * _elu(x, 1.6732632423543772)


def _relu6(x):
    return np.clip(x, 0.0, 6.0)


def _hard_sigmoid_k3(x):
    return _relu6(x + 3.0) / 6.0


def _hard_sigmoid_k2(x):
    return np.clip(0.2 * x + 0.5, 0.0, 1.0)


def _softplus(x):
    return np.logaddexp(0.0, x)


#: Keras activation name -> function (Keras 3 semantics; see `activation` for Keras 2)
ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": lambda x: np.maximum(x, 0.0),
    "relu6": _relu6,
    "sigmoid": _sigmoid,
    "tanh": np.tanh,
    "softmax": _softmax,
    "log_softmax": lambda x: x - np.max(x, -1, keepdims=True)
    - np.log(np.sum(np.exp(x - np.max(x, -1, keepdims=True)), -1, keepdims=True)),
    "gelu": _gelu,
    "elu": _elu,
    "selu": _selu,
    "softplus": _softplus,
    "softsign": lambda x: x / (1.0 + np.abs(x)),
    "swish": lambda x: x * _sigmoid(x),
    "silu": lambda x: x * _sigmoid(x),
    "exponential": np.exp,
    "hard_sigmoid": _hard_sigmoid_k3,
    "hard_silu": lambda x: x * _hard_sigmoid_k3(x),
    "hard_swish": lambda x: x * _hard_sigmoid_k3(x),
    "leaky_relu": lambda x: np.where(x >= 0, x, 0.2 * x),
    "mish": lambda x: x * np.tanh(_softplus(x)),
}


def activation_name(spec):
    """The name of an activation in a layer config (a string or a serialized function)."""
    if spec is None:
        return "linear"
    if isinstance(spec, dict):
        inner = spec.get("config")
        return inner if isinstance(inner, str) else spec.get("class_name", repr(spec))
    return str(spec)


def activation(spec, keras2=False):
    """The function of an activation spec; KeyError for an unknown one."""
    name = activation_name(spec)
    if keras2 and name == "hard_sigmoid":
        return _hard_sigmoid_k2
    return ACTIVATIONS[name]


# --------------------------------------------------------------------------- convolution

def pad_amounts(size, kernel, stride, dilation, padding):
    """(before, after) padding of one spatial axis, and the output length."""
    k_eff = (kernel - 1) * dilation + 1
    if padding == "valid":
        return (0, 0), max((size - k_eff) // stride + 1, 0)
    if padding == "causal":
        return (k_eff - 1, 0), (size - 1) // stride + 1
    out = -(-size // stride)
    total = max((out - 1) * stride + k_eff - size, 0)
    return (total // 2, total - total // 2), out


def _padded(x, kernel, strides, dilation, padding, fill=0.0):
    spatial = x.shape[1:-1]
    pads, outs = zip(*(pad_amounts(n, k, s, d, padding)
                       for n, k, s, d in zip(spatial, kernel, strides, dilation)))
    if any(p != (0, 0) for p in pads):
        x = np.pad(x, ((0, 0),) + tuple(pads) + ((0, 0),), constant_values=fill)
    return x, outs


def _window(xp, offset, outs, strides, dilation):
    """The input positions under one kernel offset, for every output position."""
    idx = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                for o, n, s, d in zip(offset, outs, strides, dilation))
    return xp[(slice(None),) + idx]


def conv(x, kernel, strides, dilation, padding, groups=1):
    """N-D convolution; `kernel` of shape (*k, c_in / groups, c_out)."""
    ks = kernel.shape[:-2]
    xp, outs = _padded(x, ks, strides, dilation, padding)
    c_out = kernel.shape[-1]
    out = np.zeros((x.shape[0],) + tuple(outs) + (c_out,), dtype=np.result_type(x, kernel))
    cin_g, cout_g = kernel.shape[-2], c_out // groups
    for offset in itertools.product(*(range(k) for k in ks)):
        patch = _window(xp, offset, outs, strides, dilation)
        w = kernel[offset]
        if groups == 1:
            out += patch @ w
        else:
            for g in range(groups):
                out[..., g * cout_g:(g + 1) * cout_g] += \
                    patch[..., g * cin_g:(g + 1) * cin_g] @ w[:, g * cout_g:(g + 1) * cout_g]
    return out


def depthwise_conv(x, kernel, strides, dilation, padding):
    """Depthwise convolution; `kernel` (*k, c_in, multiplier); output channel c * m + j."""
    ks = kernel.shape[:-2]
    c, m = kernel.shape[-2:]
    xp, outs = _padded(x, ks, strides, dilation, padding)
    out = np.zeros((x.shape[0],) + tuple(outs) + (c, m), dtype=np.result_type(x, kernel))
    for offset in itertools.product(*(range(k) for k in ks)):
        out += _window(xp, offset, outs, strides, dilation)[..., None] * kernel[offset]
    return out.reshape(out.shape[:-2] + (c * m,))


def conv_transpose(x, kernel, strides, dilation, padding):
    """Transposed convolution; `kernel` (*k, c_out, c_in); Keras output size (no output_padding)."""
    ks = kernel.shape[:-2]
    spatial = x.shape[1:-1]
    k_eff = [(k - 1) * d + 1 for k, d in zip(ks, dilation)]
    full = [(n - 1) * s + ke for n, s, ke in zip(spatial, strides, k_eff)]
    out = np.zeros((x.shape[0],) + tuple(full) + (kernel.shape[-2],),
                   dtype=np.result_type(x, kernel))
    for offset in itertools.product(*(range(k) for k in ks)):
        idx = tuple(slice(o * d, o * d + (n - 1) * s + 1, s)
                    for o, n, s, d in zip(offset, spatial, strides, dilation))
        out[(slice(None),) + idx] += x @ kernel[offset].T
    if padding == "same":      # the transpose of a 'same' convolution of an n*s input
        crop = []
        for n, s, f in zip(spatial, strides, full):
            total = f - n * s
            crop.append(slice(max(total // 2, 0), max(total // 2, 0) + n * s))
        out = out[(slice(None),) + tuple(crop)]
    want = [n * s if padding == "same" else n * s + max(ke - s, 0)
            for n, s, ke in zip(spatial, strides, k_eff)]
    short = [w - o for w, o in zip(want, out.shape[1:-1])]
    if any(short):             # stride above the kernel: Keras fills the end with zeros
        out = np.pad(out, ((0, 0),) + tuple((0, d) for d in short) + ((0, 0),))
    return out


def pool(x, size, strides, padding, mode):
    """Max or average pooling over the spatial axes (average ignores the padding)."""
    ones = (1,) * len(size)
    fill = -np.inf if mode == "max" else 0.0
    xp, outs = _padded(x, size, strides, ones, padding, fill=fill)
    windows = [_window(xp, off, outs, strides, ones)
               for off in itertools.product(*(range(k) for k in size))]
    if mode == "max":
        return np.maximum.reduce(windows)
    total = np.add.reduce(windows)
    if padding == "valid":
        return total / math.prod(size)
    count, _ = _padded(np.ones((1,) + x.shape[1:-1] + (1,)), size, strides, ones, padding)
    counts = np.add.reduce([_window(count, off, outs, strides, ones)
                            for off in itertools.product(*(range(k) for k in size))])
    return total / counts


# --------------------------------------------------------------------------- recurrences

def _scan(x, go_backwards, step, state):
    steps = range(x.shape[1] - 1, -1, -1) if go_backwards else range(x.shape[1])
    outputs = []
    for t in steps:
        state = step(x[:, t], state)
        outputs.append(state[0])
    return np.stack(outputs, axis=1), state


def simple_rnn(x, kernel, recurrent, bias, act, go_backwards):
    xw = x @ kernel + (0.0 if bias is None else bias)
    h0 = np.zeros((x.shape[0], kernel.shape[1]), dtype=xw.dtype)
    return _scan(xw, go_backwards, lambda xt, s: (act(xt + s[0] @ recurrent),), (h0,))


def lstm(x, kernel, recurrent, bias, act, rec_act, go_backwards):
    """Keras LSTM; gates in the order input, forget, cell, output."""
    u = recurrent.shape[0]
    xw = x @ kernel + (0.0 if bias is None else bias)
    h0 = np.zeros((x.shape[0], u), dtype=xw.dtype)

    def step(xt, s):
        h, c = s
        z = xt + h @ recurrent
        i, f, g, o = (z[:, j * u:(j + 1) * u] for j in range(4))
        c = rec_act(f) * c + rec_act(i) * act(g)
        return rec_act(o) * act(c), c
    return _scan(xw, go_backwards, step, (h0, h0))


def gru(x, kernel, recurrent, bias, act, rec_act, go_backwards, reset_after):
    """Keras GRU; gates in the order update (z), reset (r), candidate (h)."""
    u = recurrent.shape[0]
    if bias is None:
        b_in, b_rec = 0.0, 0.0
    elif reset_after:
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, 0.0
    xw = x @ kernel + b_in
    h0 = np.zeros((x.shape[0], u), dtype=xw.dtype)

    def step(xt, s):
        h = s[0]
        xz, xr, xh = xt[:, :u], xt[:, u:2 * u], xt[:, 2 * u:]
        if reset_after:
            rec = h @ recurrent + b_rec
            z = rec_act(xz + rec[:, :u])
            r = rec_act(xr + rec[:, u:2 * u])
            hh = act(xh + r * rec[:, 2 * u:])
        else:
            z = rec_act(xz + h @ recurrent[:, :u])
            r = rec_act(xr + h @ recurrent[:, u:2 * u])
            hh = act(xh + (r * h) @ recurrent[:, 2 * u:])
        return (z * h + (1.0 - z) * hh,)
    return _scan(xw, go_backwards, step, (h0,))
