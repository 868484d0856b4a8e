"""``weightshare remove``: take units or filters out of a Keras model file, and propagate."""

import argparse
import sys
import textwrap

import weightshare

from ._common import (add_dry_run, add_size_options, file_size, json_document, print_json,
                      printable, size_line, stdout_may_close)


def register(sub):
    p = sub.add_parser(
        "remove", help="remove units (Dense) or filters (Conv) of one or more layers, and shrink "
                       "the file",
        description=textwrap.fill(
            "Remove units of Dense layers or filters of Conv layers from a .keras or legacy .h5 "
            "model, slice the layers that follow (BatchNormalization, DepthwiseConv, Flatten, "
            "pooling, ...) and the consumers' input weights, update the config and the "
            "optimizer state, and write a smaller file. The input is never modified (unless "
            "--in-place). Several layers are removed from in one plan: repeat --layer, each "
            "followed by its own --units (or --count; one --count applies to every layer). "
            "Unit indices and norms refer to the original layers; two removals that cut the "
            "same tensor along the same axis are an error. --dry-run prints which units would "
            "go and why, and every tensor, config entry and optimizer slot that would change, "
            "and writes nothing.", 79),
        epilog="examples:\n"
               "  weightshare remove model.keras -o small.keras --layer fc1 --units 1,5,9\n"
               "  weightshare remove model.keras -o small.keras --layer fc1 --units 1,5 \\\n"
               "      --layer fc2 --units 0\n"
               "  weightshare remove model.h5 --dry-run --layer conv1 --layer conv2 --count 2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", metavar="MODEL", help="a .keras file or a legacy full-model .h5")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="where to write the result (same suffix as MODEL); not needed with "
                        "--in-place or --dry-run")
    p.add_argument("--layer", required=True, action="append", metavar="LAYER",
                   help="name of a Dense or Conv layer to shrink; repeat for several layers "
                        "(each with its own --units, in the same order)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--units", type=_indices, action="append", metavar="I,J,...",
                       help="comma-separated unit (filter) indices to remove (one --units per "
                            "--layer)")
    which.add_argument("--count", type=int, action="append", metavar="N",
                       help="remove the N units with the smallest norm (see --by); one --count "
                            "for every layer, or one per --layer")
    p.add_argument("--by", default="l1", choices=sorted(weightshare.REMOVE_BY),
                   help="with --count: L1 or L2 norm of each unit's producer kernel slice "
                        "(default: l1)")
    p.add_argument("--in-place", action="store_true",
                   help="replace MODEL itself (atomically); a symlink is followed and the real "
                        "file replaced; a file with several hard links is refused")
    add_dry_run(p)
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "dry_run, the units removed per layer (targets), the layers crossed, "
                        "the config edits, and one row per tensor that shrank")
    add_size_options(p)
    p.set_defaults(func=run)


def _indices(text):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _shape(s):
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _targets(args):
    """The units= or count= argument of remove_units from the repeated --layer/--units/--count."""
    layers = args.layer
    if len(set(layers)) != len(layers):
        twice = next(n for i, n in enumerate(layers) if n in layers[:i])
        raise ValueError(f"--layer {twice} is given twice; give each layer once")
    values = args.units if args.units is not None else args.count
    flag = "--units" if args.units is not None else "--count"
    if flag == "--count" and len(values) == 1:
        values = values * len(layers)
    if len(values) != len(layers):
        raise ValueError(f"{len(layers)} --layer but {len(values)} {flag}: give one {flag} per "
                         f"--layer, in the same order" + (" (or one --count for all)"
                                                          if flag == "--count" else ""))
    if len(layers) == 1:
        return {"layer": layers[0], flag[2:]: values[0]}
    return {flag[2:]: dict(zip(layers, values))}


def _why(t):
    """Why the units of one layer go: given, or the smallest norms."""
    if t.by:
        return (f"the {len(t.removed)} smallest {t.by} norms: "
                + ", ".join(f"{v:.4g}" for v in t.norms))
    return "given by --units"


def _table(res):
    """The summary as text; names from the file through :func:`printable` (one line each)."""
    head = (f"{res.src} -> {res.dst}" if not res.dry_run else
            f"{res.src}: dry run, nothing written; removing would change:")
    lines = [head]
    for t in res.targets:
        lines.append(f"layer {t.layer}: {t.units_before} -> {t.units_after} units "
                     f"(removed {len(t.removed)}: {', '.join(str(i) for i in t.removed)})")
        lines.append(f"  why: {_why(t)}")
    lines.append("path: " + " -> ".join(res.path))
    lines = [printable(line) for line in lines]
    rows = [(printable(t.layer), printable(t.role), _shape(t.old_shape), _shape(t.new_shape))
            for t in res.tensors]
    head = ("layer", "tensor", "before", "after")
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(4)]
    lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)).rstrip())
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)
    for edit in res.config:
        lines.append(printable(f"config: {edit}"))
    lines.append(f"parameters: {res.params_before} -> {res.params_after}")
    lines.append(f"optimizer state: {res.optimizer}")
    return "\n".join(lines)


def _records(path):
    """The tensors of the file written (the input's, in a dry run), as ``weightshare info``
    names them (same layers and datasets as the input's; () if it cannot be read, then the
    rows name the datasets)."""
    try:
        return weightshare.read_weights(path, values=False)
    except (ValueError, OSError):
        return ()


def _json(model, res, records):
    """The RemoveResult in the JSON shape of every command (docs/cli.md).

    A model variable is named and located as ``weightshare info`` shows it
    (``fc1/kernel``, ``model.weights.h5:/layers/dense/vars/0``); an optimizer
    slot, which has no layer path, is named by its dataset (``optimizer/vars/2``).
    """
    tensors, prefix = [], ""       # prefix: the zip member's "model.weights.h5:" in a .keras
    for t in res.tensors:
        rec = next((r for r in records if r.layer == t.layer and (
            r.location == t.dataset or r.location.endswith(":" + t.dataset))), None)
        if rec is not None:
            prefix = rec.location[:len(rec.location) - len(t.dataset)]
        tensors.append({"name": rec.name if rec else t.dataset.lstrip("/"), "layer": t.layer,
                        "role": t.role, "location": rec.location if rec else prefix + t.dataset,
                        "shape_before": list(t.old_shape), "shape_after": list(t.new_shape)})
    return json_document("remove", model, res.dst, tensors, {
        "dry_run": res.dry_run, "targets": [t.to_dict() for t in res.targets],
        "layer": res.layer, "removed": list(res.removed), "units_before": res.units_before,
        "units_after": res.units_after, "by": res.by, "norms": list(res.norms),
        "crossed": list(res.path), "config": list(res.config),
        "params_before": res.params_before, "params_after": res.params_after,
        "optimizer": res.optimizer, "warnings": list(res.warnings)})


def run(args):
    dst = args.output
    if dst is None and not args.in_place and not args.dry_run:
        raise ValueError("give -o OUT (or --in-place to replace MODEL, or --dry-run)")
    bytes_before = file_size(args.model) if args.compress or args.strip else None
    res = weightshare.remove_units(args.model, dst, **_targets(args), by=args.by,
                                   in_place=args.in_place, dry_run=args.dry_run,
                                   compress=args.compress, strip=args.strip)
    for warning in res.warnings:
        print(printable(f"weightshare remove: warning: {warning}"), file=sys.stderr)
    with stdout_may_close(written=res.dst):
        if args.json:
            print_json(_json(args.model, res, _records(res.dst or args.model)))
        else:
            print(_table(res))
            if bytes_before is not None and not args.dry_run:
                print(size_line(bytes_before, res.dst))
    return 0
