"""Issue 21: vector palettization, ``cluster(w, k, axis=..., cluster_dim=d)`` (_kmeans/_vector.py).

One invariant per property test.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightshare import cluster
from weightshare._kmeans._vector import (from_vectors, kmeans_vectors, lloyd_vectors, potential,
                                         seed_vectors, to_vectors)

FLOATS = st.floats(-4, 4, allow_nan=False, width=32)


@st.composite
def vector_tensors(draw, min_d=2, max_d=4, zero_vectors=True, dtype=np.float32):
    """(w, axis, d): a 2-D or 3-D tensor whose `axis` is a multiple of d, some vectors zero."""
    d = draw(st.integers(min_d, max_d))
    ndim = draw(st.integers(2, 3))
    axis = draw(st.integers(0, ndim - 1))
    shape = [draw(st.integers(1, 6)) for _ in range(ndim)]
    shape[axis] = d * draw(st.integers(1, 6))
    w = draw(hnp.arrays(dtype, tuple(shape), elements=FLOATS))
    if zero_vectors:
        v = to_vectors(w, axis, d).copy()
        v[draw(hnp.arrays(bool, v.shape[0]))] = 0
        w = from_vectors(v, w.shape, axis, d)
    return w, axis, d


def _nearest_sse(X, C):
    d2 = ((X[:, None, :] - C[None, :, :]) ** 2).sum(axis=2)
    return float(d2.min(axis=1).sum())


@given(a=vector_tensors())
def test_vectors_round_trip(a):
    w, axis, d = a
    assert np.array_equal(from_vectors(to_vectors(w, axis, d), w.shape, axis, d), w)


@given(a=vector_tensors(), k=st.integers(1, 9), keep_zeros=st.booleans(), seed=st.integers(0, 50))
def test_values_are_the_codebook_at_the_labels(a, k, keep_zeros, seed):
    w, axis, d = a
    if keep_zeros and k == 1:
        k = 2
    res = cluster(w, k, axis=axis, cluster_dim=d, keep_zeros=keep_zeros, random_state=seed)
    assert res.centroids.shape[1] == d and res.centroids.shape[0] <= k
    assert res.labels.shape == tuple(s // d if i == axis else s for i, s in enumerate(w.shape))
    assert 0 <= res.labels.min() and res.labels.max() < res.centroids.shape[0]
    expect = np.moveaxis(res.centroids[np.moveaxis(res.labels, axis, 0)], -1, 1)
    expect = np.moveaxis(expect.reshape((-1,) + expect.shape[2:]), 0, axis)
    assert res.values.dtype == w.dtype and np.array_equal(res.values, expect)


@given(a=vector_tensors(), k=st.integers(2, 9), seed=st.integers(0, 50))
def test_at_most_k_distinct_vectors(a, k, seed):
    w, axis, d = a
    res = cluster(w, k, axis=axis, cluster_dim=d, random_state=seed)
    assert np.unique(to_vectors(res.values, axis, d), axis=0).shape[0] <= k


@given(a=vector_tensors(), k=st.integers(2, 9), seed=st.integers(0, 50))
def test_all_zero_vectors_stay_all_zero(a, k, seed):
    w, axis, d = a
    zero = ~to_vectors(w, axis, d).any(axis=1)
    res = cluster(w, k, axis=axis, cluster_dim=d, keep_zeros=True, random_state=seed)
    assert not to_vectors(res.values, axis, d)[zero].any()


@given(w=hnp.arrays(np.float32, st.tuples(st.integers(1, 8), st.integers(1, 8)), elements=FLOATS),
       k=st.integers(1, 9), keep_zeros=st.booleans(), axis=st.integers(0, 1))
def test_cluster_dim_1_is_the_scalar_path_bit_for_bit(w, k, keep_zeros, axis):
    if keep_zeros and k == 1:
        k = 2
    a = cluster(w, k, keep_zeros=keep_zeros)
    b = cluster(w, k, keep_zeros=keep_zeros, cluster_dim=1)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.centroids, b.centroids)
    assert a.sse == b.sse


@given(x=hnp.arrays(np.float64, st.integers(2, 40), elements=st.floats(-4, 4)),
       k=st.integers(1, 6), seed=st.integers(0, 50))
def test_vector_solver_in_one_dimension_is_never_below_the_exact_optimum(x, k, seed):
    # d = 1: the vector solver ends at a Lloyd fixed point, which the exact 1-D DP bounds below
    C, labels, _ = kmeans_vectors(x[:, None], np.ones(x.size), k, np.random.default_rng(seed))
    best = cluster(x, k, method="optimal", keep_zeros=False).sse
    assert potential(x[:, None], np.ones(x.size), C, labels) >= best * (1 - 1e-9) - 1e-12


@given(a=vector_tensors(dtype=np.float64, zero_vectors=False), m=st.integers(1, 6),
       seed=st.integers(0, 50))
def test_lloyd_never_ends_above_its_init(a, m, seed):
    w, axis, d = a
    X = to_vectors(w, axis, d)
    C0 = np.random.default_rng(seed).uniform(-4, 4, size=(m, d))
    res = cluster(w, m, axis=axis, cluster_dim=d, method="lloyd", init=C0, keep_zeros=False)
    init_sse = _nearest_sse(X, C0)
    assert res.sse <= init_sse * (1 + 1e-9) + 1e-9


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 4)),
                    elements=st.floats(-4, 4)),
       k=st.integers(1, 8), seed=st.integers(0, 50))
def test_lloyd_ends_at_a_fixed_point(X, k, seed):
    # Hamerly's bounds only skip work: every label is a nearest centre, every centre its mean
    rng = np.random.default_rng(seed)
    C0 = seed_vectors(X, np.ones(len(X)), k, rng)
    C, labels, _ = lloyd_vectors(X, np.ones(len(X)), C0, np.zeros(len(C0), bool), 1000)
    d2 = ((X[:, None, :] - C[None]) ** 2).sum(axis=2)
    assert np.all(d2[np.arange(len(X)), labels] <= d2.min(axis=1) * (1 + 1e-9) + 1e-12)
    for j in np.unique(labels):
        np.testing.assert_allclose(C[j], X[labels == j].mean(axis=0), rtol=1e-9, atol=1e-12)


@given(X=hnp.arrays(np.float64, st.tuples(st.integers(1, 60), st.integers(1, 4)),
                    elements=st.floats(-4, 4)),
       k=st.integers(1, 8), seed=st.integers(0, 50))
def test_greedy_seeds_are_distinct_rows_of_the_data(X, k, seed):
    S = seed_vectors(X, np.ones(len(X)), k, np.random.default_rng(seed))
    rows = {tuple(r) for r in X}
    assert len(S) <= k and len({tuple(s) for s in S}) == len(S)
    assert all(tuple(s) in rows for s in S)


@given(a=vector_tensors(), k=st.integers(2, 6), seed=st.integers(0, 50))
def test_unit_sample_weight_is_no_weight(a, k, seed):
    w, axis, d = a
    plain = cluster(w, k, axis=axis, cluster_dim=d, random_state=seed)
    ones = cluster(w, k, axis=axis, cluster_dim=d, random_state=seed,
                   sample_weight=np.ones(w.shape))
    assert np.array_equal(plain.values, ones.values)
    assert np.array_equal(plain.labels, ones.labels)


def test_same_seed_same_result():
    w = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)
    a, b = (cluster(w, 8, axis=0, cluster_dim=4, random_state=3) for _ in range(2))
    assert np.array_equal(a.values, b.values) and np.array_equal(a.labels, b.labels)


def test_weighted_sse_is_reported():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(8, 6))
    sw = np.repeat(rng.uniform(0.5, 2, size=(4, 6)), 2, axis=0)     # one weight per vector
    res = cluster(w, 3, axis=0, cluster_dim=2, sample_weight=sw, random_state=0)
    assert res.sse == pytest.approx(float((sw * (w - res.values) ** 2).sum()), rel=1e-12)


W = np.arange(1.0, 25.0).reshape(8, 3)


@pytest.mark.parametrize("value, error, text", [
    (0, ValueError, "cluster_dim must be >= 1; got cluster_dim=0"),
    (-2, ValueError, "cluster_dim must be >= 1; got cluster_dim=-2"),
    (2.0, TypeError, "cluster_dim must be an integer >= 1; got 2.0"),
    (True, TypeError, "cluster_dim must be an integer >= 1; got True"),
    ("4", TypeError, "cluster_dim must be an integer >= 1; got '4'"),
    (3, ValueError, r"cluster_dim=3 must divide the length of axis 0 \(8\)"),
    (16, ValueError, r"cluster_dim=16 must divide the length of axis 0 \(8\)"),
])
def test_bad_cluster_dim_is_an_error_naming_it(value, error, text):
    with pytest.raises(error, match=text):
        cluster(W, 2, axis=0, cluster_dim=value)


@pytest.mark.parametrize("kw, text", [
    ({"axis": None}, r"cluster_dim=2 needs axis"),
    ({"group_size": 2}, r"cluster_dim=2 does not combine with group_size=2"),
    ({"per_channel_scale": True}, r"does not combine with per_channel_scale=True"),
    ({"lut_dtype": "int8"}, r"does not combine with lut_dtype='int8'"),
    ({"method": "optimal"}, r"method='optimal' has no exact solver for vectors"),
    ({"method": "lloyd", "init": "linear"}, r"init='linear' is one-dimensional"),
    ({"method": "lloyd", "init": np.zeros((3, 3))}, r"shape \(m, 2\) with 1 <= m <= k=2"),
    ({"sample_weight": np.arange(24.0).reshape(8, 3)}, r"sample_weight must be the same"),
])
def test_what_vectors_do_not_combine_with_is_an_error(kw, text):
    kw = {"axis": 0, **kw}
    with pytest.raises(ValueError, match=text):
        cluster(W, 2, cluster_dim=2, **kw)


def test_k_1_with_zero_vectors_kept_is_an_error():
    w = W.copy()
    w[:2] = 0
    with pytest.raises(ValueError, match="k=1 cannot hold the fixed zero codeword"):
        cluster(w, 1, axis=0, cluster_dim=2)
    assert cluster(w, 1, axis=0, cluster_dim=2, keep_zeros=False).centroids.shape == (1, 2)


def test_huge_values_are_fitted_scaled():
    # two distinct vectors (1e300, 2e300) and (-1e300, 0), each twice: k=2 is exact
    w = np.array([[1e300, 1e300], [2e300, 2e300], [-1e300, -1e300], [0.0, 0.0]])
    res = cluster(w, 2, axis=0, cluster_dim=2, random_state=0, keep_zeros=False)
    assert np.array_equal(res.values, w) and res.sse == 0.0
