"""Keep pruned weights at zero while training: ``weightshare.keras.KeepStructure`` and ``PruneDuring``.

The question this answers: "I want at most 200 non-zero weights in this embedding matrix, but
training keeps turning the zeros I set back into non-zeros." It does, because the optimizer
updates every weight that gets a gradient (and Adam's momentum keeps moving them). The fix is
framework-free: prune once with ``weightshare.prune``, and put the structure back after every
optimizer step (``weightshare.structure_of(...).project``); ``weightshare.keras.KeepStructure``
is that callback.

``import weightshare`` never imports Keras; ``weightshare.keras`` does (``keras``, or
``tf_keras`` when ``TF_USE_LEGACY_KERAS=1``). Run it with a Keras 3 interpreter (any backend) or
tf-keras 2, with weightshare importable, for example from the repository root::

    KERAS_BACKEND=jax PYTHONPATH=. python docs/examples/keras_mask_callback.py --check
    TF_USE_LEGACY_KERAS=1 PYTHONPATH=. python docs/examples/keras_mask_callback.py --check

It trains a small Embedding model three ways and prints one JSON line:

1. pruned to 200 non-zeros, trained without a callback: the zeros come back;
2. the same with ``KeepStructure``: exactly 200 non-zeros, at the same positions;
3. ``PruneDuring`` with a polynomial schedule (TFMOT's formula) ending at sparsity 0.875 of the
   1,600 weights: exactly 200 non-zeros at the end.

``--check`` exits with status 1 unless 2 and 3 hold exactly 200 non-zeros (and 1 more).
"""

import argparse
import json
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "jax")

import numpy as np  # noqa: E402

import weightshare  # noqa: E402
from weightshare.keras import KeepStructure, PruneDuring, keras  # noqa: E402


def _numpy(variable):
    return np.asarray(variable.numpy())


def build_model(vocab=100, dim=16, seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10,), dtype="int32")
    h = keras.layers.Embedding(vocab, dim, name="embed")(inputs)
    h = keras.layers.GlobalAveragePooling1D(name="gap")(h)
    outputs = keras.layers.Dense(3, name="head")(h)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def data(steps, batch_size, vocab=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(steps * batch_size, 10)).astype("int32")
    y = rng.integers(0, 3, size=steps * batch_size)
    return x, y


def embedding_variable(model):
    return model.get_layer("embed").embeddings


def run(steps=30, keep=200, batch_size=8):
    x, y = data(steps, batch_size)
    out = {"keras_version": keras.__version__, "backend": keras.backend.backend(),
           "legacy": os.environ.get("TF_USE_LEGACY_KERAS") in ("true", "True", "1"),
           "steps": steps, "keep": keep}

    # 1. prune once, no callback: the optimizer revives the zeros
    model = build_model()
    emb = embedding_variable(model)
    res = weightshare.prune(_numpy(emb), keep=keep)
    emb.assign(res.values)
    out["size"] = int(res.values.size)
    out["nonzero_after_prune"] = int(np.count_nonzero(_numpy(emb)))
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0)
    out["nonzero_without_callback"] = int(np.count_nonzero(_numpy(embedding_variable(model))))

    # 2. the same with KeepStructure: exactly `keep` non-zeros, at the same positions
    model = build_model()
    emb = embedding_variable(model)
    res = weightshare.prune(_numpy(emb), keep=keep)
    emb.assign(res.values)
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[KeepStructure(model, layers=["embed"])])
    trained = _numpy(embedding_variable(model))
    out["nonzero_with_callback"] = int(np.count_nonzero(trained))
    out["same_positions"] = bool(np.array_equal(trained != 0, res.mask))
    out["weights_trained"] = bool(not np.array_equal(trained, res.values))

    # 3. gradual pruning to sparsity 1 - keep/size along a polynomial schedule
    model = build_model()
    emb = embedding_variable(model)
    size = int(np.prod(emb.shape))
    end = steps - 10
    schedule = weightshare.sparsity_schedule("polynomial", initial=0.0, final=1 - keep / size,
                                             begin_step=0, end_step=end, frequency=5)
    model.fit(x, y, batch_size=batch_size, epochs=1, shuffle=False, verbose=0,
              callbacks=[PruneDuring(model, schedule, layers=["embed"])])
    out["nonzero_gradual"] = int(np.count_nonzero(_numpy(embedding_variable(model))))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30, help="training steps per run (>= 11)")
    ap.add_argument("--keep", type=int, default=200, help="non-zeros to keep in the embedding")
    ap.add_argument("--check", action="store_true", help="exit 1 unless the callbacks held")
    args = ap.parse_args(argv)
    out = run(steps=args.steps, keep=args.keep)
    print(json.dumps(out))
    if args.check:
        ok = (out["nonzero_with_callback"] == args.keep and out["same_positions"]
              and out["nonzero_gradual"] == args.keep
              and out["nonzero_without_callback"] > args.keep)
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
