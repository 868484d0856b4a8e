"""weightshare: post-training weight sharing and sparsification, in pure NumPy.

The core functions take and return NumPy arrays; the Keras file adapters read
and rewrite ``.keras``, ``.weights.h5`` and legacy ``.h5`` files without
importing TensorFlow or Keras.
"""

__version__ = "0.1.0"

from .cluster import ClusterResult, assign, cluster, init_centroids
from .encode import BlobInfo, EncodedSizes, blob_info, decode, encode, encoded_sizes
from .report import Report, ReportTotal, TensorReport, load_tensors, report
from .plot import plot_report  # matplotlib loads on first call
from .compare import CompareResult, compare_models, compare_outputs  # h5py on first file read
from .prune import (PruneResult, SparsitySchedule, apply_mask, prune, prune_global,
                    sparsity_schedule)

__all__ = ["ClusterResult", "assign", "cluster", "init_centroids"]
__all__ += ["PruneResult", "SparsitySchedule", "apply_mask", "prune", "prune_global",
            "sparsity_schedule"]
from .remove import REMOVE_BY, RemoveResult, TensorChange, remove_units  # h5py loads on first call

__all__ += ["REMOVE_BY", "RemoveResult", "TensorChange", "remove_units"]
__all__ += ["BlobInfo", "EncodedSizes", "blob_info", "decode", "encode", "encoded_sizes"]
__all__ += ["Report", "ReportTotal", "TensorReport", "load_tensors", "report"]
__all__ += ["plot_report"]

# The file adapters import h5py: loaded on first use, so the array core never does.
_FILE_API = {"WeightInfo", "TensorRewrite", "ClusterSummary", "read_weights", "select_weights",
             "transform_file", "cluster_file", "file_format"}
__all__ += sorted(_FILE_API)
_PRUNE_FILE_API = {"PruneSummary", "prune_file"}   # weightshare/_prune_file.py, h5py on first use
__all__ += sorted(_PRUNE_FILE_API)


def __getattr__(name):
    if name in _FILE_API:
        from . import files
        return getattr(files, name)
    if name in _PRUNE_FILE_API:
        from . import _prune_file
        return getattr(_prune_file, name)
    raise AttributeError(f"module 'weightshare' has no attribute {name!r}")
__all__ += ["CompareResult", "compare_models", "compare_outputs"]
