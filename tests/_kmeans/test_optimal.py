"""Tests of the DP row step of the exact solver (weightshare._kmeans._optimal.row_minima).

Each recursion level searches its brackets one of three ways (one slice per
bracket, one pass over the span the brackets tile, or ragged index arrays);
every way must return the exact row minimum for every b, with and without the
pinned zero, when it is the only way used.
"""

from unittest import mock

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare._kmeans._optimal as solver
from weightshare._kmeans._optimal import Prefix, row_minima

# (_SLICE_MIN, _SPAN_MIN) that send every level down one path
PATHS = {"slices": (0, 0), "span": (np.inf, 0), "ragged": (np.inf, np.inf)}

rows = st.integers(3, 60).flatmap(lambda m: st.tuples(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=m, max_size=m, unique=True),
    st.lists(st.integers(1, 4), min_size=m, max_size=m),
    st.lists(st.floats(0, 50, allow_nan=False), min_size=m + 2, max_size=m + 2),
    st.booleans(), st.integers(1, 3)))


def _setup(values, weights, pinned):
    order = np.argsort(values)
    x = np.asarray(values, dtype=np.float64)[order]
    w = np.asarray(weights, dtype=np.float64)[order]
    z = -1
    if pinned:
        z = int(np.searchsorted(x, 0.0))
        x, w = np.insert(x, z, 0.0), np.insert(w, z, 0.0)
    return Prefix(x, w, z)


@pytest.mark.parametrize("path", sorted(PATHS))
@given(case=rows)
def test_row_minima_is_the_brute_force_minimum(case, path):
    values, weights, prev, pinned, p_lo = case
    P = _setup(values, weights, pinned)
    M = P.m
    F = np.asarray(prev[:M + 1], dtype=np.float64)
    F[:p_lo] = np.inf       # an earlier DP row is finite from its row number on
    q_lo = p_lo + 1
    if q_lo > M:
        return
    with mock.patch.object(solver, "_SLICE_MIN", PATHS[path][0]), \
            mock.patch.object(solver, "_SPAN_MIN", PATHS[path][1]):
        val, opt = row_minima(F, P, q_lo, M, p_lo)
    for b in range(q_lo, M + 1):
        a = np.arange(p_lo, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            costs = F[a] + P.cost(a, np.full(a.size, b))
        costs[np.isnan(costs)] = np.inf     # a run of the lone virtual point alone
        best = costs.min()
        assert val[b - q_lo] == pytest.approx(best, rel=1e-9, abs=1e-9)
        got = opt[b - q_lo]
        assert p_lo <= got < b
        assert costs[got - p_lo] == pytest.approx(best, rel=1e-9, abs=1e-9)


def _brute_row(F, P, p_lo, q_lo, M):
    """Row minima by brute force: values and the last minimiser for each b."""
    val, arg = [], []
    for b in range(q_lo, M + 1):
        a = np.arange(p_lo, b)
        with np.errstate(divide="ignore", invalid="ignore"):
            costs = F[a] + P.cost(a, np.full(a.size, b))
        costs[np.isnan(costs)] = np.inf
        val.append(costs.min())
        arg.append(p_lo + costs.size - 1 - int(np.argmin(costs[::-1])))
    return np.array(val), np.array(arg)


@pytest.mark.parametrize("path", ["band", "bracket"])
@given(case=rows)
def test_the_previous_rows_minimisers_bound_the_next_row(case, path):
    # the band [lower[b], b-1] (or brackets raised to it) still holds a minimiser
    values, weights, _, pinned, _ = case
    P = _setup(values, weights, pinned)
    M = P.m
    if M < 3:
        return
    F1 = np.full(M + 1, np.inf)
    F1[1:] = P.cost(np.zeros(M, dtype=np.int64), np.arange(1, M + 1))
    v2, a2 = _brute_row(F1, P, 1, 2, M)
    F2 = np.full(M + 1, np.inf)
    F2[2:] = v2
    v3, _ = _brute_row(F2, P, 2, 3, M)
    lower = a2[1:]          # row 2's minimisers for b = 3 .. M
    with mock.patch.object(solver, "_BAND", np.inf if path == "band" else 0.0):
        val, opt = row_minima(F2, P, 3, M, 2, lower)
    np.testing.assert_allclose(val, v3, rtol=1e-9, atol=1e-9)
    assert np.all(opt >= 2) and np.all(opt < np.arange(3, M + 1))
    got = F2[opt] + P.cost(opt, np.arange(3, M + 1))
    np.testing.assert_allclose(got, v3, rtol=1e-9, atol=1e-9)
