"""``weightshare cluster``: share weights in a file (k values per tensor)."""

import argparse
import math
import textwrap

import weightshare

from ._common import (Progress, add_rewrite_options, add_target_options, int_at_least,
                      json_document, note_skipped, output_name, parse_k, parse_k_map,
                      parse_seed, plural, print_json, print_table, printable, skipped_json,
                      stdout_may_close, with_default)
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
                    "shape, k, distinct values before -> after, zeros before -> after, SSE. "
                    "Weights of the targeted layers that are left as they are (roles that are "
                    "not kernel-like, such as a custom layer's, or integer dtypes) are named in "
                    "one note on stderr. --dry-run computes and prints everything and writes "
                    "nothing.", 79),
        epilog="examples:\n"
               "  weightshare cluster model.keras -o model-k8.keras -k 8\n"
               "  weightshare cluster model.h5 -o small.h5 -k 8 --k fc1=16,out=32\n"
               "  weightshare cluster model.weights.h5 --in-place -k 4 --layers conv1,conv2 "
               "--per-channel\n"
               "  weightshare cluster model.keras -o g8.keras -k 16 --group-size 8 "
               "--lut-dtype int8\n"
               "  weightshare cluster model.keras -o b3.keras --bits 3\n"
               "  weightshare cluster model.keras -o s40.keras --size 40kB",
        formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL",
                   help=".keras, .weights.h5, .h5/.hdf5, .npy, .npz, .safetensors, or a sharded "
                        "checkpoint's model.safetensors.index.json or folder (then OUT is a new "
                        "folder)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (same suffix as MODEL); required unless --in-place or "
                        "--dry-run")
    p.add_argument("-k", dest="k", type=parse_k, metavar="K",
                   help="shared values per tensor, zero included (e.g. 8)")
    p.add_argument("--k", dest="k_map", type=parse_k_map, metavar="LAYER=K,...",
                   help="k per layer, e.g. fc1=16,fc2=8: overrides -k for those layers; without "
                        "-k only the layers named are clustered; a name may be a glob pattern "
                        "(fc1=16,*=8 is the same as -k 8 --k fc1=16)")
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
    p.add_argument("--group-size", type=int_at_least(1), default=None, metavar="G",
                   help="one set of k values (LUT) per block of G consecutive output channels "
                        "(the --per-channel axis; the last block may be shorter)")
    p.add_argument("--per-channel-scale", action="store_true",
                   help="divide each output channel by its largest |weight| and share one LUT "
                        "over the scaled channels (one per block with --group-size); the file "
                        "holds scale * LUT value per weight")
    p.add_argument("--lut-dtype", default=None,
                   choices=["int8", "uint8", "float16", "bfloat16", "float8_e4m3"],
                   help="every shared value exactly representable in this dtype (int8: "
                        "scale * q, q in -128..127, scale = max|w| / 127 per LUT; uint8: "
                        "affine with a zero point); --method optimal is exact on that grid")
    p.add_argument("--no-keep-zeros", dest="keep_zeros", action="store_false",
                   help="treat exact zeros as ordinary weights (default: they stay zero)")
    p.add_argument("--seed", type=parse_seed, default=None, help="seed of the random inits")
    p.add_argument("--cluster-dim", type=int_at_least(1), default=None, metavar="D",
                   help="vector palettization: k shared vectors of D consecutive weights along "
                        "each kernel's output-channel axis (which D must divide), found by greedy "
                        "k-means++ and Lloyd; not with --per-channel, --group-size, "
                        "--per-channel-scale, --lut-dtype or --method optimal")
    add_rewrite_options(p)
    add_size_options(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "dry_run, total, one row per tensor, and the weights skipped")
    p.add_argument("--importance", metavar="IMP.npz", default=None,
                   help="per-weight importance: a .npz of arrays named like the tensors "
                        "(weightshare info), each broadcastable to its tensor; the weighted SSE "
                        "is minimised (any format)")
    p.add_argument("--calibration", metavar="INPUTS.npy", default=None,
                   help="a few hundred real model inputs (.npy, or .npz with x or one array): "
                        "the model (.keras/.h5) is run once with NumPy and each Dense/Conv "
                        "kernel is weighted by E[x^2] of its inputs (embeddings by token "
                        "frequency), layer by layer; biases are corrected (docs/importance.md)")
    p.add_argument("--no-bias-correction", dest="bias_correction", action="store_false",
                   help="with --calibration: leave the biases as they are (default: shift "
                        "each clustered layer's bias by the mean output change)")
    p.add_argument("--axis", type=_axis, default=None, metavar="AXIS",
                   help="the channel axis of --per-channel, --group-size, --cluster-dim and "
                        "--per-channel-scale for every targeted tensor (negative counts from "
                        "the end); default: each tensor's output axis (safetensors: 0, the "
                        "output row of a PyTorch [out, in] matrix; Keras: as --per-channel "
                        "says); an error naming the tensor when out of its range")
    p.add_argument("--packed", action="store_true",
                   help="safetensors only (file or checkpoint): store each clustered tensor "
                        "as NAME.ws_indices (bit-packed) + NAME.ws_codebook (+ NAME.ws_scale "
                        "with --per-channel-scale); read back with weightshare.load_packed "
                        "(docs/files.md, \"Packed safetensors\")")
    p.add_argument("--jobs", type=int_at_least(1), default=None, metavar="N",
                   help="tensors clustered at the same time, in N worker processes (default: "
                        "the machine's cores); the output is identical to --jobs 1; files "
                        "under 2**20 weights are clustered in one process")
    p.add_argument("--bits", type=_bits, default=None, metavar="B",
                   help="instead of -k: choose k per tensor for the least total SSE with at "
                        "most B index bits per weight on average (sum n*ceil(log2 k) / sum n; "
                        "e.g. 3.0); never worse than the best uniform k that fits")
    p.add_argument("--size", type=_size, default=None, metavar="BYTES",
                   help="instead of -k: the same for a byte budget of the targeted tensors "
                        "encoded 'packed' (header, codebook, ceil(log2 k)-bit indices), e.g. "
                        "40kB, 1.5MiB, 4096")
    p.add_argument("--max-k", type=int_at_least(2), default=None, metavar="K",
                   help="with --bits/--size: the largest k a tensor gets (default 64)")
    p.add_argument("--rate", type=_rate, default=None, metavar="LAMBDA",
                   help="entropy-constrained clustering: minimise SSE + LAMBDA * (index bits "
                        "of an ideal entropy coder) per tensor, with -k as the most values: "
                        "lower index entropy for a little more SSE (0: plain k-means)")
    p.set_defaults(func=run)


def _axis(text):
    """--axis: an integer (negative counts from the end)."""
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer; got {text!r}") from None





def _bits(text):
    """--bits: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number of bits per weight > 0; got {text!r}")
    return value


def _size(text):
    """--size: a byte count such as 40kB."""
    try:
        return weightshare.budget.parse_size(text, "--size")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text):
    """--rate: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not (value >= 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"expected a number >= 0; got {text!r}")
    return value



def _k(args):
    """The k argument of cluster_file from -k and --k (no file read: the library resolves it)."""
    k = with_default(args.k, args.k_map)
    budget = [f for f, v in (("--bits", args.bits), ("--size", args.size)) if v is not None]
    if len(budget) == 2:
        raise ValueError("--bits and --size exclude each other: give one budget")
    if budget and k is not None:
        raise ValueError(f"-k/--k and {budget[0]} exclude each other: the budget chooses k per "
                         "tensor")
    if args.max_k is not None and not budget:
        raise ValueError("--max-k goes with --bits or --size")
    if k is None and not budget:
        raise ValueError("give -k K (e.g. -k 8) and/or --k LAYER=K,..., or a budget: --bits B "
                         "or --size BYTES")
    return k


def _budget_json(b):
    """The budget object of the JSON (None without --bits/--size)."""
    return None if b is None else b.to_dict()


def _budget_line(b):
    """One line: the budget, what the chosen k use, and the best uniform k in it."""
    unit = "bits per weight" if b.kind == "bits" else "bytes"
    fmt = (lambda v: f"{v:.6g}") if b.kind == "bits" else (lambda v: f"{int(v)}")
    line = f"budget {fmt(b.limit)} {unit}: used {fmt(b.used)}, SSE {b.total_sse:.6g}"
    if b.uniform_k is not None:
        ratio = b.total_sse / b.uniform_sse if b.uniform_sse else 1.0
        line += (f"; best uniform k={b.uniform_k} in the budget: SSE {b.uniform_sse:.6g} "
                 f"({ratio:.3f}x)")
    return line + " (SSE of the error curves)"


def _budget_args(args):
    """The budget keywords of cluster_file (none without --bits/--size)."""
    out = {}
    if args.bits is not None:
        out["bits"] = args.bits
    if args.size is not None:
        out["size"] = args.size
    if args.max_k is not None:
        out["max_k"] = args.max_k
    if args.rate is not None:
        out["rate"] = args.rate
    return out


def _json_row(r):
    """One ClusterSummary in the JSON shape of every command (docs/cli.md)."""
    return {"name": r.tensor, "layer": r.layer, "role": r.role, "shape": list(r.shape),
            "dtype": r.dtype, "size": math.prod(r.shape), "k": r.k,
            "distinct_before": r.distinct_before, "distinct_after": r.distinct_after,
            "zeros_before": r.zeros_before, "zeros_after": r.zeros_after, "sse": r.sse,
            "importance": r.importance, "bias_correction": r.bias_correction,
            "method": r.method, "seconds": r.seconds}


def _importance_cell(r):
    """What weighted a tensor's SSE, and what bias correction did: 'calibration, bias
    corrected', 'calibration, no bias', 'file' or '-'."""
    if r.importance is None:
        return "-"
    extra = {"corrected": ", bias corrected", "no bias": ", no bias"}
    return r.importance + extra.get(r.bias_correction, "")


def run(args):
    if args.output is None and not args.in_place and not args.dry_run:
        raise ValueError("give -o OUT, or --in-place to replace MODEL (or --dry-run)")
    k = _k(args)
    dst = None if args.dry_run and args.output is None and not args.in_place else \
        output_name(args)
    bytes_before = file_size(args.model) if args.compress or args.strip else None
    progress = Progress("clustering", quiet=args.quiet)
    try:
        rows = weightshare.cluster_file(args.model, dst, k, layers=args.layers,
                                        roles=args.roles, init=args.init, method=args.method,
                                        keep_zeros=args.keep_zeros, per_channel=args.per_channel,
                                        group_size=args.group_size,
                                        per_channel_scale=args.per_channel_scale,
                                        lut_dtype=args.lut_dtype, random_state=args.seed,
                                        in_place=args.in_place, progress=progress,
                                        dry_run=args.dry_run, compress=args.compress,
                                        strip=args.strip, importance=args.importance,
                                        calibration=args.calibration,
                                        bias_correction=args.bias_correction,
                                        cluster_dim=args.cluster_dim, axis=args.axis,
                                        packed=args.packed, jobs=args.jobs,
                                        **_budget_args(args))
    finally:
        progress.close()
    note_skipped("cluster", rows.skipped)
    if args.dry_run:
        dst = None
    with stdout_may_close(written=dst):
        if args.json:
            print_json(json_document("cluster", args.model, dst, map(_json_row, rows), {
                "dry_run": args.dry_run,
                "total": {"size": sum(math.prod(r.shape) for r in rows),
                          "sse": sum(r.sse for r in rows)},
                "skipped": skipped_json(rows.skipped),
                "budget": _budget_json(rows.budget)}))
            return 0
        if args.dry_run:
            print(printable(f"{args.model}: {plural(len(rows), 'tensor')} would be clustered "
                            "(dry run: nothing written)"))
        else:
            print(printable(f"{args.model} -> {dst}: {plural(len(rows), 'tensor')} clustered"))
        weighted = any(r.importance for r in rows)
        print_table(["tensor", "shape", "k", "distinct before -> after", "zeros before -> after",
                     "SSE"] + (["importance"] if weighted else []),
                    [(r.tensor, "x".join(map(str, r.shape)) or "()", r.k,
                      f"{r.distinct_before} -> {r.distinct_after}",
                      f"{r.zeros_before} -> {r.zeros_after}", f"{r.sse:.6g}")
                     + ((_importance_cell(r),) if weighted else ()) for r in rows])
        if rows:
            print(f"total SSE {sum(r.sse for r in rows):.6g}")
        if rows.budget is not None:
            print(_budget_line(rows.budget))
        if bytes_before is not None and not args.dry_run:
            print(size_line(bytes_before, dst))
    return 0
