"""A NumPy forward pass of a Keras model, built from its config: check a change by its outputs.

:func:`forward` runs the architecture a Keras file stores (``config.json`` of
a ``.keras`` file, the ``model_config`` of a legacy ``.h5``) with given
weights, in float64, without Keras. Sequential and Functional models are
supported, nested models, shared layers (called several times) and
multi-input/multi-output graphs included, in both the Keras 3 and the Keras 2
(tf-keras) config formats. :data:`SUPPORTED` lists the layer classes; any other
class, or an option the pass does not implement (``channels_first``, masks,
...), is refused up front by a ``ValueError`` naming every such layer.

Imports NumPy and the standard library only.
"""

import functools
from collections.abc import Mapping

import numpy as np

from ._base._json import NestingError, check_depth, loads as load_json
from ._forward._layers import LAYERS, refusal
from ._keras._names import MODEL_CLASSES, layer_name
from ._keras._nodes import io_refs, is_keras2, layer_calls, node_offset

__all__ = ["forward", "unsupported_layers", "layer_weight_counts", "SUPPORTED"]

#: Keras layer classes the forward pass computes (models: Sequential, Functional)
SUPPORTED = tuple(sorted(LAYERS))
_BATCH = 1024


# --------------------------------------------------------------------------- config walking

def _top(config):
    if isinstance(config, (str, bytes)):
        try:
            config = load_json(config, "config")
        except NestingError:
            raise
        except ValueError as exc:
            raise ValueError(f"config is not valid JSON: {exc}") from None
    else:           # a dict of the caller's: its walks recurse once per nested model
        check_depth(config, "config")
    if not isinstance(config, Mapping) or "class_name" not in config or "config" not in config:
        raise TypeError("config must be a Keras model config: a dict with 'class_name' and "
                        "'config' (config.json of a .keras file, model_config of a .h5)")
    if config["class_name"] not in MODEL_CLASSES:
        raise ValueError(f"config describes a {config['class_name']!r}, not a Sequential or "
                         "Functional model")
    return config


def _config_errors(fn):
    """Report a malformed config (a layer that is not a dict, a missing key) as a ValueError."""
    @functools.wraps(fn)
    def wrapper(config, *args, **kwargs):
        try:
            return fn(config, *args, **kwargs)
        except (KeyError, AttributeError, IndexError) as exc:
            raise ValueError(f"config is not a Keras model config the forward pass can read "
                             f"({type(exc).__name__}: {exc})") from None
    return wrapper


def _walk(config, prefix=""):
    """(path, class_name, layer config) of every layer, nested models expanded, in order."""
    for layer in config["config"].get("layers", []):
        path = f"{prefix}{layer_name(layer)}"
        if layer["class_name"] in MODEL_CLASSES:
            yield from _walk(layer, f"{path}/")
        else:
            yield path, layer["class_name"], layer["config"]


@_config_errors
def unsupported_layers(config):
    """The layers :func:`forward` cannot compute: list of (path, class name, reason).

    Examples
    --------
    >>> from weightshare.forward import unsupported_layers
    >>> cfg = {"class_name": "Sequential", "config": {"layers": [
    ...     {"class_name": "Dense", "config": {"name": "fc", "units": 2}},
    ...     {"class_name": "Lambda", "config": {"name": "f"}}]}}
    >>> unsupported_layers(cfg)
    [('f', 'Lambda', 'not a supported layer class')]
    """
    config = _top(config)
    keras2 = is_keras2(config)
    out = []
    for path, cls, cfg in _walk(config):
        if cls not in LAYERS:
            out.append((path, cls, "not a supported layer class"))
        else:
            reason = refusal(cls, cfg, keras2)
            if reason:
                out.append((path, cls, reason))
    return out


@_config_errors
def layer_weight_counts(config):
    """{layer path: number of weight arrays} for every layer that holds weights.

    Paths are the layer names, ``outer/inner`` inside a nested model.
    """
    config = _top(config)
    return {path: n for path, cls, cfg in _walk(config)
            if cls in LAYERS and (n := LAYERS[cls][0](cfg))}


# --------------------------------------------------------------------------- running

class _Run:
    """One forward pass: weights resolved per layer path, outputs memoised per call."""

    def __init__(self, weights, keras2):
        self.weights = weights
        self.keras2 = keras2

    def layer(self, path, cls, cfg, inputs, kwargs):
        n, call = LAYERS[cls]
        w = self.weights.get(path, []) if n(cfg) else []
        try:
            y = call(cfg, w, inputs, kwargs, self.keras2)
        except (ValueError, IndexError, KeyError, TypeError) as exc:
            raise ValueError(f"layer {path!r} ({cls}): {type(exc).__name__}: {exc}") from None
        return y

    def model(self, config, prefix, inputs):
        if config["class_name"] == "Sequential":
            return self.sequential(config, prefix, inputs)
        return self.functional(config, prefix, inputs)

    def sequential(self, config, prefix, inputs):
        x = inputs[0]
        for layer in config["config"]["layers"]:
            x = self.call(layer, prefix, [x], {})
        return x

    def call(self, layer, prefix, inputs, kwargs):
        cls = layer["class_name"]
        path = f"{prefix}{layer_name(layer)}"
        if cls in MODEL_CLASSES:
            return self.model(layer, f"{path}/", inputs)
        return self.layer(path, cls, layer["config"], inputs, kwargs)

    def functional(self, config, prefix, inputs):
        cfg = config["config"]
        layers = {layer_name(layer): layer for layer in cfg["layers"]}
        memo, calls = {}, {}
        input_refs = io_refs(cfg["input_layers"])
        if len(input_refs) != len(inputs):
            raise ValueError(f"model {prefix or cfg.get('name', '')!r} takes {len(input_refs)} "
                             f"input(s); got {len(inputs)}")
        for (name, _, _), x in zip(input_refs, inputs):
            memo[(name, 0)] = x
        offsets = {name: node_offset(layer, self.keras2) for name, layer in layers.items()}

        def key(ref):
            return ref[0], ref[1] - offsets[ref[0]]

        def value(ref):
            out = memo[key(ref)]
            return out[ref[2]] if isinstance(out, list) else out

        def inputs_of(call):
            name, index = call
            if name not in calls:
                calls[name] = layer_calls(layers[name])
            if not 0 <= index < len(calls[name]):
                raise ValueError(f"config: layer {name!r} has no call number "
                                 f"{index + offsets[name]}")
            args, kwargs, _ = calls[name][index]
            return args, kwargs

        def output(ref):
            # the calls `ref` needs, depth first on a stack (a chain of thousands of
            # layers must not recurse); a call met again while its inputs are being
            # computed closes a cycle
            stack, started = [key(ref)], {}
            while stack:
                call = stack[-1]
                if call in memo:
                    stack.pop()
                    continue
                if call not in started:
                    args, kwargs = started[call] = inputs_of(call)
                    needs = [key(r) for r in args]
                    needs += [key(v) for v in kwargs.values() if isinstance(v, tuple)]
                    needs = [c for c in needs if c not in memo]
                    if any(c in started for c in needs):
                        raise ValueError(f"config: the calls of layer {call[0]!r} form a cycle")
                    if needs:
                        stack.extend(reversed(needs))
                        continue
                args, kwargs = started.pop(call)
                xs = [value(r) for r in args]
                kw = {k: value(v) if isinstance(v, tuple) else v for k, v in kwargs.items()}
                memo[call] = self.call(layers[call[0]], prefix, xs, kw)
                stack.pop()
            return value(ref)

        outs = [output(ref) for ref in io_refs(cfg["output_layers"])]
        return outs[0] if len(outs) == 1 else outs


# --------------------------------------------------------------------------- public

def _check_weights(config, weights):
    if not isinstance(weights, Mapping):
        raise TypeError(f"weights must be a dict {{layer path: [arrays]}}; got {type(weights).__name__}")
    counts = layer_weight_counts(config)
    out = {}
    for path, n in counts.items():
        if path not in weights:
            raise ValueError(f"weights: no arrays for layer {path!r}, which holds {n}")
        arrays = list(weights[path])
        if len(arrays) != n:
            raise ValueError(f"weights: layer {path!r} holds {n} arrays in its config; got "
                             f"{len(arrays)}")
        out[path] = [np.asarray(a, dtype=np.float64) for a in arrays]
    return out


def _declared_shape(layer_config):
    """The batch shape an InputLayer (or a Sequential's first layer) declares, or None."""
    cfg = layer_config.get("config") if isinstance(layer_config, Mapping) else None
    if not isinstance(cfg, Mapping):
        return None
    shape = cfg.get("batch_shape", cfg.get("batch_input_shape"))
    if not isinstance(shape, (list, tuple)) or not all(
            d is None or (isinstance(d, int) and not isinstance(d, bool)) for d in shape):
        return None
    return tuple(shape)


def input_shapes(config):
    """The input shapes a model config declares (batch first, None = any), or None per input.

    Examples
    --------
    >>> input_shapes({"class_name": "Sequential", "config": {"name": "m", "layers": [
    ...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 64]}}]}})
    [(None, 64)]
    """
    config = _top(config)
    cfg = config["config"]
    layers = cfg.get("layers") or []
    if config["class_name"] == "Sequential":
        return [_declared_shape(layers[0]) if layers else None]
    by_name = {layer_name(layer): layer for layer in layers if isinstance(layer, Mapping)}
    return [_declared_shape(by_name.get(name)) for name, _, _ in io_refs(cfg["input_layers"])]


def _check_input_shapes(config, xs):
    """Each input against the shape the model declares: one line saying what was expected."""
    try:
        declared = input_shapes(config)
    except (KeyError, TypeError, ValueError):
        return                  # the forward pass itself says what is wrong with the config
    for i, (want, x) in enumerate(zip(declared, xs)):
        if want is None or len(want) < 1:
            continue
        got = x.shape
        if len(got) != len(want) or any(w is not None and w != g
                                         for w, g in zip(want[1:], got[1:])):
            shown = "(" + ", ".join("batch" if d is None and j == 0 else str(d)
                                    for j, d in enumerate(want)) + ")"
            which = f"input {i} " if len(declared) > 1 else "inputs "
            raise ValueError(f"{which}must have shape {shown} (the model's declared input "
                             f"shape, batch first); got {tuple(got)}")


@_config_errors
def forward(config, weights, inputs):
    """Run a Keras model on inputs with NumPy, from its config and its weights.

    Parameters
    ----------
    config : dict or str
        The model config: ``{"class_name": "Sequential" | "Functional", "config": {...}}``
        as in a ``.keras`` file's ``config.json`` or a legacy ``.h5``'s
        ``model_config`` (Keras 3 or tf-keras format), or that JSON text.
    weights : dict of str to list of ndarray
        Per layer path (the layer name; ``outer/inner`` inside a nested
        model), its arrays in Keras order (``layer.get_weights()``). Every
        layer that holds weights needs an entry (:func:`layer_weight_counts`).
    inputs : array_like or list of array_like
        The model's input(s), batch first; a list for several inputs.

    Returns
    -------
    ndarray or list of ndarray
        The output(s), float64, computed in float64 (dropout and noise layers
        are the identity, batch normalization uses the moving statistics:
        inference mode).

    Raises
    ------
    ValueError
        A layer is not supported (all of them are named, with the reason), a
        layer's weights are missing or of the wrong count or shape.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.forward import forward
    >>> cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
    ...     {"class_name": "Dense", "config": {"name": "fc", "units": 2, "activation": "relu"}},
    ...     {"class_name": "Softmax", "config": {"name": "p"}}]}}
    >>> w = {"fc": [np.array([[1.0, -1.0], [0.5, 2.0]]), np.array([0.0, 0.1])]}
    >>> forward(cfg, w, np.array([[1.0, 1.0]])).round(4)
    array([[0.5987, 0.4013]])
    """
    config = _top(config)
    bad = unsupported_layers(config)
    if bad:
        listed = ", ".join(f"{path} ({cls}: {why})" if why != "not a supported layer class"
                           else f"{path} ({cls})" for path, cls, why in bad)
        raise ValueError(f"the NumPy forward pass does not support {len(bad)} layer(s) of this "
                         f"model: {listed}")
    w = _check_weights(config, weights)
    xs = inputs if isinstance(inputs, (list, tuple)) else [inputs]
    xs = [np.asarray(x) for x in xs]
    xs = [x.astype(np.float64) if x.dtype.kind in "fc" else x for x in xs]
    n = {x.shape[0] if x.ndim else None for x in xs}
    if len(n) != 1 or None in n:
        raise ValueError(f"inputs must share their first (batch) dimension; got shapes "
                         f"{[x.shape for x in xs]}")
    _check_input_shapes(config, xs)
    run = _Run(w, is_keras2(config))
    total = n.pop()
    parts = [run.model(config, "", [x[i:i + _BATCH] for x in xs])
             for i in range(0, max(total, 1), _BATCH)]
    if isinstance(parts[0], list):
        return [np.concatenate([p[j] for p in parts]) for j in range(len(parts[0]))]
    return np.concatenate(parts)
