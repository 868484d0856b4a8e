"""``weightshare prune``: magnitude pruning of a file (exact counts, sparsities, N:M, global)."""

import argparse
import math
import textwrap

import weightshare

from ._common import (Progress, add_rewrite_options, add_target_options, json_document,
                      note_skipped, output_name, per_layer, plural, print_json, print_table,
                      printable, skipped_json, stdout_may_close)
from ._common import add_size_options, file_size, size_line


def parse_pair(sep, what):
    """An argparse type for 'A<sep>B' -> (A, B) of integers, e.g. '2:4' or '4x4'."""
    def parse(text):
        a, s, b = text.replace(" ", "").partition(sep)
        try:
            if not s:
                raise ValueError(text)
            return int(a), int(b)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}; got {text!r}") from None
    return parse


def register(sub):
    p = sub.add_parser(
        "prune", help="zero the smallest-magnitude weights of a file (exact count or sparsity)",
        description=textwrap.fill("Magnitude-prune the targeted tensors of MODEL (by default every kernel-like "
                    "weight: Dense/Conv kernels, depthwise and pointwise kernels, recurrent "
                    "kernels, embeddings, attention projections) and write OUT in the same format "
                    "with everything else byte-identical. --keep N leaves exactly N non-zeros per "
                    "tensor (fewer only if it had fewer); --sparsity S leaves ceil(S * size) "
                    "zeros; existing zeros count as pruned. Ties at the threshold: the lower flat "
                    "index is kept. MODEL is never modified; OUT is written to a temporary file "
                    "and renamed into place. Prints, per tensor: shape, size, non-zeros before -> "
                    "after, sparsity, threshold (the smallest magnitude kept). --sparsity and "
                    "--keep take one value or values per layer (fc1=0.9,fc2=0.5; a name may be a "
                    "glob pattern: fc1=0.9,*=0.5), as cluster's --k. Weights of the targeted "
                    "layers left as they are (roles that are not kernel-like, integer dtypes) "
                    "are named in one note on stderr. --dry-run computes and prints everything "
                    "and writes nothing.", 79),
        epilog="examples:\n"
               "  weightshare prune model.keras -o sparse.keras --sparsity 0.8\n"
               "  weightshare prune model.keras -o sparse.keras --keep 200 --layers embed\n"
               "  weightshare prune model.keras -o sparse.keras --sparsity fc1=0.9,fc2=0.5\n"
               "  weightshare prune model.keras --dry-run --sparsity 0.8 --json\n"
               "  weightshare prune model.h5 -o sparse.h5 --sparsity 0.9 --global\n"
               "  weightshare prune model.keras -o sparse.keras --n-m 2:4 --layers fc1,fc2\n"
               "  weightshare cluster sparse.keras -o small.keras -k 8   # zeros stay zero",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help=".keras, .weights.h5, .h5/.hdf5, .npy or .npz")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (same suffix as MODEL); required unless --in-place or "
                        "--dry-run")
    target = p.add_mutually_exclusive_group()
    target.add_argument("--sparsity", type=per_layer(float, "a number", "S"),
                        metavar="S|LAYER=S,...",
                        help="fraction of zeros wanted per tensor, in [0, 1) (e.g. 0.8), or per "
                             "layer (fc1=0.9,fc2=0.5: only the layers named are pruned)")
    target.add_argument("--keep", type=per_layer(int, "an integer", "N"),
                        metavar="N|LAYER=N,...",
                        help="non-zeros kept per tensor (exactly N, or fewer if it had fewer), "
                             "or per layer (fc1=200,out=50)")
    target.add_argument("--n-m", dest="n_m", type=parse_pair(":", "N:M such as 2:4"),
                        metavar="N:M", help="keep the N largest of every M consecutive weights "
                                            "along the input axis (2:4 sparsity)")
    p.add_argument("--global", dest="global_", action="store_true",
                   help="one threshold across all targeted tensors: --keep and --sparsity count "
                        "them together")
    p.add_argument("--per-channel", action="store_true",
                   help="the same target for every output channel (last axis of Dense/Conv "
                        "kernels, axis -2 of depthwise and transposed-conv kernels)")
    p.add_argument("--block", type=parse_pair("x", "RxC such as 4x4"), metavar="RxC",
                   help="keep or prune whole RxC blocks of the last two axes, by L2 norm")
    add_target_options(p, "prune", "bias,recurrent_kernel")
    add_rewrite_options(p)
    add_size_options(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "dry_run, global, total, one row per tensor, and the weights skipped")
    p.set_defaults(func=run)


def _fmt_threshold(t):
    return "-" if not math.isfinite(t) else f"{t:.6g}"


def _json_row(r):
    """One PruneSummary in the JSON shape of every command (docs/cli.md)."""
    return {"name": r.tensor, "layer": r.layer, "role": r.role, "shape": list(r.shape),
            "dtype": r.dtype, "size": r.size, "nonzeros_before": r.nonzero_before,
            "nonzeros_after": r.nonzero_after, "sparsity": r.sparsity, "threshold": r.threshold}


def run(args):
    if args.output is None and not args.in_place and not args.dry_run:
        raise ValueError("give -o OUT, or --in-place to replace MODEL (or --dry-run)")
    if args.sparsity is None and args.keep is None and args.n_m is None:
        raise ValueError("give a target: --sparsity S, --keep N or --n-m N:M")
    structure = [flag for flag, on in (("--per-channel", args.per_channel),
                                       ("--n-m", args.n_m is not None),
                                       ("--block", args.block is not None)) if on]
    if args.global_ and structure:
        raise ValueError(f"--global ranks magnitudes across tensors; it does not combine with "
                         f"{structure[0]}")
    if len(structure) > 1:
        raise ValueError(f"give at most one of --per-channel, --n-m and --block; got "
                         f"{' and '.join(structure)}")
    for flag, value in (("--sparsity", args.sparsity), ("--keep", args.keep)):
        if args.global_ and isinstance(value, dict):
            raise ValueError(f"--global ranks magnitudes across tensors with one {flag}; give "
                             f"one value, not per-layer values")
    dst = None if args.dry_run and args.output is None and not args.in_place else \
        output_name(args)
    bytes_before = file_size(args.model) if args.compress or args.strip else None
    progress = Progress("pruning", quiet=args.quiet)
    try:
        rows = weightshare.prune_file(args.model, dst, sparsity=args.sparsity, keep=args.keep,
                                      global_=args.global_, layers=args.layers, roles=args.roles,
                                      per_channel=args.per_channel, n_m=args.n_m,
                                      block=args.block, in_place=args.in_place,
                                      progress=progress, dry_run=args.dry_run,
                                      compress=args.compress, strip=args.strip)
    finally:
        progress.close()
    note_skipped("prune", rows.skipped)
    if args.dry_run:
        dst = None
    size = sum(r.size for r in rows)
    before = sum(r.nonzero_before for r in rows)
    after = sum(r.nonzero_after for r in rows)
    with stdout_may_close(written=dst):
        if args.json:
            print_json(json_document("prune", args.model, dst, map(_json_row, rows), {
                "dry_run": args.dry_run, "global": args.global_,
                "total": {"size": size, "nonzeros_before": before, "nonzeros_after": after,
                          "sparsity": 1 - after / size if size else 0.0},
                "skipped": skipped_json(rows.skipped)}))
            return 0
        if args.dry_run:
            print(printable(f"{args.model}: {plural(len(rows), 'tensor')} would be pruned "
                            "(dry run: nothing written)"))
        else:
            print(printable(f"{args.model} -> {dst}: {plural(len(rows), 'tensor')} pruned"))
        print_table(["tensor", "shape", "size", "non-zeros before -> after", "sparsity",
                     "threshold"],
                    [(r.tensor, "x".join(map(str, r.shape)) or "()", r.size,
                      f"{r.nonzero_before} -> {r.nonzero_after}", f"{r.sparsity:.1%}",
                      _fmt_threshold(r.threshold)) for r in rows])
        if rows:
            print(f"total: {before} -> {after} non-zeros of {size} "
                  f"(sparsity {1 - after / size if size else 0:.1%})")
        if bytes_before is not None and not args.dry_run:
            print(size_line(bytes_before, dst))
    return 0
