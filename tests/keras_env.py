"""The Keras interpreters the real-Keras tests run files in (weightshare itself never imports Keras).

``tests/keras/setup_venvs.sh`` builds them; ``.ci/run`` exports their paths.
A producer is the Keras that wrote a fixture: ``k3`` (Keras 3 on jax),
``k3tf`` (Keras 3 on tensorflow), ``k2`` (tf-keras). An unset variable skips
the test, unless ``WEIGHTSHARE_REQUIRE_KERAS=1`` (CI), where it fails.
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
