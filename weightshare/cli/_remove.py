"""``weightshare remove``: take units or filters out of a Keras model file, and propagate."""

import sys

import weightshare

from ._common import json_document, print_json, printable, stdout_may_close


def register(sub):
    p = sub.add_parser(
        "remove", help="remove units (Dense) or filters (Conv) of one layer, and shrink the file",
        description="Remove units of a Dense layer or filters of a Conv layer from a .keras or "
                    "legacy .h5 model, slice the layers that follow (BatchNormalization, "
                    "DepthwiseConv, Flatten, pooling, ...) and the consumers' input weights, "
                    "update the config and the optimizer state, and write a smaller file. The "
                    "input is never modified (unless --in-place).")
    p.add_argument("model", metavar="MODEL", help="a .keras file or a legacy full-model .h5")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="where to write the result (same suffix as MODEL); not needed with --in-place")
    p.add_argument("--layer", required=True, help="name of the Dense or Conv layer to shrink")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--units", type=_indices, metavar="I,J,...",
                       help="comma-separated unit (filter) indices to remove")
    which.add_argument("--count", type=int, metavar="N",
                       help="remove the N units with the smallest norm (see --by)")
    p.add_argument("--by", default="l1", choices=sorted(weightshare.REMOVE_BY),
                   help="with --count: L1 or L2 norm of each unit's producer kernel slice "
                        "(default: l1)")
    p.add_argument("--in-place", action="store_true",
                   help="replace MODEL itself (atomically); a symlink is followed and the real "
                        "file replaced; a file with several hard links is refused")
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "the units removed, the layers crossed, the config edits, and one "
                        "row per tensor that shrank")
    p.set_defaults(func=run)


def _indices(text):
    try:
        return [int(t) for t in text.split(",") if t.strip()]
    except ValueError:
        import argparse
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _shape(s):
    return "(" + ", ".join(str(d) for d in s) + ("," if len(s) == 1 else "") + ")"


def _table(res):
    """The summary as text; names from the file through :func:`printable` (one line each)."""
    lines = [f"{res.src} -> {res.dst}",
             f"layer {res.layer}: {res.units_before} -> {res.units_after} units "
             f"(removed {len(res.removed)}: {', '.join(str(i) for i in res.removed)})"]
    if res.by:
        lines.append(f"chosen by {res.by} norm: " + ", ".join(f"{v:.4g}" for v in res.norms))
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
    """The tensors of the file written, as ``weightshare info`` names them (same layers and
    datasets as the input's; () if it cannot be read, then the rows name the datasets)."""
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
        "layer": res.layer, "removed": list(res.removed), "units_before": res.units_before,
        "units_after": res.units_after, "by": res.by, "norms": list(res.norms),
        "crossed": list(res.path), "config": list(res.config),
        "params_before": res.params_before, "params_after": res.params_after,
        "optimizer": res.optimizer, "warnings": list(res.warnings)})


def run(args):
    dst = args.output
    if dst is None and not args.in_place:
        raise ValueError("give -o OUT (or --in-place to replace MODEL)")
    res = weightshare.remove_units(args.model, dst, layer=args.layer, units=args.units,
                                   count=args.count, by=args.by, in_place=args.in_place)
    for warning in res.warnings:
        print(printable(f"weightshare remove: warning: {warning}"), file=sys.stderr)
    with stdout_may_close(written=res.dst):
        if args.json:
            print_json(_json(args.model, res, _records(res.dst)))
        else:
            print(_table(res))
    return 0
