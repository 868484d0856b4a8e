"""``weightshare compare``: what a change did to a model's outputs."""

import json
import sys

import numpy as np

from ..compare import compare_models
from ..errors import ForwardError


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
    """An array of a .npy file, or of a .npz member named by `keys` (or its only member).

    The file is checked before it is read (a forged header, a pickle, an empty
    file are refused naming it) and must hold numbers.
    """
    from .._npyio import load_npy, load_npz
    if not str(path).lower().endswith(".npz"):
        arr = load_npy(path)
    else:
        members = load_npz(path)
        arr = next((members[k] for k in keys if k in members), None)
        if arr is None:
            if len(members) != 1:
                raise ValueError(f"{path}: the {what} .npz must hold one of {', '.join(keys)} or "
                                 f"a single member; it holds {', '.join(members) or 'nothing'}")
            arr = next(iter(members.values()))
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{path}: the {what} hold {arr.dtype} values, not numbers")
    if arr.size == 0 or arr.ndim == 0:
        raise ValueError(f"{path}: the {what} are empty (shape {arr.shape})")
    if what == "inputs":
        if arr.ndim < 2:
            raise ValueError(f"{path}: the inputs have shape {arr.shape}; they need a batch axis "
                             "and the model's input axes, e.g. (batch, features)")
        bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
        if bad:
            raise ValueError(f"{path}: {bad} of the {arr.size} input values are NaN or infinite")
    return arr


def run(args):
    inputs = _load(args.inputs, _INPUT_KEYS, "inputs")
    labels = None if args.labels is None else _load(args.labels, _LABEL_KEYS, "labels")
    try:
        r = compare_models(args.original, args.new, inputs, labels=labels)
    except ForwardError as exc:       # the model did not run on these inputs: name them too
        raise ValueError(f"{exc} (inputs {args.inputs}, shape {inputs.shape})") from None
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
