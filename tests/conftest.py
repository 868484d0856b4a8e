"""Shared test configuration: Hypothesis profiles and the Keras interpreters.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``):

- ``dev`` (default): 100 examples, no deadline.
- ``ci``: derandomised (the same examples on every run), 200 examples,
  ``print_blob`` so a failure can be reproduced with ``@reproduce_failure``.
- ``thorough``: 2,000 examples, randomised, for hunting.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True,
                          print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
