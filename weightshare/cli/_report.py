"""``weightshare report``: how small a model really is, tensor by tensor."""

import sys

import weightshare

from ..plot import (MATPLOTLIB_MISSING, check_out, choose_tensors, matplotlib_available,
                    plot_report)
from ._common import EXIT_BAD_INPUT, json_document, one_line, plural, print_json, printable
from ._common import Progress, add_quiet


def register(sub):
    p = sub.add_parser("report", help="encoded sizes, bounds and errors per tensor",
                       description="Measure every tensor of MODEL with the real encoders (packed, "
                                   "sparse, Huffman), next to the raw size, deflate of the raw "
                                   "bytes, the entropy bound and the Deep Compression eq. 1 "
                                   "ratio. First, the file on disk: its size, what its bytes "
                                   "hold and the size each option would give (see "
                                   "--no-disk). MODEL: a Keras file, .npy, .npz or "
                                   "safetensors.")
    p.add_argument("model", metavar="MODEL", help="a .keras, .weights.h5, .h5, .npy or .npz file")
    p.add_argument("--compare", metavar="ORIGINAL",
                   help="the original model: adds the SSE and max abs error per tensor")
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "original, total and one row per tensor")
    p.add_argument("--plot", metavar="OUT.png",
                   help="draw weight histograms and bytes per tensor (needs matplotlib); the "
                        "format follows the extension (.png, .svg, .pdf); OUT must not be MODEL "
                        "or ORIGINAL nor a folder, and a symlink there is replaced, not followed")
    p.add_argument("--tensors", nargs="+", metavar="NAME",
                   help="tensors to draw a histogram of, each once (default: the six largest, "
                        "kernels before biases)")
    p.add_argument("--no-disk", action="store_true",
                   help="leave out the file on disk (printed first by default: its size; the "
                        "bytes of weights, optimizer state, config/metadata and container "
                        "overhead; and the size --compress, strip and strip --compress give, "
                        "measured by running them into a temporary folder: about three "
                        "rewrites of the file)")
    add_quiet(p)
    p.set_defaults(func=run)


#: the line between the file on disk and the per-tensor table: what the ratios are ratios of
PER_TENSOR = ("per tensor (ratio = the float32 size, 4 bytes per entry, / the best encoding's "
              "bytes; eq.1 = Deep Compression's estimate):")


def _n_as_size(row):
    """A report row with ``n`` named ``size``, as in every command's JSON (docs/cli.md)."""
    return {("size" if key == "n" else key): value for key, value in row.items()}


def _json(args, rep, disk):
    """The Report in the JSON shape of every command (docs/cli.md)."""
    d = rep.to_dict()
    return json_document("report", args.model, args.plot, map(_n_as_size, d["tensors"]), {
        "original": args.compare, "total": _n_as_size(d["total"]),
        "disk": None if disk is None else disk.to_dict()})


def _check_plot(args):
    """The tensors the plot draws, once each: --plot and --tensors checked before any work."""
    try:
        check_out(args.plot, (args.model, args.compare))
    except (ValueError, OSError) as exc:
        raise ValueError(f"--plot: {one_line(exc)}") from None
    values = weightshare.load_tensors(args.model)
    return values, choose_tensors(values, args.tensors)


def run(args):
    if args.plot:   # checked before any work is done
        if not matplotlib_available():
            print(f"weightshare report: error: {MATPLOTLIB_MISSING}", file=sys.stderr)
            return EXIT_BAD_INPUT
        values, tensors = _check_plot(args)
    progress = Progress("measuring", quiet=args.quiet)
    try:
        rep = weightshare.report(args.model, compare=args.compare, progress=progress)
    finally:
        progress.close()
    disk = None if args.no_disk else weightshare.disk_usage(args.model)
    if args.json:
        print_json(_json(args, rep, disk))
    else:
        if disk is not None:      # no text from the file in these lines: nothing to escape
            print(disk.table())
            print()
            print(PER_TENSOR)
        print(rep.table())
    if args.plot:
        drawn = plot_report(values, args.plot, compare=args.compare, tensors=tensors, rep=rep)
        print(printable(f"wrote {args.plot} ({plural(len(drawn), 'histogram')})"), file=sys.stderr)
    return 0
