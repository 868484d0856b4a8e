"""Read a Keras model file for structured removal: format, config, variables per layer.

Two formats carry the architecture and so can be edited structurally:

- ``keras_zip``: a ``.keras`` zip (``config.json`` + ``model.weights.h5`` in the
  weights-store layout: ``layers/<snake_case(class)>[_N]/vars/<i>``);
- ``legacy_full``: a legacy HDF5 full model (root ``model_config``,
  ``model_weights/<layer>/<weight_name>`` listed by ``layer_names`` and
  ``weight_names``).

Weights-only files (``.weights.h5``, Keras 2 ``save_weights('x.h5')``, sharded
``.weights.json``) are refused: they hold no architecture.

The h5 member of a ``.keras`` zip is read in place when it is stored
uncompressed (a window on the zip file), otherwise from memory. The source is
only ever opened for reading, and only its own bytes are read: data stored in
another file (external storage, virtual datasets, external links) is refused
when the file is opened, as by the weights reader
(:func:`~weightshare._io._container.open_hdf5`). Every problem becomes one
:class:`~weightshare.errors.FileFormatError`.
"""

import os
import zipfile
from typing import NamedTuple

import h5py
import numpy as np

from ._common import MemberWindow, crc32_of, decode_str, str_list_attr
from ._container import (CONFIG_MEMBER, WEIGHTS_MEMBER, ModelFile, check_model_path, keras_config,
                         keras_metadata, open_hdf5, open_member, open_zip)
from ._h5check import check_dataset
from .._base._json import NestingError, loads as load_json
from .._keras._graph import is_model, layer_list
from .._keras._names import layer_name, snake_case

__all__ = ["VarRef", "KerasFile", "open_model", "decode_str", "str_list_attr", "snake_case",
           "WEIGHTS_MEMBER", "CONFIG_MEMBER"]

_WEIGHTS_ONLY = ("holds weights only (no model config); removal needs the architecture: give "
                 "the full model file (.keras, or a legacy .h5 written by model.save)")


class VarRef(NamedTuple):
    """One stored variable: its HDF5 path in the weights file, shape and dtype."""

    path: str
    shape: tuple
    dtype: np.dtype


# --------------------------------------------------------------------------- small helpers
# --------------------------------------------------------------------------- the file
class KerasFile(ModelFile):
    """An open Keras model file (read-only). Use as a context manager.

    Attributes
    ----------
    path : str
    fmt : {"keras_zip", "legacy_full"}
    config : dict
        The top-level model dict (``config.json`` or ``model_config``).
    h5 : h5py.File
        The weights (the zip member, or the legacy file itself).
    variables : dict of str to tuple of VarRef
        Stored variables of each top-level layer, in stored order (a nested
        model's variables flattened in its layer order).
    optimizer : tuple of tuple of VarRef
        Optimizer slot lists (``optimizer/vars``, ``optimizer/inner_optimizer/vars``;
        legacy ``optimizer_weights`` in ``weight_names`` order).
    optimizer_root : str or None
        The HDF5 group holding all optimizer state.
    zip_infos : list of zipfile.ZipInfo or None
    """

    def __init__(self, path):
        super().__init__(path)
        self.variables = {}
        self.optimizer = ()
        self.optimizer_root = None
        self._size = 0

    # opening
    def _open(self):
        path = self.path
        check_model_path(path, self.fail, "a Keras model file")
        if path.endswith(".weights.json"):
            self.fail("is a sharded weights index; " + _WEIGHTS_ONLY)
        if zipfile.is_zipfile(path):
            self._open_zip()
        elif h5py.is_hdf5(path):
            self._open_legacy()
        else:
            self.fail("is not a Keras model file (neither a .keras zip nor an HDF5 file)")

    def _open_zip(self):
        self._raw = open(self.path, "rb")
        self._zip, self.zip_infos = open_zip(self._raw, self.fail)
        names = {i.filename for i in self.zip_infos}
        if CONFIG_MEMBER not in names:
            self.fail("is a zip without config.json, not a .keras model")
        self.config = keras_config(self._zip, names, self.fail, self.path)
        # not used, but copied to the output: refused if a bomb, as the weights reader does
        keras_metadata(self._zip, names, self.fail, self.path)
        self.fmt = "keras_zip"
        fileobj, info = open_member(self._zip, self._raw, self.path, WEIGHTS_MEMBER, self.fail)
        if isinstance(fileobj, MemberWindow) and crc32_of(fileobj, info.file_size) != info.CRC:
            self.fail("fails its CRC-32 check: the file is damaged", WEIGHTS_MEMBER)  # in place
        self._size = info.file_size
        self.h5 = open_hdf5(fileobj, info.file_size, self.path, WEIGHTS_MEMBER)
        self._map_store()
        self._map_store_optimizer()

    def _open_legacy(self):
        self._size = os.path.getsize(self.path)
        self.h5 = h5 = open_hdf5(self.path, self._size, self.path)
        if "model_weights" in h5 and str_list_attr(h5["model_weights"], "layer_names") is not None:
            if "model_config" not in h5.attrs:
                self.fail("is a legacy HDF5 file without model_config; " + _WEIGHTS_ONLY)
            self.fmt = "legacy_full"
            try:
                self.config = load_json(decode_str(h5.attrs["model_config"]), "the model config")
            except NestingError as exc:
                self.fail(str(exc), "/@model_config")
            except (ValueError, TypeError) as exc:
                self.fail(f"the model_config attribute is not JSON ({exc})", "/@model_config")
            self._map_legacy()
            self._map_legacy_optimizer()
            return
        if str_list_attr(h5, "layer_names") is not None or "layers" in h5 or "vars" in h5:
            self.fail(_WEIGHTS_ONLY)
        self.fail("is an HDF5 file but not a Keras model (no model_weights, layers or layer_names)")

    # mapping: weights store
    def _map_store(self):
        entries = layer_list(self.config)
        sequential = self.config.get("class_name") == "Sequential"
        if "layers" not in self.h5:
            if any(e.get("class_name") != "InputLayer" for e in entries):
                self.fail("the weights store has no 'layers' group", WEIGHTS_MEMBER)
            return
        for name, refs in self._store_container(self.h5["layers"], entries, sequential, "/layers"):
            self.variables[name] = refs

    def _store_container(self, group, entries, sequential, where):
        used = {}
        for entry in entries:
            if sequential and entry.get("class_name") == "InputLayer":
                continue
            base = snake_case(str(entry.get("class_name")))
            if base in used:
                used[base] += 1
                gname = f"{base}_{used[base]}"
            else:
                used[base] = 0
                gname = base
            name = layer_name(entry)
            sub = group.get(gname)
            refs = []
            if sub is not None:
                self._check_store_name(sub, name, f"{where}/{gname}")
                refs = self._store_object(sub, entry, f"{where}/{gname}")
            yield name, tuple(refs)

    def _check_store_name(self, group, name, where):
        vars_ = group.get("vars")
        if isinstance(vars_, h5py.Group) and "name" in vars_.attrs:
            try:
                stored = decode_str(vars_.attrs["name"])
            except TypeError:
                return
            if stored != name:
                self.fail(f"store group {where} belongs to layer {stored!r}, but the config puts "
                          f"layer {name!r} there", f"{where}/vars")

    def _store_object(self, group, entry, where):
        refs = self._vars(group, where)
        if entry is not None and is_model(entry) and isinstance(group.get("layers"), h5py.Group):
            nested = entry.get("class_name") == "Sequential"
            for _, sub in self._store_container(group["layers"], layer_list(entry), nested,
                                                f"{where}/layers"):
                refs.extend(sub)
            return refs
        others = sorted((k for k in group if k not in ("vars", "layers")),
                        key=lambda k: (k.startswith("_"), k))
        for key in others:
            if isinstance(group[key], h5py.Group):
                refs.extend(self._store_object(group[key], None, f"{where}/{key}"))
        return refs

    def _vars(self, group, where):
        vars_ = group.get("vars")
        if not isinstance(vars_, h5py.Group):
            return []
        keys = list(vars_)
        if not all(k.isdigit() for k in keys):
            self.fail(f"unexpected entries {sorted(keys)} in a vars group", f"{where}/vars")
        refs = []
        for k in sorted(keys, key=int):
            ds = vars_[k]
            if not isinstance(ds, h5py.Dataset):
                self.fail("is not a dataset", f"{where}/vars/{k}")
            check_dataset(ds, self.h5, self.path, f"{where}/vars/{k}", self._size)
            refs.append(VarRef(f"{where}/vars/{k}", tuple(ds.shape), ds.dtype))
        return refs

    def _map_store_optimizer(self):
        opt = self.h5.get("optimizer")
        if not isinstance(opt, h5py.Group):
            return
        self.optimizer_root = "/optimizer"
        lists = []

        def walk(group, where):
            refs = self._vars(group, where)
            if refs:
                lists.append(tuple(refs))
            for key in sorted(k for k in group if k != "vars"):
                if isinstance(group[key], h5py.Group):
                    walk(group[key], f"{where}/{key}")

        walk(opt, "/optimizer")
        self.optimizer = tuple(lists)

    # mapping: legacy
    def _map_legacy(self):
        mw = self.h5["model_weights"]
        names = str_list_attr(mw, "layer_names")
        config_names = [layer_name(e) for e in layer_list(self.config)]
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            self.fail(f"layer_names lists {twice[0]!r} twice", "/model_weights")
        for name in names:
            if name not in mw:
                self.fail(f"layer_names lists {name!r} but there is no such group", "/model_weights")
            group = mw[name]
            wnames = str_list_attr(group, "weight_names") or []
            refs = []
            for wn in wnames:
                ds = group.get(wn)
                if not isinstance(ds, h5py.Dataset):
                    self.fail(f"weight_names lists {wn!r} but there is no such dataset",
                              f"/model_weights/{name}")
                check_dataset(ds, self.h5, self.path, ds.name, self._size)
                refs.append(VarRef(f"/model_weights/{name}/{wn}", tuple(ds.shape), ds.dtype))
            self.variables[name] = tuple(refs)
        for name in config_names:
            self.variables.setdefault(name, ())

    def _map_legacy_optimizer(self):
        opt = self.h5.get("optimizer_weights")
        if not isinstance(opt, h5py.Group):
            return
        self.optimizer_root = "/optimizer_weights"
        wnames = str_list_attr(opt, "weight_names") or []
        refs = []
        for wn in wnames:
            ds = opt.get(wn)
            if not isinstance(ds, h5py.Dataset):
                self.fail(f"weight_names lists {wn!r} but there is no such dataset",
                          "/optimizer_weights")
            check_dataset(ds, self.h5, self.path, ds.name, self._size)
            refs.append(VarRef(f"/optimizer_weights/{wn}", tuple(ds.shape), ds.dtype))
        self.optimizer = (tuple(refs),) if refs else ()

    # reading
    def read(self, ref):
        """The stored array of a :class:`VarRef` (raw dtype; bfloat16 stays ``|V2``)."""
        try:
            return self.h5[ref.path][()]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            self.fail(f"cannot read ({exc})", ref.path)


def open_model(path):
    """Open `path` as a :class:`KerasFile`; FileFormatError for anything not editable."""
    return KerasFile.open(path)
