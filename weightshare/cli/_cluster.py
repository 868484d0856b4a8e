"""``weightshare cluster``: share weights in a file."""

import json
import sys

import numpy as np

import weightshare


def register(sub):
    p = sub.add_parser("cluster", help="replace the weights of a file by k shared values per tensor",
                       description="Cluster every targeted tensor of MODEL to at most k shared values "
                                   "and write the result to OUT (the input is never modified).")
    p.add_argument("model", metavar="MODEL", help="a .npy array file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="where to write the result")
    p.add_argument("-k", type=int, required=True, help="shared values per tensor (zero included)")
    p.add_argument("--init", default="linear", choices=["linear", "density", "random", "forgy", "kmeans++"],
                   help="initial centroids for --method lloyd (default: linear)")
    p.add_argument("--method", default="auto", choices=["auto", "lloyd", "optimal"],
                   help="auto (default), lloyd or optimal (exact)")
    p.add_argument("--no-keep-zeros", dest="keep_zeros", action="store_false",
                   help="treat exact zeros as ordinary weights (default: zeros stay zero)")
    p.add_argument("--seed", type=int, default=None, help="random seed for the random inits")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args):
    x = np.load(args.model, allow_pickle=False)
    res = weightshare.cluster(x, args.k, init=args.init, method=args.method,
                              keep_zeros=args.keep_zeros, random_state=args.seed)
    np.save(args.output, res.values)
    row = {"tensor": args.model, "shape": list(x.shape), "distinct_before": int(np.unique(x).size),
           "distinct_after": int(np.unique(res.values).size), "zeros_before": int(np.sum(x == 0)),
           "zeros_after": int(np.sum(res.values == 0)), "sse": res.sse}
    if args.json:
        json.dump({"tensors": [row]}, sys.stdout, indent=2)
        print()
    else:
        for key, value in row.items():
            print(f"{key:>15}: {value}")
    return 0
