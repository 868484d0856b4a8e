"""Per-class rules of structured removal, and the planner that applies them.

Pure: works on a :class:`~weightshare._keras._graph.Graph` and the stored shapes
of each layer's variables; imports only NumPy and the Keras vocabulary
(:mod:`weightshare._keras`). The planner never touches a file: it returns
which variable loses which indices along which axis, and it edits the config
dicts of the graph it is given (the caller passes a copy).

How the removed units travel
----------------------------
The *producer* (Dense, Conv1D/2D/3D) loses output units. Its output tensor
is followed to every layer that takes it. The state carried along an edge is
the tensor's last (channel) axis: its old length and the sorted indices that
are *kept*.

=====================================  ===================================================
class                                  rule
=====================================  ===================================================
Dense, Conv1D/2D/3D (consumer)         kernel loses the input rows / input channels
                                       (axis ``-2`` for Conv, ``0`` for Dense); stop
BatchNormalization (last axis)         gamma, beta, moving_mean, moving_variance lose the
                                       same entries; pass the tensor on
Activation (elementwise), ReLU,        no variables; pass the tensor on
LeakyReLU, ELU, ThresholdedReLU,
Dropout & noise layers, pooling,
ZeroPadding, Cropping, UpSampling,
Identity, GlobalAverage/MaxPooling
PReLU                                  alpha loses the same entries on its last axis
                                       (unless that axis is shared); pass on
DepthwiseConv1D/2D                     kernel ``[..., c, :]`` and bias entries
                                       ``c*m .. c*m+m-1`` (``m`` = depth multiplier);
                                       the output loses those channels; pass on
Flatten (channels-last)                channel ``c`` of ``C`` owns the features
                                       ``c, c+C, c+2C, ...`` (one per spatial position)
=====================================  ===================================================

Everything else that the tensor reaches blocks the removal with a message
that names the layer: merges, RNNs and wrappers, nested models, shared layers,
layers with several inputs, unknown classes, and model outputs.
"""

import math
from typing import NamedTuple

import numpy as np

from .._keras._graph import is_model
from .._keras._roles import quantized_or_lora

__all__ = ["Blocked", "Slice", "Plan", "plan_removal", "apply_slices", "PRODUCERS",
           "layer_roles", "ELEMENTWISE_ACTIVATIONS", "downstream_rows"]


class Blocked(ValueError):
    """The removal cannot be proven safe; the message names the blocking layer."""


class Slice(NamedTuple):
    """Keep the indices ``keep`` (sorted) along ``axis`` of a variable."""

    axis: int
    keep: np.ndarray


class Plan(NamedTuple):
    """What a removal changes.

    Attributes
    ----------
    producer : str
    n_units : int
        Units (or filters) of the producer before the removal.
    removed : tuple of int
        The removed unit indices, sorted.
    slices : dict
        ``(layer, variable index) -> Slice`` for every variable that shrinks.
    roles : dict
        ``(layer, variable index) -> role`` for the same keys.
    zero : dict
        ``(layer, variable index) -> (axis, indices)``: the consumer weights
        that read the removed units (setting them to zero gives the same
        function as the removal).
    edits : tuple of str
        The config changes, one readable line each.
    path : tuple of str
        The layers the removal crossed, producer first, consumers last.
    consumers : tuple of str
        The layers that lost input rows or channels.
    """

    producer: str
    n_units: int
    removed: tuple
    slices: dict
    roles: dict
    zero: dict
    edits: tuple
    path: tuple
    consumers: tuple


class _Tensor(NamedTuple):
    keep: np.ndarray   # kept indices of the last axis, sorted
    size: int          # old length of the last axis
    rank: object       # int or None


#: activations that act on each unit alone (removing a unit changes no other unit)
ELEMENTWISE_ACTIVATIONS = frozenset({
    "linear", "relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "elu", "selu", "gelu",
    "softplus", "softsign", "swish", "silu", "exponential", "leaky_relu", "mish", "hard_silu",
    "hard_swish", "log_sigmoid", "celu", "hard_tanh", "tanh_shrink", "soft_shrink", "hard_shrink",
    "squareplus", "sparse_plus", "sparse_sigmoid", "threshold"})

MERGES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
                    "Dot", "add", "subtract", "multiply", "average", "maximum", "minimum",
                    "concatenate", "dot"})
RECURRENT = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "TimeDistributed",
                       "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D", "CuDNNLSTM", "CuDNNGRU",
                       "LSTMCell", "GRUCell", "SimpleRNNCell", "StackedRNNCells"})
#: layers that hold no variables and act on each channel alone
PASS = frozenset({"Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
                  "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
                  "Identity", "ReLU", "LeakyReLU", "ELU", "ThresholdedReLU"})
SPATIAL = frozenset({"MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D",
                     "AveragePooling2D", "AveragePooling3D", "ZeroPadding1D", "ZeroPadding2D",
                     "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D",
                     "UpSampling2D", "UpSampling3D"})
GLOBAL = frozenset({"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"})
CONVS = {"Conv1D": 1, "Conv2D": 2, "Conv3D": 3}
DEPTHWISE = {"DepthwiseConv1D": 1, "DepthwiseConv2D": 2}
#: classes whose output units can be removed
PRODUCERS = frozenset({"Dense"} | set(CONVS))
#: why some well-known classes cannot be crossed
_WHY = {
    "Softmax": "normalizes across the units",
    "LayerNormalization": "normalizes across the units",
    "UnitNormalization": "normalizes across the units",
    "GroupNormalization": "normalizes across groups of units",
    "Masking": "computes its mask from all units",
    "Reshape": "moves units between axes",
    "Permute": "moves units between axes",
    "RepeatVector": "is not a per-channel layer",
    "Embedding": "takes indices, not units",
    "MultiHeadAttention": "mixes the units of several inputs",
    "Attention": "mixes the units of several inputs",
    "AdditiveAttention": "mixes the units of several inputs",
    "EinsumDense": "is not supported as a consumer",
    "SeparableConv1D": "is not supported as a consumer",
    "SeparableConv2D": "is not supported as a consumer",
    "Conv1DTranspose": "is not supported as a consumer",
    "Conv2DTranspose": "is not supported as a consumer",
    "Conv3DTranspose": "is not supported as a consumer",
    "Lambda": "runs arbitrary code",
}


# --------------------------------------------------------------------------- roles
def layer_roles(class_name, config, n_vars):
    """Roles of a layer's stored variables, or None when the class is not one of ours.

    ``ValueError`` when the count does not match what the config promises.
    """
    cfg = config or {}
    if class_name in PRODUCERS or class_name in DEPTHWISE:
        want = ["kernel"] + (["bias"] if cfg.get("use_bias", True) else [])
    elif class_name == "BatchNormalization":
        want = (["gamma"] if cfg.get("scale", True) else []) + \
               (["beta"] if cfg.get("center", True) else []) + ["moving_mean", "moving_variance"]
    elif class_name == "PReLU":
        want = ["alpha"]
    elif class_name in PASS or class_name in SPATIAL or class_name in GLOBAL or \
            class_name in ("Activation", "Flatten", "InputLayer"):
        want = []
    else:
        return None
    if n_vars != len(want):
        raise ValueError(f"holds {n_vars} variable(s), but a {class_name} with this config has "
                         f"{len(want)} ({', '.join(want) or 'none'})")
    return tuple(want)


def apply_slices(array, slices):
    """Return `array` with each :class:`Slice` applied in turn (a new array)."""
    out = np.asarray(array)
    for s in slices:
        out = np.take(out, s.keep, axis=s.axis)
    return np.ascontiguousarray(out)


# --------------------------------------------------------------------------- planner
class _Ctx:
    """Mutable state of one planning run."""

    def __init__(self, graph, shapes, producer):
        self.graph = graph
        self.shapes = shapes
        self.producer = producer
        self.slices, self.roles, self.zero = {}, {}, {}
        self.edits, self.path, self.consumers = [], [], []
        self._largest = None

    def refuse(self, reason):
        raise Blocked(f"cannot remove units of {self.producer!r}: {reason}")

    def check_size(self, layer, n, what):
        """Refuse a channel count `n` beyond the largest variable stored (before allocating).

        Every index array of the plan holds at most as many entries as some
        stored variable does, unless a shape is forged: a kernel declared with
        a zero dimension (which stores nothing, whatever its other dimensions
        say) or a recorded input shape that no variable matches.
        """
        if self._largest is None:
            self._largest = max((math.prod(s) for shapes in self.shapes.values() for s in shapes),
                                default=0)
        if n > self._largest:
            self.refuse(f"layer {layer.name!r} ({layer.class_name}) would carry {n} {what}, more "
                        f"than any variable of the file holds ({self._largest} values): a "
                        f"forged shape")

    def var_shapes(self, layer):
        return self.shapes.get(layer.name, ())

    def roles_of(self, layer):
        shapes = self.var_shapes(layer)
        try:
            roles = layer_roles(layer.class_name, layer.config, len(shapes))
        except ValueError as exc:
            self.refuse(f"layer {layer.name!r} ({layer.class_name}) {exc}")
        return roles

    def cut(self, layer, index, role, axis, tensor):
        key = (layer.name, index)
        self.slices[key] = self.slices.get(key, ()) + (Slice(axis, tensor.keep),)
        self.roles[key] = role

    def edit(self, text):
        self.edits.append(text)


def plan_removal(graph, shapes, producer, removed):
    """Plan the removal of `removed` units of layer `producer`.

    Parameters
    ----------
    graph : Graph
        Built from a *copy* of the model config; its layer dicts are edited.
    shapes : dict of str to tuple of tuple of int
        Stored variable shapes per layer name, in stored order.
    producer : str
    removed : sequence of int
        Sorted, unique, valid, not all units (validated by the caller).

    Returns
    -------
    Plan

    Raises
    ------
    Blocked
        Naming the layer that stops the removal.
    """
    ctx = _Ctx(graph, shapes, producer)
    layer = graph.layers[producer]
    if layer.class_name not in PRODUCERS:
        ctx.refuse(f"layer {producer!r} ({layer.class_name}) has no units to remove; removal "
                   f"starts at a Dense or Conv1D/2D/3D layer")
    if len(layer.calls) > 1:
        ctx.refuse(f"layer {producer!r} is shared (called {len(layer.calls)} times)")
    tensor, n_units = _produce(ctx, layer, removed)
    ctx.path.append(producer)
    _follow(ctx, producer, tensor)
    removed = tuple(int(i) for i in removed)
    return Plan(producer, n_units, removed, ctx.slices, ctx.roles, ctx.zero, tuple(ctx.edits),
                tuple(ctx.path), tuple(ctx.consumers))


def _check_activation(ctx, layer):
    act = layer.config.get("activation", "linear")
    if act is None:
        return
    if not isinstance(act, str) or act not in ELEMENTWISE_ACTIVATIONS:
        shown = act if isinstance(act, str) else type(act).__name__
        ctx.refuse(f"layer {layer.name!r} ({layer.class_name}) has activation {shown!r}, which "
                   f"is not known to act on each unit alone")


def _check_channels_last(ctx, layer):
    fmt = layer.config.get("data_format")
    if fmt not in (None, "channels_last"):
        ctx.refuse(f"layer {layer.name!r} ({layer.class_name}) uses data_format={fmt!r}; "
                   f"only channels_last is supported")


def _check_quantized(ctx, layer):
    if quantized_or_lora(layer.config):
        ctx.refuse(f"layer {layer.name!r} ({layer.class_name}) is quantized or has LoRA weights")


def _produce(ctx, layer, removed):
    roles = ctx.roles_of(layer)
    shapes = ctx.var_shapes(layer)
    cls, cfg = layer.class_name, layer.config
    _check_activation(ctx, layer)
    _check_quantized(ctx, layer)
    kernel = shapes[0]
    if cls == "Dense":
        key, rank = "units", ctx.graph.in_rank.get(layer.name)
        if len(kernel) != 2:
            ctx.refuse(f"layer {layer.name!r} (Dense) has a kernel of shape {kernel}, not 2-D")
    else:
        _check_channels_last(ctx, layer)
        key, rank = "filters", CONVS[cls] + 2
        if cfg.get("groups", 1) not in (1, None):
            ctx.refuse(f"layer {layer.name!r} ({cls}) has groups={cfg['groups']}; grouped "
                       f"convolutions tie filters to groups")
        if len(kernel) != CONVS[cls] + 2:
            ctx.refuse(f"layer {layer.name!r} ({cls}) has a kernel of shape {kernel}")
    n = kernel[-1]
    ctx.check_size(layer, n, "units")
    if key not in cfg:
        ctx.refuse(f"layer {layer.name!r} ({cls}) has no {key!r} in its config")
    if cfg.get(key) not in (None, n):
        ctx.refuse(f"layer {layer.name!r} ({cls}) has {key}={cfg.get(key)} but a kernel of "
                   f"shape {kernel}")
    keep = np.setdiff1d(np.arange(n, dtype=np.int64), np.asarray(removed, dtype=np.int64))
    tensor = _Tensor(keep, n, rank)
    ctx.cut(layer, 0, roles[0], len(kernel) - 1, tensor)
    if len(roles) > 1:
        if shapes[1] != (n,):
            ctx.refuse(f"layer {layer.name!r} ({cls}) has a bias of shape {shapes[1]}, not ({n},)")
        ctx.cut(layer, 1, roles[1], 0, tensor)
    cfg[key] = int(keep.size)
    ctx.edit(f"{layer.name}.{key}: {n} -> {keep.size}")
    return tensor, n


def _blocker(ctx, src, layer):
    """Refuse if `layer` (a consumer of `src`) is something removal cannot cross."""
    cls, name = layer.class_name, layer.name
    if any(src in hid for hid in layer.hidden):
        ctx.refuse(f"layer {name!r} ({cls}) uses the output of {src!r} in a way that removal "
                   f"cannot follow")
    if is_model(layer.entry):
        ctx.refuse(f"layer {name!r} is a nested model ({cls}); removal does not cross a model "
                   f"boundary")
    if cls in MERGES:
        ctx.refuse(f"merge layer {name!r} ({cls}) ties the units of {src!r} to its other "
                   f"inputs")
    if cls in RECURRENT:
        ctx.refuse(f"layer {name!r} ({cls}) is a recurrent layer or wrapper; removal does not "
                   f"cross it")
    if len(layer.calls) > 1:
        ctx.refuse(f"layer {name!r} ({cls}) is shared (called {len(layer.calls)} times)")
    if len(layer.calls) == 1 and len(layer.calls[0]) > 1:
        ctx.refuse(f"layer {name!r} ({cls}) takes several inputs")
    if cls not in _RULES:
        why = _WHY.get(cls, "is not a layer class that removal knows how to cross")
        ctx.refuse(f"layer {name!r} ({cls}) {why}")


def _consumers(ctx, name):
    """The consumers of `name`'s output that removal goes on to, or refuse."""
    graph = ctx.graph
    if name in graph.outputs:
        ctx.refuse(f"the output of {name!r} is a model output; removing units would change the "
                   f"model's output shape")
    consumers = graph.consumers.get(name, ())
    if not consumers:
        ctx.refuse(f"layer {name!r} has no consumer that removal can prove")
    if len(set(consumers)) != len(consumers):
        seen = set()
        dup = next(c for c in consumers if c in seen or seen.add(c))
        ctx.refuse(f"layer {dup!r} takes the output of {name!r} more than once")
    return consumers


def _follow(ctx, name, tensor):
    """Apply the rules to every layer the units of `name` reach, depth first in config order.

    On a stack: a chain of thousands of layers must not recurse. A layer reached
    twice (a cycle in the config's graph; a merge is refused before) is refused.
    """
    graph = ctx.graph
    reached = {name}
    stack = [(name, tensor, iter(_consumers(ctx, name)))]
    while stack:
        name, tensor, todo = stack[-1]
        cname = next(todo, None)
        if cname is None:
            stack.pop()
            continue
        layer = graph.layers[cname]
        _blocker(ctx, name, layer)
        if cname in reached:
            ctx.refuse(f"layer {cname!r} is reached twice from {ctx.producer!r}: the model "
                       f"config's graph has a cycle")
        reached.add(cname)
        _update_input_shape(ctx, layer, name, tensor)
        ctx.path.append(cname)
        out = _RULES[layer.class_name](ctx, layer, tensor)
        if out is None:
            ctx.consumers.append(cname)
        else:
            stack.append((cname, out, iter(_consumers(ctx, cname))))


def _update_input_shape(ctx, layer, src, tensor):
    new = int(tensor.keep.size)
    bc = layer.entry.get("build_config")
    if isinstance(bc, dict) and isinstance(bc.get("input_shape"), list) and bc["input_shape"]:
        shape = bc["input_shape"]
        last = shape[-1]
        if isinstance(last, int):
            if last != tensor.size:
                ctx.refuse(f"layer {layer.name!r} records input shape {shape}, but {src!r} gives "
                           f"{tensor.size} units")
            shape[-1] = new
            ctx.edit(f"{layer.name}.build_config.input_shape[-1]: {last} -> {new}")
    n_shapes = 0
    for hist_shape in _keras_tensor_shapes(layer.entry.get("inbound_nodes"), src):
        if hist_shape and isinstance(hist_shape[-1], int):
            hist_shape[-1] = new
            n_shapes += 1
    if n_shapes:
        ctx.edit(f"{layer.name}.inbound_nodes: shape of {src!r} [-1] -> {new}")


def _keras_tensor_shapes(obj, src):
    """The ``shape`` lists of the ``__keras_tensor__`` dicts of `src` in `obj`, in order."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if item.get("class_name") == "__keras_tensor__":
                cfg = item.get("config") or {}
                hist = cfg.get("keras_history")
                if isinstance(hist, list) and hist and hist[0] == src \
                        and isinstance(cfg.get("shape"), list):
                    yield cfg["shape"]
                continue
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))


# --------------------------------------------------------------------------- rules
def _pass(ctx, layer, tensor):
    ctx.roles_of(layer)
    return tensor


def _spatial(ctx, layer, tensor):
    _check_channels_last(ctx, layer)
    ctx.roles_of(layer)
    return tensor


def _global(ctx, layer, tensor):
    _check_channels_last(ctx, layer)
    ctx.roles_of(layer)
    rank = tensor.rank if layer.config.get("keepdims") else 2
    return tensor._replace(rank=rank)


def _activation(ctx, layer, tensor):
    _check_activation(ctx, layer)
    ctx.roles_of(layer)
    return tensor


def _batchnorm(ctx, layer, tensor):
    roles = ctx.roles_of(layer)
    axis = layer.config.get("axis", -1)
    if isinstance(axis, list) and len(axis) == 1:
        axis = axis[0]
    last = axis == -1 or (isinstance(axis, int) and tensor.rank is not None and axis == tensor.rank - 1)
    if not last:
        ctx.refuse(f"layer {layer.name!r} (BatchNormalization) normalizes axis {axis!r}, which "
                   f"is not provably the units axis")
    for i, (role, shape) in enumerate(zip(roles, ctx.var_shapes(layer))):
        if shape != (tensor.size,):
            ctx.refuse(f"layer {layer.name!r} (BatchNormalization) has {role} of shape {shape}, "
                       f"not ({tensor.size},)")
        ctx.cut(layer, i, role, 0, tensor)
    return tensor


def _prelu(ctx, layer, tensor):
    ctx.roles_of(layer)
    shape = ctx.var_shapes(layer)[0]
    if shape and shape[-1] == tensor.size:
        ctx.cut(layer, 0, "alpha", len(shape) - 1, tensor)
    elif not shape or shape[-1] != 1:
        ctx.refuse(f"layer {layer.name!r} (PReLU) has alpha of shape {shape}")
    return tensor


def _depthwise(ctx, layer, tensor):
    _check_channels_last(ctx, layer)
    _check_activation(ctx, layer)
    roles = ctx.roles_of(layer)
    shapes = ctx.var_shapes(layer)
    kernel = shapes[0]
    if len(kernel) != DEPTHWISE[layer.class_name] + 2 or kernel[-2] != tensor.size:
        ctx.refuse(f"layer {layer.name!r} ({layer.class_name}) has a kernel of shape {kernel}; "
                   f"expected {tensor.size} input channels")
    dm = kernel[-1]
    ctx.check_size(layer, tensor.size * dm, "channels")
    ctx.cut(layer, 0, roles[0], len(kernel) - 2, tensor)
    keep = (tensor.keep[:, None] * dm + np.arange(dm)).ravel()
    out = _Tensor(keep, tensor.size * dm, tensor.rank)
    if len(roles) > 1:
        if shapes[1] != (tensor.size * dm,):
            ctx.refuse(f"layer {layer.name!r} ({layer.class_name}) has a bias of shape "
                       f"{shapes[1]}")
        ctx.cut(layer, 1, roles[1], 0, out)
    return out


def _flatten(ctx, layer, tensor):
    _check_channels_last(ctx, layer)
    ctx.roles_of(layer)
    c = tensor.size
    spatial = _recorded_spatial(layer, c)
    rows = downstream_rows(ctx.graph, ctx.shapes, layer.name)
    if spatial is None:
        if rows is None or rows % c:
            ctx.refuse(f"cannot tell how many positions {layer.name!r} (Flatten) flattens: no "
                       f"recorded input shape and no consumer whose input length is a multiple "
                       f"of {c}")
        spatial = rows // c
    elif rows is not None and rows != spatial * c:
        ctx.refuse(f"layer {layer.name!r} (Flatten) records {spatial} positions of {c} channels, "
                   f"but its consumer takes {rows} features")
    ctx.check_size(layer, spatial * c, "features")
    keep = (np.arange(spatial, dtype=np.int64)[:, None] * c + tensor.keep[None, :]).ravel()
    return _Tensor(keep, spatial * c, 2)


def _recorded_spatial(layer, channels):
    bc = layer.entry.get("build_config")
    shape = bc.get("input_shape") if isinstance(bc, dict) else None
    if not isinstance(shape, list) or len(shape) < 3:
        return None
    dims = shape[1:-1]
    if not all(isinstance(d, int) for d in dims) or shape[-1] != channels:
        return None
    return int(np.prod(dims))


def downstream_rows(graph, shapes, name):
    """Input length of the first layer with variables after `name` (through pass-through layers).

    None when that cannot be told (no such layer, or branches that disagree).
    """
    found = set()
    stack = list(graph.consumers.get(name, ()))
    seen = set()
    while stack:
        cname = stack.pop()
        if cname in seen:
            continue
        seen.add(cname)
        layer = graph.layers[cname]
        cls, vs = layer.class_name, shapes.get(cname, ())
        if cls == "Dense" and vs:
            found.add(vs[0][0])
        elif (cls in CONVS or cls in DEPTHWISE) and vs:
            found.add(vs[0][-2])
        elif cls == "BatchNormalization" and vs:
            found.add(vs[-1][0])
        elif cls in PASS or cls == "Activation" or (cls == "PReLU" and vs and vs[0][-1] == 1):
            stack.extend(graph.consumers.get(cname, ()))
        elif cls == "PReLU" and vs:
            found.add(vs[0][-1])
        else:
            return None
    return found.pop() if len(found) == 1 else None


def _consumer(ctx, layer, tensor):
    roles = ctx.roles_of(layer)
    kernel = ctx.var_shapes(layer)[0]
    cls = layer.class_name
    _check_quantized(ctx, layer)
    if cls == "Dense":
        axis = 0
        if len(kernel) != 2:
            ctx.refuse(f"layer {layer.name!r} (Dense) has a kernel of shape {kernel}, not 2-D")
    else:
        _check_channels_last(ctx, layer)
        if layer.config.get("groups", 1) not in (1, None):
            ctx.refuse(f"layer {layer.name!r} ({cls}) has groups={layer.config['groups']}")
        if len(kernel) != CONVS[cls] + 2:
            ctx.refuse(f"layer {layer.name!r} ({cls}) has a kernel of shape {kernel}")
        axis = len(kernel) - 2
    if kernel[axis] != tensor.size:
        ctx.refuse(f"layer {layer.name!r} ({cls}) has a kernel of shape {kernel}; expected "
                   f"{tensor.size} inputs on axis {axis}")
    ctx.cut(layer, 0, roles[0], axis, tensor)
    gone = np.setdiff1d(np.arange(tensor.size, dtype=np.int64), tensor.keep)
    ctx.zero[(layer.name, 0)] = (axis, gone)
    return None


_RULES = {"Dense": _consumer, "BatchNormalization": _batchnorm, "Activation": _activation,
          "PReLU": _prelu, "Flatten": _flatten}
_RULES.update({c: _consumer for c in CONVS})
_RULES.update({c: _depthwise for c in DEPTHWISE})
_RULES.update({c: _pass for c in PASS})
_RULES.update({c: _spatial for c in SPATIAL})
_RULES.update({c: _global for c in GLOBAL})
