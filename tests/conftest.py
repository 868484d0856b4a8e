"""Shared test configuration: Hypothesis profiles and the order of the tests.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``):

- ``dev`` (default): 100 examples, no deadline.
- ``ci``: derandomised (the same examples on every run), 200 examples,
  ``print_blob`` so a failure can be reproduced with ``@reproduce_failure``.
- ``thorough``: 2,000 examples, randomised, for hunting.

The tests marked ``slow`` (seconds to a minute each) run first: with
pytest-xdist (``-n auto --maxschedchunk 1`` in pyproject.toml) each worker takes
the next test when it is free, so the long ones start early and the short ones
fill the workers at the end. ``-m "not slow"`` leaves them out.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from run_cache import run_folder

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@pytest.fixture(scope="session", autouse=True)
def jax_compilation_cache(tmp_path_factory):
    """The Keras 3 (jax) processes of a run share their compiled XLA programs.

    Loading a model in jax compiles a program per operation and shape, in each
    process anew: seconds per model. With a cache of the compiled programs in the
    run's folder (new for each run), the probes after the first load them instead;
    the programs, and so the results, are the same. A variable already set wins.
    """
    if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
        os.environ["JAX_COMPILATION_CACHE_DIR"] = str(run_folder(tmp_path_factory) / "jax-cache")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
        os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")


def pytest_collection_modifyitems(config, items):
    """The tests marked ``slow`` first, in their order; then the others, in theirs."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
