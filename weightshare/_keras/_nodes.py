"""The calls of a layer in a Functional config: its ``inbound_nodes``, in both formats (no I/O).

A Functional config lists, per layer, one inbound node per call of the layer.
A tensor passed to a call is a reference ``(layer, node_index, tensor_index)``:
output ``tensor_index`` of call ``node_index`` of ``layer``.

- Keras 3 writes a node as ``{"args": [...], "kwargs": {...}}``, each tensor as a
  ``__keras_tensor__`` dict whose ``keras_history`` is the reference; a tensor can
  sit anywhere in that structure (a merge layer takes a list of them);
- tf-keras / Keras 2 writes a node as ``[[layer, node_index, tensor_index, kwargs],
  ...]``, one entry per positional tensor; a tensor among the kwargs is a plain
  ``[layer, node_index, tensor_index]`` list.

The forward pass (:mod:`weightshare.forward`) and the layer graph of removal
(:mod:`._graph`) read calls through :func:`layer_calls` and :func:`io_refs`.
"""

from typing import NamedTuple

from ._names import MODEL_CLASSES, layer_name

__all__ = ["Call", "layer_calls", "tensor_ref", "io_refs", "node_offset", "is_keras2"]

_TENSOR = "__keras_tensor__"


class Call(NamedTuple):
    """One call of a layer: one entry of its ``inbound_nodes``.

    Attributes
    ----------
    args : tuple of (str, int, int)
        The positional tensors, in order (a list argument, as a merge layer
        takes, flattened).
    kwargs : dict
        The keyword arguments; a value that is one tensor is its reference
        (a tuple), any other value is as written.
    tensors : tuple of (str, int, int)
        The references the node states unambiguously: every
        ``__keras_tensor__`` of a Keras 3 node, wherever it sits (keyword
        arguments and nested structures included); the positional entries of
        a Keras 2 node (its keyword tensors are plain lists, which a keyword
        argument could also hold as data).
    """

    args: tuple
    kwargs: dict
    tensors: tuple


def _index(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _triple(seq):
    """``(layer, node_index, tensor_index)`` of a 3-sequence of str, int, int, or None."""
    if isinstance(seq, (list, tuple)) and len(seq) == 3 and isinstance(seq[0], str) \
            and _index(seq[1]) and _index(seq[2]):
        return (seq[0], seq[1], seq[2])
    return None


def tensor_ref(obj, lists=False):
    """The reference of a tensor written in a node, or None when `obj` is not one.

    A ``__keras_tensor__`` dict (Keras 3) is one; with ``lists=True`` a plain
    ``[layer, node_index, tensor_index]`` list (a Keras 2 keyword tensor) is one
    too. ``ValueError`` (``"has a __keras_tensor__ without ..."``, completed by
    :func:`layer_calls` with the layer and node) for a ``__keras_tensor__``
    without a valid ``keras_history``.

    Examples
    --------
    >>> tensor_ref({"class_name": "__keras_tensor__", "config": {"keras_history": ["d", 1, 0]}})
    ('d', 1, 0)
    >>> tensor_ref(["d", 0, 0]), tensor_ref(["d", 0, 0], lists=True)
    (None, ('d', 0, 0))
    """
    if isinstance(obj, dict) and obj.get("class_name") == _TENSOR:
        cfg = obj.get("config")
        ref = _triple(cfg.get("keras_history")) if isinstance(cfg, dict) else None
        if ref is None:
            raise ValueError("has a __keras_tensor__ without a keras_history [layer, node_index, "
                             "tensor_index]")
        return ref
    return _triple(obj) if lists else None


def _flat_args(obj, out):
    """References of the tensors of positional arguments, lists flattened, in order."""
    ref = tensor_ref(obj)
    if ref is not None:
        out.append(ref)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _flat_args(item, out)
    return out


def _all_tensors(obj, out):
    """References of every ``__keras_tensor__`` in `obj`, in order."""
    ref = tensor_ref(obj)
    if ref is not None:
        out.append(ref)
    elif isinstance(obj, dict):
        for value in obj.values():
            _all_tensors(value, out)
    elif isinstance(obj, (list, tuple)):
        for item in obj:
            _all_tensors(item, out)
    return out


def _keyword(value, lists):
    ref = tensor_ref(value, lists)
    return value if ref is None else ref


def _keras3_call(node):
    kwargs = node.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        raise ValueError("has kwargs that are not an object")
    args = tuple(_flat_args(node.get("args") or [], []))
    return Call(args, {k: _keyword(v, False) for k, v in kwargs.items()},
                tuple(_all_tensors(node, [])))


def _keras2_call(node):
    args, kwargs = [], {}
    for entry in node:
        ref = _triple(entry[:3]) if isinstance(entry, list) and len(entry) in (3, 4) else None
        extra = entry[3] if ref is not None and len(entry) == 4 else None
        if ref is None or not (extra is None or isinstance(extra, dict)):
            raise ValueError(f"has an entry {entry!r} that is not [layer, node_index, "
                             "tensor_index, kwargs]")
        args.append(ref)
        kwargs.update({k: _keyword(v, True) for k, v in (extra or {}).items()})
    return Call(tuple(args), kwargs, tuple(args))


def node_call(node):
    """The :class:`Call` of one inbound node, in either format; ``ValueError`` if it is neither.

    Examples
    --------
    >>> node_call([["x", 0, 0, {"value": ["v", 0, 0]}]])
    Call(args=(('x', 0, 0),), kwargs={'value': ('v', 0, 0)}, tensors=(('x', 0, 0),))
    """
    if isinstance(node, dict):
        return _keras3_call(node)
    if isinstance(node, list):
        return _keras2_call(node)
    raise ValueError(f"is a {type(node).__name__}, not an object (Keras 3) or a list (Keras 2)")


def layer_calls(entry):
    """The :class:`Call` of each inbound node of a layer dict of a Functional config, in order.

    ``ValueError`` naming the layer when a node is in neither format.

    Examples
    --------
    >>> kt = {"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}
    >>> entry = {"class_name": "Add", "name": "sum",
    ...          "inbound_nodes": [{"args": [[kt, kt]], "kwargs": {"training": False}}]}
    >>> [(c.args, c.kwargs) for c in layer_calls(entry)]
    [((('x', 0, 0), ('x', 0, 0)), {'training': False})]
    """
    nodes = entry.get("inbound_nodes") or []
    if not isinstance(nodes, list):
        raise ValueError(f"layer {layer_name(entry)!r}: inbound_nodes is not a list")
    calls = []
    for i, node in enumerate(nodes):
        try:
            calls.append(node_call(node))
        except ValueError as exc:
            raise ValueError(f"layer {layer_name(entry)!r}: inbound node {i} {exc}") from None
    return calls


def io_refs(spec):
    """The references of a model's ``input_layers`` / ``output_layers`` (one, or a list of them)."""
    if spec and isinstance(spec[0], str):
        spec = [spec]
    return [(s[0], int(s[1]), int(s[2])) for s in spec]


def node_offset(entry, keras2):
    """The node index of a layer's first call in its Functional config.

    tf-keras counts a nested model's own first call (on its Input) as node 0,
    so the calls in the config start at 1; every other layer starts at 0.
    """
    if not keras2 or entry["class_name"] not in MODEL_CLASSES:
        return 0
    sub = entry["config"].get("layers", [])
    return int(entry["class_name"] != "Sequential" or
               bool(sub and sub[0]["class_name"] == "InputLayer"))


def is_keras2(config):
    """True for a tf-keras config: list-style inbound nodes, or ``batch_input_shape`` inputs.

    Nested models count; so does a ``module`` of ``tf_keras``.
    """
    def walk(model):
        for entry in model["config"].get("layers", []):
            nodes = entry.get("inbound_nodes") or []
            if nodes and isinstance(nodes[0], list):
                return True
            if entry["class_name"] == "InputLayer" and "batch_input_shape" in entry["config"]:
                return True
            if entry["class_name"] in MODEL_CLASSES and walk(entry):
                return True
        return False
    return walk(config) or str(config.get("module", "")).startswith("tf_keras")
