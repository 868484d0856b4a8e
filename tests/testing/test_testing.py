"""Tests of weightshare.testing: the checks catch known-bad implementations, the oracles are right.

Meta-tests: each deliberately broken algorithm must fail the matching check
with a message that names the invariant.
"""

import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare
from weightshare import testing as wst
from weightshare.testing._reference import brute_force_sse

ROOT = pathlib.Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- known-bad implementations

def lloyd_that_moves_zeros(w, k):
    """Clusters with keep_zeros=False and shifts the zero cluster off 0."""
    res = weightshare.cluster(w, k, keep_zeros=False, method="lloyd")
    c = res.centroids.copy()
    c[np.argmin(np.abs(c))] += np.asarray(0.01, dtype=w.dtype)
    return c[res.labels]


def clustering_with_k_plus_one_values(w, k):
    return weightshare.cluster(w, k + 1, keep_zeros=False).values


def assignment_that_is_not_nearest(w, k):
    res = weightshare.cluster(w, k, keep_zeros=False)
    labels = np.minimum(res.labels + 1, res.centroids.size - 1)   # shift everyone up by one
    return res.centroids[labels]


def pruner_that_keeps_one_extra_on_ties(w, keep):
    order = np.lexsort((np.arange(w.size), -np.abs(w.ravel())))
    kept = np.zeros(w.size, dtype=bool)
    kept[order[:keep + 1]] = True                                 # one too many
    return np.where(kept.reshape(w.shape), w, 0).astype(w.dtype)


def test_lloyd_that_moves_zeros_fails_assert_zeros_kept():
    w = np.array([0.0, 0.0, 0.01, 1.0, 1.1, 5.0])
    with pytest.raises(AssertionError, match=r"zeros kept: 2 of 2 zero\(s\) moved, first at index \(0,\)"):
        wst.assert_zeros_kept(w, lloyd_that_moves_zeros(w, 3))


def test_k_plus_one_values_fails_assert_clustered():
    w = np.linspace(-1, 1, 20)
    with pytest.raises(AssertionError, match=r"at most k values: 5 distinct values > k=4"):
        wst.assert_clustered(w, clustering_with_k_plus_one_values(w, 4), 4, keep_zeros=False)


def test_not_nearest_assignment_fails_assert_clustered():
    w = np.array([-1.0, -0.9, 0.5, 0.6, 2.0])
    with pytest.raises(AssertionError, match=r"nearest centroid: entry \(2,\) = 0.5 holds 2.0 at distance 1.5, "
                                             r"but 0.55 is at distance 0.05"):
        wst.assert_clustered(w, assignment_that_is_not_nearest(w, 3), 3, keep_zeros=False)


def test_extra_weight_on_ties_fails_assert_pruned():
    w = np.array([0.5, -0.5, 0.5, 2.0, 0.1])
    bad = pruner_that_keeps_one_extra_on_ties(w, 2)
    with pytest.raises(AssertionError, match=r"pruned: 3 non-zeros kept, expected 2; first extra at "
                                             r"index \(1,\) = -0.5"):
        wst.assert_pruned(w, bad, keep=2)


def test_pruner_keeping_the_wrong_tie_fails_assert_pruned():
    w = np.array([0.5, -0.5, 2.0])
    wrong = np.array([0.0, -0.5, 2.0])          # kept index 1 instead of index 0
    with pytest.raises(AssertionError, match=r"kept \(1,\) = -0.5 but dropped \(0,\) = 0.5"):
        wst.assert_pruned(w, wrong, keep=2)


def test_pruner_that_changes_a_kept_value_fails():
    with pytest.raises(AssertionError, match=r"kept entry \(0,\) changed from 2.0 to 2.5"):
        wst.assert_pruned(np.array([2.0, 0.1]), np.array([2.5, 0.0]), keep=1)


def test_suboptimal_clustering_fails_assert_sse_within():
    w = np.array([0.0, 1.0, 2.0, 10.0])
    with pytest.raises(AssertionError, match=r"SSE within rel=0.001 of the optimum: got 33, optimum 2"):
        wst.assert_sse_within(w, np.array([0.0, 0.0, 6.0, 6.0]), k=2, keep_zeros=False)


def test_roundtrip_catches_a_sign_of_zero_and_a_dtype_change():
    with pytest.raises(AssertionError, match=r"became -0.0"):
        wst.assert_roundtrip(np.array([0.0]), np.array([-0.0]))
    with pytest.raises(AssertionError, match=r"dtype changed from float32 to float64"):
        wst.assert_roundtrip(np.zeros(2, np.float32), np.zeros(2, np.float64))
    with pytest.raises(AssertionError, match=r"shape changed from \(2,\) to \(1, 2\)"):
        wst.assert_roundtrip(np.zeros(2), np.zeros((1, 2)))


def test_checks_pass_on_correct_results():
    w = np.array([0.0, 0.5, -0.5, 0.6, 2.0, 0.0], dtype=np.float32)
    res = weightshare.cluster(w, 3)
    wst.assert_clustered(w, res.values, 3)
    wst.assert_sse_within(w, res.values, 3, rel=0.0)
    wst.assert_pruned(w, np.array([0, 0.5, 0, 0.6, 2.0, 0], np.float32), keep=3)
    wst.assert_roundtrip(w, w.copy())


# --------------------------------------------------------------------------- oracles and strategies

@given(w=wst.weights(shape=wst.shapes(max_dims=2, max_side=6, max_size=6), dtype="float64"),
       k=wst.k_values(2, 4), keep_zeros=st.booleans())
def test_optimal_sse_equals_brute_force(w, k, keep_zeros):
    assert wst.optimal_sse(w, k, keep_zeros=keep_zeros) == pytest.approx(
        brute_force_sse(w, k, keep_zeros=keep_zeros), rel=1e-9, abs=1e-12)


@given(w=wst.weights(), keep=st.integers(0, 300))
def test_keep_set_keeps_the_largest_magnitudes(w, keep):
    mask = wst.keep_set(w, keep)
    a = np.abs(w.astype(np.float64))
    assert mask.sum() == min(keep, np.count_nonzero(w))
    if mask.any() and (~mask).any():
        assert a[mask].min() >= a[~mask].max()


@given(w=wst.weights(dtype=st.sampled_from(wst.DTYPES), zeros=0.5))
def test_weights_strategy_is_bounded_and_finite(w):
    assert w.dtype.name in wst.DTYPES
    assert np.isfinite(w).all()
    assert w.size <= 256


@given(w=wst.weights(allow_nan=True))
def test_weights_strategy_gives_nan_on_request(w):
    assert np.isnan(w).sum() == 1


@given(layers=wst.keras_like_layers())
def test_keras_like_layers_have_consistent_shapes(layers):
    names = sorted({k.split("/")[0] for k in layers}, key=lambda n: (len(n), n))
    for a, b in zip(names, names[1:]):
        assert layers[f"{a}/kernel"].shape[1] == layers[f"{b}/kernel"].shape[0]
    for n in names:
        assert layers[f"{n}/bias"].shape == (layers[f"{n}/kernel"].shape[1],)


def test_importing_without_hypothesis_gives_a_clear_message(tmp_path):
    blocker = tmp_path / "hypothesis.py"
    blocker.write_text("raise ImportError('blocked for the test')\n")
    code = "import weightshare.testing"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": f"{tmp_path}:{ROOT}", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 1
    assert "weightshare.testing needs Hypothesis, an optional dependency: pip install " \
           "'weightshare[testing]'" in out.stderr


def test_nothing_else_imports_hypothesis():
    code = ("import sys, numpy as np, weightshare\n"
            "weightshare.cluster(np.ones(3), 1)\n"
            "print('hypothesis' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_the_docs_example_runs(tmp_path):
    text = (ROOT / "docs" / "testing.md").read_text()
    block = re.search(r"```python\n(# test_my_kmeans.py\n.*?)```", text, re.S).group(1)
    # and an input Hypothesis once found against the example's first version (prefix sums of
    # x and x**2 merged a cluster of tiny values): checked on every run, not by chance
    block += """

def test_tiny_values_next_to_large_ones():
    w = np.array([1e-14, 0.0] + [0.0693147181] * 6)
    wst.assert_sse_within(w, my_kmeans(w, 3), k=3, rel=1e-9, keep_zeros=False)
"""
    (tmp_path / "test_my_kmeans.py").write_text(block)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          str(tmp_path / "test_my_kmeans.py")], capture_output=True, text=True,
                         cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                                            "HYPOTHESIS_PROFILE": "default"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 passed" in out.stdout
