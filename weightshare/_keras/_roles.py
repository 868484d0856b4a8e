"""Which variable of a Keras layer is which: the per-class storage order.

A Keras 3 weights store names its datasets ``0, 1, 2, ...`` in the order the
layer saves its variables; the role of each (kernel, bias, ...) comes from
the layer class and its config flags. Legacy HDF5 files name the weights, so
their role is the last component of the weight name.

The kind of a role groups them for targeting: ``"kernel"`` covers every
kernel-like weight (Dense/Conv kernels, depthwise and pointwise kernels,
recurrent kernels, embeddings, attention projections).

A class whose variable order is not in the table (a custom layer) gets the
roles ``var0, var1, ...`` of kind ``"other"``: weightshare does not guess
which of its tensors is a kernel, so default jobs leave it alone.
"""

import re

__all__ = ["store_roles", "kind_of", "class_from_group", "quantization_of", "quantized_or_lora",
           "KERNEL_ROLES",
           "output_axis", "OUTPUT_AXIS_DOC", "PLAIN_CLASSES"]

KERNEL_ROLES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")
_KINDS = {**{r: "kernel" for r in KERNEL_ROLES},
          "bias": "bias", "gamma": "normalization", "beta": "normalization",
          "moving_mean": "normalization", "moving_variance": "normalization"}

# class -> (required roles, optional roles with the config flag that turns each on)
_DENSE = (("kernel",), (("bias", "use_bias"),))
_TABLE = {
    "Dense": _DENSE,
    "EinsumDense": (("kernel",), (("bias", "bias_axes"),)),
    "Embedding": (("embeddings",), ()),
    "BatchNormalization": ((), (("gamma", "scale"), ("beta", "center"))),
    "LayerNormalization": ((), (("gamma", "scale"), ("beta", "center"))),
    "GroupNormalization": ((), (("gamma", "scale"), ("beta", "center"))),
    "PReLU": (("alpha",), ()),
    "SeparableConv1D": (("depthwise_kernel", "pointwise_kernel"), (("bias", "use_bias"),)),
    "SeparableConv2D": (("depthwise_kernel", "pointwise_kernel"), (("bias", "use_bias"),)),
    "DepthwiseConv1D": (("kernel",), (("bias", "use_bias"),)),
    "DepthwiseConv2D": (("kernel",), (("bias", "use_bias"),)),
}
for _c in ("Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
           "Convolution1D", "Convolution2D", "Convolution3D"):
    _TABLE[_c] = _DENSE
_TAIL = {"BatchNormalization": ("moving_mean", "moving_variance")}
#: classes whose variables sit on the layer itself (no cells or sub-layers)
PLAIN_CLASSES = frozenset(_TABLE)
_CELL = (("kernel", "recurrent_kernel"), (("bias", "use_bias"),))
_RNN = {"LSTM", "GRU", "SimpleRNN", "LSTMCell", "GRUCell", "SimpleRNNCell", "ConvLSTM1D",
        "ConvLSTM2D", "ConvLSTM3D"}


def _snake(name):
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


_BY_SNAKE = {_snake(c): c for c in list(_TABLE) + sorted(_RNN) + ["MultiHeadAttention",
                                                                    "Bidirectional"]}


def class_from_group(group_name):
    """The Keras class a weights-store group name stands for (``dense_3`` -> ``Dense``), or None."""
    return _BY_SNAKE.get(re.sub(r"_\d+$", "", group_name))


def kind_of(role):
    """``"kernel"``, ``"bias"``, ``"normalization"`` or ``"other"``."""
    return _KINDS.get(role, "other")


#: quantization modes of Keras 3 dtype policies (``QuantizedDTypePolicy`` and subclasses)
_QUANTIZED_MODES = ("int8", "int4", "float8", "gptq", "awq")


def quantization_of(config):
    """The quantization mode of a layer config (``"int8"``, ...), or None for a float layer.

    Keras 3.15 writes ``{"class_name": "QuantizedDTypePolicy", "config": {"mode":
    "int8", "source_name": "float32"}}`` (``GPTQDTypePolicy`` and
    ``AWQDTypePolicy`` too carry a ``mode``); earlier Keras 3 releases wrote
    policy names such as ``"int8_from_float32"``. The one test of "quantized":
    the readers refuse such a layer, and :func:`quantized_or_lora` builds on it.
    """
    dtype = config.get("dtype") if isinstance(config, dict) else None
    if isinstance(dtype, str):
        name = dtype
    elif isinstance(dtype, dict):
        inner = dtype.get("config") if isinstance(dtype.get("config"), dict) else {}
        mode = inner.get("mode")
        if isinstance(mode, str) and mode:
            return mode
        if "Quantiz" in str(dtype.get("class_name", "")):
            return str(dtype.get("class_name"))
        name = inner.get("name", "")
    else:
        return None
    if isinstance(name, str):
        for m in _QUANTIZED_MODES:
            if name == m or name.startswith(m + "_") or name.startswith(m + "/"):
                return name
    return None


def quantized_or_lora(config):
    """Why a layer config is not a plain float layer, or None: quantization or LoRA.

    The :func:`quantization_of` mode of a quantized layer;
    ``"quantization_config"`` when the layer carries quantizer settings (Keras
    quantizes with them when the layer is built under a quantized policy);
    ``"lora"`` when it has a ``lora_rank`` (low-rank adapters beside its
    kernel). Removal refuses all three, since shrinking the float variables
    does not shrink what these add.

    Examples
    --------
    >>> quantized_or_lora({"units": 4, "quantization_config": None}) is None
    True
    >>> quantized_or_lora({"units": 4, "lora_rank": 2, "lora_alpha": 2})
    'lora'
    """
    cfg = config if isinstance(config, dict) else {}
    mode = quantization_of(cfg)
    if mode:
        return mode
    if cfg.get("quantization_config"):
        return "quantization_config"
    if cfg.get("lora_rank"):
        return "lora"
    return None


def _generic(shapes):
    return [f"var{i}" for i in range(len(shapes))]


def store_roles(layer_class, config, shapes, sub=None, tf_keras=False):
    """Roles of the datasets ``vars/0 .. vars/n-1`` of a layer (or of its sub-object `sub`).

    Parameters
    ----------
    layer_class : str or None
    config : dict
        The layer's config (flags such as use_bias); may be empty.
    shapes : list of tuple
        The stored shapes, in order.
    sub : str, optional
        The attribute path of a sub-object (``cell``, ``forward_layer/cell``,
        ``query_dense`` ...).
    tf_keras : bool
        The file was written by tf-keras, which names a depthwise kernel
        ``depthwise_kernel``.

    Returns
    -------
    list of str or None
        One role per dataset; ``var<i>`` for a class not in the table; None
        when a known class stores a number of variables its table does not
        allow (a quantized or custom variant: the caller refuses it).
    """
    n = len(shapes)
    if sub is not None:
        last = sub.rsplit("/", 1)[-1].lstrip("_")
        if last == "cell" or layer_class in _RNN:
            required, optional = _CELL
        elif last.endswith("_dense") or layer_class == "MultiHeadAttention":
            required, optional = _DENSE
        else:
            return _generic(shapes)
    elif layer_class in _TABLE:
        required, optional = _TABLE[layer_class]
    else:
        return _generic(shapes)
    tail = _TAIL.get(layer_class, ()) if sub is None else ()
    n_opt = n - len(required) - len(tail)
    if n_opt < 0 or n_opt > len(optional):
        return None
    if n_opt == len(optional):
        chosen = [r for r, _ in optional]
    elif n_opt == 0:
        chosen = []
    else:   # some optional roles are off: ask the config flags
        chosen = [r for r, flag in optional if config.get(flag, True)]
        if len(chosen) != n_opt:
            return list(required) + [f"var{i}" for i in range(len(required), n - len(tail))] + list(tail)
    roles = list(required) + chosen + list(tail)
    if tf_keras and layer_class in ("DepthwiseConv1D", "DepthwiseConv2D") and roles[0] == "kernel":
        roles[0] = "depthwise_kernel"
    return roles


#: the per-channel axis of each kind of kernel, as documented (docs/files.md, cluster_file)
OUTPUT_AXIS_DOC = (
    ("Dense, EinsumDense, Conv1D/2D/3D, SeparableConv pointwise_kernel", "last (output units/filters)"),
    ("Conv1D/2D/3DTranspose kernel (k..., filters, in)", "-2 (filters)"),
    ("DepthwiseConv kernel, SeparableConv depthwise_kernel (k..., in, multiplier)", "-2 (input channel)"),
    ("LSTM/GRU/SimpleRNN kernel and recurrent_kernel", "last (units x gates)"),
    ("Embedding embeddings (input_dim, output_dim)", "last (output_dim)"),
    ("MultiHeadAttention query/key/value (dim, heads, key_dim), output (heads, dim, out)", "last"),
    ("1-D tensors", "0 (every entry is its own channel)"),
)


def output_axis(layer_class, role, ndim):
    """The axis of a kernel that indexes the layer's output channels (for per-channel clustering).

    See :data:`OUTPUT_AXIS_DOC`.
    """
    if ndim < 2:
        return 0
    if role == "depthwise_kernel" or (layer_class or "").startswith("Depthwise"):
        return ndim - 2
    if (layer_class or "").endswith("Transpose"):
        return ndim - 2
    return ndim - 1
