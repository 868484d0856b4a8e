"""``weightshare cluster``: share weights in a file (k values per tensor)."""

import weightshare

from ._common import Progress, parse_k, parse_list, print_json, print_table


def register(sub):
    p = sub.add_parser(
        "cluster", help="replace the weights of a file by k shared values per tensor",
        description="Cluster the targeted tensors of MODEL (by default every kernel-like weight) to "
                    "at most k shared values each and write OUT in the same format. Zeros stay "
                    "exactly zero unless --no-keep-zeros. MODEL is never modified; OUT is "
                    "written atomically.")
    p.add_argument("model", metavar="MODEL", help=".keras, .weights.h5, .h5/.hdf5, .npy or .npz")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (same suffix as MODEL); required unless --in-place")
    p.add_argument("-k", "--k", dest="k", type=parse_k, required=True, metavar="K",
                   help="shared values per tensor, zero included (e.g. 8), or per layer: "
                        "fc1=16,fc2=8 (layers not named are left as they are)")
    p.add_argument("--init", default="linear",
                   choices=["linear", "density", "random", "forgy", "kmeans++"],
                   help="initial centroids for --method lloyd (default: linear)")
    p.add_argument("--method", default="auto", choices=["auto", "lloyd", "optimal"],
                   help="auto (default): near-optimal and fast; optimal: exact; lloyd: iterations "
                        "from --init")
    p.add_argument("--layers", type=parse_list, metavar="L1,L2",
                   help="layer names to cluster (default: all)")
    p.add_argument("--roles", type=parse_list, default=["kernel"], metavar="R1,R2",
                   help="weights to cluster: 'kernel' (every kernel-like weight, the default), or "
                        "exact roles such as bias,recurrent_kernel,gamma; 'all' for everything")
    p.add_argument("--per-channel", action="store_true", help="k values per output channel")
    p.add_argument("--no-keep-zeros", dest="keep_zeros", action="store_false",
                   help="treat exact zeros as ordinary weights (default: they stay zero)")
    p.add_argument("--seed", type=int, default=None, help="seed of the random inits")
    p.add_argument("--in-place", action="store_true",
                   help="replace MODEL itself (still written atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args):
    if args.output is None and not args.in_place:
        raise ValueError("give -o OUT, or --in-place to replace MODEL")
    dst = args.model if args.output is None else args.output
    progress = Progress("clustering", quiet=args.quiet)
    try:
        rows = weightshare.cluster_file(args.model, dst, args.k, layers=args.layers,
                                        roles=args.roles, init=args.init, method=args.method,
                                        keep_zeros=args.keep_zeros, per_channel=args.per_channel,
                                        random_state=args.seed, in_place=args.in_place,
                                        progress=progress)
    finally:
        progress.close()
    if args.json:
        print_json({"input": args.model, "output": dst, "tensors": [r.to_dict() for r in rows]})
        return 0
    print(f"{args.model} -> {dst}: {len(rows)} tensor(s) clustered")
    print_table(["tensor", "shape", "k", "distinct before -> after", "zeros before -> after", "SSE"],
                [(r.tensor, "x".join(map(str, r.shape)), r.k,
                  f"{r.distinct_before} -> {r.distinct_after}",
                  f"{r.zeros_before} -> {r.zeros_after}", f"{r.sse:.6g}") for r in rows])
    return 0
