"""Hypothesis strategies, exact oracles and invariant checks for compression code.

For people who write their own clustering, pruning or quantisation code and
want to property-test it against weightshare's exact answers::

    from hypothesis import given
    from weightshare import testing as wst

    @given(w=wst.weights(shape=wst.shapes(max_dims=4, max_side=64), zeros=0.5,
                         tails="laplace", dtype="float32"))
    def test_my_kmeans(w):
        values = my_kmeans(w, k=8)
        wst.assert_clustered(w, values, k=8, keep_zeros=True)
        wst.assert_sse_within(w, values, k=8, rel=1e-3)

Hypothesis is an optional dependency (``pip install 'weightshare[testing]'``);
nothing else in weightshare imports it.
"""

try:
    import hypothesis  # noqa: F401
except ImportError:  # pragma: no cover - exercised in a subprocess test
    raise ImportError("weightshare.testing needs Hypothesis, an optional dependency: "
                      "pip install 'weightshare[testing]' (or pip install hypothesis)") from None

from .checks import (assert_clustered, assert_pruned, assert_roundtrip, assert_sse_within,
                     assert_zeros_kept)
from .oracles import keep_set, optimal_sse, sse
from .strategies import DTYPES, TAILS, k_values, keras_like_layers, shapes, weights

__all__ = ["weights", "shapes", "k_values", "keras_like_layers", "DTYPES", "TAILS",
           "optimal_sse", "keep_set", "sse",
           "assert_clustered", "assert_sse_within", "assert_zeros_kept", "assert_pruned",
           "assert_roundtrip"]
