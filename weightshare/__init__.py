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
