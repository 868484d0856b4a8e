"""What ``strip`` leaves out of a Keras file: optimizer state and the compile/training config.

A plan is computed from a file opened by :func:`~weightshare._io._reader.open_weights`
(nothing is read but names, shapes and the config it already parsed):

- ``.keras`` (Keras 3, tf-keras >= 2.13): the ``optimizer`` group of
  ``model.weights.h5`` (tf-keras also keeps its compiled metrics' totals
  under ``metrics``) and the ``compile_config`` key of ``config.json``;
- ``.weights.h5`` (``save_weights`` of a compiled model): the ``optimizer``
  group (and tf-keras' ``metrics``);
- legacy ``.h5`` written by ``model.save`` (Keras 1-3): the
  ``optimizer_weights`` group and the root attribute ``training_config``;
- a Keras 2 ``save_weights`` ``.h5`` never holds either: nothing to leave out.

Everything else is kept: groups, attributes with their HDF5 types, the
other datasets, the zip members with their order and ZipInfo. Without
``training_config``/``compile_config`` Keras loads the model uncompiled (no
optimizer to restore, so no warning about optimizer variables).
"""

import json
from typing import NamedTuple

import h5py

from ._container import CONFIG_MEMBER
from ._h5check import walk_datasets

__all__ = ["Finish", "strip_plan", "STRIP_FORMATS"]

#: the formats strip works on (a NumPy or safetensors file is refused)
STRIP_FORMATS = ("keras_zip", "weights_store", "legacy_full", "legacy_weights")
#: root groups of a weights store that hold compile state (the model's own weights never
#: sit there: Keras puts a model's layers under ``layers`` and its own variables under ``vars``)
_STORE_GROUPS = ("optimizer", "metrics")


class Finish(NamedTuple):
    """How a rewrite ends: the groups and attributes it leaves out, and whether it deflates.

    Attributes
    ----------
    drop : tuple of str
        Absolute HDF5 paths of groups left out (in the weights member of a ``.keras``).
    drop_attrs : dict of str to tuple of str
        HDF5 object path -> attribute names left out.
    config : bytes or None
        A new ``config.json`` for a ``.keras`` zip (None: the member is kept as stored).
    compress : bool
        Deflate the floating-point datasets (:func:`~weightshare._io._rebuild.rebuild_h5`).
    dropped_tensors, dropped_bytes : int
        Datasets (and their bytes of values) left out.
    config_removed : tuple of str
        The config entries left out (``training_config``, ``compile_config``).
    """

    drop: tuple = ()
    drop_attrs: dict = {}
    config: bytes = None
    compress: bool = False
    dropped_tensors: int = 0
    dropped_bytes: int = 0
    config_removed: tuple = ()

    @property
    def rebuilds(self):
        """Whether the output must be rebuilt (False: the same-shape byte copy is the output)."""
        return bool(self.drop or self.drop_attrs or self.config is not None or self.compress)


def _count(h5, paths, src, where):
    n = nbytes = 0
    for p in paths:
        for ds in walk_datasets(h5[p], src, where):
            n += 1
            nbytes += int(ds.size) * ds.dtype.itemsize
    return n, nbytes


def strip_plan(wf, compress=False):
    """The :class:`Finish` that strips the open file `wf` (a Keras weights or model file)."""
    h5 = wf.h5
    where = "model.weights.h5:" if wf.fmt == "keras_zip" else ""
    drop, drop_attrs, config, removed = [], {}, None, []
    if wf.fmt in ("keras_zip", "weights_store"):
        drop = ["/" + g for g in _STORE_GROUPS if isinstance(h5.get(g, getlink=True), h5py.HardLink)
                and isinstance(h5.get(g), h5py.Group)]
        if wf.fmt == "keras_zip" and isinstance(wf.config, dict) and "compile_config" in wf.config:
            kept = {k: v for k, v in wf.config.items() if k != "compile_config"}
            config = json.dumps(kept).encode("utf-8")
            removed.append(f"{CONFIG_MEMBER}:compile_config")
    elif wf.fmt == "legacy_full":
        opt = h5.get("optimizer_weights", getlink=True)
        if isinstance(opt, h5py.HardLink) and isinstance(h5.get("optimizer_weights"), h5py.Group):
            drop = ["/optimizer_weights"]
        if "training_config" in h5.attrs:
            drop_attrs = {"/": ("training_config",)}
            removed.append("training_config")
    n, nbytes = _count(h5, drop, wf.path, where)
    return Finish(tuple(drop), drop_attrs, config, bool(compress), n, nbytes, tuple(removed))
