"""Issue 21, items 1-2: `init` only with a method that uses it; greedy k-means++."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare
from weightshare import cluster
from weightshare import testing as wst
from weightshare.cli import main
from weightshare._kmeans._kpp import greedy_kmeans_pp, n_local_trials

DIGITS = "examples/digits.keras"


@pytest.mark.parametrize("method", ["auto", "optimal"])
@pytest.mark.parametrize("init", ["linear", "kmeans++", [0.0, 1.0]])
def test_init_with_a_method_that_ignores_it_is_an_error(method, init):
    with pytest.raises(ValueError, match=r"only used by method='lloyd'; "
                                         rf"method='{method}' does not start from an init"):
        cluster(np.arange(1.0, 7.0), 2, method=method, init=init)


def test_init_with_lloyd_and_no_init_anywhere_are_accepted():
    w = np.arange(1.0, 7.0)
    assert cluster(w, 2, method="lloyd", init="kmeans++", random_state=0).centroids.size == 2
    assert cluster(w, 2, method="auto").centroids.size == 2


def test_cluster_file_rejects_init_with_auto(tmp_path):
    with pytest.raises(ValueError, match=r"init='density' is only used by method='lloyd'"):
        weightshare.cluster_file(DIGITS, tmp_path / "o.keras", 4, init="density")
    assert not (tmp_path / "o.keras").exists()


def test_cli_rejects_init_with_auto(tmp_path, capsys):
    assert main(["cluster", DIGITS, "-o", str(tmp_path / "o.keras"), "-k", "4",
                 "--init", "kmeans++", "--quiet"]) != 0
    assert "only used by method='lloyd'" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()


@pytest.mark.parametrize("k, trials", [(1, 2), (2, 2), (3, 3), (7, 3), (8, 4), (20, 4), (21, 5)])
def test_local_trials_are_two_plus_ln_k(k, trials):
    assert n_local_trials(k) == trials == 2 + int(math.log(k))


def test_pruned_dense_kernel_seeds_0_and_1_land_close():
    # the case: a pruned 64x300 Dense kernel, half zeros, keep_zeros=False, k=4; with
    # plain D² seeding seed 0 gave 4.3x the optimum (seed 1: 1.0x). Bound tested: every seed of
    # 0..9 within 5 % of the exact optimum, so seeds 0 and 1 within 5 % of each other.
    rng = np.random.default_rng(0)
    w = weightshare.prune(rng.normal(0, 0.05, (64, 300)).astype(np.float32), sparsity=0.5).values
    best = cluster(w, 4, method="optimal", keep_zeros=False).sse
    sse = [cluster(w, 4, method="lloyd", init="kmeans++", keep_zeros=False,
                   random_state=s).sse for s in range(10)]
    assert max(sse) <= 1.05 * best
    assert max(sse[0], sse[1]) <= 1.05 * min(sse[0], sse[1])


@given(x=st.lists(st.floats(-10, 10), min_size=1, max_size=40), k=st.integers(1, 8),
       seed=st.integers(0, 100))
def test_greedy_seeds_are_distinct_points(x, k, seed):
    X = np.asarray(x)[:, None]
    idx = greedy_kmeans_pp(X, np.ones(len(x)), k, np.random.default_rng(seed))
    assert np.unique(X[idx, 0]).size == idx.size <= k


@given(w=wst.weights(dtype="float64"), k=wst.k_values(2, 10), keep_zeros=st.booleans(),
       seed=st.integers(0, 100))
def test_lloyd_never_ends_above_the_greedy_init(w, k, keep_zeros, seed):
    c = weightshare.init_centroids(w, k, init="kmeans++", keep_zeros=keep_zeros,
                                   random_state=seed)
    init_sse = wst.sse(w, c[weightshare.assign(w, c)])
    res = cluster(w, k, method="lloyd", init="kmeans++", keep_zeros=keep_zeros,
                  random_state=seed)
    noise = w.size * (4 * np.finfo(np.float64).eps * float(np.abs(w).max())) ** 2
    assert res.sse <= init_sse * (1 + 1e-12) + noise
