"""Load Keras files the default way and report warnings and weights, for weightshare's strip tests.

Run with the interpreter of a Keras venv (tests/keras/setup_venvs.sh); weightshare never imports it.

    python tests/keras/load_check.py --producer {k3,k3tf,k2} JOBS.json

JOBS.json is a list of {"file": ..., "arch": ... (weights files: the model file whose architecture
load_weights fills), "compile": false (optional: Keras 3 cannot compile its own legacy .h5 with
loss="mse", KERAS-FORMATS pitfall 19)}. Full models are loaded with ``load_model(file)`` (compile left at its default,
True: a file with optimizer state or a compile config restores it); weights files with
``model.load_weights(file)`` into ``load_model(arch, compile=False)``. Everything Keras says through
``warnings`` and ``logging`` while loading is recorded. One JSON line per job on stdout:
{"file", "ok", "error", "warnings": [...], "compiled": bool, "weights": [sha256 of each variable's
bytes, in model.weights order], "shapes": [...]}.
"""

import hashlib
import json
import logging
import os
import sys
import warnings


def _set_env(producer):
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    if producer == "k3":
        os.environ["KERAS_BACKEND"] = "jax"
    else:
        os.environ["KERAS_BACKEND"] = "tensorflow"
        if producer == "k2":
            os.environ["TF_USE_LEGACY_KERAS"] = "1"


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def main(argv):
    producer, jobs_file = argv[argv.index("--producer") + 1], argv[-1]
    _set_env(producer)
    if producer == "k2":
        import tf_keras as keras
    else:
        import keras
    import numpy as np
    with open(jobs_file) as f:
        jobs = json.load(f)
    for job in jobs:
        handler = _Collect()
        root = logging.getLogger()
        root.addHandler(handler)
        out = {"file": job["file"], "ok": True, "error": None}
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                if job.get("arch"):
                    model = keras.models.load_model(job["arch"], compile=False)
                    model.load_weights(job["file"])
                else:
                    model = keras.models.load_model(job["file"], compile=job.get("compile", True))
            out["warnings"] = [str(w.message) for w in caught] + handler.messages
            out["compiled"] = bool(getattr(model, "optimizer", None) is not None
                                   and getattr(model, "compiled", True))
            values = [np.asarray(w.numpy() if hasattr(w, "numpy") else w) for w in model.weights]
            out["weights"] = [hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
                              for v in values]
            out["shapes"] = [list(v.shape) for v in values]
        except Exception as exc:        # one line per failed job
            out.update(ok=False, error=f"{type(exc).__name__}: {' '.join(str(exc).split())[:500]}")
        finally:
            root.removeHandler(handler)
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv)
