"""Train with weightshare.keras.KeepStructure / PruneDuring in a real Keras; print one JSON line.

Run by tests/test_keras_keep_structure.py in each Keras interpreter (Keras 3 on jax or
tensorflow: KERAS_BACKEND; tf-keras 2: TF_USE_LEGACY_KERAS=1), with the repository root on
PYTHONPATH. The seed model: Input(271) -> Embedding(num_words, 26) -> GlobalAveragePooling1D
-> Dense softmax, on synthetic data where each class has its own words.

1. ``seed``: trained, the embedding pruned to keep=200, fine-tuned with KeepStructure;
2. ``clustered``: a hidden Dense kernel pruned 50 % and clustered to k=8, trained with
   KeepStructure;
3. ``gradual``: PruneDuring along a polynomial schedule to sparsity 0.9 of every kernel.
"""

import argparse
import json
import os

import numpy as np

import weightshare
from weightshare.keras import KeepStructure, PruneDuring, keras

NUM_WORDS, LENGTH, DIM, CLASSES = 1000, 271, 26, 3


def data(n, seed=0):
    """Random words, a fifth of them replaced by one of the 10 words of the sample's class."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, size=n)
    x = rng.integers(CLASSES * 10, NUM_WORDS, size=(n, LENGTH))
    hint = rng.random((n, LENGTH)) < 0.2
    x[hint] = (y[:, None] * 10 + rng.integers(0, 10, size=(n, LENGTH)))[hint]
    return x.astype("int32"), y


def build(hidden=0, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((LENGTH,), dtype="int32")
    h = keras.layers.Embedding(NUM_WORDS, DIM, name="embed")(inputs)
    h = keras.layers.GlobalAveragePooling1D(name="gap")(h)
    if hidden:
        h = keras.layers.Dense(hidden, activation="relu", name="hidden")(h)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="out")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def value(variable):
    return np.asarray(variable.numpy())


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=1) == y))


def run(epochs, n):
    x, y = data(n)
    xt, yt = data(n, seed=1)
    out = {"keras_version": keras.__version__,
           "backend": keras.backend.backend() if hasattr(keras.backend, "backend") else "?"}
    fit = dict(batch_size=32, epochs=epochs, shuffle=False, verbose=0)

    # 1. the seed: trained, pruned to 200 non-zeros, fine-tuned: the same 200 positions
    model = build()
    model.fit(x, y, **fit)
    out["seed_accuracy_dense"] = accuracy(model, xt, yt)
    emb = model.get_layer("embed").embeddings
    res = weightshare.prune(value(emb), keep=200)
    emb.assign(res.values)
    out["seed_accuracy_pruned"] = accuracy(model, xt, yt)
    model.fit(x, y, callbacks=[KeepStructure(model)], **fit)
    trained = value(model.get_layer("embed").embeddings)
    out["seed_nonzero"] = int(np.count_nonzero(trained))
    out["seed_same_positions"] = bool(np.array_equal(trained != 0, res.mask))
    out["seed_trained"] = bool(not np.array_equal(trained, res.values))
    out["seed_accuracy_finetuned"] = accuracy(model, xt, yt)

    # 2. a clustered kernel keeps <= 8 values and its zeros
    model = build(hidden=32)
    kernel = model.get_layer("hidden").kernel
    clustered = weightshare.cluster(weightshare.prune(value(kernel), sparsity=0.5).values, 8,
                                    random_state=0).values
    kernel.assign(clustered)
    model.fit(x, y, callbacks=[KeepStructure(model)], **fit)
    trained = value(model.get_layer("hidden").kernel)
    out["clustered_distinct_before"] = int(np.unique(clustered).size)
    out["clustered_distinct_after"] = int(np.unique(trained).size)
    out["clustered_zeros_kept"] = bool((trained[clustered == 0] == 0).all())
    out["clustered_nonzero_before"] = int(np.count_nonzero(clustered))
    out["clustered_nonzero_after"] = int(np.count_nonzero(trained))
    out["clustered_values_trained"] = bool(not np.array_equal(np.unique(trained),
                                                              np.unique(clustered)))
    # the assignment is fixed: equal before <=> equal after
    same_before = clustered.reshape(-1, 1) == clustered.reshape(1, -1)
    same_after = trained.reshape(-1, 1) == trained.reshape(1, -1)
    out["clustered_assignment_fixed"] = bool(np.array_equal(same_before, same_after))

    # 3. PruneDuring reaches the schedule's final sparsity in every kernel
    model = build()
    steps = epochs * (n // 32)
    schedule = weightshare.sparsity_schedule("polynomial", initial=0.0, final=0.9, begin_step=0,
                                             end_step=steps // 2, frequency=max(1, steps // 8))
    model.fit(x, y, callbacks=[PruneDuring(model, schedule)], **fit)
    out["gradual_final"] = schedule(steps)
    out["gradual_kernels"] = {
        layer: [int(value(v).size), int(np.count_nonzero(value(v)))]
        for layer, v in (("embed", model.get_layer("embed").embeddings),
                         ("out", model.get_layer("out").kernel))}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("-n", type=int, default=256, help="training samples")
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    print(json.dumps(run(args.epochs, args.n)))


if __name__ == "__main__":
    main()
