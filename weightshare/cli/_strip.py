"""``weightshare strip``: optimizer state and compile config out of a Keras file."""

import argparse
import textwrap

import weightshare

from ._common import (add_size_options, json_document, output_name, plural, print_json,
                      printable, stdout_may_close)


def register(sub):
    p = sub.add_parser(
        "strip", help="drop optimizer state and the compile/training config of a Keras file",
        description=textwrap.fill(
            "Write OUT without MODEL's optimizer state (Adam's moments, the step count, "
            "tf-keras' compiled metrics) and its compile/training config, so that it holds the "
            "architecture and the weights, byte for byte. Keras loads it uncompiled, with no "
            "warning about optimizer variables; call model.compile(...) to train it again (the "
            "optimizer then starts from scratch). Left out: .keras: model.weights.h5's "
            "optimizer (and metrics) group and config.json's compile_config; .weights.h5: the "
            "optimizer (and metrics) group; legacy .h5: the optimizer_weights group and the "
            "training_config attribute. Everything else is kept exactly. A file with nothing "
            "to leave out is written unchanged, and the command says so. MODEL is never "
            "modified (unless --in-place).", 79),
        epilog="examples:\n"
               "  weightshare strip model.keras -o model-weights-only.keras\n"
               "  weightshare strip model.h5 -o small.h5 --compress",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help=".keras, .weights.h5 or .h5/.hdf5 (Keras)")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file (same suffix as MODEL); required unless --in-place")
    p.add_argument("--in-place", action="store_true",
                   help="replace MODEL itself (still written atomically)")
    add_size_options(p, strip=False)
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "what was left out and the file sizes")
    p.set_defaults(func=run)


def run(args):
    if args.output is None and not args.in_place:
        raise ValueError("give -o OUT, or --in-place to replace MODEL")
    dst = output_name(args)
    res = weightshare.strip_file(args.model, dst, in_place=args.in_place, compress=args.compress)
    with stdout_may_close(written=dst):
        if args.json:
            d = res.to_dict()
            print_json(json_document("strip", args.model, dst, [], {
                key: d[key] for key in ("format", "stripped", "dropped", "optimizer_tensors",
                                        "optimizer_bytes", "config_removed", "size_before",
                                        "size_after", "compressed")}))
            return 0
        print(printable(f"{args.model} -> {dst}"))
        if res.stripped:
            if res.dropped:
                print(printable(f"optimizer state: {', '.join(res.dropped)} "
                                f"({plural(res.optimizer_tensors, 'tensor')}, "
                                f"{res.optimizer_bytes} bytes of values) left out"))
            if res.config_removed:
                print(printable(f"config: {', '.join(res.config_removed)} left out"))
        else:
            print("nothing to strip: the file holds no optimizer state and no compile/training "
                  "config" + ("" if res.compressed else "; written unchanged"))
        ratio = ("unchanged" if res.size_after == res.size_before else
                 f"{res.size_before / res.size_after:.2f}x smaller" if res.size_after else "empty")
        print(f"file size: {res.size_before} -> {res.size_after} bytes ({ratio})")
    return 0
