"""Keras layer classes the NumPy forward pass knows: weight counts and calls.

Each entry of :data:`LAYERS` maps a Keras class name to ``(n_weights, call)``:
``n_weights(cfg)`` is how many arrays the layer holds (Keras order, as
``layer.get_weights()``), and ``call(cfg, weights, inputs, kwargs, keras2)``
computes the layer's output from its config, its arrays and its input
tensors. :func:`refusal` names config options the forward pass does not
implement (channels_first, masks, ...), so such a layer is refused up front
instead of computed wrongly.
"""

import numpy as np

from . import _nn

__all__ = ["LAYERS", "refusal"]


def _tuple(value, n):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _act(cfg, keras2, key="activation"):
    return _nn.activation(cfg.get(key, "linear"), keras2)


def _bias(cfg, w, i):
    return w[i] if cfg.get("use_bias", True) else 0.0


# --------------------------------------------------------------------------- dense and convolutions

def _dense(cfg, w, x, kw, keras2):
    return _act(cfg, keras2)(x[0] @ w[0] + _bias(cfg, w, 1))


def _conv(rank):
    def call(cfg, w, x, kw, keras2):
        y = _nn.conv(x[0], w[0], _tuple(cfg.get("strides", 1), rank),
                     _tuple(cfg.get("dilation_rate", 1), rank), cfg.get("padding", "valid"),
                     int(cfg.get("groups", 1) or 1))
        return _act(cfg, keras2)(y + _bias(cfg, w, 1))
    return call


def _depthwise_step(cfg, kernel, x, rank):
    """The depthwise convolution of DepthwiseConv and SeparableConv layers."""
    return _nn.depthwise_conv(x, kernel, _tuple(cfg.get("strides", 1), rank),
                              _tuple(cfg.get("dilation_rate", 1), rank),
                              cfg.get("padding", "valid"))


def _depthwise(rank):
    def call(cfg, w, x, kw, keras2):
        y = _depthwise_step(cfg, w[0], x[0], rank)
        return _act(cfg, keras2)(y + _bias(cfg, w, 1))
    return call


def _separable(rank):
    def call(cfg, w, x, kw, keras2):
        y = _depthwise_step(cfg, w[0], x[0], rank) @ w[1].reshape(w[1].shape[-2:])
        return _act(cfg, keras2)(y + _bias(cfg, w, 2))
    return call


def _transpose(rank):
    def call(cfg, w, x, kw, keras2):
        y = _nn.conv_transpose(x[0], w[0], _tuple(cfg.get("strides", 1), rank),
                               _tuple(cfg.get("dilation_rate", 1), rank),
                               cfg.get("padding", "valid"))
        return _act(cfg, keras2)(y + _bias(cfg, w, 1))
    return call


def _einsum_dense(cfg, w, x, kw, keras2):
    equation = cfg["equation"]
    y = np.einsum(equation, x[0], w[0])
    axes = cfg.get("bias_axes")
    if axes:
        out_spec = equation.split("->")[1]
        first = min(out_spec.find(c) for c in axes)
        shape = [y.shape[first + i] if c in axes else 1
                 for i, c in enumerate(out_spec[first:])]
        y = y + w[1].reshape(shape)
    return _act(cfg, keras2)(y)


def _embedding(cfg, w, x, kw, keras2):
    return w[0][np.asarray(x[0]).astype(np.int64)]


# --------------------------------------------------------------------------- normalization

def _axes(cfg, ndim):
    axis = cfg.get("axis", -1)
    axis = axis if isinstance(axis, (list, tuple)) else [axis]
    return sorted(int(a) % ndim for a in axis)


def _broadcast(param, axes, ndim, shape):
    target = [1] * ndim
    for a in axes:
        target[a] = shape[a]
    return param.reshape(target)


def _batch_norm(cfg, w, x, kw, keras2):
    x = x[0]
    axes = _axes(cfg, x.ndim)
    i = 0
    gamma = beta = None
    if cfg.get("scale", True):
        gamma, i = w[i], i + 1
    if cfg.get("center", True):
        beta, i = w[i], i + 1
    mean, var = w[i], w[i + 1]
    b = lambda p: _broadcast(p, axes, x.ndim, x.shape)  # noqa: E731
    y = (x - b(mean)) / np.sqrt(b(var) + cfg.get("epsilon", 1e-3))
    if gamma is not None:
        y = y * b(gamma)
    return y + b(beta) if beta is not None else y


def _layer_norm(cfg, w, x, kw, keras2):
    x = x[0]
    axes = tuple(_axes(cfg, x.ndim))
    eps = cfg.get("epsilon", 1e-3)
    rms = cfg.get("rms_scaling", False)
    i = 0
    gamma = beta = None
    if cfg.get("scale", True) or rms:
        gamma, i = w[i], i + 1
    if cfg.get("center", True) and not rms:
        beta = w[i]
    if rms:
        y = x / np.sqrt(np.mean(x * x, axis=axes, keepdims=True) + eps)
        return y * _broadcast(gamma, axes, x.ndim, x.shape) if gamma is not None else y
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.mean((x - mean) ** 2, axis=axes, keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    if gamma is not None:
        y = y * _broadcast(gamma, axes, x.ndim, x.shape)
    return y + _broadcast(beta, axes, x.ndim, x.shape) if beta is not None else y


# --------------------------------------------------------------------------- activations

def _relu_layer(cfg, w, x, kw, keras2):
    x = x[0]
    max_value = cfg.get("max_value")
    slope = cfg.get("negative_slope", 0.0) or 0.0
    threshold = cfg.get("threshold", 0.0) or 0.0
    y = np.where(x >= threshold, x, slope * (x - threshold))
    return np.minimum(y, max_value) if max_value is not None else y


def _leaky_relu(cfg, w, x, kw, keras2):
    slope = cfg.get("negative_slope", cfg.get("alpha", 0.3))
    return np.where(x[0] >= 0, x[0], slope * x[0])


def _prelu(cfg, w, x, kw, keras2):
    return np.maximum(x[0], 0.0) + w[0] * np.minimum(x[0], 0.0)


def _softmax_layer(cfg, w, x, kw, keras2):
    axis = cfg.get("axis", -1)
    return _nn._softmax(x[0], axis=tuple(axis) if isinstance(axis, list) else axis)


# --------------------------------------------------------------------------- shapes and pooling

def _pooling(rank, mode):
    def call(cfg, w, x, kw, keras2):
        size = _tuple(cfg.get("pool_size", 2), rank)
        strides = _tuple(cfg.get("strides"), rank) or size
        return _nn.pool(x[0], size, strides, cfg.get("padding", "valid"), mode)
    return call


def _global(rank, mode):
    def call(cfg, w, x, kw, keras2):
        f = np.max if mode == "max" else np.mean
        return f(x[0], axis=tuple(range(1, rank + 1)), keepdims=bool(cfg.get("keepdims", False)))
    return call


def _zero_padding(rank):
    def call(cfg, w, x, kw, keras2):
        p = cfg.get("padding", 1)
        if isinstance(p, int):
            pads = [(p, p)] * rank
        else:
            pads = [(q, q) if isinstance(q, int) else tuple(q) for q in p]
        return np.pad(x[0], [(0, 0)] + pads + [(0, 0)])
    return call


def _cropping(rank):
    def call(cfg, w, x, kw, keras2):
        c = cfg.get("cropping", 1)
        crops = [(c, c)] * rank if isinstance(c, int) else \
            [(q, q) if isinstance(q, int) else tuple(q) for q in c]
        idx = tuple(slice(a, n - b) for (a, b), n in zip(crops, x[0].shape[1:-1]))
        return x[0][(slice(None),) + idx]
    return call


def _upsampling(rank):
    def call(cfg, w, x, kw, keras2):
        y = x[0]
        for axis, s in enumerate(_tuple(cfg.get("size", 2), rank), start=1):
            y = np.repeat(y, s, axis=axis)
        return y
    return call


def _flatten(cfg, w, x, kw, keras2):
    return x[0].reshape(x[0].shape[0], -1)


def _reshape(cfg, w, x, kw, keras2):
    return x[0].reshape((x[0].shape[0],) + tuple(cfg["target_shape"]))


def _permute(cfg, w, x, kw, keras2):
    return np.transpose(x[0], (0,) + tuple(int(d) for d in cfg["dims"]))


def _identity(cfg, w, x, kw, keras2):
    return x[0]


def _merge(op):
    def call(cfg, w, x, kw, keras2):
        return op(x)
    return call


def _concatenate(cfg, w, x, kw, keras2):
    return np.concatenate(x, axis=cfg.get("axis", -1))


# --------------------------------------------------------------------------- recurrent and attention

def _rnn_call(cfg, w, x, keras2):
    cls = cfg["__class__"]
    bias = w[2] if cfg.get("use_bias", True) else None
    act = _act(cfg, keras2)
    back = bool(cfg.get("go_backwards", False))
    if cls == "SimpleRNN":
        seq, state = _nn.simple_rnn(x, w[0], w[1], bias, act, back)
    else:
        rec_act = _act(cfg, keras2, "recurrent_activation")
        if cls == "LSTM":
            seq, state = _nn.lstm(x, w[0], w[1], bias, act, rec_act, back)
        else:
            seq, state = _nn.gru(x, w[0], w[1], bias, act, rec_act, back,
                                 bool(cfg.get("reset_after", True)))
    out = seq if cfg.get("return_sequences", False) else seq[:, -1]
    return [out] + list(state) if cfg.get("return_state", False) else out


def _rnn(cls):
    def call(cfg, w, x, kw, keras2):
        return _rnn_call(dict(cfg, __class__=cls), w, x[0], keras2)
    return call


def _bidirectional(cfg, w, x, kw, keras2):
    inner = cfg["layer"]
    fwd_cfg = dict(inner["config"], __class__=inner["class_name"])
    back = cfg.get("backward_layer") or {"class_name": inner["class_name"], "config": dict(
        inner["config"], go_backwards=not inner["config"].get("go_backwards", False))}
    back_cfg = dict(back["config"], __class__=back["class_name"])
    half = len(w) // 2
    y_f = _rnn_call(fwd_cfg, w[:half], x[0], keras2)
    y_b = _rnn_call(back_cfg, w[half:], x[0], keras2)
    if fwd_cfg.get("return_sequences", False):
        y_b = y_b[:, ::-1]
    mode = cfg.get("merge_mode", "concat")
    merge = {"concat": lambda a, b: np.concatenate([a, b], axis=-1), "sum": np.add,
             "mul": np.multiply, "ave": lambda a, b: (a + b) / 2}
    return merge[mode](y_f, y_b)


def _mha(cfg, w, x, kw, keras2):
    query = x[0]
    value = x[1] if len(x) > 1 else kw["value"]
    key = x[2] if len(x) > 2 else kw.get("key")
    key = value if key is None else key
    if cfg.get("use_bias", True):
        wq, bq, wk, bk, wv, bv, wo, bo = w
    else:
        wq, wk, wv, wo = w
        bq = bk = bv = bo = 0.0
    q = np.einsum("abc,cde->abde", query, wq) + bq
    k = np.einsum("abc,cde->abde", key, wk) + bk
    v = np.einsum("abc,cde->abde", value, wv) + bv
    q = q / np.sqrt(float(cfg["key_dim"]))
    scores = np.einsum("aecd,abcd->acbe", k, q)           # (batch, heads, T, S)
    if kw.get("use_causal_mask"):
        t, s = scores.shape[-2:]
        scores = np.where(np.tril(np.ones((t, s), dtype=bool)), scores, -np.inf)
    probs = _nn._softmax(scores, axis=-1)
    out = np.einsum("acbe,aecd->abcd", probs, v)
    return np.einsum("abcd,cde->abe", out, wo) + bo


# --------------------------------------------------------------------------- the table

def _use_bias(cfg):
    return int(bool(cfg.get("use_bias", True)))


def _fixed(n):
    return lambda cfg: n


_W = _fixed(0)
_ONE_PLUS_BIAS = lambda cfg: 1 + _use_bias(cfg)  # noqa: E731


def _n_rnn(cfg):
    return 2 + _use_bias(cfg)


def _n_bidirectional(cfg):
    return 2 * _n_rnn(cfg["layer"]["config"])


LAYERS = {
    "InputLayer": (_W, _identity),
    "Dense": (_ONE_PLUS_BIAS, _dense),
    "EinsumDense": (lambda cfg: 1 + int(bool(cfg.get("bias_axes"))), _einsum_dense),
    "Conv1D": (_ONE_PLUS_BIAS, _conv(1)),
    "Conv2D": (_ONE_PLUS_BIAS, _conv(2)),
    "Conv3D": (_ONE_PLUS_BIAS, _conv(3)),
    "DepthwiseConv1D": (_ONE_PLUS_BIAS, _depthwise(1)),
    "DepthwiseConv2D": (_ONE_PLUS_BIAS, _depthwise(2)),
    "SeparableConv1D": (lambda cfg: 2 + _use_bias(cfg), _separable(1)),
    "SeparableConv2D": (lambda cfg: 2 + _use_bias(cfg), _separable(2)),
    "Conv1DTranspose": (_ONE_PLUS_BIAS, _transpose(1)),
    "Conv2DTranspose": (_ONE_PLUS_BIAS, _transpose(2)),
    "Embedding": (_fixed(1), _embedding),
    "BatchNormalization": (lambda cfg: int(cfg.get("scale", True)) + int(cfg.get("center", True))
                           + 2, _batch_norm),
    "LayerNormalization": (lambda cfg: int(cfg.get("scale", True) or cfg.get("rms_scaling", False))
                           + int(cfg.get("center", True) and not cfg.get("rms_scaling", False)),
                           _layer_norm),
    "Activation": (_W, lambda cfg, w, x, kw, k2: _act(cfg, k2)(x[0])),
    "ReLU": (_W, _relu_layer),
    "LeakyReLU": (_W, _leaky_relu),
    "ELU": (_W, lambda cfg, w, x, kw, k2: _nn._elu(x[0], cfg.get("alpha", 1.0))),
    "PReLU": (_fixed(1), _prelu),
    "Softmax": (_W, _softmax_layer),
    "Rescaling": (_W, lambda cfg, w, x, kw, k2: x[0] * cfg.get("scale", 1.0)
                  + cfg.get("offset", 0.0)),
    "MaxPooling1D": (_W, _pooling(1, "max")),
    "MaxPooling2D": (_W, _pooling(2, "max")),
    "AveragePooling1D": (_W, _pooling(1, "avg")),
    "AveragePooling2D": (_W, _pooling(2, "avg")),
    "GlobalMaxPooling1D": (_W, _global(1, "max")),
    "GlobalMaxPooling2D": (_W, _global(2, "max")),
    "GlobalAveragePooling1D": (_W, _global(1, "avg")),
    "GlobalAveragePooling2D": (_W, _global(2, "avg")),
    "ZeroPadding1D": (_W, _zero_padding(1)),
    "ZeroPadding2D": (_W, _zero_padding(2)),
    "Cropping1D": (_W, _cropping(1)),
    "Cropping2D": (_W, _cropping(2)),
    "UpSampling1D": (_W, _upsampling(1)),
    "UpSampling2D": (_W, _upsampling(2)),
    "Flatten": (_W, _flatten),
    "Reshape": (_W, _reshape),
    "Permute": (_W, _permute),
    "Dropout": (_W, _identity),
    "SpatialDropout1D": (_W, _identity),
    "SpatialDropout2D": (_W, _identity),
    "GaussianNoise": (_W, _identity),
    "GaussianDropout": (_W, _identity),
    "AlphaDropout": (_W, _identity),
    "ActivityRegularization": (_W, _identity),
    "Add": (_W, _merge(lambda xs: sum(xs[1:], xs[0]))),
    "Subtract": (_W, _merge(lambda xs: xs[0] - xs[1])),
    "Multiply": (_W, _merge(lambda xs: np.prod(np.stack(np.broadcast_arrays(*xs)), axis=0))),
    "Average": (_W, _merge(lambda xs: sum(xs[1:], xs[0]) / len(xs))),
    "Maximum": (_W, _merge(lambda xs: np.maximum.reduce(np.broadcast_arrays(*xs)))),
    "Minimum": (_W, _merge(lambda xs: np.minimum.reduce(np.broadcast_arrays(*xs)))),
    "Concatenate": (_W, _concatenate),
    "SimpleRNN": (_n_rnn, _rnn("SimpleRNN")),
    "LSTM": (_n_rnn, _rnn("LSTM")),
    "GRU": (_n_rnn, _rnn("GRU")),
    "Bidirectional": (_n_bidirectional, _bidirectional),
    "MultiHeadAttention": (lambda cfg: 4 * (1 + _use_bias(cfg)), _mha),
}


def refusal(class_name, cfg, keras2):
    """Why this layer's config cannot be computed here (a short reason), or None."""
    if cfg.get("data_format") == "channels_first":
        return "data_format='channels_first'"
    act_keys = [k for k in ("activation", "recurrent_activation") if k in cfg]
    for key in act_keys:
        name = _nn.activation_name(cfg[key])
        if name not in _nn.ACTIVATIONS:
            return f"{key}={name!r}"
    if class_name == "Embedding" and cfg.get("mask_zero"):
        return "mask_zero=True (masks are not propagated)"
    if class_name.endswith("Transpose") and cfg.get("output_padding") is not None:
        return "output_padding"
    if class_name in ("SimpleRNN", "LSTM", "GRU"):
        if cfg.get("time_major") or cfg.get("stateful"):
            return "time_major or stateful"
    if class_name == "Bidirectional":
        inner = cfg.get("layer", {})
        if inner.get("class_name") not in ("SimpleRNN", "LSTM", "GRU"):
            return f"wrapping {inner.get('class_name')}"
        if cfg.get("merge_mode", "concat") not in ("concat", "sum", "mul", "ave"):
            return f"merge_mode={cfg.get('merge_mode')!r}"
        return refusal(inner["class_name"], inner.get("config", {}), keras2)
    if class_name == "MultiHeadAttention":
        if cfg.get("use_gate") or cfg.get("sliding_window") or cfg.get("output_shape"):
            return "use_gate, sliding_window or output_shape"
        if cfg.get("attention_axes") not in (None, [1], (1,)):
            return f"attention_axes={cfg.get('attention_axes')}"
    if class_name == "EinsumDense" and "..." in cfg.get("equation", ""):
        return "an equation with '...'"
    if class_name in ("UpSampling1D", "UpSampling2D") and cfg.get("interpolation", "nearest") != "nearest":
        return f"interpolation={cfg.get('interpolation')!r}"
    return None
