"""Write two small Functional models for the structured-removal proof (tests/test_remove_keras.py).

Run with the interpreter of a Keras venv; weightshare never imports this file (nor Keras):

    python tests/keras/make_functional_removal.py --producer {k3,k3tf,k2} --out DIR

Models (both saved as ``.keras`` and legacy ``.h5``, plus ``<name>_io.npz`` with a fixed input ``x``):

- ``fn_dense_fanout``: Input(8, ``x``) -> Dense(16, relu, ``fc1``) -> BatchNormalization(``bn1``)
  -> two outputs: Dense(4, ``head_a``) and Dense(3, ``head_b``) (the removal fans out);
- ``fn_conv_branches``: Input(8, 8, 3, ``img``) -> Conv2D(8, 3, same, relu, ``conv1``) -> two
  outputs: GlobalAveragePooling2D(``gap``) -> Dense(4, ``head_a``), and MaxPooling2D(``pool``) ->
  Flatten(``flatten``) -> Dense(2, ``head_b``).

Biases and BatchNormalization statistics are set to seeded random values, so that removed units
matter. The generated files are test inputs made on the fly, not committed fixtures.
"""

import argparse
import os
import sys


def _set_env(producer):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if producer == "k3":
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    elif producer == "k3tf":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def _keras(producer):
    import warnings
    warnings.filterwarnings("ignore")
    try:
        import absl.logging
        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    if producer == "k2":
        import tf_keras as keras
        return keras
    import keras
    return keras


def _randomize(model, rng):
    for layer in model.layers:
        ws = layer.get_weights()
        if not ws:
            continue
        names = [w.name.split("/")[-1].split(":")[0] for w in layer.weights]
        new = []
        for name, w in zip(names, ws):
            if name in ("gamma", "moving_variance"):
                new.append(rng.uniform(0.5, 1.5, w.shape).astype(w.dtype))
            elif name in ("beta", "bias", "moving_mean"):
                new.append(rng.normal(0, 0.3, w.shape).astype(w.dtype))
            else:
                new.append(w)
        layer.set_weights(new)


def build(keras, name):
    L = keras.layers
    if name == "fn_dense_fanout":
        x = keras.Input((8,), name="x")
        h = L.Dense(16, activation="relu", name="fc1")(x)
        h = L.BatchNormalization(name="bn1")(h)
        outs = [L.Dense(4, name="head_a")(h), L.Dense(3, name="head_b")(h)]
        return keras.Model(x, outs, name=name), (8,)
    x = keras.Input((8, 8, 3), name="img")
    h = L.Conv2D(8, 3, padding="same", activation="relu", name="conv1")(x)
    a = L.Dense(4, name="head_a")(L.GlobalAveragePooling2D(name="gap")(h))
    b = L.Dense(2, name="head_b")(L.Flatten(name="flatten")(L.MaxPooling2D(name="pool")(h)))
    return keras.Model(x, [a, b], name=name), (8, 8, 3)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producer", required=True, choices=("k3", "k3tf", "k2"))
    ap.add_argument("--out", required=True)
    args = ap.parse_args(argv)
    _set_env(args.producer)
    keras = _keras(args.producer)
    import numpy as np

    os.makedirs(args.out, exist_ok=True)
    for name in ("fn_dense_fanout", "fn_conv_branches"):
        keras.utils.set_random_seed(7)
        model, shape = build(keras, name)
        _randomize(model, np.random.default_rng(11))
        x = np.random.default_rng(5).normal(size=(4, *shape)).astype("float32")
        stem = os.path.join(args.out, f"{args.producer}_{name}")
        model.save(stem + ".keras")
        model.save(stem + ".h5")
        np.savez(stem + "_io.npz", x=x)
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
