"""The rate-distortion curve of one DP run and the allocation of k under a budget
(weightshare._kmeans._budget): the curve is the exact optimum at every k; the
allocation is exact on the convex hull (brute force), never over budget and
never worse than the uniform point it is given."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare
from weightshare._kmeans._budget import allocate, knapsack, sse_curve
from weightshare._kmeans._points import reduce_points

tensors = st.tuples(
    st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=1, max_size=40),
    st.booleans())


@given(tensors)
def test_curve_is_the_optimal_sse_at_every_k(t):
    values, keep_zeros = t
    x = np.array(values, dtype=np.float64)
    p = reduce_points(x, None, keep_zeros)
    curve = sse_curve(p.values, np.asarray(p.weights, float), p.has_zero, 8)
    for k in range(1 + int(p.has_zero and p.values.size > 0), 9):
        ref = weightshare.cluster(x, k, method="optimal", keep_zeros=keep_zeros).sse
        assert curve[k - 1] == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_curve_with_sample_weight_matches_the_weighted_solver():
    rng = np.random.default_rng(1)
    x = rng.standard_normal(300)
    x[:40] = 0.0
    sw = rng.random(300) + 0.1
    p = reduce_points(x, sw, True)
    curve = sse_curve(p.values, np.asarray(p.weights, float), p.has_zero, 12)
    for k in (2, 5, 12):
        ref = weightshare.cluster(x, k, method="optimal", sample_weight=sw).sse
        assert curve[k - 1] == pytest.approx(ref, rel=1e-9)


# random rate-distortion points: rates strictly increasing, errors decreasing
points = st.lists(st.tuples(st.integers(1, 9), st.floats(0.0, 100.0)), min_size=1, max_size=4)
problems = st.lists(points, min_size=1, max_size=3)


def _curves(problem):
    rates, errors = [], []
    for pts in problem:
        r = np.cumsum([p[0] for p in pts]).astype(float)
        d = np.sort([p[1] for p in pts])[::-1].copy()
        rates.append(r)
        errors.append(d)
    return rates, errors


def _brute(rates, errors, budget):
    best = np.inf
    for choice in itertools.product(*(range(r.size) for r in rates)):
        if sum(r[i] for r, i in zip(rates, choice)) <= budget:
            best = min(best, sum(d[i] for d, i in zip(errors, choice)))
    return best


@given(problems, st.floats(0.0, 200.0))
def test_allocation_never_exceeds_the_budget(problem, lam):
    rates, errors = _curves(problem)
    budget = sum(r[0] for r in rates) + lam / 4
    res = allocate(rates, errors, budget)
    assert res.rate <= budget


@given(problems, st.floats(0.0, 50.0))
def test_allocation_is_exact_at_every_lagrangian_budget(problem, lam):
    # each tensor minimising d + lam r (ties: the cheaper point) is optimal for the total
    # rate it reaches (Everett): a budget on the hull, where the allocation must be exact
    rates, errors = _curves(problem)
    budget = sum(float(r[int(np.argmin(d + lam * r))]) for r, d in zip(rates, errors))
    res = allocate(rates, errors, budget)
    assert res.error == pytest.approx(_brute(rates, errors, budget), rel=1e-12, abs=1e-12)


@given(problems, st.floats(0.0, 30.0), st.data())
def test_allocation_never_loses_to_the_uniform_point(problem, extra, data):
    rates, errors = _curves(problem)
    u = [data.draw(st.integers(0, r.size - 1)) for r in rates]
    budget = sum(float(r[i]) for r, i in zip(rates, u)) + extra
    res = allocate(rates, errors, budget, [[i] for i in u])
    assert res.error <= sum(float(d[i]) for d, i in zip(errors, u))


def test_budget_below_the_cheapest_points_gives_none():
    assert allocate([np.array([2.0, 4.0])], [np.array([5.0, 1.0])], 1.0) is None


@given(problems, st.integers(0, 40))
def test_allocation_matches_brute_force_at_any_budget(problem, extra):
    # integer rates: the knapsack DP makes every budget exact, not only the hull's
    rates, errors = _curves(problem)
    budget = sum(float(r[0]) for r in rates) + extra
    res = allocate(rates, errors, budget)
    assert res.error == pytest.approx(_brute(rates, errors, budget), rel=1e-12, abs=1e-12)


def test_knapsack_in_coarse_units_still_fits():
    # more rate units than states: rates rounded up, the result within the budget
    rates = [np.array([1000.0, 2003.0, 3001.0]), np.array([999.0, 1999.0, 3005.0])]
    errors = [np.array([9.0, 4.0, 1.0]), np.array([8.0, 3.0, 1.0])]
    choice = knapsack(rates, errors, 4500.0, max_states=50)
    assert sum(r[i] for r, i in zip(rates, choice)) <= 4500.0
    assert choice == [1, 1]
