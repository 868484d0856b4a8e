"""weightshare: post-training weight sharing and sparsification, in pure NumPy.

The core functions take and return NumPy arrays; the Keras file adapters read
and rewrite ``.keras``, ``.weights.h5`` and legacy ``.h5`` files without
importing TensorFlow or Keras. Importing ``weightshare`` loads neither h5py
nor matplotlib: the file functions import h5py on first use, the plots
matplotlib on first call.
"""

__version__ = "0.1.0"

# arrays in, arrays out (NumPy and the standard library only)
from .cluster import ClusterResult, assign, cluster, init_centroids
from .prune import (PruneResult, SparsitySchedule, apply_mask, prune, prune_global,
                    sparsity_schedule)
from .encode import BlobInfo, EncodedSizes, blob_info, decode, encode, encoded_sizes
from .structure import Structure, TensorStructure, structure_of
# measurement and models (h5py only when a file is read; matplotlib only when plotting)
from .report import Report, ReportTotal, TensorReport, load_tensors, report
from .plot import plot_report
from .budget import BudgetResult, allocate_k
from . import examples     # examples.path("digits.keras"): the bundled files, from any folder

__all__ = ["ClusterResult", "assign", "cluster", "init_centroids",
           "PruneResult", "SparsitySchedule", "apply_mask", "prune", "prune_global",
           "sparsity_schedule",
           "BlobInfo", "EncodedSizes", "blob_info", "decode", "encode", "encoded_sizes",
           "Structure", "TensorStructure", "structure_of",
           "Report", "ReportTotal", "TensorReport", "load_tensors", "report",
           "plot_report",
           "examples",
           "BudgetResult", "allocate_k"]

# The Keras file adapters import h5py: resolved on first use (PEP 562), so that
# importing weightshare, or the array core, never loads it.
_LAZY = {name: "files" for name in ("WeightInfo", "TensorRewrite", "ClusterSummary",
                                    "JobRows", "SkippedWeight", "skipped_weights",
                                    "read_weights", "select_weights", "transform_file",
                                    "cluster_file", "file_format")}
_LAZY.update({"PruneSummary": "_jobs._prune_file", "prune_file": "_jobs._prune_file"})
_LAZY.update({"StripSummary": "_jobs._strip_file", "strip_file": "_jobs._strip_file"})
_LAZY.update({"DiskUsage": "_jobs._disk_usage", "disk_usage": "_jobs._disk_usage"})
_LAZY.update({name: "_jobs._pack_file" for name in ("PackSummary", "UnpackSummary", "pack_file",
                                                    "unpack_file")})
_LAZY.update({"load_packed": "_jobs._packed"})
_LAZY.update({name: "compare" for name in ("CompareResult", "compare_models", "compare_outputs",
                                           "load_array")})
_LAZY.update({name: "remove" for name in ("REMOVE_BY", "RemoveResult", "TensorChange",
                                          "UnitRemoval", "remove_units")})
__all__ += sorted(_LAZY)


def __getattr__(name):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'weightshare' has no attribute {name!r}")
    import importlib
    return getattr(importlib.import_module(f".{module}", __name__), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
