"""Open a weights file read-only, find its format from the content, and list its tensors.

Formats (see docs/files.md):

- ``keras_zip``: a ``.keras`` zip (``config.json`` + ``model.weights.h5``);
- ``weights_store``: a Keras 3 ``.weights.h5`` (``layers/<class_snake>[_N]/vars/<i>``);
- ``legacy_full`` / ``legacy_weights``: legacy HDF5 from ``model.save('x.h5')``
  (Keras 1-3) and Keras 2 ``save_weights('x.h5')`` (``layer_names`` /
  ``weight_names`` attributes, possibly split as ``layer_names0, 1, ...``);
- ``npy`` / ``npz``: NumPy array files;
- ``safetensors`` / ``safetensors_sharded``: a ``.safetensors`` file, or a
  checkpoint given by its ``model.safetensors.index.json`` or its folder
  (:mod:`weightshare._io._safetensors`).

Every problem becomes one :class:`~weightshare.errors.FileFormatError` naming
the file and, where it applies, the dataset. A file is read only from its own
bytes: an HDF5 file holding, anywhere, a dataset stored in another file
(external storage, a virtual dataset) or an external link is refused when it
is opened (:mod:`weightshare._io._h5check`).
"""

import os
import zipfile
from typing import NamedTuple, Optional

import h5py
import numpy as np

from .._base._json import NestingError, loads as load_json
from ._npy import BoundedReader, check_archive, check_expansion, read_npy_header
from ..errors import FileFormatError
from .._codec._bf16 import bf16_to_float32, is_bf16_storage
from ._h5check import check_dataset
from ._safetensors import SafetensorsFile, is_safetensors
from ._common import MemberWindow, crc32_of, decode_str, str_list_attr
from ._container import (CONFIG_MEMBER, WEIGHTS_MEMBER, ModelFile, check_model_path, keras_config,
                         keras_metadata, open_hdf5, open_member, open_zip)
from .._keras._graph import is_model, layer_list
from .._keras._names import layer_name, snake_case
from .._keras._roles import PLAIN_CLASSES, class_from_group, kind_of, quantization_of, store_roles

__all__ = ["WeightInfo", "WeightsFile", "KerasModel", "VarRef", "open_weights", "open_model", "FORMATS", "CONFIG_MEMBER",
           "WEIGHTS_MEMBER", "suffix_of"]

FORMATS = ("keras_zip", "weights_store", "legacy_full", "legacy_weights", "npy", "npz",
           "safetensors", "safetensors_sharded")
#: root groups of a weights store that hold training state, not layers (left untouched)
_STATE_GROUPS = ("optimizer", "metrics")
_SHARDED = ("is a sharded Keras weights index (.weights.json); sharded weights are not supported "
            "yet: save the model with model.save('x.keras') or save_weights('x.weights.h5') "
            "without max_shard_size")


class WeightInfo(NamedTuple):
    """One weight tensor of a file.

    Attributes
    ----------
    name : str
        Unique key: ``<layer path>/<role>`` (``fc1/kernel``, ``inner/dense/kernel``,
        ``bilstm/forward_layer/cell/kernel``), or the array name of npy/npz.
    layer : str
        The top-level layer (model.layers) the weight belongs to.
    path : str
        The layer path (``fc1``, or ``inner/dense`` inside a nested model).
    layer_class : str or None
        The Keras class, when the file says (config) or the store group name does.
    role : str
        ``kernel``, ``bias``, ``recurrent_kernel``, ``gamma``, ``moving_mean``, ...
        (``var<i>`` when it cannot be told).
    kind : str
        ``kernel`` (every kernel-like role), ``bias``, ``normalization`` or ``other``.
    shape : tuple of int
    dtype : str
        ``float32``, ``float16``, ``bfloat16``, ``float64``, ...
    location : str
        Where it lives: the HDF5 dataset path (prefixed ``model.weights.h5:`` in
        a ``.keras`` zip), or the array name in an npz.
    value : ndarray or None
        The values (bfloat16 and float8 as float32, exactly), when read.
    channel_axis : int or None
        The output-channel axis when the format fixes it (safetensors: 0, the
        ``[out, in]`` layout of PyTorch); None: from the Keras class and role.
    """

    name: str
    layer: str
    path: str
    layer_class: Optional[str]
    role: str
    kind: str
    shape: tuple
    dtype: str
    location: str
    value: Optional[np.ndarray] = None
    channel_axis: Optional[int] = None


def suffix_of(path):
    """The file-name suffix that decides how Keras loads a file."""
    p = os.fspath(path).lower()
    for suffix in (".weights.h5", ".weights.json", ".keras", ".hdf5", ".h5", ".npy", ".npz"):
        if p.endswith(suffix):
            return suffix
    return os.path.splitext(p)[1]


def _layers_of(model):
    cfg = model.get("config") if isinstance(model, dict) else None
    if isinstance(cfg, list):
        return cfg
    if isinstance(cfg, dict) and isinstance(cfg.get("layers"), list):
        return cfg["layers"]
    return None


def _dtype_name(ds):
    return "bfloat16" if is_bf16_storage(ds.dtype) else ds.dtype.name


class VarRef(NamedTuple):
    """One stored variable of a model file: its HDF5 path, shape and stored dtype (bf16: ``|V2``)."""

    path: str
    shape: tuple
    dtype: np.dtype


class WeightsFile(ModelFile):
    """A weights file opened read-only (a context manager). See :func:`open_weights`.

    The one walker of the Keras layouts: :func:`open_weights` maps every tensor
    of a file to a :class:`WeightInfo`; :func:`open_model` opens the same way a
    model file (architecture + weights) for structured removal, and adds the
    view removal needs (:attr:`variables`, :attr:`optimizer`).
    """

    #: what the file must be, for the messages ("is a folder, not ...", "is not ...")
    what, kind = "a weights file", "a Keras weights file"
    #: map the layout only: no refusal of layers whose variables cannot be named
    #: (quantized or custom variants) or whose kernels disagree with their config
    structure_only = False

    def __init__(self, path):
        super().__init__(path)
        self.keras_version = None
        self.records = []
        self.optimizer = ()
        self.optimizer_root = None
        self._h5_size = 0
        self._member = None

    # ------------------------------------------------------------------ detection
    def _open(self):
        path = self.path
        check_model_path(path, self.fail, self.what)
        if path.endswith(".weights.json"):
            self.fail(_SHARDED)
        with open(path, "rb") as f:
            head = f.read(8)
        if not head:
            self.fail("is empty (0 bytes)")
        if head.lstrip()[:1] == b"{":
            self._refuse_json()
        if head.startswith(b"\x93NUMPY"):
            self._open_npy()
        elif zipfile.is_zipfile(path):
            self._open_zip()
        elif h5py.is_hdf5(path):
            self._h5_size = os.path.getsize(path)
            self.h5 = open_hdf5(path, self._h5_size, path)
            self._open_h5(self.h5, where="")
        else:
            self.fail(f"is not {self.kind} (neither a .keras zip, an HDF5 file nor a NumPy "
                      ".npy/.npz file)")
        self._check_unique_names()

    def _check_unique_names(self):
        """Refuse two tensors of one name (a group linked under two names): names must be keys."""
        first = {}
        for r in self.records:
            if r.name in first:
                self.fail(f"two datasets hold the tensor {r.name!r} ({first[r.name]} and "
                          f"{r.location}): a layer group linked under two names?")
            first[r.name] = r.location

    def _refuse_json(self):
        """A JSON file: a sharded weights index (refused: not supported yet) or no weights at all."""
        index = None
        if os.path.getsize(self.path) < (64 << 20):
            try:
                with open(self.path, "rb") as f:
                    index = load_json(f.read().decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                index = None
        if isinstance(index, dict) and "weight_map" in index:
            self.fail(_SHARDED)
        self.fail("is a JSON file, not a Keras weights file (give the .keras, .weights.h5 or "
                  ".h5 file)")

    def _open_npy(self):
        self.fmt = "npy"
        with open(self.path, "rb") as f:
            shape, _, dtype = read_npy_header(f, os.path.getsize(self.path), self.path)
        self.records.append(WeightInfo("array", "array", "array", None, "kernel", "kernel",
                                       tuple(shape), dtype.name, "array"))

    def _open_zip(self):
        self._raw = open(self.path, "rb")
        self._zip, self.zip_infos = open_zip(self._raw, self.fail)
        names = [i.filename for i in self.zip_infos]
        if CONFIG_MEMBER in names:
            self._open_keras_zip(names)
        elif names and all(n.endswith(".npy") for n in names):
            self._open_npz()
        elif any(n.endswith("/" + CONFIG_MEMBER) for n in names):
            self.fail("is a zip whose members sit in a sub-folder; Keras needs config.json and "
                      "model.weights.h5 at the root")
        else:
            self.fail("is a zip without config.json, not a .keras model")

    def _open_npz(self):
        self.fmt = "npz"
        check_archive(self.zip_infos, os.path.getsize(self.path), self.path)
        for info in self.zip_infos:
            key = info.filename[:-4]
            check_expansion(info.file_size, info.compress_size, self.path, info.filename)
            with self._zip.open(info) as f:
                shape, _, dtype = read_npy_header(BoundedReader(f, info.file_size), info.file_size,
                                                  self.path, info.filename)
            self.records.append(WeightInfo(key, key, key, None, "kernel", "kernel", tuple(shape),
                                           dtype.name, key))

    def _open_keras_zip(self, names):
        self.config = keras_config(self._zip, names, self.fail, self.path)
        self.fmt = "keras_zip"
        meta = keras_metadata(self._zip, names, self.fail, self.path)
        self.keras_version = str(meta.get("keras_version")) if meta is not None else None
        fileobj, info = open_member(self._zip, self._raw, self.path, WEIGHTS_MEMBER, self.fail)
        self._h5_size = info.file_size
        self._member = (fileobj, info) if isinstance(fileobj, MemberWindow) else None
        self.h5 = open_hdf5(fileobj, info.file_size, self.path, WEIGHTS_MEMBER)
        self._open_h5(self.h5, where=WEIGHTS_MEMBER + ":")
        if self.fmt != "weights_store":
            self.fail("its model.weights.h5 is not a Keras weights store", WEIGHTS_MEMBER)
        self.fmt = "keras_zip"

    def _open_h5(self, h5, where):
        self._where = where
        mw = h5.get("model_weights")
        if isinstance(mw, h5py.Group) and str_list_attr(mw, "layer_names") is not None:
            self.fmt = "legacy_full"
            if "model_config" in h5.attrs:
                try:
                    self.config = load_json(decode_str(h5.attrs["model_config"]),
                                            "the model config")
                except NestingError as exc:
                    self.fail(str(exc), "/@model_config")
                except (ValueError, TypeError) as exc:
                    self.fail(f"the model_config attribute is not JSON ({exc})", "/@model_config")
            if "keras_version" in h5.attrs:
                try:
                    self.keras_version = decode_str(h5.attrs["keras_version"])
                except TypeError:
                    pass
            self._map_legacy(mw, "/model_weights")
        elif str_list_attr(h5, "layer_names") is not None:
            self.fmt = "legacy_weights"
            if "keras_version" in h5.attrs:
                try:
                    self.keras_version = decode_str(h5.attrs["keras_version"])
                except TypeError:
                    pass
            self._map_legacy(h5, "")
        elif isinstance(h5.get("layers"), h5py.Group) or isinstance(h5.get("vars"), h5py.Group) \
                or any(isinstance(h5[k], h5py.Group) and isinstance(h5[k].get("vars"), h5py.Group)
                       for k in h5):
            self.fmt = "weights_store"
            self._map_store(h5)
        else:
            self.fail("is an HDF5 file but not a Keras weights file (no model_weights, "
                      "layer_names, layers or vars)")

    # ------------------------------------------------------------------ config lookups
    def _config_of(self, name):
        """The config entry of the top-level layer `name` (None without a config)."""
        for entry in (_layers_of(self.config) if self.config is not None else None) or []:
            if isinstance(entry, dict) and layer_name(entry) == name:
                return entry
        return None

    @property
    def tf_keras(self):
        return bool(self.keras_version) and not str(self.keras_version).startswith("3")

    # ------------------------------------------------------------------ weights store
    def _map_store(self, h5):
        entries = _layers_of(self.config) if self.config is not None else None
        if entries is not None:     # Sequential / Functional: the config names every layer
            sequential = self.config.get("class_name") == "Sequential"
            if isinstance(h5.get("layers"), h5py.Group):
                self._store_container(h5["layers"], entries, sequential, "/layers", top=None,
                                      prefix="")
        elif isinstance(h5.get("layers"), h5py.Group):   # no config, or a subclassed model's
            self._bare_container(h5["layers"], "/layers", None, "")
        self._store_root_vars(h5)
        for gname in sorted(k for k in h5 if k not in ("layers", "vars") + _STATE_GROUPS):
            sub = h5[gname]
            if not isinstance(sub, h5py.Group):
                continue
            name = self._stored_name(sub) or gname
            if isinstance(sub.get("layers"), h5py.Group):     # an attribute that is a model
                self._store_root_vars(sub, f"/{gname}", name)
                self._bare_container(sub["layers"], f"/{gname}/layers", name, f"{name}/")
            else:                                              # an attribute that is a layer
                self._store_object(sub, {"class_name": class_from_group(gname), "config": {}},
                                   f"/{gname}", name, name)
        self._check_all_mapped(h5)

    def _store_root_vars(self, group, where="", name=None):
        """Variables a model object holds itself (``<model>/vars``): roles ``var<i>``."""
        datasets = self._vars(group, where)
        if datasets:
            name = name or self._stored_name(group) or "model"
            for i, ds in enumerate(datasets):
                self._add(f"{name}/var{i}", name, name, None, f"var{i}", ds)

    def _check_all_mapped(self, h5):
        """Refuse a store holding datasets that no layer of the model accounts for."""
        mapped = {r.location[len(self._where):] for r in self.records}
        strays = []

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and "/" + name not in mapped:
                strays.append("/" + name)
        for key in h5:
            if key not in _STATE_GROUPS:
                obj = h5[key]
                if isinstance(obj, h5py.Group):
                    obj.visititems(lambda n, o, key=key: visit(f"{key}/{n}", o))
                else:
                    visit(key, obj)
        if strays:
            where = (CONFIG_MEMBER if self._where else "the model config") if self.config \
                is not None else "the file"
            self.fail(f"holds {len(strays)} variable(s) that no layer of {where} accounts for "
                      f"(the config and the weights disagree)", self._where + strays[0])

    def _bare_container(self, group, where, top, prefix):
        for gname in sorted(group, key=_group_order):
            sub = group[gname]
            if not isinstance(sub, h5py.Group):
                continue
            name = self._stored_name(sub) or gname
            if isinstance(sub.get("layers"), h5py.Group):      # a nested model
                self._store_root_vars(sub, f"{where}/{gname}", f"{prefix}{name}")
                self._bare_container(sub["layers"], f"{where}/{gname}/layers", top or name,
                                     f"{prefix}{name}/")
                continue
            self._store_object(sub, {"class_name": class_from_group(gname), "config": {}},
                               f"{where}/{gname}", top or name, f"{prefix}{name}", bare=True)

    @staticmethod
    def _stored_name(group):
        vars_ = group.get("vars")
        if isinstance(vars_, h5py.Group) and "name" in vars_.attrs:
            try:
                return decode_str(vars_.attrs["name"])
            except (TypeError, UnicodeDecodeError):
                return None
        return None

    def _store_container(self, group, entries, sequential, where, top, prefix):
        used = {}
        for entry in entries:
            if not isinstance(entry, dict):
                self.fail("the model config lists a layer that is not a dict", CONFIG_MEMBER)
            if sequential and entry.get("class_name") == "InputLayer":
                continue
            base = snake_case(str(entry.get("class_name")))
            used[base] = used.get(base, -1) + 1
            gname = base if used[base] == 0 else f"{base}_{used[base]}"
            name = layer_name(entry) or gname
            sub = group.get(gname)
            if sub is None:
                continue
            stored = self._stored_name(sub)
            if stored is not None and stored != name:
                self.fail(f"store group {where}/{gname} belongs to layer {stored!r}, but the config "
                          f"puts layer {name!r} there", self._where + f"{where}/{gname}/vars")
            path = f"{prefix}{name}"
            layer = top or name
            if is_model(entry):
                nested = _layers_of(entry) or []
                self._store_root_vars(sub, f"{where}/{gname}", path)
                if isinstance(sub.get("layers"), h5py.Group):
                    self._store_container(sub["layers"], nested, entry.get("class_name") == "Sequential",
                                          f"{where}/{gname}/layers", layer, path + "/")
                continue
            self._store_object(sub, entry, f"{where}/{gname}", layer, path)

    def _refuse_quantized(self, entry, layer, where):
        if self.structure_only:
            return
        cfg = entry.get("config") if isinstance(entry, dict) else None
        mode = quantization_of(cfg)
        if mode is not None:
            self.fail(f"layer {layer!r} is quantized ({mode}); quantized Keras layers are not "
                      "supported (cluster or prune the float model before quantizing it)",
                      self._where + where)

    def _store_object(self, group, entry, where, layer, path, sub=None, bare=False):
        cls = entry.get("class_name") if entry else None
        cfg = entry.get("config", {}) if entry else {}
        cfg = cfg if isinstance(cfg, dict) else {}
        if sub is None:
            self._refuse_quantized(entry, layer, where)
        datasets = self._vars(group, where)
        if datasets:
            shapes = [d.shape for d in datasets]
            roles = store_roles(cls, cfg, shapes, sub=sub, tf_keras=self.tf_keras)
            if roles is None and self.structure_only:
                roles = [f"var{i}" for i in range(len(datasets))]
            if roles is None:
                what = "its group name" if bare else "the config"
                self.fail(f"layer {layer!r} stores {len(datasets)} variables, which a {cls} (from "
                          f"{what}) does not have: a quantized or custom variant, which is not "
                          "supported", self._where + f"{where}/vars")
            self._check_config_shapes(cls, cfg, roles, datasets, layer)
            base = path if sub is None else f"{path}/{sub}"
            for role, ds in zip(roles, datasets):
                self._add(f"{base}/{role}", layer, path, cls, role, ds)
        others = sorted((k for k in group if k not in ("vars", "layers")),
                        key=lambda k: (k.startswith("_"), k))
        for key in others:
            child = group[key]
            if isinstance(child, h5py.Group):
                self._store_object(child, entry, f"{where}/{key}", layer, path,
                                   sub=key if sub is None else f"{sub}/{key}", bare=bare)

    def _vars(self, group, where):
        vars_ = group.get("vars")
        if not isinstance(vars_, h5py.Group):
            return []
        keys = list(vars_)
        if not all(k.isdigit() for k in keys):
            self.fail(f"unexpected entries {sorted(keys)[:5]} in a vars group",
                      self._where + f"{where}/vars")
        out = []
        for k in sorted(keys, key=int):
            ds = vars_[k]
            if not isinstance(ds, h5py.Dataset):
                self.fail("is not a dataset", self._where + f"{where}/vars/{k}")
            out.append(ds)
        return out

    # ------------------------------------------------------------------ legacy
    def _map_legacy(self, root, where):
        names = list(str_list_attr(root, "layer_names"))
        top = root.get("top_level_model_weights")
        if isinstance(top, h5py.Group) and str_list_attr(top, "weight_names"):
            names.append("top_level_model_weights")    # a model's own variables (Keras 3)
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            self.fail(f"layer_names lists {twice[0]!r} twice", where or "/")
        for lname in names:
            group = root.get(lname)
            if not isinstance(group, h5py.Group):
                self.fail(f"layer_names lists {lname!r} but there is no such group", where or "/")
            wnames = str_list_attr(group, "weight_names") or []
            entry = self._config_of(lname)
            cls = entry.get("class_name") if entry else None
            self._refuse_quantized(entry, lname, f"{where}/{lname}")
            nested = _layers_of(entry) if entry is not None and is_model(entry) else None
            seen, seen_wn = set(), set()
            roles, datasets = [], []
            for wn in wnames:
                if wn in seen_wn:
                    self.fail(f"weight_names lists {wn!r} twice", f"{where}/{lname}")
                seen_wn.add(wn)
                ds = group.get(wn)
                if not isinstance(ds, h5py.Dataset):
                    self.fail(f"weight_names lists {wn!r} but there is no such dataset",
                              f"{where}/{lname}")
                rel, role = _legacy_parts(wn, lname)
                if cls in PLAIN_CLASSES:     # a stale prefix (Keras 2.0), not a sub-layer
                    rel = []
                # the layer path: a nested model's sub-layer, never a cell or wrapper part;
                # without a config the first sub-component may be either (kept, as a guess)
                if rel and (nested is not None or entry is None):
                    path = f"{lname}/{rel[0]}"
                else:
                    path = lname
                sub_cls = cls
                if nested is not None:
                    inner = [e for e in nested if isinstance(e, dict) and rel
                             and layer_name(e) == rel[0]]
                    sub_cls = inner[0].get("class_name") if inner else None
                    if inner:
                        self._refuse_quantized(inner[0], f"{lname}/{rel[0]}", f"{where}/{lname}")
                key = "/".join([lname] + rel + [role])
                if key in seen:                       # the file's own name, which is unique
                    key = f"{lname}/{wn}"
                seen.add(key)
                self._add(key, lname, path, sub_cls, role, ds)
                roles.append(role)
                datasets.append(ds)
            if entry is not None and nested is None and wnames:
                cfg = entry.get("config", {}) if isinstance(entry.get("config"), dict) else {}
                self._check_config_shapes(cls, cfg, roles, datasets, lname)

    # ------------------------------------------------------------------ common
    def _check_config_shapes(self, cls, cfg, roles, datasets, layer):
        """Refuse a kernel whose output size disagrees with the config."""
        if self.structure_only:     # removal checks the layers it edits against their rules
            return
        want = None
        if cls == "Dense" or (cls or "").startswith("Conv") and not (cls or "").endswith("Transpose"):
            want = cfg.get("units", cfg.get("filters"))
        elif cls == "Embedding":
            want = cfg.get("output_dim")
        if not isinstance(want, int):
            return
        for role, ds in zip(roles, datasets):
            if role in ("kernel", "embeddings") and ds.ndim >= 2 and ds.shape[-1] != want:
                key = "units" if "units" in cfg else "filters" if "filters" in cfg else "output_dim"
                self.fail(f"layer {layer!r} has {key}={want} in its config but its {role} has "
                          f"shape {tuple(ds.shape)}", self._where + ds.name)

    def _add(self, key, layer, path, cls, role, ds):
        check_dataset(ds, self.h5, self.path, self._where + ds.name, self._h5_size)
        self.records.append(WeightInfo(key, layer, path, cls, role, kind_of(role), tuple(ds.shape),
                                       _dtype_name(ds), self._where + ds.name))

    # ------------------------------------------------------------------ reading
    def _check_member_crc(self):
        """Before the first values of a stored ``.keras`` weights member: check its CRC-32.

        The member is read in place (not through zipfile, which checks the
        CRC only when a member is read to its end), so a damaged byte would
        otherwise go unnoticed.
        """
        if self._member is None:
            return
        fileobj, info = self._member
        self._member = None
        if crc32_of(fileobj, info.file_size) != info.CRC:
            self.fail("fails its CRC-32 check: the file is damaged", WEIGHTS_MEMBER)

    def dataset(self, record):
        """The h5py dataset of a record (HDF5 formats)."""
        return self.h5[record.location[len(self._where):]]

    def read(self, record):
        """The values of `record` as a NumPy array (bfloat16 as exact float32)."""
        try:
            if self.fmt == "npy":
                arr = np.load(self.path, mmap_mode=None, allow_pickle=False)
            elif self.fmt == "npz":
                info = self._zip.getinfo(record.location + ".npy")
                with self._zip.open(info) as f:
                    arr = np.lib.format.read_array(BoundedReader(f, info.file_size),
                                                   allow_pickle=False)
            else:
                self._check_member_crc()
                arr = self.dataset(record)[()]
        except FileFormatError:
            raise
        except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as exc:
            self.fail(f"cannot read the data ({type(exc).__name__}: {exc})", record.location)
        arr = np.asarray(arr)
        if record.dtype == "bfloat16":
            return bf16_to_float32(arr)
        if tuple(arr.shape) != record.shape:
            self.fail(f"holds shape {arr.shape}, not {record.shape}", record.location)
        return arr


    def read_stored(self, ref):
        """The stored array of a :class:`VarRef` (raw dtype; bfloat16 stays ``|V2``)."""
        self._check_member_crc()
        try:
            return self.h5[ref.path][()]
        except (OSError, KeyError, ValueError, TypeError) as exc:
            self.fail(f"cannot read ({exc})", self._where + ref.path)

    # ------------------------------------------------------------------ optimizer state
    def _slot_refs(self, group, where, names=None):
        """VarRefs of the datasets `names` of `group` (default: its ``vars/<i>``)."""
        if names is None:
            datasets = self._vars(group, where)
        else:
            datasets = []
            for wn in names:
                ds = group.get(wn)
                if not isinstance(ds, h5py.Dataset):
                    self.fail(f"weight_names lists {wn!r} but there is no such dataset",
                              self._where + where)
                datasets.append(ds)
        refs = []
        for ds in datasets:
            check_dataset(ds, self.h5, self.path, self._where + ds.name, self._h5_size)
            refs.append(VarRef(ds.name, tuple(ds.shape), ds.dtype))
        return tuple(refs)

    def _map_optimizer(self):
        """Find the optimizer slot lists: :attr:`optimizer` and :attr:`optimizer_root`.

        A weights store keeps them under ``optimizer/vars`` (and
        ``optimizer/<inner>/vars``), one list per group; a legacy file under
        ``optimizer_weights``, listed by its ``weight_names``.
        """
        opt = self.h5.get("optimizer")
        if self.fmt == "keras_zip" and isinstance(opt, h5py.Group):
            lists = []
            stack = [(opt, "/optimizer")]
            while stack:
                group, where = stack.pop()
                refs = self._slot_refs(group, where)
                if refs:
                    lists.append(refs)
                subs = sorted(k for k in group if k != "vars" and isinstance(group[k], h5py.Group))
                stack.extend((group[k], f"{where}/{k}") for k in reversed(subs))
            self.optimizer_root, self.optimizer = "/optimizer", tuple(lists)
        opt = self.h5.get("optimizer_weights")
        if self.fmt == "legacy_full" and isinstance(opt, h5py.Group):
            refs = self._slot_refs(opt, "/optimizer_weights", str_list_attr(opt, "weight_names")
                                   or [])
            self.optimizer_root, self.optimizer = "/optimizer_weights", (refs,) if refs else ()


_WEIGHTS_ONLY = ("holds weights only (no model config); removal needs the architecture: give "
                 "the full model file (.keras, or a legacy .h5 written by model.save)")


class KerasModel(WeightsFile):
    """A Keras model file (architecture + weights) opened read-only for structured removal.

    Attributes (beyond :class:`WeightsFile`'s)
    ------------------------------------------
    fmt : {"keras_zip", "legacy_full"}
    config : dict
        The top-level model dict (``config.json`` or ``model_config``).
    variables : dict of str to tuple of VarRef
        Stored variables of each top-level layer, in stored order (a nested
        model's variables flattened in its layer order).
    optimizer : tuple of tuple of VarRef
        Optimizer slot lists; ``optimizer_root`` the group holding them all.
    """

    what = kind = "a Keras model file"
    structure_only = True

    def _open(self):
        if self.path.endswith(".weights.json"):
            check_model_path(self.path, self.fail, self.what)
            self.fail("is a sharded weights index; " + _WEIGHTS_ONLY)
        super()._open()
        if self.fmt in ("npy", "npz"):
            self.fail("is a NumPy array file, not a Keras model file")
        if self.fmt == "legacy_full" and self.config is None:
            self.fail("is a legacy HDF5 file without model_config; " + _WEIGHTS_ONLY)
        if self.fmt not in ("keras_zip", "legacy_full"):
            self.fail(_WEIGHTS_ONLY)
        try:
            names = [layer_name(e) for e in layer_list(self.config)]
        except ValueError as exc:
            self.fail(f"cannot read the model config: {exc}")
        self._check_member_crc()       # before anything of the member is copied
        if self.fmt == "legacy_full":
            names = list(str_list_attr(self.h5["model_weights"], "layer_names")) + names
        variables = {name: [] for name in names}
        for r in self.records:
            if r.layer in variables:
                ds = self.dataset(r)
                variables[r.layer].append(VarRef(ds.name, tuple(ds.shape), ds.dtype))
        self.variables = {name: tuple(refs) for name, refs in variables.items()}
        self._map_optimizer()


def _legacy_parts(weight_name, layer):
    """(sub-layer path components, role) of a legacy weight name inside the group of `layer`.

    The prefix of a weight name is not reliable (pitfalls of old files):
    ``hidden/kernel:0`` (tf-keras), ``mlp/hidden/kernel`` (Keras 3: a variable
    path), ``lstm/lstm_cell/kernel:0``, ``bilstm/forward_lstm/lstm_cell/kernel:0``,
    ``dense/kernel:0`` for the sub-layer ``dense`` of a nested model's group,
    ``batch_normalization_1_1/gamma:0`` in group ``batch_normalization_1``
    (Keras 2.0). What follows the first occurrence of the layer's own name is
    kept; without it, the whole prefix is.
    """
    parts = [p.split(":")[0] for p in weight_name.split("/")]
    prefix, role = parts[:-1], parts[-1]
    if layer in prefix:
        prefix = prefix[prefix.index(layer) + 1:]
    return prefix, role


def _group_order(name):
    head, _, tail = name.rpartition("_")
    if head and tail.isdigit():
        return (head, int(tail))
    return (name, -1)


def open_weights(path):
    """Open `path` read-only and map its tensors; FileFormatError for anything unreadable."""
    if is_safetensors(path):
        return SafetensorsFile.open(path, WeightInfo)
    return WeightsFile.open(path)


def open_model(path):
    """Open `path` as a :class:`KerasModel`; FileFormatError for anything not editable."""
    return KerasModel.open(path)
