"""``weightshare info``: list the tensors of a file."""

import numpy as np


def register(sub):
    p = sub.add_parser("info", help="list the tensors of a file")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    x = np.load(args.model, allow_pickle=False)
    print(f"{args.model}: shape {x.shape}, dtype {x.dtype}")
    return 0
