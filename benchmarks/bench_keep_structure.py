"""Fine-tuning with weightshare.keras.KeepStructure: accuracy, structure kept, step-time overhead.

The bundled digits MLP (64 -> 64 -> 32 -> 10) is pruned to 50 % (``prune_file``) and clustered
to k = 8 (``cluster_file``, zero one of the 8 values) by weightshare, then fine-tuned 3 epochs
(Adam 1e-4, batch 32, scikit-learn's digits split of the bundled model) with ``KeepStructure``.
Reported per Keras: test accuracy before and after, the most distinct values of a kernel, whether
every pruned zero is still zero, and the time of a training step with the callback as a ratio to
a plain step of the same model measured in the same process (median epoch times over ``--repeat``
epochs after a warm-up, divided by the steps per epoch; target <= 1.5).

TFMOT side by side (same run, its own interpreter): the same 50 %-pruned weights clustered by
``tfmot.clustering.keras.cluster_weights(number_of_clusters=8, preserve_sparsity=True)``,
fine-tuned the same way, then ``strip_clustering``. It needs tf-keras and
``tensorflow-model-optimization``, which the test venvs do not hold; one way to get it without
touching the ``tf`` venv::

    python -m venv /tmp/tfmot && echo $TF_VENV/lib/python3.11/site-packages \\
        > /tmp/tfmot/lib/python3.11/site-packages/tf.pth
    /tmp/tfmot/bin/pip install --no-deps tensorflow-model-optimization dm-tree

Usage (from the repository root, in the dev venv; the Keras runs are subprocesses)::

    WEIGHTSHARE_KERAS3_PYTHON=... WEIGHTSHARE_TF_PYTHON=... WEIGHTSHARE_TFMOT_PYTHON=/tmp/tfmot/bin/python \\
        python benchmarks/bench_keep_structure.py [--repeat 5] [--json]

An unset variable skips its rows. Not a test: numbers are printed, nothing is asserted.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
KERNELS = ("fc1/kernel", "fc2/kernel", "out/kernel")
#: (label, environment variable, KERAS_BACKEND, TF_USE_LEGACY_KERAS, method)
RUNS = (("Keras 3 / jax", "WEIGHTSHARE_KERAS3_PYTHON", "jax", "0", "keep"),
        ("Keras 3 / tensorflow", "WEIGHTSHARE_TF_PYTHON", "tensorflow", "0", "keep"),
        ("tf-keras 2", "WEIGHTSHARE_TF_PYTHON", "tensorflow", "1", "keep"),
        ("tf-keras 2 + TFMOT", "WEIGHTSHARE_TFMOT_PYTHON", "tensorflow", "1", "tfmot"))


# ------------------------------------------------------------------------------ worker (in Keras)

def _split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    d = load_digits()
    x = (d.data / 16.0).astype("float32")
    return train_test_split(x, d.target.astype("int64"), test_size=0.2, random_state=0, stratify=d.target)


def _build(keras, weights):
    layers = keras.layers
    model = keras.Sequential([keras.Input((64,)),
                              layers.Dense(64, activation="relu", name="fc1"),
                              layers.Dense(32, activation="relu", name="fc2"),
                              layers.Dense(10, activation="softmax", name="out")])
    for name in ("fc1", "fc2", "out"):
        model.get_layer(name).set_weights([weights[f"{name}/kernel"], weights[f"{name}/bias"]])
    return model


LR = [1e-4]


def _compile(keras, model):
    model.compile(optimizer=keras.optimizers.Adam(LR[0]), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def _kernels(model):
    return {f"{n}/kernel": np.asarray(model.get_layer(n).get_weights()[0]) for n in ("fc1", "fc2", "out")}


def _structure(before, after):
    return {"max_distinct": max(int(np.unique(after[k]).size) for k in KERNELS),
            "zeros_kept": all(bool((after[k][before[k] == 0] == 0).all()) for k in KERNELS),
            "nonzero": sum(int(np.count_nonzero(after[k])) for k in KERNELS)}


def _step_time(keras, model, x, y, repeat, callbacks=()):
    """Seconds per training step: the median epoch time over `repeat` epochs (after a warm-up
    epoch) divided by the steps per epoch. Whole epochs, because with jax a step is dispatched
    asynchronously and only the epoch's end waits for it."""
    times, begin = [], []

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            begin.append(time.perf_counter())

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - begin[-1])

    fit = dict(batch_size=32, shuffle=False, verbose=0)
    model.fit(x, y, callbacks=[Timer(), *callbacks], epochs=1, **fit)
    times.clear()
    model.fit(x, y, callbacks=[Timer(), *callbacks], epochs=repeat, **fit)
    return float(np.median(times)) / -(-len(x) // 32)


def worker(args):
    sys.path.insert(0, str(ROOT))
    LR[0] = args.lr
    if args.method == "tfmot":
        import tensorflow_model_optimization as tfmot
    from weightshare.keras import KeepStructure, keras
    x_tr, x_te, y_tr, y_te = _split()
    data = np.load(args.worker)
    start = {k[len("clustered:"):]: data[k] for k in data.files if k.startswith("clustered:")}
    pruned = {k[len("pruned:"):]: data[k] for k in data.files if k.startswith("pruned:")}
    fit = dict(batch_size=32, epochs=args.epochs, shuffle=True, verbose=0)
    out = {"keras": keras.__version__, "backend": keras.backend.backend()}
    keras.utils.set_random_seed(0)
    if args.method == "keep":
        model = _build(keras, start)
        _compile(keras, model)
        out["acc_before"] = _accuracy(model, x_te, y_te)
        model.fit(x_tr, y_tr, callbacks=[KeepStructure(model)], **fit)
        out["acc_after"] = _accuracy(model, x_te, y_te)
        out.update(_structure({k: start[k] for k in KERNELS}, _kernels(model)))
        # plain fine-tuning of the same start, for reference: the structure is lost
        keras.utils.set_random_seed(0)
        plain = _build(keras, start)
        _compile(keras, plain)
        plain.fit(x_tr, y_tr, **fit)
        out["plain_acc_after"] = _accuracy(plain, x_te, y_te)
        out["plain"] = _structure({k: start[k] for k in KERNELS}, _kernels(plain))

        timed = _build(keras, start)
        _compile(keras, timed)
        t_plain = _step_time(keras, timed, x_tr, y_tr, args.repeat)
        timed = _build(keras, start)
        _compile(keras, timed)
        t_keep = _step_time(keras, timed, x_tr, y_tr, args.repeat, [KeepStructure(timed)])
        out.update(step_ms_plain=1e3 * t_plain, step_ms_keep=1e3 * t_keep,
                   overhead=t_keep / t_plain)
    else:
        ck = tfmot.clustering.keras
        model = _build(keras, pruned)
        clustered = ck.cluster_weights(model, number_of_clusters=8, preserve_sparsity=True,
                                       cluster_centroids_init=ck.CentroidInitialization.KMEANS_PLUS_PLUS)
        _compile(keras, clustered)
        out["acc_before"] = _accuracy(clustered, x_te, y_te)
        clustered.fit(x_tr, y_tr, **fit)
        final = ck.strip_clustering(clustered)
        _compile(keras, final)
        out["acc_after"] = _accuracy(final, x_te, y_te)
        out.update(_structure({k: pruned[k] for k in KERNELS}, _kernels(final)))
        # a TFMOT step against a plain step of the same model, in the same process
        plain = _build(keras, pruned)
        _compile(keras, plain)
        t_plain = _step_time(keras, plain, x_tr, y_tr, args.repeat)
        t_tfmot = _step_time(keras, clustered, x_tr, y_tr, args.repeat)
        out.update(step_ms_plain=1e3 * t_plain, step_ms_keep=1e3 * t_tfmot,
                   overhead=t_tfmot / t_plain)
    print(json.dumps(out))


# ------------------------------------------------------------------------------ driver

def prepare(folder):
    """The 50 %-pruned and the pruned + k=8 weights of the bundled model, as one .npz."""
    sys.path.insert(0, str(ROOT))
    import weightshare
    src = weightshare.examples.path("digits.keras")
    pruned, clustered = os.path.join(folder, "p50.keras"), os.path.join(folder, "p50k8.keras")
    weightshare.prune_file(src, pruned, sparsity=0.5)
    weightshare.cluster_file(pruned, clustered, 8)
    arrays = {f"pruned:{w.name}": w.value for w in weightshare.read_weights(pruned)}
    arrays.update({f"clustered:{w.name}": w.value for w in weightshare.read_weights(clustered)})
    path = os.path.join(folder, "start.npz")
    np.savez(path, **arrays)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7, help="epochs timed per variant")
    ap.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs")
    ap.add_argument("--lr", type=float, default=1e-4, help="Adam's learning rate")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--method", default="keep", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        return worker(args)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        start = prepare(folder)
        for label, var, backend, legacy, method in RUNS:
            python = os.environ.get(var)
            if not python:
                print(f"# {label}: {var} is not set, skipped", file=sys.stderr)
                continue
            env = dict(os.environ, KERAS_BACKEND=backend, TF_USE_LEGACY_KERAS=legacy,
                       TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu")
            proc = subprocess.run([python, __file__, "--worker", start, "--method", method,
                                   "--repeat", str(args.repeat), "--epochs", str(args.epochs),
                                   "--lr", str(args.lr)],
                                  env=env, capture_output=True, text=True, timeout=1800)
            if proc.returncode:
                print(f"# {label}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
                continue
            rows.append(dict(json.loads(proc.stdout.strip().splitlines()[-1]), run=label,
                             method=method))
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    print(f"digits MLP, pruned 50 % + k=8, fine-tuned {args.epochs} epochs (Adam {args.lr:g}, "
          "batch 32)")
    print(f"{'run':26} {'method':14} {'acc before':>10} {'acc after':>9} {'max values':>10} "
          f"{'zeros kept':>10} {'ms/step plain':>13} {'ms/step with':>12} {'overhead':>8}")
    for r in rows:
        method = "KeepStructure" if r["method"] == "keep" else "TFMOT cluster"
        timing = f"{r['step_ms_plain']:13.2f} {r['step_ms_keep']:12.2f} {r['overhead']:7.2f}x"
        print(f"{r['run']:26} {method:14} {r['acc_before']:10.4f} {r['acc_after']:9.4f} "
              f"{r['max_distinct']:10d} {str(r['zeros_kept']):>10} {timing}")
        if "plain" in r:
            p = r["plain"]
            print(f"{'':26} {'(no callback)':14} {r['acc_before']:10.4f} {r['plain_acc_after']:9.4f} "
                  f"{p['max_distinct']:10d} {str(p['zeros_kept']):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
