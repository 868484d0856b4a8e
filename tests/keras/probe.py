"""Load a Keras file with real Keras and dump what Keras sees, for weightshare's tests.

Run it with the interpreter of a Keras venv (tests/keras/setup_venvs.sh); weightshare never imports it.

    python tests/keras/probe.py --producer {k3,k3tf,k2} MODEL_FILE [--arch ARCH_FILE]
                                [--inputs X.npy|X.npz] [--compile] --out RESULT.npz
    python tests/keras/probe.py --producer {k3,k3tf,k2} --batch JOBS.json

--producer picks the Keras that loads the file (the script sets the environment before importing it):
    k3    Keras 3, jax backend          (KERAS_BACKEND=jax, `import keras`)
    k3tf  Keras 3, tensorflow backend   (KERAS_BACKEND=tensorflow, `import keras`)
    k2    tf-keras (Keras 2)            (TF_USE_LEGACY_KERAS=1, `import tf_keras`)

Full models (.keras, legacy .h5 with a model config) are loaded with `load_model(compile=False)`
(`--compile`: compile=True, which also restores and reports the optimizer state). Weights-only files
(`*.weights.h5`, `*.weights_only.h5`, or any file given with --arch) are loaded with `load_weights` into
the model that `load_model(ARCH_FILE)` builds, after every variable of that model was set to zero (so a
variable that load_weights leaves alone shows up as zeros, not as the architecture file's value).

RESULT.npz holds:
    var/<i>        value of the i-th variable of model.weights (bfloat16 as its uint16 bit pattern)
    var_names      JSON array: Keras 3 variable paths (`mlp/hidden/kernel`), tf-keras names (`hidden/kernel:0`)
    var_layers     JSON array: path of the owning layer (`inner/dense` inside a nested model)
    var_roles      JSON array: last name component without `:N` (kernel, bias, moving_mean, ...)
    var_dtypes     JSON array: Keras dtype names (float32, float16, bfloat16, ...)
    var_shapes     JSON array of shapes;  var_trainable: JSON array of booleans
    n_params       model.count_params();  n_vars: len(model.weights)
    layers         JSON array, model.layers order recursing into nested models:
                   {path, name, class_name, n_params, output_shape}; output_shape is a list of shapes
                   (one per call of the layer; None for unknown dimensions)
    opt/<i>, opt_names, opt_dtypes    optimizer variables (only with --compile and a built optimizer)
    y              the model's output on x as float32 when --inputs is given (key `x` of an .npz;
                   model.predict(x) on jax, model(x, training=False) on tensorflow);
                   y0, y1, ... for several outputs
    info           JSON: producer, keras_version, backend, file, arch, inputs, compile
A failed job exits 3 and prints one line `probe: ERROR <file>: <Type>: <message>` on stderr.

--batch JOBS.json runs many jobs in one process (TensorFlow takes seconds to import). The file holds a
list (or {"jobs": [...]}) of {"file": ..., "out": ..., "arch": ..., "inputs": ..., "compile": false}
(arch/inputs/compile optional; relative paths are relative to the working directory). Each job prints
one JSON line {"file", "out", "ok", "error", "seconds"} on stdout; a failed job still writes its RESULT.npz with
the keys `error` (the one-line message) and `info`. The exit status is 3 if any job failed, else 0.
"""

import argparse
import json
import os
import sys
import time
import warnings

EXIT_FAIL = 3
PRODUCERS = ("k3", "k3tf", "k2")
WEIGHTS_ONLY_SUFFIXES = (".weights.h5", ".weights_only.h5", ".weights.json")


def _set_env(producer):
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"  # the generator uses the same numerics
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


def _import_keras(producer):
    warnings.filterwarnings("ignore")
    try:
        import absl.logging

        absl.logging.set_verbosity(absl.logging.ERROR)
    except ImportError:
        pass
    if producer == "k2":
        import tf_keras as keras

        return keras, "tensorflow"
    import keras

    if not keras.__version__.startswith("3."):
        raise RuntimeError(f"--producer {producer} needs Keras 3, this interpreter has keras {keras.__version__}")
    backend = keras.backend.backend()
    want = "jax" if producer == "k3" else "tensorflow"
    if backend != want:
        raise RuntimeError(f"--producer {producer} needs the {want} backend, Keras uses {backend}")
    if backend == "jax":
        _numpy_initial_values()
    return keras, backend


def _numpy_initial_values():
    """Draw the initial values of new Keras 3 variables with NumPy instead of jax.random.

    Keras 3 on jax compiles a random initializer for every new variable shape (about 0.5 s
    per shape on a CPU, most of a probe's time). Loading overwrites every initial value (or
    the probe zeroes it first), so only the cost changes: a variable a file fails to fill
    still holds random values of the same distribution, as before.
    """
    import jax.numpy as jnp
    import numpy as np
    from keras.src.backend import config
    from keras.src.backend.jax import random

    rng = np.random.default_rng(0)

    def cast(a, dtype):
        return jnp.asarray(a.astype(np.float32), dtype=dtype or config.floatx())

    def normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        return cast(rng.normal(mean, stddev, tuple(shape)), dtype)

    def uniform(shape, minval=0.0, maxval=1.0, dtype=None, seed=None):
        return cast(rng.uniform(minval, maxval, tuple(shape)), dtype)

    def truncated_normal(shape, mean=0.0, stddev=1.0, dtype=None, seed=None):
        z = rng.normal(0.0, 1.0, tuple(shape))
        bad = np.abs(z) > 2.0
        while bad.any():                      # redraw outside [-2, 2], as jax.random does
            z[bad] = rng.normal(0.0, 1.0, int(bad.sum()))
            bad = np.abs(z) > 2.0
        return cast(z * stddev + mean, dtype)

    random.normal, random.uniform, random.truncated_normal = normal, uniform, truncated_normal


def _one_line(exc):
    msg = " ".join(str(exc).split())
    if len(msg) > 2000:
        msg = msg[:2000] + " ..."
    return f"{type(exc).__name__}: {msg}"


class Prober:
    def __init__(self, producer):
        import numpy as np

        self.np = np
        self.producer = producer
        self.keras, self.backend = _import_keras(producer)

    # -- Keras-side helpers (both generations) ------------------------------------------------
    def var_name(self, v):
        return v.path if self.producer != "k2" else v.name

    @staticmethod
    def role(name):
        return name.rsplit("/", 1)[-1].split(":")[0]

    @staticmethod
    def dtype_name(v):
        d = v.dtype
        return d if isinstance(d, str) else getattr(d, "name", str(d))

    def value(self, v):
        a = self.np.asarray(v.numpy())
        if a.dtype.name == "bfloat16":
            a = a.view(self.np.uint16)
        return self.np.array(a, order="C")

    def walk(self, model, prefix=""):
        for layer in model.layers:
            path = prefix + layer.name
            nested = isinstance(layer, self.keras.Model)
            yield path, layer, nested
            if nested:
                yield from self.walk(layer, path + "/")

    @staticmethod
    def _shape(t):
        s = t.shape
        if hasattr(s, "as_list"):
            try:
                s = s.as_list()
            except ValueError:
                return None
        return [None if d is None else int(d) for d in s]

    def output_shapes(self, layer):
        outs = []
        nodes = list(getattr(layer, "_inbound_nodes", None) or [])
        if len(nodes) > 1:  # a shared layer: one entry per call
            for node in nodes:
                o = getattr(node, "outputs", None)
                if o is None:
                    o = getattr(node, "output_tensors", None)
                if o is not None:
                    outs.append(o[0] if isinstance(o, (list, tuple)) and len(o) == 1 else o)
        if not outs:
            try:
                outs = [layer.output]
            except Exception:  # noqa: BLE001 - no symbolic output (e.g. never called)
                outs = []
        shapes = []
        for o in outs:
            if isinstance(o, (list, tuple)):
                shapes.append([self._shape(t) for t in o])
            else:
                shapes.append(self._shape(o))
        return shapes

    # -- one job ---------------------------------------------------------------------------------
    def load(self, path, arch, compile_):
        keras = self.keras
        if not os.path.exists(path):
            raise FileNotFoundError(f"no such file: {path}")
        if arch is None and path.endswith(WEIGHTS_ONLY_SUFFIXES):
            raise ValueError(f"{os.path.basename(path)} holds weights only; give --arch FULL_MODEL_FILE")
        if arch is not None:
            model = keras.models.load_model(arch, compile=compile_)
            # Zero the architecture's own values first: whatever load_weights does not fill
            # shows up as zeros instead of silently passing for the file's content.
            for v in model.weights:
                v.assign(self.np.zeros(tuple(v.shape), dtype=self.np.asarray(v.numpy()).dtype))
            model.load_weights(path)
        else:
            model = keras.models.load_model(path, compile=compile_)
        return model

    def read_inputs(self, path):
        np = self.np
        if path.endswith(".npy"):
            return np.load(path)
        with np.load(path) as z:
            if "x" in z.files:
                return z["x"]
            keys = sorted((k for k in z.files if k[:1] == "x" and k[1:].isdigit()), key=lambda k: int(k[1:]))
            if not keys:
                raise ValueError(f"{path} has no 'x' (or x0, x1, ...) array; keys: {z.files}")
            return [z[k] for k in keys]

    def run(self, file, out, arch=None, inputs=None, compile_=False):
        np = self.np
        info = {
            "producer": self.producer,
            "keras_version": self.keras.__version__,
            "backend": self.backend,
            "file": file,
            "arch": arch,
            "inputs": inputs,
            "compile": bool(compile_),
        }
        res = {"info": json.dumps(info)}
        model = self.load(file, arch, compile_)

        owner = {}
        layers = []
        for path, layer, nested in self.walk(model):
            if not nested:
                for w in layer.weights:
                    owner.setdefault(id(w), path)
            layers.append({
                "path": path,
                "name": layer.name,
                "class_name": type(layer).__name__,
                "n_params": int(layer.count_params()) if layer.built else 0,
                "output_shape": self.output_shapes(layer),
            })
        ws = list(model.weights)
        names = [self.var_name(v) for v in ws]
        for i, v in enumerate(ws):
            res[f"var/{i}"] = self.value(v)
        res["var_names"] = json.dumps(names)
        res["var_layers"] = json.dumps([owner.get(id(v), "") for v in ws])
        res["var_roles"] = json.dumps([self.role(n) for n in names])
        res["var_dtypes"] = json.dumps([self.dtype_name(v) for v in ws])
        res["var_shapes"] = json.dumps([[int(d) for d in v.shape] for v in ws])
        res["var_trainable"] = json.dumps([bool(v.trainable) for v in ws])
        res["n_vars"] = np.int64(len(ws))
        res["n_params"] = np.int64(model.count_params())
        res["layers"] = json.dumps(layers)

        opt = getattr(model, "optimizer", None) if compile_ else None
        if opt is not None:
            ov = opt.variables
            ov = list(ov() if callable(ov) else ov)
            for i, v in enumerate(ov):
                res[f"opt/{i}"] = self.value(v)
            res["opt_names"] = json.dumps([self.var_name(v) for v in ov])
            res["opt_dtypes"] = json.dumps([self.dtype_name(v) for v in ov])

        if inputs is not None:
            x = self.read_inputs(inputs)
            if self.backend == "jax":     # one compiled function; op by op compiles every op
                y = model.predict(x, verbose=0)
            else:                         # predict builds a tf.function per model: 10-50x slower
                y = model(x, training=False)
            if isinstance(y, (list, tuple)):
                for i, yi in enumerate(y):
                    res[f"y{i}"] = np.asarray(yi, dtype=np.float32)
            elif isinstance(y, dict):
                for i, k in enumerate(sorted(y)):
                    res[f"y{i}"] = np.asarray(y[k], dtype=np.float32)
            else:
                res["y"] = np.asarray(y, dtype=np.float32)
        _save_npz(out, res)

    def run_safe(self, job):
        file, out = job["file"], job["out"]
        try:
            self.run(file, out, job.get("arch"), job.get("inputs"), job.get("compile", False))
            return None
        except Exception as e:  # noqa: BLE001 - every failure becomes a one-line report
            msg = _one_line(e)
            print(f"probe: ERROR {file}: {msg}", file=sys.stderr, flush=True)
            try:
                _save_npz(out, {"error": msg, "info": json.dumps({"producer": self.producer, "file": file})})
            except Exception:  # noqa: BLE001
                pass
            return msg


def _save_npz(out, res):
    import numpy as np

    d = os.path.dirname(os.path.abspath(out))
    os.makedirs(d, exist_ok=True)
    tmp = out + ".tmp.npz"
    np.savez(tmp, **{k: (np.asarray(v) if not isinstance(v, str) else np.array(v)) for k, v in res.items()})
    os.replace(tmp, out)


def _read_jobs(path):
    with open(path) as f:
        jobs = json.load(f)
    if isinstance(jobs, dict):
        jobs = jobs["jobs"]
    for j in jobs:
        if "file" not in j or "out" not in j:
            raise ValueError(f"each job needs 'file' and 'out', got {j}")
    return jobs


def main(argv=None):
    ap = argparse.ArgumentParser(
        description="Load a Keras file with real Keras and dump its variables, layers and predictions.",
    )
    ap.add_argument("--producer", required=True, choices=PRODUCERS)
    ap.add_argument("file", nargs="?", help="the Keras file to load")
    ap.add_argument("--arch", help="full model file that builds the architecture for a weights-only file")
    ap.add_argument("--inputs", help=".npy, or .npz with key x (or x0, x1, ...): run model.predict on it")
    ap.add_argument("--compile", action="store_true", help="load_model(compile=True); report optimizer state")
    ap.add_argument("--out", help="result .npz")
    ap.add_argument("--batch", help="JSON list of jobs {file, out, arch, inputs, compile}")
    args = ap.parse_args(argv)
    if args.batch:
        if args.file or args.out:
            ap.error("--batch replaces FILE and --out")
    elif not (args.file and args.out):
        ap.error("FILE and --out are required (or use --batch)")

    _set_env(args.producer)
    try:
        prober = Prober(args.producer)
    except Exception as e:  # noqa: BLE001
        print(f"probe: ERROR cannot import Keras for --producer {args.producer}: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAIL

    if not args.batch:
        err = prober.run_safe(
            {"file": args.file, "out": args.out, "arch": args.arch, "inputs": args.inputs, "compile": args.compile}
        )
        return EXIT_FAIL if err else 0

    try:
        jobs = _read_jobs(args.batch)
    except Exception as e:  # noqa: BLE001
        print(f"probe: ERROR {args.batch}: {_one_line(e)}", file=sys.stderr)
        return EXIT_FAIL
    failed = 0
    for job in jobs:
        start = time.perf_counter()
        err = prober.run_safe(job)
        failed += err is not None
        print(json.dumps({"file": job["file"], "out": job["out"], "ok": err is None, "error": err,
                          "seconds": round(time.perf_counter() - start, 3)}), flush=True)
    return EXIT_FAIL if failed else 0


if __name__ == "__main__":
    sys.exit(main())
