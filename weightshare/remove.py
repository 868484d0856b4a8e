"""Structured removal: take units or filters out of a Keras model file, and propagate.

:func:`remove_units` removes output units of a ``Dense`` layer (or filters of a
``Conv1D/2D/3D`` layer) from a ``.keras`` or legacy ``.h5`` model file, slices
every layer the change reaches (BatchNormalization, DepthwiseConv, Flatten, ...)
down to the consumers, which lose the matching input rows or channels, edits
the config, slices the optimizer state, and writes a smaller file that loads
in the Keras that wrote the input. No Keras, no TensorFlow: the file is read
and re-written with h5py.

The smaller model computes exactly what the original computes once the
consumers' weights for the removed units are set to zero. See
``docs/removal.md`` for the rules per layer class and what is refused.
"""

import json
import numbers
import os
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ._base import _json
from ._base._validation import check_flag, check_int
from .errors import FileFormatError
from ._io import _container, _rebuild, _reader, _strip
from ._io._atomic import FULL_DISK, check_output, same_file
from ._keras import _graph
from ._remove import _optimizer, _rules
from ._codec._bf16 import bf16_to_float32, is_bf16_storage

__all__ = ["remove_units", "RemoveResult", "UnitRemoval", "TensorChange", "REMOVE_BY"]


class TensorChange(NamedTuple):
    """One stored tensor whose shape changed.

    Attributes
    ----------
    layer : str
        Owning layer, or ``"optimizer"`` for an optimizer slot.
    role : str
        ``kernel``, ``bias``, ``gamma``, ... (for a slot: ``slot of <layer>.<role>``).
    dataset : str
        HDF5 path inside the weights file.
    old_shape, new_shape : tuple of int
    """

    layer: str
    role: str
    dataset: str
    old_shape: tuple
    new_shape: tuple


class UnitRemoval(NamedTuple):
    """What :func:`remove_units` takes out of one producer layer.

    Attributes
    ----------
    layer : str
    removed : tuple of int
        Removed unit (filter) indices, sorted (indices of the original layer).
    units_before, units_after : int
    by : str or None
        ``"l1"`` or ``"l2"`` when the units were chosen by norm, else None.
    norms : tuple of float
        With `by`: the norms of the removed units (in `removed` order).
    path : tuple of str
        The layers this removal crosses, producer first, consumers last.
    """

    layer: str
    removed: tuple
    units_before: int
    units_after: int
    by: object
    norms: tuple
    path: tuple

    def to_dict(self):
        """A JSON-ready dict."""
        return dict(self._asdict(), removed=list(self.removed), norms=list(self.norms),
                    path=list(self.path))


class RemoveResult(NamedTuple):
    """Summary of :func:`remove_units`.

    Attributes
    ----------
    src : str
        The input file.
    dst : str or None
        The output file (None with ``dry_run=True``: nothing was written).
    layer : str or None
        The producer whose units were removed (None when several were: see
        `targets`).
    removed : tuple of int
        Removed unit (filter) indices, sorted (empty with several layers).
    units_before, units_after : int or None
        (None with several layers.)
    by : str or None
        ``"l1"`` or ``"l2"`` when the units were chosen by norm, else None.
    norms : tuple of float
        With `by`: the norms of the removed units (in `removed` order; empty
        with several layers).
    tensors : tuple of TensorChange
        Every tensor that shrank: model variables, then optimizer slots.
    config : tuple of str
        The config edits, one line each (``fc1.units: 16 -> 12``).
    path : tuple of str
        The layers the removal crossed, producer first (with several layers:
        each layer's path in turn, every layer once).
    params_before, params_after : int
        Model parameters (all layer variables, as ``model.count_params()``).
    optimizer : str
        ``"none"`` (no optimizer state in the file), ``"sliced"`` (slots
        sliced like their variables), ``"kept"`` (state present, no slot
        needed slicing), ``"dropped"`` (state removed; see `warnings`), or
        ``"stripped"`` (left out with everything else ``strip=True`` leaves out).
    warnings : tuple of str
    targets : tuple of UnitRemoval
        One per producer layer, in the order given (one for a single layer).
    dry_run : bool
        True: computed only, nothing was written.
    """

    src: str
    dst: str
    layer: str
    removed: tuple
    units_before: int
    units_after: int
    by: object
    norms: tuple
    tensors: tuple
    config: tuple
    path: tuple
    params_before: int
    params_after: int
    optimizer: str
    warnings: tuple
    targets: tuple = ()
    dry_run: bool = False

    def to_dict(self):
        """The summary as plain JSON-able Python objects."""
        out = self._asdict()
        out["removed"] = list(self.removed)
        out["norms"] = list(self.norms)
        out["tensors"] = [dict(t._asdict(), old_shape=list(t.old_shape), new_shape=list(t.new_shape))
                          for t in self.tensors]
        for key in ("config", "path", "warnings"):
            out[key] = list(out[key])
        out["targets"] = [t.to_dict() for t in self.targets]
        return out


def _l1(columns):
    return np.abs(columns).sum(axis=0)


def _l2(columns):
    return np.sqrt(np.square(columns).sum(axis=0))


#: norms for ``count=``: computed over the producer kernel's output slice
#: (``kernel[:, j]`` of a Dense, ``kernel[..., j]`` of a Conv), in float64
REMOVE_BY = {"l1": _l1, "l2": _l2}


# --------------------------------------------------------------------------- validation
def _check_units(units, n, layer):
    if isinstance(units, (str, bytes)) or not hasattr(units, "__iter__"):
        raise TypeError(f"units must be a sequence of unit indices; got {units!r}")
    out = []
    for u in units:
        if isinstance(u, (bool, np.bool_)) or not isinstance(u, numbers.Integral):
            raise TypeError(f"units must hold integers; got {u!r} of type {type(u).__name__}")
        out.append(int(u))
    if not out:
        raise ValueError("units must not be empty")
    bad = [u for u in out if not 0 <= u < n]
    if bad:
        raise ValueError(f"units {bad} are out of range for layer {layer!r} with {n} units "
                         f"(valid: 0..{n - 1})")
    if len(set(out)) != len(out):
        rep = sorted({u for u in out if out.count(u) > 1})
        raise ValueError(f"units repeats {rep}; give each unit once")
    if len(out) == n:
        raise ValueError(f"units lists all {n} units of layer {layer!r}; at least one must stay")
    return tuple(sorted(out))


def _check_count(count, n, layer):
    count = check_int(count, "count", 1)
    if count >= n:
        raise ValueError(f"count={count} would remove all {n} units of layer {layer!r}; "
                         f"at most {n - 1}")
    return count


def _check_path(value, name):
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or os.PathLike); got {type(value).__name__}")
    return os.fspath(value)


_SUFFIXES = {"keras_zip": (".keras",), "legacy_full": (".h5", ".hdf5", ".keras.h5")}


def _check_suffix(fmt, dst):
    low = dst.lower()
    ok = low.endswith(_SUFFIXES[fmt]) and not low.endswith((".weights.h5", ".weights.hdf5"))
    if not ok:
        want = " or ".join(_SUFFIXES[fmt][:2])
        raise FileFormatError(dst, f"must end in {want} like the input (Keras picks the reader "
                                   "from the file name)")


# --------------------------------------------------------------------------- helpers
def _as_float(arr):
    """A stored array as float64 (bfloat16 ``|V2`` converted by its bits)."""
    if is_bf16_storage(arr.dtype):
        return bf16_to_float32(arr).astype(np.float64)
    return np.asarray(arr, dtype=np.float64)


def _choose(kernel, count, by):
    cols = _as_float(kernel).reshape(-1, kernel.shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):   # huge weights: an infinite norm
        norms = REMOVE_BY[by](cols)
    order = np.lexsort((np.arange(norms.size), norms))  # smallest first, ties by index
    chosen = np.sort(order[:count])
    return tuple(int(i) for i in chosen), tuple(float(norms[i]) for i in chosen)


def _trainable(rules, graph, kf):
    """(layer, index, shape) of the model's trainable variables, in trainable_variables order."""
    out = []
    for name, layer in graph.layers.items():
        refs = kf.variables.get(name, ())
        if layer.config.get("trainable") is False:
            continue
        try:
            roles = rules.layer_roles(layer.class_name, layer.config, len(refs))
        except ValueError:
            roles = None
        for i, ref in enumerate(refs):
            role = roles[i] if roles else ref.path.rsplit("/", 1)[-1].split(":")[0]
            if role not in ("moving_mean", "moving_variance"):
                out.append((name, i, ref.shape))
    return out


def _plan_optimizer(rules, match_slots, graph, kf, plan, data, changes, warnings):
    if not kf.optimizer:
        return "none", ()
    trainable = _trainable(rules, graph, kf)
    keys = [(name, i) for name, i, _ in trainable]
    changed = {j for j, key in enumerate(keys) if key in plan.slices}
    edits = {}
    for slots in kf.optimizer:
        owners = match_slots([s.shape for s in slots], [t[2] for t in trainable], changed)
        if owners is None:
            warnings.append(
                f"optimizer state dropped: cannot tell which of the {len(slots)} optimizer "
                f"variables in {slots[0].path.rsplit('/', 1)[0]} belong to which model variable; "
                f"the model loads with a freshly initialized optimizer")
            return "dropped", (kf.optimizer_root,)
        for slot, owner in zip(slots, owners):
            if owner in changed:
                edits[slot] = keys[owner]
    if not edits:
        return "kept", ()
    for slot, key in edits.items():
        new = rules.apply_slices(kf.read_stored(slot), plan.slices[key])
        data[slot.path] = new
        changes.append(TensorChange("optimizer", f"slot of {key[0]}.{plan.roles[key]}", slot.path,
                                    tuple(slot.shape), tuple(new.shape)))
    return "sliced", ()


class _Job(NamedTuple):
    """Everything the writer needs: new dataset contents, groups to drop, the new config text."""

    data: dict
    drop: tuple
    config: object      # str, or None to keep the config as it is
    result: object      # RemoveResult, or None
    drop_attrs: dict = {}   # object path -> attribute names left out (strip)


def _refuse(path, msg):
    return FileFormatError(path, f"{msg}; nothing was written")


# --------------------------------------------------------------------------- public
def _targets(layer, units, count):
    """[(layer, units or None, count or None), ...] from the arguments (checked once here)."""
    if isinstance(units, Mapping) or isinstance(count, Mapping):
        if layer is not None:
            raise TypeError(f"give layer= with one layer's units or count, or a mapping layer -> "
                            f"units (or count) without layer=; got layer={layer!r} and a mapping")
        if (units is None) == (count is None):
            raise TypeError("give exactly one of units= and count=")
        name, mapping = ("units", units) if units is not None else ("count", count)
        if not isinstance(mapping, Mapping):
            raise TypeError(f"{name} must be a mapping of layer name to {name} like the other "
                            f"argument; got {mapping!r}")
        if not mapping:
            raise ValueError(f"{name} names no layer; give at least one")
        out = []
        for key, value in mapping.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"{name} must map layer names (non-empty str) to {name}; got the "
                                f"key {key!r}")
            out.append((key, value, None) if name == "units" else (key, None, value))
        return out
    if not isinstance(layer, str) or not layer:
        raise TypeError(f"layer must be a layer name (a non-empty str); got {layer!r}")
    if (units is None) == (count is None):
        raise TypeError("give exactly one of units= and count=")
    return [(layer, units, count)]


def remove_units(src, dst=None, *, layer=None, units=None, count=None, by="l1", in_place=False,
                 dry_run=False, compress=False, strip=False):
    """Remove units (Dense) or filters (Conv) of one or several layers from a Keras model file.

    The producer `layer` loses kernel output columns (filters) and bias
    entries, and its config ``units``/``filters`` shrink. Pass-through layers
    after it (BatchNormalization, activations, Dropout, pooling, ZeroPadding,
    DepthwiseConv, Flatten, global pooling) lose the matching channels, and
    the consumers (Dense, Conv) lose the matching input rows or channels.
    Every ``build_config`` input shape downstream is updated, optimizer slots
    are sliced the same way (or dropped, with a warning, when they cannot be
    identified), and the output file is rebuilt so that it really shrinks.

    The result computes exactly what the original computes with the
    consumers' weights for the removed units set to zero.

    Several layers are removed from in one plan: ``units={"fc1": [1, 5],
    "fc2": [0]}`` (or ``count={"fc1": 2, "fc2": 3}``). Each layer's removal is
    planned on the original model (unit indices and norms refer to the
    original layers) and the plans are combined: a variable that two
    removals cut (fc2's kernel loses input rows for fc1 and output columns
    for itself) is cut along both axes, and the optimizer state and config
    edits of all of them are applied together. The result is the file that
    removing the layers' units one run after the other gives. Two removals
    that cut the same variable along the same axis are an error naming both.

    Parameters
    ----------
    src : str or os.PathLike
        A ``.keras`` file or a legacy full-model ``.h5``; never modified
        (unless `in_place`).
    dst : str or os.PathLike, optional
        Output file, with the same kind of suffix as `src`. Required unless
        `in_place` or `dry_run`.
    layer : str, optional
        Name of a top-level Dense or Conv1D/2D/3D layer (with `units` or
        `count` for that layer). Not with the mappings below.
    units : sequence of int, or dict of str to sequence of int, optional
        Unit (filter) indices to remove: unique, in range, not all. A
        mapping gives them per layer (several layers, without `layer`).
    count : int, or dict of str to int, optional
        Remove the `count` units with the smallest norm instead (give exactly
        one of `units` and `count`); a mapping gives a count per layer.
    by : {"l1", "l2"}, default "l1"
        With `count`: the norm of each unit's slice of the producer kernel,
        ``kernel[:, j]`` (Dense) or ``kernel[..., j]`` (Conv: all kernel
        positions and input channels of filter j), bias not included. Ties
        go to the lower index. With several layers, every norm is taken on
        the original kernel.
    in_place : bool, default False
        Replace `src` itself (atomically). `dst` must then be None or `src`.
    dry_run : bool, default False
        Plan everything and return the same summary (which units go, and
        why; every tensor that would shrink; the config and optimizer edits)
        with ``dst=None`` and ``dry_run=True``, but write nothing: no output,
        no temporary file.
    compress : bool, default False
        Store the output's floating-point datasets deflated, as
        ``cluster_file(..., compress=True)`` does (HDF5's deflate filter,
        lossless, loads in stock Keras; docs/files.md).
    strip : bool, default False
        Leave the optimizer state and the compile/training config out of the
        output, as ``weightshare.strip_file`` does (the optimizer slots are
        then not sliced but dropped; Keras loads the file uncompiled).

    Returns
    -------
    RemoveResult

    Raises
    ------
    FileFormatError
        For a file that cannot be read or edited, and for a removal that
        cannot be proven safe (a merge, recurrent layer, nested model, shared
        layer, unknown layer class or model output on the way; a weights-only
        file). The message names the layer; nothing is written.
    ValueError, TypeError
        For bad arguments (the message names the parameter and the value),
        and for two removals that conflict (naming both layers).
    OSError
        For an output that cannot be written (``FileNotFoundError`` when its
        folder does not exist), as in every job that writes a file.

    Examples
    --------
    >>> import os, pathlib, tempfile, weightshare
    >>> src = "tests/fixtures/keras/k3_rm_dense_bn_dense.keras"
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "small.keras"
    >>> res = weightshare.remove_units(src, out, layer="fc1", units=[1, 5, 9, 13])
    >>> res.units_before, res.units_after, res.path
    (16, 12, ('fc1', 'bn1', 'head'))
    >>> [(t.layer, t.role, t.new_shape) for t in res.tensors][:3]
    [('fc1', 'kernel', (8, 12)), ('fc1', 'bias', (12,)), ('bn1', 'gamma', (12,))]
    >>> res.params_before - res.params_after, res.optimizer
    (68, 'none')
    >>> weightshare.remove_units(src, out, layer="fc1", count=2, by="l2").removed
    (7, 9)

    Two layers in one plan, as a dry run (nothing written):

    >>> res = weightshare.remove_units("tests/fixtures/keras/k3_rm_dense_dense.keras",
    ...                                units={"fc1": [0, 1], "fc2": [3]}, dry_run=True)
    >>> [(t.layer, t.units_before, t.units_after) for t in res.targets], res.dst
    ([('fc1', 16, 14), ('fc2', 16, 15)], None)
    >>> [(t.layer, t.role, t.new_shape) for t in res.tensors if t.layer == "fc2"]
    [('fc2', 'kernel', (14, 15)), ('fc2', 'bias', (15,))]

    Smaller still: deflated, without optimizer state and compile config:

    >>> big = weightshare.examples.path("digits.keras")
    >>> res = weightshare.remove_units(big, out, layer="fc1", count=8, compress=True,
    ...                                strip=True)
    >>> os.path.getsize(out) < os.path.getsize(big) // 3
    True
    """
    src = _check_path(src, "src")
    in_place = check_flag(in_place, "in_place")
    dry_run = check_flag(dry_run, "dry_run")
    compress = check_flag(compress, "compress")
    strip = check_flag(strip, "strip")
    targets = _targets(layer, units, count)
    if not isinstance(by, str) or by not in REMOVE_BY:
        raise ValueError(f"by must be one of {sorted(REMOVE_BY)}; got {by!r}")
    if dst is None and (in_place or not dry_run):
        if not in_place:
            raise TypeError("dst is required (or pass in_place=True to replace src, or "
                            "dry_run=True)")
        dst = src
    if dst is not None:
        dst = _check_path(dst, "dst")
        if in_place and not same_file(src, dst):
            raise ValueError(f"in_place=True replaces src; dst must be None or {src!r}, got "
                             f"{dst!r}")
        # the writer's checks, with its exceptions: a folder, a missing folder, the input as
        # output; in place, a symlink is followed
        dst = check_output(dst, (src,), in_place=bool(in_place))

    names = ", ".join(repr(t[0]) for t in targets)
    with _reader.open_model(src) as kf:
        if dst is not None:
            _check_suffix(kf.fmt, dst)
        try:
            job = _prepare(kf, src, None if dry_run else dst, targets, by)
            if strip:
                job = _finish(kf, job)
            if not dry_run:
                _write(kf, src, dst, job, in_place, compress)
        except MemoryError:
            raise MemoryError(f"{src}: out of memory removing units of layer {names} (nothing "
                              "was written)") from None
    return job.result._replace(dry_run=dry_run)


def _check_kernel(src, layer, lay, ref):
    """Refuse a producer kernel that is not numbers or does not fit the layer's config."""
    if ref.dtype.kind not in "fiu" and not is_bf16_storage(ref.dtype):
        raise _refuse(src, f"{ref.path}: the kernel of layer {layer!r} holds {ref.dtype} values, "
                      "not numbers")
    key = "units" if "units" in lay.config else "filters"
    want = lay.config.get(key)
    if len(ref.shape) < 2 or (isinstance(want, int) and ref.shape[-1] != want):
        raise _refuse(src, f"{ref.path}: the kernel of layer {layer!r} has shape {ref.shape}, "
                      f"which does not fit its config ({lay.class_name} with {key}={want!r})")
    if 0 in ref.shape:      # stores nothing, whatever it says its units are: nothing to rank
        raise _refuse(src, f"{ref.path}: the kernel of layer {layer!r} has shape {ref.shape} and "
                      f"holds no values: there are no units to rank or remove")


def _choose_units(kf, src, graph, layer, units, count, by, what):
    """(n, removed, norms, by used) of one producer, after checking it."""
    if layer not in graph.layers:
        nested = _graph.find_nested(kf.config, layer)
        if nested:
            raise _refuse(src, f"cannot remove units of {layer!r}: it is inside the nested model "
                          f"{'/'.join(nested)!r}; removal does not cross a model boundary")
        known = [n for n, lay in graph.layers.items() if lay.class_name in _rules.PRODUCERS]
        raise ValueError(f"{what} is not a layer of {src}; layers with units: "
                         f"{', '.join(known) or 'none'}")
    lay = graph.layers[layer]
    refs = kf.variables.get(layer, ())
    if lay.class_name not in _rules.PRODUCERS:
        raise _refuse(src, f"cannot remove units of {layer!r}: layer {layer!r} ({lay.class_name}) "
                      f"has no units to remove; removal starts at a Dense or Conv1D/2D/3D layer")
    if not refs:
        raise _refuse(src, f"cannot remove units of {layer!r}: the file holds no variables for it")
    _check_kernel(src, layer, lay, refs[0])
    n = int(refs[0].shape[-1])
    if units is not None:
        return n, _check_units(units, n, layer), (), None
    removed, norms = _choose(kf.read_stored(refs[0]), _check_count(count, n, layer), by)
    return n, removed, norms, by


def _merge(plans):
    """One plan from the plans of several producers; the same variable cut twice along the same
    axis is a conflict (a ValueError naming both producers)."""
    if len(plans) == 1:
        return plans[0]
    slices, roles, zero, owner = {}, {}, {}, {}
    for plan in plans:
        for key, cuts in plan.slices.items():
            for cut in cuts:
                other = owner.setdefault((key, cut.axis), plan.producer)
                if other != plan.producer:
                    raise ValueError(
                        f"removing units of {other!r} and of {plan.producer!r} both cut "
                        f"{key[0]}.{plan.roles[key]} along axis {cut.axis}; remove them in two "
                        f"runs")
            slices[key] = slices.get(key, ()) + tuple(cuts)
            roles[key] = plan.roles[key]
        zero.update(plan.zero)
    path = tuple(dict.fromkeys(name for plan in plans for name in plan.path))
    return _rules.Plan(plans[0].producer, plans[0].n_units, plans[0].removed, slices, roles, zero,
                       tuple(e for plan in plans for e in plan.edits), path,
                       tuple(dict.fromkeys(c for plan in plans for c in plan.consumers)))


def _prepare(kf, src, dst, targets, by):
    """Everything up to (not including) writing: the plan, new arrays, new config, summary."""

    config = _json.copy(kf.config)
    try:
        graph = _graph.build_graph(config)
    except (ValueError, KeyError, AttributeError, TypeError, IndexError) as exc:
        why = str(exc) if isinstance(exc, ValueError) else f"{type(exc).__name__}: {exc}"
        raise _refuse(src, f"cannot read the model config: {why}") from None
    several = len(targets) > 1
    shapes = {name: tuple(r.shape for r in rs) for name, rs in kf.variables.items()}
    plans, done = [], []
    for layer, units, count in targets:
        what = (f"{'units' if units is not None else 'count'} names layer {layer!r}, which"
                if several else f"layer={layer!r}")
        n, removed, norms, by_used = _choose_units(kf, src, graph, layer, units, count, by, what)
        try:       # every plan edits the one config copy; shapes are the original ones
            plan = _rules.plan_removal(graph, shapes, layer, removed)
        except _rules.Blocked as exc:
            raise _refuse(src, str(exc)) from None
        plans.append(plan)
        done.append(UnitRemoval(layer, plan.removed, n, n - len(plan.removed), by_used, norms,
                                plan.path))
    plan = _merge(plans)

    data, changes, warnings = {}, [], []
    for key, slices in plan.slices.items():
        ref = kf.variables[key[0]][key[1]]
        new = _rules.apply_slices(kf.read_stored(ref), slices)
        data[ref.path] = new
        changes.append(TensorChange(key[0], plan.roles[key], ref.path, tuple(ref.shape),
                                    tuple(new.shape)))
    n_before = sum(int(np.prod(r.shape)) for rs in kf.variables.values() for r in rs)
    n_after = n_before - sum(int(np.prod(c.old_shape)) - int(np.prod(c.new_shape)) for c in changes)
    status, drop = _plan_optimizer(_rules, _optimizer.match_slots, graph, kf, plan, data, changes,
                                   warnings)
    text = json.dumps(config)
    if several:
        result = RemoveResult(src, dst, None, (), None, None,
                              by if any(t.by for t in done) else None, (), tuple(changes),
                              plan.edits, plan.path, n_before, n_after, status, tuple(warnings),
                              tuple(done))
    else:
        one = done[0]
        result = RemoveResult(src, dst, one.layer, one.removed, one.units_before, one.units_after,
                              one.by, one.norms, tuple(changes), plan.edits, plan.path, n_before,
                              n_after, status, tuple(warnings), tuple(done))
    return _Job(data, drop, text, result)


def _finish(kf, job):
    """`job` that also leaves out what ``strip`` leaves out: the optimizer groups (and the
    slots sliced there), the training config attribute, ``compile_config``; its result says
    ``optimizer="stripped"`` and lists only the tensors the output holds."""
    plan = _strip.strip_plan(kf)
    under = tuple(p.rstrip("/") + "/" for p in plan.drop)
    data = {p: v for p, v in job.data.items() if not p.startswith(under)}
    drop = tuple(p for p in job.drop if not p.startswith(under)) + plan.drop
    config = job.config
    if kf.fmt == "keras_zip" and plan.config is not None:
        new = json.loads(config) if config is not None else _json.copy(kf.config)
        new.pop("compile_config", None)
        config = json.dumps(new)
    result = job.result._replace(
        tensors=tuple(t for t in job.result.tensors if not t.dataset.startswith(under)),
        optimizer="stripped" if plan.drop else job.result.optimizer)
    return _Job(data, drop, config, result, plan.drop_attrs)


def _write(kf, src, dst, job, in_place, compress=False):
    """Write the rebuilt file atomically (temp file in dst's folder, then os.replace)."""

    try:
        with _rebuild.atomic_output(dst, mode_from=src if in_place else None, inputs=(src,),
                                    in_place=bool(in_place)) as tmp:
            if kf.fmt == "legacy_full":
                attrs = {"/": {"model_config": job.config}} if job.config is not None else {}
                _rebuild.rebuild_h5(kf.h5, tmp, job.data, job.drop, attrs, path=kf.path,
                                    drop_attrs=job.drop_attrs, compress=compress,
                                    size=kf._h5_size)
            else:
                folder = os.path.dirname(os.path.abspath(dst))
                with _rebuild.temp_file(folder, os.path.basename(dst), ".h5.tmp") as h5tmp:
                    _rebuild.rebuild_h5(kf.h5, h5tmp, job.data, job.drop, path=kf.path,
                                        where=_container.WEIGHTS_MEMBER,
                                        drop_attrs=job.drop_attrs, compress=compress,
                                        size=kf._h5_size)
                    replace = {_container.WEIGHTS_MEMBER: h5tmp}
                    if job.config is not None:
                        replace[_container.CONFIG_MEMBER] = job.config.encode("utf-8")
                    # --compress: the config deflated (Keras reads it whole); the weights
                    # member stays stored (Keras seeks in it)
                    deflate = {"deflate": (_container.CONFIG_MEMBER,)} if compress else {}
                    _rebuild.write_zip(kf._zip, tmp, replace, **deflate)
            kf.close()
    except FileFormatError:
        raise
    except OSError as exc:
        if exc.errno in FULL_DISK:       # names the output already
            raise
        raise FileFormatError(kf.path, f"writing failed ({type(exc).__name__}: {exc}); nothing "
                              f"was written to {dst}") from None
    except _rebuild.WRITE_ERRORS as exc:
        raise FileFormatError(kf.path, f"writing failed ({type(exc).__name__}: {exc}); nothing "
                              f"was written to {dst}") from None


def _write_zeroed(src, dst, *, layer, units):
    """Write a same-shape copy of `src` whose consumer weights for `units` of `layer` are zero.

    The reference for tests: the removal's output must compute exactly what
    this file computes. Config and optimizer state are copied unchanged.
    """
    src, dst = os.fspath(src), os.fspath(dst)
    with _reader.open_model(src) as kf:
        graph = _graph.build_graph(_json.copy(kf.config))
        shapes = {name: tuple(r.shape for r in rs) for name, rs in kf.variables.items()}
        plan = _rules.plan_removal(graph, shapes, layer, sorted(units))
        data = {}
        for (name, i), (axis, gone) in plan.zero.items():
            ref = kf.variables[name][i]
            arr = np.array(kf.read_stored(ref))
            index = [slice(None)] * arr.ndim
            index[axis] = gone
            arr[tuple(index)] = np.zeros((), dtype=arr.dtype)
            data[ref.path] = arr
        _write(kf, src, dst, _Job(data, (), None, None), False)
