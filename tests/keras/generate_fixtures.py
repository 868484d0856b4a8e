"""Write the real-Keras fixture files in tests/fixtures/keras/ and their ground-truth manifest.

Run once per producer, each with the interpreter of a Keras venv (tests/keras/setup_venvs.sh):

    KERAS_BACKEND=jax /work/venvs/keras3/bin/python tests/keras/generate_fixtures.py --producer k3 --out tests/fixtures/keras
    KERAS_BACKEND=tensorflow /work/venvs/tf/bin/python tests/keras/generate_fixtures.py --producer k3tf --out tests/fixtures/keras
    TF_USE_LEGACY_KERAS=1 /work/venvs/tf/bin/python tests/keras/generate_fixtures.py --producer k2 --out tests/fixtures/keras

(tests/keras/generate_all.sh runs all three.) The script sets those environment variables itself
before importing Keras, so the prefixes are only a reminder.

Producers: k3 = Keras 3 on jax, k3tf = Keras 3 on tensorflow, k2 = tf-keras (Keras 2, `import tf_keras`).
Every model is written in every format its Keras writes; file names are `<producer>_<model>.<ext>`:

    .keras             model.save()                       format "keras_zip"
    .weights.h5        model.save_weights()               format "weights_store"
    .h5                model.save() (legacy HDF5)         format "legacy_full"
    .weights_only.h5   model.save_weights() (k2 only)     format "legacy_weights"

plus `<producer>_<model>_io.npz` (a fixed input `x` and the producer's `model.predict(x)` as `y`).
The manifest (manifest.json next to the files) is updated in place: this producer's entries are replaced,
the other producers' entries are kept. Its schema is described in tests/fixtures/keras/README.md.

This is a test-data tool; the weightshare package never imports it (nor Keras).
"""

import argparse
import hashlib
import json
import os
import platform
import sys
import zipfile
import zlib

PRODUCERS = ("k3", "k3tf", "k2")
SEED = 1234
BATCH = 4  # rows of the fixed input in every *_io.npz


def _set_env(producer):
    """Select the Keras generation and backend; must run before Keras is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # same numerics in the generator and the probe
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    os.environ["PYTHONHASHSEED"] = os.environ.get("PYTHONHASHSEED", "0")
    if producer == "k3":
        os.environ["KERAS_BACKEND"] = "jax"
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    elif producer == "k3tf":
        os.environ["KERAS_BACKEND"] = "tensorflow"
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
    else:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"


def _import_keras(producer):
    try:  # Keras logs through absl (the "legacy HDF5" notice, tf.function retracing, ...)
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    if producer == "k2":
        import tf_keras as keras
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        tf.get_logger().setLevel("ERROR")
        return keras, "tensorflow"
    import keras

    if not keras.__version__.startswith("3."):
        raise SystemExit(f"producer {producer} needs Keras 3, found keras {keras.__version__}")
    backend = keras.backend.backend()
    want = "jax" if producer == "k3" else "tensorflow"
    if backend != want:
        raise SystemExit(f"producer {producer} needs the {want} backend, Keras uses {backend}")
    if backend == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
        tf.get_logger().setLevel("ERROR")
    return keras, backend


# ----------------------------------------------------------------------------------------------
# Models. Each builder gets (keras, rng, producer) and returns a Spec. Input data comes from numpy
# generators seeded by the model name, so `x` is the same for every producer.


class Spec:
    def __init__(self, model, x, formats=None, extra=None):
        self.model = model
        self.x = x
        self.formats = formats  # None = every format this Keras writes
        self.extra = extra or {}


def _name_seed(name):
    return SEED + zlib.crc32(name.encode()) % 100000


def _float_input(name, shape, batch=BATCH):
    rng = np.random.default_rng(_name_seed(name) + 1)
    return rng.normal(size=(batch,) + tuple(shape)).astype("float32")


def _randomize(model, rng, *, kernels=False):
    """Give every non-kernel variable distinct, non-trivial values (biases are not all zero,
    BN statistics are not 0/1), so that no two variables of a model share their bytes.
    Kernels keep their seeded initializer values unless `kernels` is set."""
    for layer in _leaf_layers(model):
        ws = layer.weights
        if not ws:
            continue
        vals = []
        for w in ws:
            a = _to_numpy(w)
            role = _role(_var_name(w))
            f = a.astype("float32")
            if role in ("gamma", "moving_variance"):
                f = rng.uniform(0.6, 1.4, size=a.shape)
            elif role in ("beta", "bias", "moving_mean"):
                f = rng.normal(0.0, 0.1, size=a.shape)
            elif role == "alpha":
                f = rng.uniform(0.05, 0.3, size=a.shape)
            elif kernels:
                f = rng.normal(0.0, 1.0 / np.sqrt(max(1, a.size // a.shape[-1])), size=a.shape)
            vals.append(f.astype(a.dtype) if a.dtype.kind == "f" or a.dtype.name == "bfloat16" else a)
        layer.set_weights(vals)


def _bn_steps(model, x, steps=3):
    """A few forward passes in training mode: BatchNormalization moving statistics move,
    nothing else changes (no optimizer is created)."""
    for _ in range(steps):
        model(x, training=True)


def m_mlp(keras, rng, producer):
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(16, activation="relu", name="hidden"), L.Dense(4, name="logits")],
        name="mlp",
    )
    _randomize(model, rng)
    return Spec(model, _float_input("mlp", (8,)))


def m_nested(keras, rng, producer):
    L = keras.layers
    inner = keras.Sequential(
        [keras.Input((6,)), L.Dense(8, activation="relu"), L.Dense(6, activation="tanh")], name="inner"
    )
    x = keras.Input((6,), name="x")
    shared = L.Dense(5, activation="relu", name="shared")
    h = inner(x)
    s1 = shared(x)
    s2 = shared(h)
    c = L.Concatenate(name="concat")([s1, s2])
    out = L.Dense(3, name="head")(c)
    model = keras.Model(x, out, name="nested")
    _randomize(model, rng)
    return Spec(model, _float_input("nested", (6,)))


def m_cnn(keras, rng, producer):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(8, 3, padding="same", name="conv1"),
            L.BatchNormalization(name="bn1"),
            L.ReLU(name="relu1"),
            L.DepthwiseConv2D(3, padding="same", name="dw"),
            L.BatchNormalization(name="bn2"),
            L.Conv2D(8, 1, use_bias=False, name="pw"),
            L.MaxPooling2D(2, name="pool"),
            L.Flatten(name="flatten"),
            L.Dense(4, name="head"),
        ],
        name="cnn",
    )
    x = _float_input("cnn", (8, 8, 3))
    _randomize(model, rng)
    _bn_steps(model, _float_input("cnn/train", (8, 8, 3), 16))
    return Spec(model, x)


def m_emb(keras, rng, producer):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((10,), dtype="int32"),
            L.Embedding(50, 8, name="embed"),
            L.GlobalAveragePooling1D(name="gap"),
            L.Dense(3, name="head"),
        ],
        name="emb",
    )
    _randomize(model, rng)
    x = np.random.default_rng(_name_seed("emb")).integers(0, 50, size=(BATCH, 10)).astype("int32")
    return Spec(model, x)


def m_rnn(keras, rng, producer):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((6, 4)),
            L.LSTM(5, return_sequences=True, name="lstm"),
            L.GRU(4, return_sequences=True, name="gru"),
            L.Bidirectional(L.LSTM(3), name="bilstm"),
            L.Dense(2, name="head"),
        ],
        name="rnn",
    )
    _randomize(model, rng)
    return Spec(model, _float_input("rnn", (6, 4)))


def m_mha(keras, rng, producer):
    L = keras.layers
    inp = keras.Input((5, 8), name="seq")
    att = L.MultiHeadAttention(num_heads=2, key_dim=4, name="mha")(inp, inp)
    h = L.Add(name="residual")([inp, att])
    h = L.LayerNormalization(name="ln")(h)
    out = L.Dense(3, name="head")(h)
    model = keras.Model(inp, out, name="mha_model")
    _randomize(model, rng)
    return Spec(model, _float_input("mha", (5, 8)))


def m_zoo(keras, rng, producer):
    """Image layers: ZeroPadding2D, SeparableConv2D, PReLU, Conv2DTranspose, Add,
    AveragePooling2D, GlobalMaxPooling2D, GlobalAveragePooling2D, Concatenate."""
    L = keras.layers
    inp = keras.Input((8, 8, 3), name="img")
    x = L.ZeroPadding2D(1, name="pad")(inp)
    a = L.SeparableConv2D(6, 3, name="sep")(x)
    a = L.PReLU(shared_axes=[1, 2], name="prelu")(a)
    b = L.Conv2DTranspose(6, 3, padding="same", name="deconv")(a)
    s = L.Add(name="add")([a, b])
    p = L.AveragePooling2D(2, name="avgpool")(s)
    g1 = L.GlobalMaxPooling2D(name="gmp")(p)
    g2 = L.GlobalAveragePooling2D(name="gap")(s)
    c = L.Concatenate(name="concat")([g1, g2])
    out = L.Dense(3, name="head")(c)
    model = keras.Model(inp, out, name="zoo")
    _randomize(model, rng)
    return Spec(model, _float_input("zoo", (8, 8, 3)))


def m_zoo_seq(keras, rng, producer):
    """Sequence layers: Conv1D, SimpleRNN, EinsumDense (when the Keras version exports it)."""
    L = keras.layers
    inp = keras.Input((6, 4), name="seq")
    x = L.Conv1D(5, 3, padding="same", name="conv1d")(inp)
    r = L.SimpleRNN(4, name="srnn")(x)
    if hasattr(L, "EinsumDense"):
        e = L.EinsumDense("ab,bc->ac", output_shape=3, bias_axes="c", activation="relu", name="einsum")(r)
    else:  # pragma: no cover - every supported version has it
        e = L.Dense(3, activation="relu", name="einsum")(r)
    out = L.Dense(2, name="head")(e)
    model = keras.Model(inp, out, name="zoo_seq")
    _randomize(model, rng)
    return Spec(model, _float_input("zoo_seq", (6, 4)))


def _low_precision(keras, rng, name, dtype):
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            L.Conv2D(4, 3, activation="relu", dtype=dtype, name="conv1"),
            L.Flatten(dtype=dtype, name="flatten"),
            L.Dense(8, activation="relu", dtype=dtype, name="fc1"),
            L.Dense(3, dtype=dtype, name="head"),
        ],
        name=name,
    )
    _randomize(model, rng)
    return Spec(model, _float_input(name, (6, 6, 2)))


def m_f16(keras, rng, producer):
    return _low_precision(keras, rng, "f16", "float16")


def m_bf16(keras, rng, producer):
    return _low_precision(keras, rng, "bf16", "bfloat16")


def m_mixed(keras, rng, producer):
    L = keras.layers
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = keras.Sequential(
            [
                keras.Input((8,)),
                L.Dense(16, activation="relu", name="fc1"),
                L.Dense(4, name="head", dtype="float32"),
            ],
            name="mixed",
        )
    finally:
        keras.mixed_precision.set_global_policy("float32")
    _randomize(model, rng)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    _fit(model, "mixed", (8,), 4, epochs=2)
    return Spec(model, _float_input("mixed", (8,)))


def _fit(model, name, in_shape, out_dim, epochs, n=64):
    r = np.random.default_rng(_name_seed(name) + 7)
    xt = r.normal(size=(n,) + tuple(in_shape)).astype("float32")
    yt = r.normal(size=(n, out_dim)).astype("float32")
    model.fit(xt, yt, epochs=epochs, batch_size=16, shuffle=False, verbose=0)


def m_trained(keras, rng, producer):
    L = keras.layers
    model = keras.Sequential(
        [keras.Input((8,)), L.Dense(16, activation="relu", name="fc1"), L.Dense(4, name="head")],
        name="trained",
    )
    _randomize(model, rng)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    _fit(model, "trained", (8,), 4, epochs=3)
    return Spec(model, _float_input("trained", (8,)))


def m_pruned(keras, rng, producer):
    """Magnitude-pruned Dense stack: 60% of every kernel's entries are exact zeros."""
    L = keras.layers
    model = keras.Sequential(
        [
            keras.Input((16,)),
            L.Dense(32, activation="relu", name="fc1"),
            L.Dense(16, activation="relu", name="fc2"),
            L.Dense(4, name="head"),
        ],
        name="pruned",
    )
    _randomize(model, rng)
    for layer in model.layers:
        k, b = layer.get_weights()
        flat = np.abs(k).ravel()
        n_zero = int(round(0.6 * flat.size))
        order = np.argsort(flat, kind="stable")
        k = k.copy().ravel()
        k[order[:n_zero]] = 0.0
        layer.set_weights([k.reshape(layer.get_weights()[0].shape), b])
    return Spec(model, _float_input("pruned", (16,)), extra={"kernel_zero_fraction": 0.6})


# Structured-removal patterns: a layer whose output units can be removed (the "producer") and its
# consumers. Random-initialised, non-zero biases, BN moving statistics moved by a few training-mode
# forward passes; not compiled (no optimizer state).


def _rm_dense(keras, rng, name, body):
    model = keras.Sequential([keras.Input((8,))] + body, name=name)
    _randomize(model, rng)
    if any(type(l).__name__ == "BatchNormalization" for l in model.layers):
        _bn_steps(model, _float_input(name + "/train", (8,), 16))
    return Spec(model, _float_input(name, (8,)))


def _rm_conv(keras, rng, name, body):
    model = keras.Sequential([keras.Input((8, 8, 3))] + body, name=name)
    _randomize(model, rng)
    if any(type(l).__name__ == "BatchNormalization" for l in model.layers):
        _bn_steps(model, _float_input(name + "/train", (8, 8, 3), 16))
    return Spec(model, _float_input(name, (8, 8, 3)))


def m_rm_dense_dense(keras, rng, producer):
    L = keras.layers
    return _rm_dense(keras, rng, "rm_dense_dense", [
        L.Dense(16, activation="relu", name="fc1"),
        L.Dense(16, activation="relu", name="fc2"),
        L.Dense(4, name="head"),
    ])


def m_rm_dense_bn_dense(keras, rng, producer):
    L = keras.layers
    return _rm_dense(keras, rng, "rm_dense_bn_dense", [
        L.Dense(16, name="fc1"),
        L.BatchNormalization(name="bn1"),
        L.Dense(4, name="head"),
    ])


def m_rm_dense_dropout_act_dense(keras, rng, producer):
    L = keras.layers
    return _rm_dense(keras, rng, "rm_dense_dropout_act_dense", [
        L.Dense(16, name="fc1"),
        L.Dropout(0.2, name="drop1"),
        L.Activation("relu", name="act1"),
        L.Dense(4, name="head"),
    ])


def m_rm_conv_bn_relu_conv(keras, rng, producer):
    L = keras.layers
    return _rm_conv(keras, rng, "rm_conv_bn_relu_conv", [
        L.Conv2D(8, 3, padding="same", name="conv1"),
        L.BatchNormalization(name="bn1"),
        L.ReLU(name="relu1"),
        L.Conv2D(8, 3, padding="same", name="conv2"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(4, name="head"),
    ])


def m_rm_conv_pool_conv(keras, rng, producer):
    L = keras.layers
    return _rm_conv(keras, rng, "rm_conv_pool_conv", [
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        L.MaxPooling2D(2, name="pool1"),
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv2"),
        L.Flatten(name="flatten"),
        L.Dense(4, name="head"),
    ])


def m_rm_conv_dw_conv(keras, rng, producer):
    L = keras.layers
    return _rm_conv(keras, rng, "rm_conv_dw_conv", [
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw1"),
        L.Conv2D(8, 1, name="conv2"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(4, name="head"),
    ])


def m_rm_conv_flatten_dense(keras, rng, producer):
    L = keras.layers
    return _rm_conv(keras, rng, "rm_conv_flatten_dense", [
        L.Conv2D(8, 3, activation="relu", name="conv1"),
        L.Flatten(name="flatten"),
        L.Dense(4, name="head"),
    ])


def m_rm_conv_gap_dense(keras, rng, producer):
    L = keras.layers
    return _rm_conv(keras, rng, "rm_conv_gap_dense", [
        L.Conv2D(8, 3, padding="same", activation="relu", name="conv1"),
        L.GlobalAveragePooling2D(name="gap"),
        L.Dense(4, name="head"),
    ])


def m_rm_block_add(keras, rng, producer):
    L = keras.layers
    x = keras.Input((8,), name="x")
    a = L.Dense(16, activation="relu", name="fc_a")(x)
    b = L.Dense(16, activation="relu", name="fc_b")(x)
    s = L.Add(name="add")([a, b])
    out = L.Dense(4, name="head")(s)
    model = keras.Model(x, out, name="rm_block_add")
    _randomize(model, rng)
    return Spec(model, _float_input("rm_block_add", (8,)))


def m_rm_block_concat(keras, rng, producer):
    L = keras.layers
    x = keras.Input((8,), name="x")
    a = L.Dense(16, activation="relu", name="fc_a")(x)
    b = L.Dense(8, activation="relu", name="fc_b")(x)
    c = L.Concatenate(name="concat")([a, b])
    out = L.Dense(4, name="head")(c)
    model = keras.Model(x, out, name="rm_block_concat")
    _randomize(model, rng)
    return Spec(model, _float_input("rm_block_concat", (8,)))


def _digits_split():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.data / 16.0).astype("float32")
    y = d.target.astype("int64")
    return train_test_split(X, y, test_size=0.2, random_state=0, stratify=y)


def m_digits(keras, rng, producer):
    L = keras.layers
    X_tr, X_te, y_tr, y_te = _digits_split()
    model = keras.Sequential(
        [
            keras.Input((64,)),
            L.Dense(64, activation="relu", name="fc1"),
            L.Dense(32, activation="relu", name="fc2"),
            L.Dense(10, activation="softmax", name="out"),
        ],
        name="digits",
    )
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(X_tr, y_tr, epochs=30, batch_size=32, shuffle=False, verbose=0)
    p = model.predict(X_te, verbose=0)
    acc = float(np.mean(np.argmax(p, axis=1) == y_te))
    if acc <= 0.9:
        raise RuntimeError(f"digits model reached only {acc:.3f} test accuracy")
    fmt = {"k3": ["keras_zip"], "k2": ["legacy_full"]}[producer]
    return Spec(model, X_te[:16].copy(), formats=fmt,
                extra={"test_accuracy": acc, "n_test": int(len(y_te)), "epochs": 30})


MODELS = {
    "mlp": m_mlp,
    "nested": m_nested,
    "cnn": m_cnn,
    "emb": m_emb,
    "rnn": m_rnn,
    "mha": m_mha,
    "zoo": m_zoo,
    "zoo_seq": m_zoo_seq,
    "f16": m_f16,
    "bf16": m_bf16,
    "mixed": m_mixed,
    "trained": m_trained,
    "pruned": m_pruned,
    "rm_dense_dense": m_rm_dense_dense,
    "rm_dense_bn_dense": m_rm_dense_bn_dense,
    "rm_dense_dropout_act_dense": m_rm_dense_dropout_act_dense,
    "rm_conv_bn_relu_conv": m_rm_conv_bn_relu_conv,
    "rm_conv_pool_conv": m_rm_conv_pool_conv,
    "rm_conv_dw_conv": m_rm_conv_dw_conv,
    "rm_conv_flatten_dense": m_rm_conv_flatten_dense,
    "rm_conv_gap_dense": m_rm_conv_gap_dense,
    "rm_block_add": m_rm_block_add,
    "rm_block_concat": m_rm_block_concat,
    "digits": m_digits,
}
ONLY = {"bf16": ("k3", "k3tf"), "digits": ("k3", "k2")}

# ----------------------------------------------------------------------------------------------
# Ground truth


def _to_numpy(v):
    return np.asarray(v.numpy())


def _var_name(v):
    """Keras 3: the variable path (`mlp/hidden/kernel`); tf-keras: its name (`hidden/kernel:0`)."""
    if _IS_K3:
        return v.path
    return v.name


def _role(name):
    return name.rsplit("/", 1)[-1].split(":")[0]


def _dtype_str(v):
    d = v.dtype
    return d if isinstance(d, str) else getattr(d, "name", str(d))


def _value_bytes(a):
    a = np.ascontiguousarray(a)
    if a.dtype.name == "bfloat16":
        a = a.view(np.uint16)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def _var_record(v):
    a = _to_numpy(v)
    name = _var_name(v)
    return {
        "name": name,
        "role": _role(name),
        "shape": list(a.shape),
        "dtype": _dtype_str(v),
        "trainable": bool(v.trainable),
        "sha256": hashlib.sha256(_value_bytes(a)).hexdigest(),
    }


def _is_container(layer):
    return isinstance(layer, _KERAS.Model)


def _walk(model, prefix=""):
    """(path, layer, is_container) in model.layers order, recursing into nested models."""
    for layer in model.layers:
        path = prefix + layer.name
        if _is_container(layer):
            yield path, layer, True
            yield from _walk(layer, path + "/")
        else:
            yield path, layer, False


def _leaf_layers(model):
    return [layer for _, layer, c in _walk(model) if not c]


def _layers_record(model):
    out = []
    for path, layer, container in _walk(model):
        rec = {"path": path, "name": layer.name, "class_name": type(layer).__name__}
        if container:
            rec["container"] = True
            rec["weights"] = []  # listed on its sub-layers
        else:
            rec["weights"] = [_var_record(v) for v in layer.weights]
        out.append(rec)
    return out


def _optimizer_variables(model):
    opt = getattr(model, "optimizer", None)
    if opt is None:
        return []
    vs = opt.variables
    if callable(vs):
        vs = vs()
    return [_var_record(v) for v in vs]


def _h5_has_optimizer(path, fmt):
    import h5py

    if fmt == "keras_zip":
        import io

        with zipfile.ZipFile(path) as zf:
            data = zf.read("model.weights.h5")
        with h5py.File(io.BytesIO(data), "r") as f:
            return "optimizer" in f
    with h5py.File(path, "r") as f:
        if fmt == "weights_store":
            return "optimizer" in f
        if fmt == "legacy_full":
            return "optimizer_weights" in f
        return False


FORMAT_EXT = {
    "keras_zip": ".keras",
    "weights_store": ".weights.h5",
    "legacy_full": ".h5",
    "legacy_weights": ".weights_only.h5",
}


def _formats_for(producer):
    f = ["keras_zip", "weights_store", "legacy_full"]
    return f + ["legacy_weights"] if producer == "k2" else f


def _save(model, path, fmt):
    if fmt == "keras_zip" or fmt == "legacy_full":
        model.save(path)
    else:
        model.save_weights(path)


def _sha_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        h.update(f.read())
    return h.hexdigest()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--producer", required=True, choices=PRODUCERS)
    ap.add_argument("--out", required=True, help="fixture directory (tests/fixtures/keras)")
    ap.add_argument("--only", nargs="*", help="models to (re)generate; default all")
    args = ap.parse_args(argv)
    producer = args.producer
    _set_env(producer)

    global np, _IS_K3, _KERAS
    import numpy as np

    keras, backend = _import_keras(producer)
    _KERAS = keras
    _IS_K3 = producer != "k2"
    import h5py

    os.makedirs(args.out, exist_ok=True)
    names = args.only or [m for m in MODELS if producer in ONLY.get(m, PRODUCERS)]
    unknown = [m for m in names if m not in MODELS]
    if unknown:
        ap.error(f"unknown models {unknown}; known: {sorted(MODELS)}")
    if not args.only:  # full regeneration: drop stale files of this producer
        for fn in os.listdir(args.out):
            if fn.startswith(producer + "_"):
                os.remove(os.path.join(args.out, fn))

    info = {
        "keras_version": keras.__version__,
        "backend": backend,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
    }
    if backend == "jax":
        import jax

        info["jax"] = jax.__version__
    else:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__

    files = {}
    for mname in names:
        if producer not in ONLY.get(mname, PRODUCERS):
            print(f"skip {mname}: not written by {producer}", file=sys.stderr)
            continue
        keras.backend.clear_session()
        keras.utils.set_random_seed(_name_seed(mname))
        rng = np.random.default_rng(_name_seed(mname) + 3)
        spec = MODELS[mname](keras, rng, producer)
        model = spec.model
        y = model.predict(spec.x, verbose=0)
        io_name = f"{producer}_{mname}_io.npz"
        np.savez(os.path.join(args.out, io_name), x=spec.x, y=np.asarray(y, dtype="float32"))
        if mname == "digits":
            _write_digits_test(os.path.join(args.out, "digits_test.npz"))

        layers = _layers_record(model)
        opt = _optimizer_variables(model)
        n_params = int(model.count_params())
        for fmt in spec.formats or _formats_for(producer):
            fn = f"{producer}_{mname}{FORMAT_EXT[fmt]}"
            path = os.path.join(args.out, fn)
            _save(model, path, fmt)
            has_opt = _h5_has_optimizer(path, fmt)
            rec = {
                "producer": producer,
                "keras_version": keras.__version__,
                "backend": backend,
                "model": mname,
                "model_name": model.name,
                "model_class": type(model).__name__,
                "format": fmt,
                "size": os.path.getsize(path),
                "sha256": _sha_file(path),
                "io": io_name,
                "n_params": n_params,
                "layers": layers,
                "optimizer_in_file": has_opt,
                "optimizer": opt if has_opt else [],
            }
            if spec.extra:
                rec["extra"] = spec.extra
            files[fn] = rec
            print(f"{fn:48s} {rec['size']:8d} B  optimizer={has_opt}")

    man_path = os.path.join(args.out, "manifest.json")
    manifest = {"schema": 1, "producers": {}, "files": {}}
    if os.path.exists(man_path):
        with open(man_path) as f:
            manifest = json.load(f)
    manifest["producers"][producer] = info
    if not args.only:
        manifest["files"] = {k: v for k, v in manifest["files"].items() if v["producer"] != producer}
    manifest["files"].update(files)
    manifest["producers"] = dict(sorted(manifest["producers"].items()))
    manifest["files"] = dict(sorted(manifest["files"].items()))
    with open(man_path + ".tmp", "w") as f:
        f.write(_format_json(manifest) + "\n")
    os.replace(man_path + ".tmp", man_path)
    print(f"{producer}: {len(files)} model files, manifest has {len(manifest['files'])} entries")
    return 0


def _format_json(obj, level=0):
    """Indented JSON with every variable record and every list of scalars on one line."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and "sha256" in obj and "role" in obj:
        return json.dumps(obj)
    if isinstance(obj, dict) and "class_name" in obj and "weights" in obj:  # a layer
        head = json.dumps({k: v for k, v in obj.items() if k != "weights"})[:-1]
        if not obj["weights"]:
            return head + ', "weights": []}'
        body = ",\n".join(inner + " " + json.dumps(w) for w in obj["weights"])
        return head + ', "weights": [\n' + body + "\n" + inner + "]}"
    if isinstance(obj, dict) and obj:
        body = ",\n".join(f"{inner}{json.dumps(k)}: {_format_json(v, level + 1)}" for k, v in obj.items())
        return "{\n" + body + "\n" + pad + "}"
    if isinstance(obj, list) and obj and not all(isinstance(v, (int, float, str, bool)) for v in obj):
        body = ",\n".join(inner + _format_json(v, level + 1) for v in obj)
        return "[\n" + body + "\n" + pad + "]"
    return json.dumps(obj)


def _write_digits_test(path):
    _, X_te, _, y_te = _digits_split()
    if os.path.exists(path):
        with np.load(path) as old:
            if np.array_equal(old["X_test"], X_te) and np.array_equal(old["y_test"], y_te):
                return
            raise RuntimeError(f"{path} holds a different digits split than this producer computed")
    np.savez(path, X_test=X_te, y_test=y_te)


np = None
_IS_K3 = True
_KERAS = None

if __name__ == "__main__":
    sys.exit(main())
