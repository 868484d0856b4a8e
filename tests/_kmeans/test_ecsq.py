"""Entropy-constrained clustering (weightshare._kmeans._ecsq and cluster(rate=)): the DP is
the optimum over interval partitions (brute force), the optimum over all partitions has
interval cells (brute force over every labelling), the refinement never raises the
objective, rate=0 is plain k-means, zeros kept zero are counted in the zero cell."""

import itertools

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare
from weightshare._kmeans._ecsq import _refine, ecsq_dp, ecsq_fit


def objective(x, labels, values, lam, sw=None):
    """SSE + lam * sum_j n_j log2(n / n_j) of a labelled tensor."""
    x = np.asarray(x, dtype=np.float64).ravel()
    sw = np.ones_like(x) if sw is None else np.asarray(sw, dtype=np.float64).ravel()
    n = np.bincount(np.asarray(labels).ravel())
    n = n[n > 0]
    return float(np.dot(sw, (x - np.asarray(values, dtype=np.float64).ravel()) ** 2)
                 + lam * np.sum(n * np.log2(x.size / n)))


small = st.tuples(st.lists(st.floats(-3, 3, allow_nan=False), min_size=1, max_size=7,
                           unique=True),
                  st.integers(1, 3), st.floats(0.0, 2.0))


@given(small, st.booleans())
def test_dp_is_the_optimum_over_interval_partitions(case, with_zero):
    values, k, lam = case
    x = np.sort(np.array(values))
    z = -1
    if with_zero and 0.0 not in values:
        z = int(np.searchsorted(x, 0.0))
        x = np.insert(x, z, 0.0)
    m = x.size
    w = np.ones(m)
    w[z] = 0.0 if z >= 0 else 1.0
    cnt = np.ones(m)
    _, obj = ecsq_dp(x, w, cnt, k, lam, float(m), z)
    best = np.inf
    for j in range(1, min(k, m) + 1):
        for cuts in itertools.combinations(range(1, m), j - 1):
            b = (0,) + cuts + (m,)
            cells = [range(b[i], b[i + 1]) for i in range(j)]
            total = 0.0
            for c in cells:     # the virtual zero weighs 0 but counts one entry
                v, ww = x[list(c)], w[list(c)]
                centre = 0.0 if z in c else np.dot(ww, v) / ww.sum()
                total += float(np.dot(ww, (v - centre) ** 2)) + lam * len(c) * np.log2(m / len(c))
            best = min(best, total)
    assert obj == pytest.approx(best, rel=1e-9, abs=1e-9)


@given(small)
def test_cells_are_intervals_the_result_matches_every_labelling(case):
    values, k, lam = case
    x = np.array(values)
    res = weightshare.cluster(x, k, rate=lam, keep_zeros=False)
    # every labelling of the entries into k cells, at once: cells at their means
    one = np.array(list(itertools.product(range(k), repeat=x.size)))[:, :, None] == np.arange(k)
    cnt = one.sum(axis=1)
    s1 = (one * x[None, :, None]).sum(axis=1)
    s2 = (one * (x * x)[None, :, None]).sum(axis=1)
    safe = np.maximum(cnt, 1)
    cells = np.where(cnt > 0, s2 - s1 * s1 / safe + lam * cnt * np.log2(x.size / safe), 0.0)
    best = float(cells.sum(axis=1).min())
    assert objective(x, res.labels, res.values, lam) == pytest.approx(best, rel=1e-9, abs=1e-9)


@given(st.lists(st.floats(-3, 3, allow_nan=False), min_size=2, max_size=60),
       st.integers(1, 6))
def test_rate_zero_is_plain_optimal_kmeans(values, k):
    x = np.array(values)
    u, cnt = np.unique(x, return_counts=True)
    cnt = cnt.astype(float)
    _, _, obj = ecsq_fit(u, cnt, cnt, k, 0.0, False, 0)
    ref = weightshare.cluster(x, k, method="optimal", keep_zeros=False).sse
    assert obj == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert weightshare.cluster(x, k, rate=0.0, keep_zeros=False).sse == \
        weightshare.cluster(x, k, keep_zeros=False).sse


@given(st.integers(0, 2 ** 32 - 1), st.floats(0.0, 1.0))
def test_refinement_never_raises_the_objective(seed, lam):
    rng = np.random.default_rng(seed)
    x = np.sort(rng.standard_normal(80))
    w = rng.random(80) + 0.5
    cnt = np.ones(80)
    labels = rng.integers(0, 4, 80)
    c = np.array([np.mean(x[labels == j]) if np.any(labels == j) else 0.0 for j in range(4)])
    n = np.bincount(labels, minlength=4)
    start = float(np.dot(w, (x - c[labels]) ** 2)) + lam * float(
        np.sum(n[n > 0] * np.log2(80 / n[n > 0])))
    _, _, obj = _refine(x, w, cnt, labels, c, lam, 80.0, 0, -1)
    assert obj <= start * (1 + 1e-12)


def test_atoms_then_refinement_is_at_least_as_good_as_the_atoms():
    rng = np.random.default_rng(3)
    x = np.unique(rng.standard_normal(3000))
    ones = np.ones(x.size)
    coarse = ecsq_fit(x, ones, ones, 8, 0.05, False, 0, exact_points=64)
    fine = ecsq_fit(x, ones, ones, 8, 0.05, False, 0, exact_points=1024)
    # both are valid labellings; the exact DP over more points is at most a hair worse
    assert coarse[2] >= fine[2] * (1 - 1e-3)
    assert objective(x, coarse[1], coarse[0][coarse[1]], 0.05) == pytest.approx(coarse[2])


def test_zeros_stay_zero_and_count_in_the_zero_cell():
    rng = np.random.default_rng(4)
    x = rng.standard_normal(400).astype(np.float32)
    x[:300] = 0.0
    res = weightshare.cluster(x, 4, rate=0.5)
    assert np.all(res.values[x == 0] == 0) and 0.0 in res.centroids
    # with 300 zeros in the zero cell, its code is short: small weights join it
    plain = weightshare.cluster(x, 4)
    assert np.count_nonzero(res.values == 0) > np.count_nonzero(plain.values == 0)


def test_higher_rate_lowers_the_entropy_on_real_weights():
    w = [r.value for r in weightshare.read_weights(weightshare.examples.path("digits.keras"))
         if r.name == "fc1/kernel"][0]
    plain, ec = weightshare.cluster(w, 8), weightshare.cluster(w, 8, rate=0.002)
    assert objective(w, ec.labels, ec.values, 0.002) < objective(w, plain.labels, plain.values,
                                                                 0.002)
    assert ec.sse > plain.sse


@pytest.mark.parametrize("kwargs, match", [
    ({"rate": -1.0}, "rate"),
    ({"rate": 0.1, "axis": 0}, "rate=0.1 .* not with axis"),
    ({"rate": 0.1, "lut_dtype": "int8"}, "not with lut_dtype"),
    ({"rate": 0.1, "method": "lloyd"}, "not with method='lloyd'"),
])
def test_bad_rate_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        weightshare.cluster(np.linspace(-1, 1, 20).reshape(4, 5), 3, **kwargs)
