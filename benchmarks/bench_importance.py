"""Calibration-aware clustering: test accuracy of the pruned digits MLP, step by step.

The bundled digits MLP (64 -> 64 -> 32 -> 10, ``weightshare/examples/digits.keras``) is pruned
to 50 % (``prune_file``: per tensor, and ``--global`` across tensors) and clustered with zeros
kept at k = 2, 3, 4, 8 (``method="optimal"``), three ways:

- ``plain``: plain SSE (no importance);
- ``E[x^2]``: ``calibration=`` with ``bias_correction=False`` (each weight's squared error
  weighted by the second moment of its input, layer by layer on the compressed layers' outputs);
- ``E[x^2]+bias``: the same with bias correction (the default with calibration).

Calibration inputs: scikit-learn's digits training split, the split the bundled model was
trained on (``load_digits``, ``/ 16``, ``train_test_split(test_size=0.2, random_state=0,
stratify=y)``, tests/keras/generate_fixtures.py); accuracy on its test split (the bundled
``digits_test.npz``, checked equal), computed with weightshare's NumPy forward pass. With
``--keras PYTHON`` (a Keras 3 interpreter) the accuracy of every calibrated k = 4 file is also
computed by real Keras, as a check of the NumPy forward pass.

Usage (needs scikit-learn: the bench extra)::

    python benchmarks/bench_importance.py [--k 2 3 4 8] [--keras /path/to/keras3/python]

Not a test: numbers are printed, nothing is asserted.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

import weightshare
from weightshare.compare import read_model
from weightshare.forward import forward

RUNS = {"plain": {}, "E[x^2]": {"bias_correction": False}, "E[x^2]+bias": {}}
KERAS = """
import sys, json, numpy as np, keras
x, y = np.load(sys.argv[1])["x"], np.load(sys.argv[1])["y"]
out = {}
for path in sys.argv[2:]:
    m = keras.models.load_model(path, compile=False)
    out[path] = float(np.mean(np.argmax(m.predict(x, verbose=0), 1) == y))
print(json.dumps(out))
"""


def digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    y = d.target.astype("int64")
    return train_test_split(x, y, test_size=0.2, random_state=0, stratify=y)


def accuracy(path, x, y):
    config, weights = read_model(path)
    return float(np.mean(np.argmax(forward(config, weights, x), axis=1) == y))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, nargs="+", default=[2, 3, 4, 8])
    ap.add_argument("--keras", default=os.environ.get("WEIGHTSHARE_KERAS3_PYTHON"),
                    help="a Keras 3 interpreter: check the NumPy accuracies in real Keras")
    args = ap.parse_args()
    x_tr, x_te, y_tr, y_te = digits_split()
    bundled = np.load(weightshare.examples.path("digits_test.npz"))
    assert np.array_equal(bundled["X_test"], x_te) and np.array_equal(bundled["y_test"], y_te)
    src = weightshare.examples.path("digits.keras")
    tmp = tempfile.mkdtemp()
    print(f"digits MLP: {len(x_tr)} calibration inputs (training split), {len(x_te)} test "
          f"inputs; original test accuracy {accuracy(src, x_te, y_te):.2%}")
    checks = {}
    for mode, prune_kw in (("per tensor", {}), ("global", {"global_": True})):
        pruned = os.path.join(tmp, f"p50-{mode.replace(' ', '')}.keras")
        weightshare.prune_file(src, pruned, sparsity=0.5, **prune_kw)
        print(f"\npruned to 50 % ({mode}): test accuracy {accuracy(pruned, x_te, y_te):.2%}")
        print("k".rjust(3) + "".join(name.rjust(14) for name in RUNS))
        for k in args.k:
            cells = []
            for name, kw in RUNS.items():
                out = os.path.join(tmp, f"{mode.replace(' ', '')}-k{k}-{len(cells)}.keras")
                if name != "plain":
                    kw = dict(kw, calibration=x_tr)
                weightshare.cluster_file(pruned, out, k, method="optimal", **kw)
                acc = accuracy(out, x_te, y_te)
                cells.append(f"{acc:.2%}")
                if k == 4:
                    checks[out] = acc
            print(f"{k:3d}" + "".join(c.rjust(14) for c in cells))
    if args.keras:
        data = os.path.join(tmp, "test.npz")
        np.savez(data, x=x_te, y=y_te)
        proc = subprocess.run([args.keras, "-c", KERAS, data, *checks], capture_output=True,
                              text=True, env=dict(os.environ, KERAS_BACKEND="jax"))
        if proc.returncode:
            sys.exit(f"the Keras check failed:\n{proc.stderr}")
        keras_acc = json.loads(proc.stdout.strip().splitlines()[-1])
        worst = max(abs(keras_acc[p] - a) for p, a in checks.items())
        print(f"\nreal Keras on the {len(checks)} k = 4 files: largest accuracy difference to "
              f"the NumPy forward pass {worst:.4%}")


if __name__ == "__main__":
    main()
