"""Write small quantized Keras 3 models, for weightshare's refusal tests (run in the Keras 3 venv).

    python tests/keras/make_quantized.py OUT_FOLDER

Writes ``q_<mode>.keras`` and ``q_<mode>.weights.h5`` for the modes int8, int4 and float8 of
``Model.quantize`` (a Dense stack), ``q_int8.h5`` (legacy HDF5) and ``q_emb_int8.keras`` (a
quantized Embedding). weightshare itself never imports Keras.
"""

import os
import sys
import warnings


def main(folder):
    os.environ.setdefault("KERAS_BACKEND", "jax")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    warnings.filterwarnings("ignore")
    import keras

    def dense_model():
        keras.utils.set_random_seed(0)
        return keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, name="fc1"),
                                 keras.layers.Dense(4, name="head")], name="q")

    for mode in ("int8", "int4", "float8"):
        model = dense_model()
        model.quantize(mode)
        model.save(os.path.join(folder, f"q_{mode}.keras"))
        model.save_weights(os.path.join(folder, f"q_{mode}.weights.h5"))
        if mode == "int8":
            model.save(os.path.join(folder, f"q_{mode}.h5"))
    keras.utils.set_random_seed(0)
    emb = keras.Sequential([keras.Input((5,), dtype="int32"), keras.layers.Embedding(20, 4, name="embed"),
                            keras.layers.GlobalAveragePooling1D(name="gap")], name="qe")
    emb.quantize("int8")
    emb.save(os.path.join(folder, "q_emb_int8.keras"))


if __name__ == "__main__":
    main(sys.argv[1])
