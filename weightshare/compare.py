"""What a change did to a model's outputs: top-1 agreement, accuracy, output differences.

:func:`compare_outputs` compares two output arrays; :func:`compare_models`
runs two models (Keras files, or configs with weights) on the same inputs
with the NumPy forward pass of :mod:`weightshare.forward` and compares them.
Keras files are read through :mod:`weightshare.files`, imported only then.
"""

import os
from typing import NamedTuple, Optional

import numpy as np

from .errors import ForwardError
from .forward import forward, layer_weight_counts
from ._io._npy import load_npy, load_npz
from ._io._reader import open_weights
from ._keras._order import weights_by_layer as _weights_by_layer

__all__ = ["compare_outputs", "compare_models", "read_model", "load_array", "CompareResult"]


class CompareResult(NamedTuple):
    """Result of :func:`compare_outputs` and :func:`compare_models`.

    Attributes
    ----------
    n : int
        Predictions compared (input rows times any positions, e.g. time steps).
    output_shape : tuple of int
        Shape of the (first) output.
    top1_agreement : float
        Fraction of predictions whose top class is the same in both. A
        single-unit output is a binary decision: above 0.5 when every value
        of both outputs lies in [0, 1] (probabilities), else above 0 (logits).
    accuracy_original, accuracy_new : float or None
        Fraction of top classes equal to the labels; None without labels.
    max_abs_diff, mean_abs_diff : float
        Largest and mean absolute difference of the outputs.
    """

    n: int
    output_shape: tuple
    top1_agreement: float
    accuracy_original: Optional[float]
    accuracy_new: Optional[float]
    max_abs_diff: float
    mean_abs_diff: float


def _classes(y, binary_at):
    if y.shape[-1] == 1:
        return (y[..., 0] > binary_at).astype(np.int64)
    return np.argmax(y, axis=-1)


def _check_output(y, name):
    y = np.asarray(y)
    if y.dtype.kind not in "fiu" or y.ndim < 2 or y.size == 0:
        raise ValueError(f"{name} must be a non-empty numeric array of shape (batch, ..., "
                         f"classes); got {y.dtype} array of shape {y.shape}")
    return y.astype(np.float64)


def compare_outputs(y_original, y_new, *, labels=None):
    """Compare two models' outputs on the same inputs.

    Parameters
    ----------
    y_original, y_new : array_like of shape (batch, ..., classes)
        The outputs, same shape.
    labels : array_like of int, optional
        True classes, of shape ``(batch, ...)`` (or one-hot, the shape of the
        outputs).

    Returns
    -------
    CompareResult

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.compare import compare_outputs
    >>> a = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
    >>> b = np.array([[0.8, 0.2], [0.6, 0.4], [0.1, 0.9]])
    >>> r = compare_outputs(a, b, labels=[0, 1, 1])
    >>> r.top1_agreement, r.accuracy_original, r.accuracy_new
    (0.6666666666666666, 1.0, 0.6666666666666666)
    >>> round(r.max_abs_diff, 3), round(r.mean_abs_diff, 3)
    (0.2, 0.133)
    """
    a = _check_output(y_original, "y_original")
    b = _check_output(y_new, "y_new")
    if a.shape != b.shape:
        raise ValueError(f"the outputs must have the same shape; got {a.shape} and {b.shape}")
    probs = bool(np.all((a >= 0) & (a <= 1)) and np.all((b >= 0) & (b <= 1)))
    at = 0.5 if probs else 0.0
    ca, cb = _classes(a, at), _classes(b, at)
    acc_a = acc_b = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape == a.shape and a.shape[-1] > 1:
            lab = np.argmax(lab, axis=-1)
        if lab.shape != ca.shape:
            raise ValueError(f"labels must have shape {ca.shape} (or {a.shape} one-hot); "
                             f"got {lab.shape}")
        if lab.dtype.kind not in "iub" and not np.array_equal(lab, np.round(lab)):
            raise ValueError("labels must be integer classes")
        lab = lab.astype(np.int64)
        acc_a, acc_b = float(np.mean(ca == lab)), float(np.mean(cb == lab))
    d = np.abs(a - b)
    return CompareResult(n=int(ca.size), output_shape=a.shape,
                         top1_agreement=float(np.mean(ca == cb)), accuracy_original=acc_a,
                         accuracy_new=acc_b, max_abs_diff=float(d.max()),
                         mean_abs_diff=float(d.mean()))


def _read_config(path):
    """The model config a Keras file stores (``.keras``: config.json; ``.h5``: model_config),
    or None for a weights-only file. The file is checked as :func:`read_weights` checks it."""
    with open_weights(path) as wf:
        return wf.config


def read_model(path, *, architecture=None):
    """A Keras file as ``(config, weights)`` for :func:`weightshare.forward.forward`.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.keras`` file or a legacy ``.h5`` saved with ``model.save`` (they
        hold the architecture), or a weights-only file (``.weights.h5``,
        legacy ``save_weights``) with `architecture`.
    architecture : path or dict, optional
        Where the architecture comes from when `path` has none: a Keras file
        of the same model, or its config dict.

    Returns
    -------
    config : dict
    weights : dict of str to list of ndarray
        Per layer path, the arrays in Keras order (bfloat16 as float32).

    Raises
    ------
    ValueError
        No architecture, or weights that do not match it (a weights file
        that stores no layer names, as tf-keras ``.weights.h5``, cannot be
        matched).

    Examples
    --------
    >>> import weightshare
    >>> from weightshare.compare import read_model
    >>> config, weights = read_model(weightshare.examples.path("digits.keras"))
    >>> config["class_name"], [(k, [a.shape for a in v]) for k, v in weights.items()][:1]
    ('Sequential', [('fc1', [(64, 64), (64,)])])
    """
    with open_weights(path) as wf:    # raises FileFormatError for what is not a weights file
        config = wf.config
        records = [r._replace(value=wf.read(r)) for r in wf.records]
    for r in records:
        if r.value.dtype.kind not in "biuf":
            raise ValueError(f"{os.fspath(path)}: {r.location}: holds {r.value.dtype} values, "
                             "not numbers; the model cannot be run")
    if config is None:
        if architecture is None:
            raise ValueError(f"{os.fspath(path)}: a weights-only file holds no architecture; "
                             "give a .keras or .h5 file of the same model")
        config = architecture if isinstance(architecture, dict) else _read_config(architecture)
        if config is None:
            raise ValueError(f"{os.fspath(path)}: a weights-only file holds no architecture, and "
                             f"neither does {os.fspath(architecture)}")
    try:
        counts = layer_weight_counts(config)
    except (ValueError, TypeError) as exc:    # a config that is not a model: name its file
        raise ValueError(f"{os.fspath(path)}: {exc}") from None
    weights = _weights_by_layer(records, counts)
    missing = [p for p in counts if not weights[p]]
    if missing:
        stored = ", ".join(sorted({r.path for r in records})[:6])
        raise ValueError(f"{os.fspath(path)}: no weights for layer(s) "
                         f"{', '.join(missing[:6])} of the architecture; the file's layers are "
                         f"{stored or 'none'} (a weights file that stores no layer names, as "
                         "tf-keras .weights.h5, cannot be matched: use the .keras or .h5 file)")
    return config, weights


class _Step(NamedTuple):
    """One step of :func:`compare_models` for its `progress` (parameters gone through)."""

    name: str
    shape: tuple


def _n_params(weights):
    """Entries of a model's weights ({layer: [arrays]})."""
    values = weights.values() if isinstance(weights, dict) else weights
    return sum(int(np.size(a)) for arrays in values for a in arrays)


def _pair(original, new):
    """Both models as (config, weights); a weights-only file borrows the other's architecture."""
    out = []
    for source, other, name in ((original, new, "original"), (new, original, "new")):
        if isinstance(source, (str, os.PathLike)):
            arch = other if isinstance(other, (str, os.PathLike)) else None
            if arch is None and isinstance(other, tuple) and len(other) == 2:
                arch = other[0]
            out.append(read_model(source, architecture=arch))
        elif isinstance(source, tuple) and len(source) == 2:
            out.append(source)
        else:
            raise TypeError(f"{name} must be a Keras file path or a (config, weights) pair; "
                            f"got {type(source).__name__}")
    return out


def _run(config, weights, inputs, source, name):
    """forward(), its errors naming the model (the file, or `name`), its outputs finite."""
    who = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"the {name} model"
    try:
        with np.errstate(all="ignore"):     # overflow shows as Inf below, not as a warning
            y = forward(config, weights, inputs)
    except (ValueError, TypeError) as exc:
        raise ForwardError(f"{who}: {exc}") from None
    for out in (y if isinstance(y, list) else [y]):
        bad = int(out.size - np.count_nonzero(np.isfinite(out)))
        if bad:
            raise ForwardError(f"{who}: {bad} of its {out.size} outputs are NaN or infinite (its "
                             "weights or the inputs are not finite, or overflow); nothing to "
                             "compare")
    return y


def compare_models(original, new, inputs, *, labels=None, progress=None):
    """Run two models on the same inputs with NumPy and compare their outputs.

    Parameters
    ----------
    original, new : path or (config, weights)
        Keras files, read with :func:`weightshare.files.read_weights` (the
        architecture comes from a ``.keras`` file's config.json or a legacy
        ``.h5``'s model_config; a weights-only file borrows the other model's),
        or pairs as taken by :func:`weightshare.forward.forward`.
    inputs : array_like or list of array_like
        The models' input(s), batch first.
    labels : array_like of int, optional
        True classes; adds the accuracy of both models.
    progress : callable(done, total, step), optional
        Called after each of the 3 steps (both models read, the original
        run, the new run); `step` has ``name`` and ``shape`` (the
        parameters the step went through). The CLI's progress bar.

    Returns
    -------
    CompareResult
        On the first output of multi-output models.

    Raises
    ------
    ValueError
        A layer the forward pass does not support (all named), or outputs
        of different shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from weightshare.compare import compare_models
    >>> cfg = {"class_name": "Sequential", "config": {"name": "m", "layers": [
    ...     {"class_name": "Dense", "config": {"name": "fc", "units": 2}}]}}
    >>> w = [np.array([[1.0, 0.0], [0.0, 1.0]]), np.zeros(2)]
    >>> w2 = [np.array([[1.0, 0.5], [0.0, 1.0]]), np.zeros(2)]
    >>> x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.9]])
    >>> compare_models((cfg, {"fc": w}), (cfg, {"fc": w2}), x).top1_agreement
    0.6666666666666666
    """
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be callable or None; got {type(progress).__name__}")
    step = progress or (lambda done, total, s: None)
    (cfg_a, w_a), (cfg_b, w_b) = _pair(original, new)
    n_a, n_b = _n_params(w_a), _n_params(w_b)
    step(1, 3, _Step("both models read", (n_a + n_b,)))
    y_a = _run(cfg_a, w_a, inputs, original, "original")
    step(2, 3, _Step("original run", (n_a,)))
    y_b = _run(cfg_b, w_b, inputs, new, "new")
    step(3, 3, _Step("new run", (n_b,)))
    if isinstance(y_a, list):
        y_a, y_b = y_a[0], y_b[0]
    return compare_outputs(y_a, y_b, labels=labels)


#: the .npz members :func:`load_array` looks for, by what the array is
NPZ_KEYS = {"inputs": ("x", "X", "x_test", "X_test", "inputs"),
            "labels": ("y", "Y", "y_test", "Y_test", "labels")}


def load_array(path, what="inputs"):
    """The inputs or labels of :func:`compare_models` from a ``.npy`` or ``.npz`` file.

    A ``.npz`` gives its member named as in :data:`NPZ_KEYS` (``x``, ``X``,
    ``x_test``, ... for inputs), or its only member. The file is checked
    before it is read (a forged header, a pickle, an empty file are refused
    naming it) and must hold numbers; inputs must be finite and have a batch
    axis.

    Parameters
    ----------
    path : path
    what : {"inputs", "labels"}

    Returns
    -------
    ndarray
    """
    if what not in NPZ_KEYS:
        raise ValueError(f"what must be 'inputs' or 'labels'; got {what!r}")
    keys = NPZ_KEYS[what]
    if not str(path).lower().endswith(".npz"):
        arr = load_npy(path)
    else:
        members = load_npz(path)
        arr = next((members[k] for k in keys if k in members), None)
        if arr is None:
            if len(members) != 1:
                raise ValueError(f"{path}: the {what} .npz must hold one of {', '.join(keys)} or "
                                 f"a single member; it holds {', '.join(members) or 'nothing'}")
            arr = next(iter(members.values()))
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{path}: the {what} hold {arr.dtype} values, not numbers")
    if arr.size == 0 or arr.ndim == 0:
        raise ValueError(f"{path}: the {what} are empty (shape {arr.shape})")
    if what == "inputs":
        if arr.ndim < 2:
            raise ValueError(f"{path}: the inputs have shape {arr.shape}; they need a batch axis "
                             "and the model's input axes, e.g. (batch, features)")
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"{path}: {bad} of the {arr.size} input values are NaN or infinite")
    return arr
