"""Tests of the segmented start for many clusters (weightshare._kmeans._segmented) and of
the several-sub-problem form of the DP row minima it relies on."""

import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from weightshare._kmeans import _segmented as seg
from weightshare._kmeans._optimal import Prefix, optimal_partition, row_minima


def _cost(P, bounds):
    return float(np.sum(P.cost(bounds[:-1], bounds[1:])))


def _points(values, weights):
    order = np.argsort(values)
    x = np.unique(np.asarray(values, dtype=np.float64)[order])
    w = np.asarray(weights, dtype=np.float64)[: x.size] + 0.5
    return x, w


points = st.integers(5, 11).flatmap(lambda m: st.tuples(
    st.lists(st.floats(-10, 10, allow_nan=False), min_size=m, max_size=m, unique=True),
    st.lists(st.floats(0.0, 3.0), min_size=m, max_size=m)))


@given(points, st.integers(2, 6), st.integers(1, 4))
def test_optimal_among_partitions_with_a_boundary_at_every_seam(pw, k, n_seg):
    x, w = _points(*pw)
    k = min(k, x.size)
    n_seg = min(n_seg, k)
    P = Prefix(x, w)
    seams = seg._seams(x, w, n_seg)
    got = seg.segmented_partition(P, x, w, k, n_seg)
    assert got.size == k + 1 and got[0] == 0 and got[-1] == x.size
    assert np.all(np.diff(got) > 0)
    assert set(seams.tolist()) <= set(got.tolist())
    best = min(_cost(P, np.array((0,) + inner + (x.size,)))
               for inner in itertools.combinations(range(1, x.size), k - 1)
               if set(seams.tolist()) <= {0, x.size, *inner})
    assert _cost(P, got) == pytest.approx(best, rel=1e-9, abs=1e-12)


@given(points, st.integers(2, 6))
def test_one_segment_is_the_exact_optimum(pw, k):
    x, w = _points(*pw)
    k = min(k, x.size)
    P = Prefix(x, w)
    got = seg.segmented_partition(P, x, w, k, 1)
    exact, *_ = optimal_partition(x, w, k)
    assert _cost(P, got) == pytest.approx(_cost(P, exact), rel=1e-9, abs=1e-12)


def test_a_segment_that_needs_more_rows_than_the_first_cap_gets_them():
    # two far groups; the seams split the wide group, whose segment then needs
    # far more than 1.25 k / n_seg clusters
    rng = np.random.default_rng(0)
    x = np.unique(np.concatenate((rng.uniform(0, 1, 400), rng.uniform(100, 101, 20))))
    w = np.ones_like(x)
    w[x > 50] = 1e4
    P = Prefix(x, w)
    k, n_seg = 24, 4
    got = seg.segmented_partition(P, x, w, k, n_seg)
    edges = seg._seams(x, w, n_seg)
    per_segment = np.diff(np.searchsorted(got, edges))
    assert per_segment.max() > -(-5 * k // (4 * n_seg))      # the first cap was exceeded
    exact, *_ = optimal_partition(x, w, k)
    assert _cost(P, got) >= _cost(P, exact) - 1e-9


def test_seams_are_increasing_and_cover_the_points():
    rng = np.random.default_rng(1)
    x = np.unique(rng.laplace(size=5000))
    w = rng.uniform(0.5, 2, x.size)
    edges = seg._seams(x, w, 8)
    assert edges[0] == 0 and edges[-1] == x.size
    assert np.all(np.diff(edges) > 0) and edges.size == 9


@given(points, st.integers(1, 4), st.booleans())
def test_row_minima_of_several_ranges_equals_one_call_per_range(pw, parts, pinned):
    x, w = _points(*pw)
    z = int(np.searchsorted(x, 0.0)) if pinned else -1
    if pinned:
        x, w = np.insert(x, z, 0.0), np.insert(w, z, 0.0)
    P = Prefix(x, w, z)
    M = x.size
    F = np.concatenate(([0.0], P.cost(np.zeros(M, np.int64), np.arange(1, M + 1))))
    cuts = np.unique(np.linspace(0, M, parts + 1).round().astype(np.int64))
    s0, s1 = cuts[:-1], cuts[1:]
    ok = (s1 - s0) >= 2
    if not ok.any():
        return
    s0, s1 = s0[ok], s1[ok]
    val, opt = row_minima(F, P, s0 + 2, s1, s0 + 1)
    first = int(s0[0]) + 2
    for a, b in zip(s0, s1):
        v1, o1 = row_minima(F, P, int(a) + 2, int(b), int(a) + 1)
        np.testing.assert_allclose(val[a + 2 - first:b + 1 - first], v1, rtol=1e-12, atol=1e-12)
        got_cost = F[opt[a + 2 - first:b + 1 - first]] + P.cost(opt[a + 2 - first:b + 1 - first],
                                                               np.arange(a + 2, b + 1))
        np.testing.assert_allclose(got_cost, v1, rtol=1e-12, atol=1e-12)


@settings(deadline=None)
@given(st.integers(3, 400).flatmap(lambda m: st.tuples(
    st.lists(st.floats(-25, 25, allow_nan=False), min_size=m, max_size=m, unique=True),
    st.lists(st.integers(1, 5), min_size=m, max_size=m))), st.integers(1, 64))
def test_atoms_cover_the_points_never_straddle_zero_and_are_narrow_in_companded_mass(uw, n_atoms):
    from weightshare._kmeans._auto import _WIDE, _atom_edges
    u = np.asarray(uw[0])
    x = np.unique(np.sign(u) * np.expm1(np.abs(u)))  # tails as heavy as e**25
    assume(x.size >= 3)
    w = np.asarray(uw[1], dtype=np.float64)[:x.size]
    e = _atom_edges(x, w, n_atoms)
    assert e[0] == 0 and e[-1] == x.size and np.all(np.diff(e) > 0)
    assert np.searchsorted(x, 0.0) in e          # no atom holds points on both sides of 0
    mass = np.concatenate(([0.0], np.cumsum(np.cbrt(w * np.gradient(x) ** 2))))
    # the points of an atom but its last carry at most _WIDE cells of companded mass
    bound = _WIDE * mass[-1] / n_atoms
    assert np.all(mass[e[1:] - 1] - mass[e[:-1]] <= bound + 1e-12 * mass[-1])


def test_atoms_of_a_very_heavy_tailed_sample_are_cut_where_equal_count_cells_are_wide():
    # t(1.5): before the cut, tail atoms carried up to 11 cells of companded mass
    from weightshare._kmeans._auto import _WIDE, _atom_edges
    rng = np.random.default_rng(7)
    x = np.unique(rng.standard_t(1.5, 20_000))
    w = rng.integers(1, 4, x.size).astype(np.float64)
    e = _atom_edges(x, w, 1024)
    mass = np.concatenate(([0.0], np.cumsum(np.cbrt(w * np.gradient(x) ** 2))))
    assert np.max(mass[e[1:] - 1] - mass[e[:-1]]) <= _WIDE * mass[-1] / 1024 * (1 + 1e-9)
