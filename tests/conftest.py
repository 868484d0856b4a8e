"""Shared test configuration: Hypothesis profiles and the order of the tests.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``):

- ``dev`` (default): 100 examples, no deadline.
- ``ci``: derandomised (the same examples on every run), 50 examples,
  ``print_blob`` so a failure can be reproduced with ``@reproduce_failure``.
- ``thorough``: 2,000 examples, randomised, for hunting.

The tests marked ``slow`` (seconds to a minute each) run first: with
pytest-xdist (``-n auto --dist worksteal`` in pyproject.toml; one worker more
than the cores) each worker starts on a share of the list and steals from the
others' when it runs out, so the long ones start early and the short ones fill
the workers at the end. ``-m "not slow"`` leaves them out.

The tests marked ``exhaustive`` are the rest of the robustness sweeps (the
hardening matrix beyond its first slice, the long fuzzing run, the rest of
the real-process sample): the README's test command leaves them out
(deselected, not skipped) and ``.ci/run`` runs them after it with
``--exhaustive -m exhaustive``. ``--exhaustive`` alone runs everything.
"""

import os

import pytest
from hypothesis import HealthCheck, settings

from keras_env import EXHAUSTIVE_FORMATS, EXHAUSTIVE_PRODUCER
from run_cache import run_folder
from weightshare._base._parallel import cores

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=50, deadline=None, derandomize=True,
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


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one worker more than the cores this process may use.

    Some tests wait without using a core: on a result another worker computes
    (``run_cache.once``: the hardening corpus, a Keras probe batch) or on a
    child process. A spare worker runs other tests meanwhile. Measured on 2
    cores, the README's test command: 211 s with 2 workers, 187 s with 3.
    """
    return cores() + 1


def pytest_addoption(parser):
    parser.addoption("--exhaustive", action="store_true",
                     help="also run the tests marked exhaustive (the whole robustness sweeps; "
                          ".ci/run runs them after the README's test command)")


def pytest_collection_modifyitems(config, items):
    """Deselect the ``exhaustive`` tests unless --exhaustive; the ``slow`` ones first.

    A real-Keras test run for ``keras_env.EXHAUSTIVE_PRODUCER`` (k3tf: Keras 3 on
    tensorflow, which writes the files k3 writes), or for a (producer, ``ext``) pair of
    ``keras_env.EXHAUSTIVE_FORMATS``, is marked ``exhaustive`` here.
    """
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if item.get_closest_marker("keras") and (
                params.get("producer") == EXHAUSTIVE_PRODUCER
                or (params.get("producer"), params.get("ext")) in EXHAUSTIVE_FORMATS):
            item.add_marker(pytest.mark.exhaustive)
    if not config.getoption("--exhaustive"):
        out = [item for item in items if item.get_closest_marker("exhaustive")]
        if out:
            config.hook.pytest_deselected(items=out)
            items[:] = [item for item in items if not item.get_closest_marker("exhaustive")]
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
