"""The layer graph of a Keras model, read from its config (no Keras, no h5py).

Accepts the top-level model dict of every config flavour weightshare meets:

- Keras 3 ``config.json`` and Keras 3 legacy ``model_config`` (Functional
  ``inbound_nodes`` as ``{"args": [...], "kwargs": {...}}`` holding
  ``__keras_tensor__`` dicts with a ``keras_history``);
- tf-keras / Keras 2 ``model_config`` and tf-keras ``.keras`` configs
  (``inbound_nodes`` as lists of ``[layer, node_index, tensor_index, kwargs]``);
- Sequential configs (with or without an ``InputLayer`` entry; Keras 2.0 kept
  the layer list directly under ``config``).

The calls of each layer are read by :func:`._nodes.layer_calls`, the parser
the forward pass uses too. Only the top-level container is a graph here: a
nested model is one node (removal refuses to cross it). Inputs are the
tensors a call states unambiguously (:attr:`._nodes.Call.tensors`), and every
layer name mentioned anywhere else in a call (for example in Keras 2 call
kwargs) is kept as a *hidden* input, so that a use the parser does not
understand blocks the removal instead of being missed.
"""

from typing import NamedTuple

from ._names import MODEL_CLASSES, layer_name
from ._nodes import layer_calls

__all__ = ["Layer", "Graph", "build_graph", "layer_list", "layer_name", "is_model",
           "find_nested"]


class Layer(NamedTuple):
    """One entry of the top-level ``layers`` list.

    ``entry`` is the layer's dict *in the config object the graph was built
    from* (edits to it are edits to that config). ``calls`` holds, per call
    of the layer, the names of the layers whose outputs it takes; ``hidden``
    the other layer names mentioned in that call; ``refs`` per call the
    ``(layer, node_index, tensor_index)`` triples.
    """

    name: str
    class_name: str
    entry: dict
    calls: tuple
    hidden: tuple
    refs: tuple

    @property
    def config(self):
        cfg = self.entry.get("config")
        return cfg if isinstance(cfg, dict) else {}


class Graph(NamedTuple):
    """The top-level layer graph.

    Attributes
    ----------
    kind : {"Sequential", "Functional"}
    layers : dict of str to Layer, in config order
    consumers : dict of str to tuple of str
        For each layer, the layers that take its output (one entry per call).
    outputs : frozenset of str
        Layers whose output is a model output.
    inputs : frozenset of str
        ``InputLayer`` names.
    in_rank : dict of str to int or None
        Rank (batch axis included) of each layer's (first) input, when known.
    """

    kind: str
    layers: dict
    consumers: dict
    outputs: frozenset
    inputs: frozenset
    in_rank: dict


def is_model(entry):
    """True for a nested model (Sequential, Functional, Model, or any entry with its own layers)."""
    cfg = entry.get("config")
    return entry.get("class_name") in MODEL_CLASSES or (isinstance(cfg, dict) and "layers" in cfg)


def layer_list(model_config):
    """The ``layers`` list of a model dict, or raise ``ValueError``."""
    cfg = model_config.get("config") if isinstance(model_config, dict) else None
    if isinstance(cfg, list):  # Keras 2.0 Sequential
        return cfg
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return cfg["layers"]
    raise ValueError("the model config has no layer list")


_END = object()


def find_nested(model_config, name):
    """Names of the nested models (outermost first) that hold a layer called `name`, or None.

    Depth first, in config order, on a stack (no recursion per nested model).
    """
    stack = [(iter(_safe_layers(model_config)), ())]
    while stack:
        entries, path = stack[-1]
        entry = next(entries, _END)
        if entry is _END:
            stack.pop()
        elif isinstance(entry, dict) and is_model(entry):
            inner = layer_name(entry) or "?"
            if any(isinstance(e, dict) and layer_name(e) == name for e in _safe_layers(entry)):
                return path + (inner,)
            stack.append((iter(_safe_layers(entry)), path + (inner,)))
    return None


def _safe_layers(entry):
    try:
        return layer_list(entry)
    except ValueError:
        return []


# --------------------------------------------------------------------------- parsing calls
def _strings(obj, out):
    """Add every string anywhere in `obj` to the set `out` (a stack, no recursion)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.add(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return out


def _parse_call(node, call, names):
    """(inputs, hidden, refs) of one inbound node and its :class:`~._nodes.Call`."""
    refs = call.tensors
    inputs = tuple(r[0] for r in refs)
    hidden = frozenset((_strings(node, set()) & names) - set(inputs))
    return inputs, hidden, refs


# --------------------------------------------------------------------------- ranks
_SAME_RANK = frozenset({
    "Dense", "BatchNormalization", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "SpatialDropout3D", "GaussianNoise", "GaussianDropout", "AlphaDropout", "Activation", "ReLU",
    "LeakyReLU", "ELU", "ThresholdedReLU", "PReLU", "Softmax", "Conv1D", "Conv2D", "Conv3D",
    "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv1D", "SeparableConv2D",
    "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose", "MaxPooling1D", "MaxPooling2D",
    "MaxPooling3D", "AveragePooling1D", "AveragePooling2D", "AveragePooling3D", "ZeroPadding1D",
    "ZeroPadding2D", "ZeroPadding3D", "Cropping1D", "Cropping2D", "Cropping3D", "UpSampling1D",
    "UpSampling2D", "UpSampling3D", "LayerNormalization", "ActivityRegularization", "Identity",
    "Masking", "UnitNormalization", "EinsumDense"})
_GLOBAL = frozenset({"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                     "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D"})


def _shape_rank(shape):
    if isinstance(shape, list) and all(d is None or isinstance(d, int) for d in shape):
        return len(shape)
    return None


def _input_layer_rank(cfg):
    for key in ("batch_shape", "batch_input_shape"):
        r = _shape_rank(cfg.get(key))
        if r is not None:
            return r
    shape = cfg.get("shape")
    if isinstance(shape, list):
        return len(shape) + 1
    return None


def _out_rank(layer, in_rank):
    cls, cfg = layer.class_name, layer.config
    if cls == "InputLayer":
        return _input_layer_rank(cfg)
    if in_rank is None:
        return None
    if cls in _SAME_RANK:
        return in_rank
    if cls == "Flatten":
        return 2
    if cls in _GLOBAL:
        return in_rank if cfg.get("keepdims") else 2
    if cls == "Embedding":
        return in_rank + 1
    if cls == "Reshape" and isinstance(cfg.get("target_shape"), list):
        return len(cfg["target_shape"]) + 1
    return None


def _recorded_in_rank(layer):
    bc = layer.entry.get("build_config")
    if isinstance(bc, dict):
        return _shape_rank(bc.get("input_shape"))
    return None


# --------------------------------------------------------------------------- building
def build_graph(model_config):
    """Build the :class:`Graph` of a top-level model dict; ``ValueError`` if it is not one.

    Examples
    --------
    >>> cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
    ...     {"class_name": "InputLayer", "config": {"name": "in", "batch_shape": [None, 8]}},
    ...     {"class_name": "Dense", "config": {"name": "fc1", "units": 4}},
    ...     {"class_name": "Dense", "config": {"name": "head", "units": 2}}]}}
    >>> g = build_graph(cfg)
    >>> g.consumers["fc1"], sorted(g.outputs), g.in_rank["head"]
    (('head',), ['head'], 2)
    """
    if not isinstance(model_config, dict):
        raise ValueError("the model config is not a JSON object")
    kind = model_config.get("class_name")
    entries = layer_list(model_config)
    if not all(isinstance(e, dict) for e in entries):
        raise ValueError("the model config's layer list holds a non-object entry")
    names = [layer_name(e) for e in entries]
    if any(n is None for n in names):
        raise ValueError("a layer in the model config has no name")
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"the model config repeats layer names: {dup}")
    if kind == "Sequential":
        return _sequential(model_config, entries, names)
    if kind in ("Functional", "Model") or "input_layers" in (model_config.get("config") or {}):
        return _functional(model_config, entries, names)
    raise ValueError(f"the top-level model class {kind!r} is neither Sequential nor Functional")


def _sequential(model_config, entries, names):
    layers, consumers, inputs = {}, {}, set()
    prev = None
    first_rank = None
    top = model_config.get("config") if isinstance(model_config.get("config"), dict) else {}
    for entry, name in zip(entries, names):
        cls = entry.get("class_name")
        if cls == "InputLayer":
            inputs.add(name)
            calls, refs = (), ()
        else:
            calls = ((prev,),) if prev else ((),)
            refs = (((prev, 0, 0),),) if prev else ((),)
            if first_rank is None and prev is None:
                cfg = entry.get("config") if isinstance(entry.get("config"), dict) else {}
                first_rank = _input_layer_rank(cfg)
        hidden = tuple(frozenset() for _ in calls)
        layers[name] = Layer(name, cls, entry, calls, hidden, refs)
        consumers.setdefault(name, ())
        if prev is not None and cls != "InputLayer":
            consumers[prev] = consumers[prev] + (name,)
        if cls != "InputLayer" or prev is None:
            prev = name
    last = [n for n in names if layers[n].class_name != "InputLayer"]
    outputs = frozenset(last[-1:])
    if first_rank is None:
        first_rank = _shape_rank(top.get("build_input_shape"))
    if first_rank is None:
        bc = model_config.get("build_config")
        first_rank = _shape_rank(bc.get("input_shape")) if isinstance(bc, dict) else None
    in_rank = _propagate_ranks(layers, first_rank)
    return Graph("Sequential", layers, consumers, outputs, frozenset(inputs), in_rank)


def _functional(model_config, entries, names):
    nameset = set(names)
    layers, consumers, inputs = {}, {n: () for n in names}, set()
    for entry, name in zip(entries, names):
        cls = entry.get("class_name")
        nodes = entry.get("inbound_nodes") or []
        parsed = [_parse_call(node, call, nameset)
                  for node, call in zip(nodes, layer_calls(entry))]
        calls = tuple(p[0] for p in parsed)
        hidden = tuple(p[1] for p in parsed)
        refs = tuple(p[2] for p in parsed)
        for call, hid in zip(calls, hidden):
            for src in call:
                if src not in consumers:
                    raise ValueError(f"layer {name!r} takes the output of unknown layer {src!r}")
                consumers[src] = consumers[src] + (name,)
            for src in hid:
                consumers[src] = consumers[src] + (name,)
        if cls == "InputLayer":
            inputs.add(name)
        layers[name] = Layer(name, cls, entry, calls, hidden, refs)
    top = model_config.get("config") or {}
    outputs = frozenset(_strings(top.get("output_layers"), set()) & nameset)
    in_rank = _propagate_ranks(layers, None)
    return Graph("Functional", layers, consumers, outputs, frozenset(inputs), in_rank)


def _propagate_ranks(layers, first_rank):
    out_rank, in_rank = {}, {}
    for name, layer in layers.items():  # config order is topological in both flavours
        if layer.calls and layer.calls[0]:
            r = out_rank.get(layer.calls[0][0])
        elif layer.class_name == "InputLayer":
            r = None
        else:
            r = first_rank
        recorded = _recorded_in_rank(layer)
        in_rank[name] = recorded if recorded is not None else r
        out_rank[name] = _out_rank(layer, in_rank[name])
    return in_rank
