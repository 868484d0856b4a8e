"""weightshare.structure_of / Structure.project: the structure survives an optimizer step.

Property tests, one invariant each, on pruned and clustered tensors (the strategy's
``ties`` mode draws tensors of a handful of distinct values, with zeros) moved by an
arbitrary "optimizer step"; then the rules of the reader and the boundary checks.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightshare
from weightshare.testing import strategies as wst

DTYPES = st.sampled_from(wst.DTYPES)


@st.composite
def structured_and_step(draw, ties=None):
    """(weights as pruned/clustered, the same weights after an arbitrary update)."""
    w = draw(wst.weights(dtype=DTYPES, ties=ties, subnormals=False))
    step = draw(hnp.arrays(np.float64, w.shape, elements=st.floats(-0.1, 0.1, width=64)))
    return w, (w.astype(np.float64) + step).astype(w.dtype)


@given(structured_and_step())
def test_project_keeps_zeros_zero(pair):
    w, trained = pair
    out = weightshare.structure_of(w).project(trained)
    assert (out[w == 0] == 0).all()


@given(structured_and_step(ties=True))
def test_project_leaves_at_most_k_distinct_values(pair):
    w, trained = pair
    k = np.unique(w).size
    out = weightshare.structure_of(w).project(trained)
    assert np.unique(out).size <= k


@given(structured_and_step())
def test_project_is_idempotent(pair):
    w, trained = pair
    s = weightshare.structure_of(w)
    once = s.project(trained)
    assert np.array_equal(s.project(once), once)


@given(wst.weights(dtype=DTYPES))
def test_project_of_the_unchanged_weights_is_the_identity(w):
    out = weightshare.structure_of(w).project(w)
    assert out.dtype == w.dtype and np.array_equal(out, w)


@given(structured_and_step(ties=True))
def test_each_shared_value_is_the_mean_of_its_clusters_current_entries(pair):
    w, trained = pair
    t = weightshare.structure_of(w).tensors[None]
    out = weightshare.structure_of(w).project(trained)
    eps = np.finfo(w.dtype).eps
    for label in range(t.n_clusters):
        members = t.labels == label
        mean = trained[members].astype(np.float64).mean()
        bound = 4 * eps * np.abs(trained[members].astype(np.float64)).max() + np.finfo(w.dtype).tiny
        assert np.all(np.abs(out[members].astype(np.float64) - mean) <= bound)


# ----------------------------------------------------------------------------- the rules

def test_a_tensor_of_distinct_values_is_not_clustered_and_moves_freely():
    w = np.array([0.0, 0.1, 0.2, 0.3])
    s = weightshare.structure_of(w)
    t = s.tensors[None]
    assert t.labels is None and t.n_clusters == 0 and t.mask.tolist() == [False, True, True, True]
    assert s.project(w + 1).tolist() == [0.0, 1.1, 1.2, 1.3]


def test_max_values_bounds_what_counts_as_clustered():
    w = np.repeat(np.arange(1.0, 5.0), 3)            # 4 distinct values, each 3 times
    assert weightshare.structure_of(w).tensors[None].n_clusters == 4
    assert weightshare.structure_of(w, max_values=3).tensors[None].labels is None


def test_zeros_false_makes_zero_a_trained_cluster():
    w = np.array([0.0, 0.0, 1.0, 1.0])
    s = weightshare.structure_of(w, zeros=False)
    assert s.tensors[None].mask is None and s.tensors[None].n_clusters == 2
    assert s.project(w + [0.2, 0.4, 0.0, 0.0]).tolist() == [0.30000000000000004] * 2 + [1.0] * 2


def test_clusters_false_keeps_only_the_mask():
    w = np.array([0.0, 0.5, 0.5, 0.5])
    out = weightshare.structure_of(w, clusters=False).project(w + [1.0, 0.1, 0.2, 0.3])
    assert out.tolist() == [0.0, 0.6, 0.7, 0.8]


def test_a_mapping_in_a_mapping_out_extra_names_pass_through():
    w = {"a": np.array([0.0, 2.0, 2.0], dtype=np.float32), "b": np.array([1.0, 2.0, 3.0])}
    s = weightshare.structure_of(w)
    extra = np.array([7.0])
    out = s.project({"a": w["a"] + 1, "b": w["b"] + 1, "c": extra})
    assert set(out) == {"a", "b", "c"} and out["c"] is extra
    assert out["a"].tolist() == [0.0, 3.0, 3.0] and out["a"].dtype == np.float32
    assert out["b"].tolist() == [2.0, 3.0, 4.0]


def test_project_never_modifies_its_input():
    w = np.array([0.0, 1.0, 1.0])
    trained = w + 0.5
    weightshare.structure_of(w).project(trained)
    assert trained.tolist() == [0.5, 1.5, 1.5]


@pytest.mark.parametrize("call, error, match", [
    (lambda: weightshare.structure_of(np.ones(3), zeros=1), TypeError, "zeros must be True or False"),
    (lambda: weightshare.structure_of(np.ones(3), clusters="yes"), TypeError, "clusters must be"),
    (lambda: weightshare.structure_of(np.ones(3), max_values=0), ValueError, "max_values must be >= 1"),
    (lambda: weightshare.structure_of(np.array([1, 2])), TypeError, "weights must have a floating"),
    (lambda: weightshare.structure_of({"k": [np.nan]}), ValueError, r"weights\['k'\] must be finite"),
    (lambda: weightshare.structure_of(np.ones(3)).project(np.ones(4)), ValueError,
     r"shape the structure was read from, \(3,\); got \(4,\)"),
    (lambda: weightshare.structure_of(np.ones(3)).project({"a": np.ones(3)}), TypeError,
     "one array"),
    (lambda: weightshare.structure_of({"a": np.ones(3)}).project(np.ones(3)), TypeError,
     "mapping of name"),
    (lambda: weightshare.structure_of({"a": np.ones(3)}).project({"b": np.ones(3)}), ValueError,
     "lacks 1 tensor.*'a'"),
    (lambda: weightshare.structure_of(np.ones(3)).project(np.array([1.0, np.inf, 1.0])),
     ValueError, "weights must be finite"),
])
def test_bad_arguments_are_refused_naming_them(call, error, match):
    with pytest.raises(error, match=match):
        call()
