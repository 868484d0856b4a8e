"""The size-chosen paths of the solvers, each against brute force and the exact solver.

- ``_optimal._chunked_row``: a DP row cut into chunks of ``ROW_CHUNK`` b (what
  keeps the exact solver's work memory bounded at any size);
- ``optimal_partition`` through chunked rows: the exhaustive optimum;
- ``auto``'s exact path (k < 64, at most ``EXACT_LIMIT_FEW_K`` points): the exact optimum.

Chunk sizes and limits are patched down so that small inputs take the paths
that large ones take.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import weightshare
import weightshare._kmeans._optimal as solver
from weightshare._kmeans import _auto
from weightshare._kmeans._optimal import Prefix, optimal_partition, partition_centroids
from weightshare.testing._reference import brute_force_sse

points = st.integers(4, 80).flatmap(lambda m: st.tuples(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=m, max_size=m, unique=True),
    st.lists(st.integers(1, 4), min_size=m, max_size=m),
    st.booleans(), st.integers(1, 9)))


def _prefix(values, weights, pinned):
    order = np.argsort(values)
    x = np.asarray(values, dtype=np.float64)[order]
    w = np.asarray(weights, dtype=np.float64)[order]
    z = -1
    if pinned:
        z = int(np.searchsorted(x, 0.0))
        x, w = np.insert(x, z, 0.0), np.insert(w, z, 0.0)
    return Prefix(x, w, z), x, w, z


def _brute_row(F, P, p_lo, q_lo, q_hi):
    val = []
    for b in range(q_lo, q_hi + 1):
        a = np.arange(p_lo, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            costs = F[a] + P.cost(a, np.full(a.size, b))
        costs[np.isnan(costs)] = np.inf
        val.append(costs.min())
    return np.array(val)


@given(case=points)
def test_a_chunked_row_holds_the_brute_force_minima(case):
    # rows 2 and 3 of the DP (row 3 with row 2's arg-minima as lower bounds), in chunks
    values, weights, pinned, chunk = case
    P, *_ = _prefix(values, weights, pinned)
    M = P.m
    D1 = np.full(M + 1, np.inf)
    D1[1:] = P.cost(np.zeros(M, dtype=np.int64), np.arange(1, M + 1))
    with mock.patch.object(solver, "ROW_CHUNK", chunk):
        v2, o2 = solver._chunked_row(D1, P, 2, M, 1)
        D2 = np.full(M + 1, np.inf)
        D2[2:] = v2
        v3, o3 = solver._chunked_row(D2, P, 3, M, 2, o2[1:])
    for v, want, o, p_lo, D in ((v2, _brute_row(D1, P, 1, 2, M), o2, 1, D1),
                                (v3, _brute_row(D2, P, 2, 3, M), o3, 2, D2)):
        np.testing.assert_allclose(v, want, rtol=1e-9, atol=1e-9)
        b = np.arange(p_lo + 1, M + 1)
        assert np.all((p_lo <= o) & (o < b))
        np.testing.assert_allclose(D[o] + P.cost(o.astype(np.int64), b), want,
                                   rtol=1e-9, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from([-3.0, -1.5, -1.0, 0.0, 0.5, 2.0, 2.5, 7.0]), min_size=2,
                max_size=8), st.integers(1, 4), st.booleans(), st.integers(1, 5))
def test_the_exact_solver_in_chunked_rows_is_the_exhaustive_optimum(vals, k, keep_zeros, chunk):
    x = np.array(vals)
    want = brute_force_sse(x, k, keep_zeros=keep_zeros)
    with mock.patch.object(solver, "ROW_CHUNK", chunk):
        if np.isnan(want):      # k = 1 cannot hold the fixed zero and a value
            with pytest.raises(ValueError):
                weightshare.cluster(x, k, method="optimal", keep_zeros=keep_zeros)
            return
        got = weightshare.cluster(x, k, method="optimal", keep_zeros=keep_zeros).sse
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)


@given(case=points, k=st.integers(2, 12))
def test_chunked_and_whole_rows_give_the_same_optimal_sse(case, k):
    values, weights, pinned, chunk = case
    _, x, w, z = _prefix(values, weights, False)
    if k > x.size:
        return
    sse = []
    for c in (chunk, 1 << 16):
        with mock.patch.object(solver, "ROW_CHUNK", c):
            bounds, zz, xe, we = optimal_partition(x, w, k, pinned and not np.any(x == 0))
        c_ = partition_centroids(xe, we, bounds, zz)
        P = Prefix(xe, we, zz)
        sse.append(float(P.cost(bounds[:-1], bounds[1:]).sum()))
        assert c_.size == k
    assert sse[0] == pytest.approx(sse[1], rel=1e-9, abs=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(30, 64), st.integers(2, 20), st.booleans())
def test_auto_below_the_exact_limit_is_the_exact_optimum(seed, n, k, zeros):
    rng = np.random.default_rng(seed)
    x = rng.laplace(0, 1, n).astype(np.float32)
    if zeros:
        x[rng.random(n) < 0.3] = 0.0
    # EXACT_LIMIT patched down to 8 and EXACT_LIMIT_FEW_K to 64: these inputs (at most 64
    # points) are routed by k, as tensors of 4,097 to 8,192 distinct values are
    with mock.patch.object(_auto, "EXACT_LIMIT", 8), \
            mock.patch.object(_auto, "EXACT_LIMIT_FEW_K", 64):
        got = weightshare.cluster(x, k).sse
    want = weightshare.cluster(x, k, method="optimal").sse
    assert got == pytest.approx(want, rel=1e-12, abs=1e-12)
