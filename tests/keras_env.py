"""The Keras interpreters the real-Keras tests run files in (weightshare itself never imports Keras).

``tests/keras/setup_venvs.sh`` builds them; ``.ci/run`` exports their paths.
A producer is the Keras that wrote a fixture: ``k3`` (Keras 3 on jax),
``k3tf`` (Keras 3 on tensorflow), ``k2`` (tf-keras). An unset variable skips
the test, unless ``WEIGHTSHARE_REQUIRE_KERAS=1`` (CI), where it fails.

The README's test command runs each real-Keras sweep on a part that covers every
format, layer kind and dtype family; the rest runs with ``--exhaustive`` (CI,
``.ci/run``): the ``k3tf`` runs of every test (Keras 3 on tensorflow writes and
reads the same files as ``k3`` on jax; tests/conftest.py marks them), Keras 3's
legacy ``.h5`` and tf-keras 2's ``.keras`` runs of a test parametrized by format
(``ext``), and, in the
whole-fixture sweeps, the fixtures of models outside :data:`CORE_MODELS`
(:data:`FIXTURE_PARTS`) and the producers but one (:func:`sweep_producers`:
pruning in tf-keras 2, clustering in Keras 3).
"""

import os

import pytest

#: producer -> environment variables naming its interpreter (the first set one wins)
ENV = {"k3": ("WEIGHTSHARE_KERAS3_PYTHON",),
       "k3tf": ("WEIGHTSHARE_TF_PYTHON", "WEIGHTSHARE_TFKERAS_PYTHON"),
       "k2": ("WEIGHTSHARE_TF_PYTHON", "WEIGHTSHARE_TFKERAS_PYTHON"),
       # not a Keras: torch + safetensors + transformers, for the safetensors round trips
       "st": ("WEIGHTSHARE_ST_PYTHON",)}
PRODUCERS = ("k3", "k3tf", "k2")       # the Keras producers ("st" is not one)
#: the producer whose runs are all ``exhaustive`` (tests/conftest.py)
EXHAUSTIVE_PRODUCER = "k3tf"
#: (producer, file suffix) runs that are ``exhaustive`` too: Keras 3's legacy ``.h5`` and
#: tf-keras 2's ``.keras`` (each Keras runs in the README's test command in its own default
#: format: ``.keras`` for Keras 3, ``.h5`` for tf-keras 2)
EXHAUSTIVE_FORMATS = {("k3", ".h5"), ("k2", ".keras")}
#: models whose fixtures the whole-fixture sweeps load in the README's test command: Dense,
#: Conv, Embedding, attention, recurrent and nested models; float16 and bfloat16
CORE_MODELS = ("mlp", "cnn", "emb", "f16", "bf16", "nested", "mha", "rnn")
#: the parts of a whole-fixture sweep: "core" (CORE_MODELS) and "rest" (``exhaustive``)
FIXTURE_PARTS = [pytest.param("core", id="core"),
                 pytest.param("rest", id="rest", marks=pytest.mark.exhaustive)]


def sweep_producers(default):
    """The producers of a whole-fixture sweep as parameters: `default` in the README's test
    command, the others ``exhaustive`` (each Keras is the default of some sweep)."""
    return [pytest.param(p, id=p, marks=[] if p == default else [pytest.mark.exhaustive])
            for p in PRODUCERS]


def in_part(model, part):
    """Is a fixture of `model` in the sweep's `part` ("core" or "rest")?"""
    return (model in CORE_MODELS) == (part == "core")


def find_python(producer):
    """The interpreter of `producer` if its variable is set and the file exists, else None."""
    for var in ENV[producer]:
        path = os.environ.get(var)
        if path:
            return path if os.path.exists(path) else None
    return None


def keras_python(producer):
    """The interpreter of `producer`; skip the test (fail under WEIGHTSHARE_REQUIRE_KERAS=1)."""
    for var in ENV[producer]:
        path = os.environ.get(var)
        if path:
            if not os.path.exists(path):
                pytest.fail(f"{var}={path} (for {producer}) does not exist")
            return path
    names = " or ".join(ENV[producer])
    if os.environ.get("WEIGHTSHARE_REQUIRE_KERAS") == "1":
        pytest.fail(f"{names} is not set but WEIGHTSHARE_REQUIRE_KERAS=1")
    pytest.skip(f"{names} is not set (a Keras interpreter; see tests/keras/setup_venvs.sh)")
