"""The one JSON shape of ``weightshare COMMAND --json``, for every command (docs/cli.md).

Every command prints one object: ``command`` (the subcommand), ``input``
(the path read), ``output`` (the path written, or null when the command
writes nothing), the command's own fields, and last ``tensors``, a list of
objects keyed ``name`` first. The same thing has the same key everywhere:
``shape``, ``dtype``, ``size`` (entries), ``location`` (where a tensor lives
in its file), ``nonzeros`` / ``nonzeros_before`` / ``nonzeros_after``,
``zeros_before`` / ``zeros_after``, ``shape_before`` / ``shape_after``,
``k``, ``sse``; ``original`` is the reference model of ``report --compare``
and ``compare``.

:data:`SCHEMA` describes, per command, the top-level ``fields`` between
``output`` and ``tensors`` and the keys of one ``tensor`` row, each with its
JSON type: ``str``, ``int``, ``float`` (any JSON number), ``bool``, ``None``
(null), ``[T]`` (a list of T), a dict (an object with exactly those keys)
or a tuple (any of its types). Every key is always present; a number that
is undefined or beyond the float64 range (an overflowing SSE, a NaN) is
null, so the output is standard JSON (never ``NaN`` or ``Infinity``).
The tests validate every command's output against it, over the fixtures of
every format, and the examples of docs/cli.md too.
"""

__all__ = ["COMMON", "SCHEMA"]

#: the keys every command prints first, in this order (``tensors`` comes last)
COMMON = {"command": str, "input": str, "output": (str, None)}

_SHAPE = [int]
_NUMBER = (float, None)     # null: undefined or beyond the float64 range
#: a weight a job left as it is, and why (``cluster`` and ``prune``)
_SKIPPED = {"name": str, "layer": str, "layer_class": (str, None), "role": str, "dtype": str,
            "reason": str}
#: the units taken out of one layer (``remove``; several with repeated --layer)
_TARGET = {"layer": str, "removed": [int], "units_before": int, "units_after": int,
           "by": (str, None), "norms": [_NUMBER], "path": [str]}

#: the file on disk (``report``; null with --no-disk): bytes, what they hold, each option's size
#: (null: the option does not apply, was not computed, or is not available, as ``pack`` until the
#: pack branch fills it in)
_DISK = {"format": str, "size": int, "files": int, "weights": int, "optimizer": int,
         "config": int, "overhead": int,
         "options": {"compress": (int, None), "strip": (int, None), "strip_compress": (int, None),
                     "pack": (int, None)},
         "note": (str, None)}
#: cluster --bits / --size: the budget, what the chosen k use, the best uniform k in it
_BUDGET = {"kind": str, "limit": float, "used": float, "total_sse": _NUMBER,
           "uniform_k": (int, None), "uniform_sse": _NUMBER}

SCHEMA = {
    "info": {
        "fields": {"format": str},
        "tensor": {"name": str, "layer": str, "path": str, "layer_class": (str, None),
                   "role": str, "kind": str, "shape": _SHAPE, "dtype": str, "size": int,
                   "location": str},
    },
    "cluster": {
        "fields": {"dry_run": bool, "total": {"size": int, "sse": _NUMBER},
                   "skipped": [_SKIPPED], "budget": (_BUDGET, None)},
        "tensor": {"name": str, "layer": str, "role": str, "shape": _SHAPE, "dtype": str,
                   "size": int, "k": int, "distinct_before": int, "distinct_after": int,
                   "zeros_before": int, "zeros_after": int, "sse": _NUMBER,
                   "importance": (str, None), "bias_correction": (str, None),
                   "method": str, "seconds": float},
    },
    "prune": {
        "fields": {"dry_run": bool, "global": bool,
                   "total": {"size": int, "nonzeros_before": int, "nonzeros_after": int,
                             "sparsity": float},
                   "skipped": [_SKIPPED]},
        "tensor": {"name": str, "layer": str, "role": str, "shape": _SHAPE, "dtype": str,
                   "size": int, "nonzeros_before": int, "nonzeros_after": int,
                   "sparsity": float, "threshold": _NUMBER},
    },
    "remove": {
        "fields": {"dry_run": bool, "targets": [_TARGET],
                   "layer": (str, None), "removed": [int], "units_before": (int, None),
                   "units_after": (int, None),
                   "by": (str, None), "norms": [_NUMBER], "crossed": [str], "config": [str],
                   "params_before": int, "params_after": int, "optimizer": str,
                   "warnings": [str]},
        "tensor": {"name": str, "layer": str, "role": str, "location": str,
                   "shape_before": _SHAPE, "shape_after": _SHAPE},
    },
    "report": {
        "fields": {"original": (str, None),
                   "total": {"n_tensors": int, "size": int, "nonzeros": int, "float32": int,
                             "raw": int, "packed": int, "sparse": int, "huffman": int,
                             "sparse_huffman": int, "best": int, "entropy": float,
                             "deflate": int, "ratio": _NUMBER, "ratio_eq1": _NUMBER,
                             "sse": _NUMBER, "max_abs_error": _NUMBER},
                   "disk": (_DISK, None)},
        "tensor": {"name": str, "shape": _SHAPE, "dtype": str, "size": int, "nonzeros": int,
                   "distinct": int, "index_bits": int, "raw": int, "packed": int, "sparse": int,
                   "huffman": int, "sparse_huffman": int, "best": int, "best_scheme": str,
                   "entropy": float, "deflate": int, "ratio": _NUMBER, "ratio_eq1": _NUMBER,
                   "sse": _NUMBER, "max_abs_error": _NUMBER},
    },
    "strip": {
        "fields": {"format": str, "stripped": bool, "dropped": [str], "optimizer_tensors": int,
                   "optimizer_bytes": int, "config_removed": [str], "size_before": int,
                   "size_after": int, "compressed": bool},
        "tensor": {"name": str},        # strip changes no tensor: its list is empty
    },
    "compare": {
        "fields": {"original": str, "inputs": str, "labels": (str, None), "samples": int,
                   "output_shape": _SHAPE, "top1_agreement": float,
                   "accuracy_original": _NUMBER, "accuracy_new": _NUMBER,
                   "max_abs_diff": _NUMBER, "mean_abs_diff": _NUMBER},
        "tensor": {"name": str},        # compare runs the models: its list is empty
    },
    "pack": {
        "fields": {"dry_run": bool, "format": str, "size_before": int, "size_after": int,
                   "ratio": _NUMBER, "regions": int, "tensor_bytes": int, "tensor_stored": int,
                   "skeleton_bytes": int, "skeleton_stored": int},
        "tensor": {"name": str},        # pack changes no tensor: its list is empty
    },
    "unpack": {
        "fields": {"dry_run": bool, "size_before": int, "size_after": int, "sha256": str},
        "tensor": {"name": str},        # unpack changes no tensor: its list is empty
    },
}
