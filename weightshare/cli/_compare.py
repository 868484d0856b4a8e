"""``weightshare compare``: what a change did to a model's outputs."""

import json
import sys

import numpy as np

from ..compare import compare_models


def register(sub):
    p = sub.add_parser("compare", help="run two models on the same inputs and compare outputs",
                       description="Run ORIGINAL and NEW (Keras files holding their architecture: "
                                   ".keras or legacy .h5) with the NumPy forward pass on the same "
                                   "inputs; report top-1 agreement, accuracy with labels, and the "
                                   "max/mean absolute output difference.")
    p.add_argument("original", metavar="ORIGINAL", help="the original model file")
    p.add_argument("new", metavar="NEW", help="the changed model file")
    p.add_argument("--inputs", required=True, metavar="X.npy",
                   help="inputs, batch first: .npy, or .npz (member x, X, x_test, X_test or "
                        "inputs, or its only member)")
    p.add_argument("--labels", metavar="y.npy",
                   help="true classes: .npy, or .npz (member y, Y, y_test, Y_test or labels, or "
                        "its only member)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


_INPUT_KEYS = ("x", "X", "x_test", "X_test", "inputs")
_LABEL_KEYS = ("y", "Y", "y_test", "Y_test", "labels")


def _load(path, keys, what):
    """An array of a .npy file, or of a .npz member named by `keys` (or its only member)."""
    if not str(path).lower().endswith(".npz"):
        return np.load(path, allow_pickle=False)
    with np.load(path, allow_pickle=False) as z:
        for key in keys:
            if key in z.files:
                return z[key]
        if len(z.files) == 1:
            return z[z.files[0]]
        raise ValueError(f"{path}: the {what} .npz must hold one of {', '.join(keys)} or a "
                         f"single member; it holds {', '.join(z.files)}")


def run(args):
    inputs = _load(args.inputs, _INPUT_KEYS, "inputs")
    labels = None if args.labels is None else _load(args.labels, _LABEL_KEYS, "labels")
    r = compare_models(args.original, args.new, inputs, labels=labels)
    if args.json:
        json.dump(dict(r._asdict(), output_shape=list(r.output_shape)), sys.stdout, indent=2)
        print()
        return 0
    agree = int(round(r.top1_agreement * r.n))
    rows = [("predictions", f"{r.n} (outputs of shape {r.output_shape})"),
            ("top-1 agreement", f"{r.top1_agreement:.4f} ({agree}/{r.n})")]
    if r.accuracy_original is not None:
        rows += [("accuracy original", f"{r.accuracy_original:.4f}"),
                 ("accuracy new", f"{r.accuracy_new:.4f}")]
    rows += [("max |difference|", f"{r.max_abs_diff:.6g}"),
             ("mean |difference|", f"{r.mean_abs_diff:.6g}")]
    for key, value in rows:
        print(f"{key:>18}: {value}")
    return 0
