"""``weightshare compare``: what a change did to a model's outputs."""

from ..compare import compare_models, load_array
from ..errors import ForwardError
from ._common import Progress, add_quiet, json_document, print_json


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
    p.add_argument("--json", action="store_true",
                   help="print JSON for programs (the shape of every command, docs/cli.md): "
                        "input is NEW, original, samples, agreement, accuracies, differences")
    add_quiet(p)
    p.set_defaults(func=run)


def run(args):
    inputs = load_array(args.inputs, "inputs")
    labels = None if args.labels is None else load_array(args.labels, "labels")
    progress = Progress("comparing", quiet=args.quiet, minimum=0)
    try:
        r = compare_models(args.original, args.new, inputs, labels=labels, progress=progress)
    except ForwardError as exc:       # the model did not run on these inputs: name them too
        raise ValueError(f"{exc} (inputs {args.inputs}, shape {inputs.shape})") from None
    finally:
        progress.close()
    if args.json:
        print_json(json_document("compare", args.new, None, (), {
            "original": args.original, "inputs": args.inputs, "labels": args.labels,
            "samples": r.n, "output_shape": list(r.output_shape),
            "top1_agreement": r.top1_agreement, "accuracy_original": r.accuracy_original,
            "accuracy_new": r.accuracy_new, "max_abs_diff": r.max_abs_diff,
            "mean_abs_diff": r.mean_abs_diff}))
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
