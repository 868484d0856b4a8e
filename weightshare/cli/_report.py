"""``weightshare report``: how small a model really is, tensor by tensor."""

import json
import math
import sys

import weightshare

from . import EXIT_BAD_INPUT
from ._common import printable


def register(sub):
    p = sub.add_parser("report", help="encoded sizes, bounds and errors per tensor",
                       description="Measure every tensor of MODEL with the real encoders (packed, "
                                   "sparse, Huffman), next to the raw size, deflate of the raw "
                                   "bytes, the entropy bound and the Deep Compression eq. 1 "
                                   "ratio. MODEL: a Keras file, .npy or .npz.")
    p.add_argument("model", metavar="MODEL", help="a .keras, .weights.h5, .h5, .npy or .npz file")
    p.add_argument("--compare", metavar="ORIGINAL",
                   help="the original model: adds the SSE and max abs error per tensor")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--plot", metavar="OUT.png",
                   help="draw weight histograms and bytes per tensor (needs matplotlib)")
    p.add_argument("--tensors", nargs="+", metavar="NAME",
                   help="tensors to draw a histogram of (default: the six largest)")
    p.set_defaults(func=run)


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def run(args):
    if args.plot:   # checked before any work is done
        from ..plot import MATPLOTLIB_MISSING
        try:
            import matplotlib  # noqa: F401  (only whether it imports)
        except ImportError:
            print(f"weightshare report: error: {MATPLOTLIB_MISSING}", file=sys.stderr)
            return EXIT_BAD_INPUT
    rep = weightshare.report(args.model, compare=args.compare)
    if args.json:
        json.dump(_json_safe(rep.to_dict()), sys.stdout, indent=2)
        print()
    else:
        print(rep.table())
    if args.plot:
        from ..plot import plot_report
        drawn = plot_report(args.model, args.plot, compare=args.compare, tensors=args.tensors,
                            rep=rep)
        print(printable(f"wrote {args.plot} ({len(drawn)} histogram(s))"), file=sys.stderr)
    return 0
