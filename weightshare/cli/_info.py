"""``weightshare info``: list the weight tensors of a file."""

import math

import weightshare

from ._common import json_document, print_json, print_table, printable, stdout_may_close


def register(sub):
    p = sub.add_parser(
        "info", help="list the weight tensors of a Keras or NumPy file",
        description="List every weight tensor of MODEL: its name, layer class, role (kernel, "
                    "bias, recurrent_kernel, ...), shape, dtype and where it lives in the file "
                    "(HDF5 dataset or zip member). The format is found from the content: "
                    ".keras, Keras 3 .weights.h5, legacy .h5/.hdf5 (Keras 1-3), .npy, .npz. "
                    "MODEL is only read.")
    p.add_argument("model", metavar="MODEL", help=".keras, .weights.h5, .h5/.hdf5, .npy or .npz")
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "format, and per tensor name, layer, path, layer_class, role, kind, "
                        "shape, dtype, size, location")
    p.set_defaults(func=run)


def run(args):
    fmt = weightshare.file_format(args.model)
    records = weightshare.read_weights(args.model, values=False)
    with stdout_may_close():
        if args.json:
            print_json(json_document("info", args.model, None, (
                {"name": r.name, "layer": r.layer, "path": r.path, "layer_class": r.layer_class,
                 "role": r.role, "kind": r.kind, "shape": list(r.shape), "dtype": r.dtype,
                 "size": math.prod(r.shape), "location": r.location} for r in records),
                {"format": fmt}))
            return 0
        n = sum(math.prod(r.shape) for r in records)
        print(f"{printable(args.model)}: {fmt}, {len(records)} tensors, {n} values")
        print_table(["tensor", "class", "role", "shape", "dtype", "location"],
                    [(r.name, r.layer_class or "-", r.role, "x".join(map(str, r.shape)) or "()",
                      r.dtype, r.location) for r in records])
    return 0
