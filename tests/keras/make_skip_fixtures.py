"""Write the fixtures of tests/fixtures/skips/: files holding weights that file jobs leave out.

Run with the interpreter of a Keras venv (tests/keras/setup_venvs.sh); weightshare never imports
this file (nor Keras):

    /work/kvenvs/keras3/bin/python tests/keras/make_skip_fixtures.py --producer k3 --out tests/fixtures/skips
    /work/kvenvs/tf/bin/python     tests/keras/make_skip_fixtures.py --producer k2 --out tests/fixtures/skips

The model, the same for both producers: Input(4, ``x``) -> Dense(6, ``fc``) -> ``Attention``
(a custom layer, ``attention``, registered as ``weightshare_fixtures>Attention``, holding the
weights ``attention_W`` (6, 6) and ``attention_b`` (6,) made by ``add_weight``) -> Dense(2,
``out``). Its kernels ``fc`` and ``out`` are kernel-like; ``attention_W`` is not a role
weightshare knows, so the default jobs leave it out and must say so.

Files (``<producer>_attention.<ext>``):

- k2 (tf-keras): ``.h5`` (legacy HDF5 ``model.save``: weight names ``attention/attention_W:0``);
- k3 (Keras 3, jax): ``.keras``, ``.weights.h5`` (store: the custom layer's variables are
  ``vars/0``, ``vars/1``), ``.h5`` (legacy HDF5 of Keras 3);
- ``arrays.npz`` and ``ids.npy`` (k3 run, NumPy's own writer): the model's float32 kernels plus
  an int64 ``ids`` array, and that int64 array alone (integer tensors are never changed).

Everything is seeded; the files are small and committed.
"""

import argparse
import os


def _set_env(producer):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if producer == "k3":
        os.environ["KERAS_BACKEND"] = "jax"
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


def build(keras):
    register = (keras.saving.register_keras_serializable if hasattr(keras, "saving")
                else keras.utils.register_keras_serializable)

    @register(package="weightshare_fixtures")
    class Attention(keras.layers.Layer):
        """A toy gate: x * sigmoid(x @ W + b), with weights named as custom layers name them."""

        def build(self, input_shape):
            n = int(input_shape[-1])
            self.W = self.add_weight(name="attention_W", shape=(n, n), initializer="glorot_uniform")
            self.b = self.add_weight(name="attention_b", shape=(n,), initializer="zeros")
            super().build(input_shape)

        def call(self, x):
            return x * keras.activations.sigmoid(keras.ops.matmul(x, self.W) + self.b) \
                if hasattr(keras, "ops") else \
                x * keras.activations.sigmoid(keras.backend.dot(x, self.W) + self.b)

    keras.utils.set_random_seed(1234)
    inputs = keras.Input((4,), name="x")
    h = keras.layers.Dense(6, activation="relu", name="fc")(inputs)
    h = Attention(name="attention")(h)
    outputs = keras.layers.Dense(2, name="out")(h)
    return keras.Model(inputs, outputs, name="attention_model")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--producer", choices=("k3", "k2"), required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    _set_env(args.producer)
    keras = _keras(args.producer)
    import numpy as np
    os.makedirs(args.out, exist_ok=True)
    model = build(keras)
    base = os.path.join(args.out, f"{args.producer}_attention")
    model.save(base + ".keras")
    model.save(base + ".h5")
    if args.producer == "k3":
        model.save_weights(base + ".weights.h5")
        w = {v.path if hasattr(v, "path") else v.name: np.asarray(v) for v in model.weights}
        kernels = {"fc_kernel": w["fc/kernel"], "out_kernel": w["out/kernel"]}
        ids = np.arange(12, dtype=np.int64).reshape(3, 4)
        np.savez(os.path.join(args.out, "arrays.npz"), **kernels, ids=ids)
        np.save(os.path.join(args.out, "ids.npy"), ids)
    else:
        os.remove(base + ".keras")      # tf-keras: the legacy .h5 is the one this test needs
    print("wrote", sorted(f for f in os.listdir(args.out)))


if __name__ == "__main__":
    main()
