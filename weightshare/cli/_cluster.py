"""``weightshare cluster``: share weights in a file (k values per tensor)."""

import sys
import textwrap

import weightshare

from ._common import (Progress, add_rewrite_options, add_target_options, output_name, parse_k,
                      parse_k_map, parse_seed, plural, print_json, print_table, printable,
                      stdout_may_close)
from ._common import add_size_options, file_size, size_line


def register(sub):
    p = sub.add_parser(
        "cluster", help="replace the weights of a file by k shared values per tensor",
        description=textwrap.fill("Cluster the targeted tensors of MODEL (by default every kernel-like weight: "
                    "Dense/Conv kernels, depthwise and pointwise kernels, recurrent kernels, "
                    "embeddings, attention projections) to at most k shared values each, and "
                    "write OUT in the same format with everything else byte-identical. Zeros "
                    "stay exactly zero unless --no-keep-zeros. MODEL is never modified; OUT is "
                    "written to a temporary file and renamed into place. Prints, per tensor: "
                    "shape, k, distinct values before -> after, zeros before -> after, SSE.", 79),
        epilog="examples:\n"
               "  weightshare cluster model.keras -o model-k8.keras -k 8\n"
               "  weightshare cluster model.h5 -o small.h5 -k 8 --k fc1=16,out=32\n"
               "  weightshare cluster model.weights.h5 --in-place -k 4 --layers conv1,conv2 "
               "--per-channel",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help=".keras, .weights.h5, .h5/.hdf5, .npy, .npz, .safetensors, or a sharded "
                        "checkpoint's model.safetensors.index.json or folder (then OUT is a new "
                        "folder)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (same suffix as MODEL); required unless --in-place")
    p.add_argument("-k", dest="k", type=parse_k, metavar="K",
                   help="shared values per tensor, zero included (e.g. 8)")
    p.add_argument("--k", dest="k_map", type=parse_k_map, metavar="LAYER=K,...",
                   help="k per layer, e.g. fc1=16,fc2=8: overrides -k for those layers; without "
                        "-k only the layers named are clustered")
    p.add_argument("--init", default=None,
                   choices=["linear", "density", "random", "forgy", "kmeans++"],
                   help="initial centroids for --method lloyd (default: linear; kmeans++ is "
                        "greedy, as scikit-learn's); an error with any other --method")
    p.add_argument("--method", default="auto", choices=["auto", "lloyd", "optimal"],
                   help="auto (default): near-optimal and fast; optimal: exact; lloyd: iterations "
                        "from --init")
    add_target_options(p, "cluster", "bias,recurrent_kernel,gamma")
    p.add_argument("--per-channel", action="store_true",
                   help="k values per output channel (last axis of Dense/Conv kernels, axis -2 "
                        "of depthwise and transposed-conv kernels)")
    p.add_argument("--no-keep-zeros", dest="keep_zeros", action="store_false",
                   help="treat exact zeros as ordinary weights (default: they stay zero)")
    p.add_argument("--seed", type=parse_seed, default=None, help="seed of the random inits")
    add_rewrite_options(p)
    add_size_options(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs: input, output, and one row per tensor")
    p.set_defaults(func=run)


def _k(args):
    """The k argument of cluster_file from -k and --k."""
    default, per_layer = args.k, dict(args.k_map or {})
    if isinstance(default, dict):            # -k fc1=16,fc2=8 (same as --k)
        per_layer = {**default, **per_layer}
        default = None
    if default is None and not per_layer:
        raise ValueError("give -k K (e.g. -k 8) and/or --k LAYER=K,...")
    if not per_layer:
        return default
    if default is None:
        return per_layer
    # -k for every targeted layer, --k for those it names
    import weightshare.files     # the file API loads on first use
    floats = weightshare.files.FLOAT_DTYPE_NAMES
    records = weightshare.read_weights(args.model, values=False)
    chosen = weightshare.select_weights(records, layers=args.layers, roles=args.roles)
    layers = dict.fromkeys(r.layer for r in chosen if r.dtype in floats)
    out = {name: default for name in layers}
    for name, value in per_layer.items():
        top = next((r.layer for r in chosen if r.path == name), name)
        if top in out and top != name:      # a nested path overrides its top-level layer
            del out[top]
            for r in chosen:
                if r.layer == top and r.path != name and r.dtype in floats:
                    out.setdefault(r.path, default)
        out[name] = value
    return out


def _unknown_layers(path):
    """Layers whose class has no known variable order (their tensors are var0, var1, ...)."""
    records = weightshare.read_weights(path, values=False)
    return dict.fromkeys((r.path, r.layer_class) for r in records
                         if r.role.startswith("var") and r.role[3:].isdigit())


def _note_skipped(path):
    """safetensors: say which tensors the default roles leave as they are, and why."""
    if not weightshare.file_format(path).startswith("safetensors"):
        return
    records = weightshare.read_weights(path, values=False)
    counts = {}
    for r in records:
        if r.kind != "kernel":
            counts[r.role] = counts.get(r.role, 0) + 1
        elif r.dtype.startswith("float8"):
            counts["float8 (not rounded to float8)"] = counts.get(
                "float8 (not rounded to float8)", 0) + 1
    if counts:
        print(printable("weightshare cluster: note: left as they are: " + ", ".join(
            f"{n} {role}" for role, n in counts.items()) + " (target roles with --roles)"),
            file=sys.stderr)


def run(args):
    if args.output is None and not args.in_place:
        raise ValueError("give -o OUT, or --in-place to replace MODEL")
    k = _k(args)
    if args.roles == ["kernel"]:
        for path, cls in _unknown_layers(args.model):
            print(printable(f"weightshare cluster: note: layer {path!r} ({cls or 'unknown class'}) "
                            "has tensors of unknown role (var0, var1, ...): left as they are; "
                            "target them with --roles"), file=sys.stderr)
    if args.roles == ["kernel"]:
        _note_skipped(args.model)
    dst = output_name(args)
    bytes_before = file_size(args.model) if args.compress or args.strip else None
    progress = Progress("clustering", quiet=args.quiet)
    try:
        rows = weightshare.cluster_file(args.model, dst, k, layers=args.layers,
                                        roles=args.roles, init=args.init, method=args.method,
                                        keep_zeros=args.keep_zeros, per_channel=args.per_channel,
                                        random_state=args.seed, in_place=args.in_place,
                                        compress=args.compress, strip=args.strip,
                                        progress=progress)
    finally:
        progress.close()
    with stdout_may_close(written=dst):
        if args.json:
            print_json({"input": args.model, "output": dst, "tensors": [r.to_dict() for r in rows]})
            return 0
        print(printable(f"{args.model} -> {dst}: {plural(len(rows), 'tensor')} clustered"))
        print_table(["tensor", "shape", "k", "distinct before -> after", "zeros before -> after",
                     "SSE"],
                    [(r.tensor, "x".join(map(str, r.shape)) or "()", r.k,
                      f"{r.distinct_before} -> {r.distinct_after}",
                      f"{r.zeros_before} -> {r.zeros_after}", f"{r.sse:.6g}") for r in rows])
        if rows:
            print(f"total SSE {sum(r.sse for r in rows):.6g}")
        if bytes_before is not None:
            print(size_line(bytes_before, dst))
    return 0
