"""Tests of weightshare.prune, prune_global and apply_mask (the sparsity core).

Layout: hand-computed toys, then ``(kwargs, match)`` tables of bad parameters,
then Hypothesis properties (one named invariant each). The strategies and the
slow reference live in the helper section right below, apart from the tests,
so they can be swapped for ``weightshare.testing`` (``wst.weights``,
``wst.keep_set``, ``wst.assert_pruned``) in one place.
"""

import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightshare
from weightshare import apply_mask, prune, prune_global

# =========================================================================== helpers
# Small local strategies and references. To be replaced by weightshare.testing.

DTYPES = ("float16", "float32", "float64")
TIE_POOL = (0.0, 0.25, -0.25, 0.5, -0.5, 1.0, -1.0, 2.0)


def shapes(min_dims=1, max_dims=3, max_side=8):
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=1, max_side=max_side)


@st.composite
def weights(draw, shape=None, dtype=None):
    """Finite float tensors; often with exact zeros, often with many ties (equal magnitudes)."""
    shp = draw(shapes() if shape is None else shape) if not isinstance(shape, tuple) else shape
    dt = np.dtype(draw(st.sampled_from(DTYPES)) if dtype is None else dtype)
    if draw(st.booleans()):   # ties: a handful of magnitudes, both signs, zeros
        elements = st.sampled_from(TIE_POOL)
    else:
        width = min(32, dt.itemsize * 8)
        elements = st.one_of(st.just(0.0),
                             st.floats(-8.0, 8.0, allow_nan=False, allow_subnormal=False,
                                       width=width))
    return draw(hnp.arrays(dt, shp, elements=elements))


def keep_counts(w):
    """keep values for a tensor: anything from 0 to its size."""
    return st.integers(0, w.size)


def ref_keep_set(w, keep):
    """Slow reference of the tie rule: sort (|w| desc, flat index asc), keep the first `keep` non-zeros."""
    flat = [abs(float(v)) for v in np.asarray(w).ravel()]
    order = sorted(range(len(flat)), key=lambda i: (-flat[i], i))
    mask = np.zeros(len(flat), dtype=bool)
    for i in order[:keep]:
        mask[i] = flat[i] != 0
    return mask.reshape(np.shape(w))


def ref_n_kept(n, sparsity):
    """The rounding rule: n - ceil(sparsity * n), sparsity read as its printed decimal."""
    from fractions import Fraction
    return n - math.ceil(Fraction(repr(float(sparsity))) * n)


def ref_n_m(w, n, m):
    """Slow N:M reference: groups of m consecutive entries along axis -2 (0 for 1-D)."""
    ax = w.ndim - 2 if w.ndim >= 2 else 0
    wm = np.moveaxis(w, ax, -1)
    mask = np.zeros(wm.shape, dtype=bool)
    for idx in np.ndindex(*wm.shape[:-1]):
        row = wm[idx]
        for g in range(0, row.size, m):
            mask[idx][g:g + m] = ref_keep_set(row[g:g + m], n)
    return np.moveaxis(mask, -1, ax)


def ref_block(w, r, c, n_blocks_kept):
    """Slow block reference: rank (r, c) blocks of the last two dims by L2 norm, tie rule on block index."""
    *lead, rows, cols = w.shape
    norms, where = [], []
    for li in np.ndindex(*lead):
        for i in range(0, rows, r):
            for j in range(0, cols, c):
                blk = w[li][i:i + r, j:j + c].astype(np.float64)
                norms.append(math.sqrt(float(np.sum(blk * blk))))
                where.append((li, i, j))
    keep_blocks = ref_keep_set(np.array(norms), n_blocks_kept)
    mask = np.zeros(w.shape, dtype=bool)
    for kb, (li, i, j) in zip(keep_blocks, where):
        if kb:
            mask[li][i:i + r, j:j + c] = True
    return mask & (w != 0)


# =========================================================================== hand-computed toys

def test_toy_keep_three():
    w = np.array([0.5, -2.0, 0.5, 0.0, 1.0, -0.1], dtype=np.float32)
    res = prune(w, keep=3)
    np.testing.assert_array_equal(res.values, [0.5, -2.0, 0.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(res.mask, [True, True, False, False, True, False])
    assert res.values.dtype == np.float32
    assert (res.threshold, res.n_kept, res.n_nonzero_before) == (0.5, 3, 5)


def test_tie_rule_lower_flat_index_wins():
    # four equal magnitudes, signs mixed: the two lowest flat indices survive
    w = np.array([[-1.0, 1.0], [1.0, -1.0]])
    np.testing.assert_array_equal(prune(w, keep=2).values, [[-1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_array_equal(prune(w, keep=3).values, [[-1.0, 1.0], [1.0, 0.0]])
    # C order across rows: (0, 1) before (1, 0)
    v = np.array([[0.0, 3.0], [3.0, 9.0]])
    np.testing.assert_array_equal(prune(v, keep=2).values, [[0.0, 3.0], [0.0, 9.0]])


def test_existing_zeros_count_as_pruned():
    w = np.array([0.0, 0.0, 3.0, 1.0])
    # sparsity 0.5 of 4 = 2 zeros: already there, nothing more to prune
    np.testing.assert_array_equal(prune(w, sparsity=0.5).values, w)
    # keep=3 of a tensor with 2 non-zeros: fewer, never a revived zero
    res = prune(w, keep=3)
    np.testing.assert_array_equal(res.values, w)
    assert res.n_kept == 2 and res.threshold == 1.0
    assert prune(w, sparsity=0.75).n_kept == 1


@pytest.mark.parametrize("n, sparsity, kept", [
    (10, 0.0, 10),
    (10, 0.7, 3),      # 0.7 * 10 == 7.000000000000001 in binary; the decimal 0.7 gives 7 zeros
    (30, 0.1, 27),     # 0.1 * 30 == 3.0000000000000004
    (10, 0.75, 2),     # 7.5 zeros -> 8 (at least the fraction asked)
    (3, 0.1, 2),       # 0.3 zeros -> 1
    (10, 0.99, 0),
    (7, 0.5, 3),       # 3.5 -> 4 zeros
    (1000, 0.001, 999),
    (1, 0.5, 0),
    (4, 1e-300, 3),    # any positive sparsity asks for at least one zero
])
def test_rounding_rule_hand_computed(n, sparsity, kept):
    w = np.arange(1, n + 1, dtype=np.float64)
    res = prune(w, sparsity=sparsity)
    assert res.n_kept == kept
    np.testing.assert_array_equal(res.mask, np.arange(n) >= n - kept)  # the largest survive


def test_rounding_rule_is_exact_for_huge_tensors():
    from weightshare.prune import _n_pruned
    assert _n_pruned(10**12, 0.7) == 7 * 10**11
    assert _n_pruned(10**12 + 1, 0.7) == 7 * 10**11 + 1
    assert _n_pruned(2**60, 0.5) == 2**59
    assert _n_pruned(10, np.float32(0.7)) == 7      # float32(0.7) prints as 0.699999988079071


@pytest.mark.parametrize("dtype", DTYPES)
def test_dtype_preserved_input_untouched_and_not_aliased(dtype):
    w = np.array([[0.5, -0.25], [1.0, 0.0]], dtype=dtype)
    before = w.copy()
    res = prune(w, keep=4)
    assert res.values.dtype == w.dtype and res.values.shape == w.shape
    np.testing.assert_array_equal(w, before)
    assert not np.shares_memory(res.values, w)
    np.testing.assert_array_equal(res.values, w)


@pytest.mark.parametrize("layout", ["strided", "fortran", "transposed", "reversed"])
def test_memory_layout_does_not_change_the_result(layout):
    rng = np.random.default_rng(0)
    w = rng.integers(-3, 4, size=(8, 6)).astype(np.float16)    # many ties
    v = {"strided": w[::2, ::3], "fortran": np.asfortranarray(w), "transposed": w.T,
         "reversed": w[::-1]}[layout]
    c = np.ascontiguousarray(v)
    for kwargs in ({"keep": 5}, {"sparsity": 0.3}, {"keep": 2, "axis": 1}, {"n_m": (1, 2)},
                   {"keep": 4, "block": (2, 2)}):
        got, want = prune(v, **kwargs), prune(c, **kwargs)
        np.testing.assert_array_equal(got.mask, want.mask)
        np.testing.assert_array_equal(got.values, want.values)
    np.testing.assert_array_equal(prune(v, keep=5).mask, ref_keep_set(v, 5))


def test_pruned_entries_are_positive_zero():
    w = np.array([-0.0, -1.0, -2.0, 3.0])
    res = prune(w, keep=2)
    np.testing.assert_array_equal(res.values, [0.0, 0.0, -2.0, 3.0])
    assert not np.signbit(res.values[:2]).any()


def test_degenerate_tensors():
    empty = prune(np.zeros((0, 3)), keep=0)
    assert empty.values.shape == (0, 3) and empty.n_kept == 0 and empty.threshold == math.inf
    assert prune(np.zeros((0,)), sparsity=0.5).n_kept == 0
    scalar = prune(np.array(-3.0), keep=1)
    assert scalar.values.shape == () and scalar.values == -3.0
    assert prune(np.array(-3.0), sparsity=0.5).values == 0.0
    zeros = prune(np.zeros(5, dtype=np.float16), keep=3)
    assert zeros.n_kept == 0 and zeros.threshold == math.inf
    assert zeros.values.dtype == np.float16
    assert prune(np.ones(4), keep=0).n_kept == 0


def test_per_channel_axis():
    w = np.array([[1.0, 8.0, 0.0], [2.0, 7.0, 0.0], [3.0, 6.0, 5.0], [4.0, 5.0, 0.0]])
    res = prune(w, keep=2, axis=1)     # every output column keeps its 2 largest
    np.testing.assert_array_equal(res.values, [[0, 8, 0], [0, 7, 0], [3, 0, 5], [4, 0, 0]])
    np.testing.assert_array_equal(res.threshold, [3.0, 7.0, 5.0])
    assert res.n_kept == 5
    rows = prune(w, sparsity=0.5, axis=0)   # 3 entries per row: ceil(1.5) = 2 zeros each
    np.testing.assert_array_equal(rows.values, [[0, 8, 0], [0, 7, 0], [0, 6, 0], [0, 5, 0]])
    np.testing.assert_array_equal(prune(w, keep=1, axis=-1).values, prune(w, keep=1, axis=1).values)


def test_per_channel_tie_rule_within_slice():
    w = np.ones((3, 2))
    np.testing.assert_array_equal(prune(w, keep=1, axis=1).mask, [[True, True], [False, False],
                                                                   [False, False]])


def test_block_pruning_by_l2_norm():
    w = np.array([[1.0, 1.0, 3.0, 0.0],
                  [1.0, 1.0, 0.0, 0.0],
                  [0.0, 0.0, 1.0, 1.0],
                  [0.0, 0.0, 1.0, 1.5]], dtype=np.float32)
    # block norms: [[2, 3], [0, sqrt(5.25)]]
    res = prune(w, keep=8, block=(2, 2))
    np.testing.assert_array_equal(res.values, [[0, 0, 3, 0], [0, 0, 0, 0],
                                               [0, 0, 1, 1], [0, 0, 1, 1.5]])
    assert res.threshold == pytest.approx(math.sqrt(5.25))
    assert res.n_kept == 5            # zeros inside a kept block stay zero
    # sparsity counts blocks: 0.5 of 4 blocks pruned
    np.testing.assert_array_equal(prune(w, sparsity=0.5, block=(2, 2)).values, res.values)
    # the all-zero block counts as pruned: asking for 3 blocks keeps only the 3 non-zero ones
    assert prune(w, keep=12, block=(2, 2)).n_kept == 9


def test_block_ties_and_leading_dims():
    w = np.ones((2, 2, 4))            # 2 leading slices, each 2x4 -> two 2x2 blocks, all norm 2
    res = prune(w, keep=8, block=(2, 2))
    expected = np.zeros(w.shape, dtype=bool)
    expected[0] = True                # the first two blocks in C order of (lead, row, col) grid
    np.testing.assert_array_equal(res.mask, expected)


def test_n_m_dense_kernel_along_input_axis():
    k = np.array([[1.0, 8.0], [2.0, 7.0], [3.0, 6.0], [4.0, 5.0],
                  [0.0, 1.0], [0.0, 1.0], [5.0, 1.0], [0.0, 1.0]])
    res = prune(k, n_m=(2, 4))
    np.testing.assert_array_equal(res.values, [[0, 8], [0, 7], [3, 0], [4, 0],
                                               [0, 1], [0, 1], [5, 0], [0, 0]])
    assert res.n_kept == 7            # a group with one non-zero keeps just it


def test_n_m_conv_kernel_along_input_channels():
    rng = np.random.default_rng(0)
    k = rng.normal(size=(3, 3, 8, 5)).astype(np.float32)
    res = prune(k, n_m=(2, 4))
    groups = np.abs(res.values.reshape(3, 3, 2, 4, 5) != 0).sum(axis=3)   # along in-channels
    assert (groups == 2).all()
    np.testing.assert_array_equal(res.mask, ref_n_m(k, 2, 4))


def test_n_m_one_dimensional_and_ties():
    v = np.array([1.0, -1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(prune(v, n_m=(2, 4)).values, [1, -1, 0, 0, 0, 0, 0, 2])
    np.testing.assert_array_equal(prune(v, n_m=(4, 4)).values, v)


def test_threshold_bounds_the_kept_and_dropped():
    w = np.array([0.3, -0.9, 0.1, 0.6, -0.3])
    res = prune(w, sparsity=0.4)      # 2 zeros: 0.1 and the later 0.3 tie
    np.testing.assert_array_equal(res.values, [0.3, -0.9, 0.0, 0.6, 0.0])
    assert res.threshold == 0.3


def test_global_one_threshold_across_tensors():
    tensors = {"a": np.array([3.0, 0.1, 2.0]), "b": np.array([[0.5, 4.0], [1.0, 0.0]])}
    res = prune_global(tensors, keep=3)
    assert list(res) == ["a", "b"]
    np.testing.assert_array_equal(res["a"].values, [3.0, 0.0, 2.0])
    np.testing.assert_array_equal(res["b"].values, [[0.0, 4.0], [0.0, 0.0]])
    assert res["a"].threshold == res["b"].threshold == 2.0
    assert (res["a"].n_kept, res["b"].n_kept) == (2, 1)
    assert (res["a"].n_nonzero_before, res["b"].n_nonzero_before) == (3, 3)
    # sparsity over all 7 entries: ceil(0.5 * 7) = 4 zeros, 3 kept
    assert sum(r.n_kept for r in prune_global(tensors, sparsity=0.5).values()) == 3


def test_global_ties_go_to_the_earlier_tensor_and_dtypes_mix():
    tensors = {"x": np.array([1.0, 0.5], dtype=np.float16), "y": np.array([1.0, 1.0])}
    res = prune_global(tensors, keep=2)
    np.testing.assert_array_equal(res["x"].values, [1.0, 0.0])
    np.testing.assert_array_equal(res["y"].values, [1.0, 0.0])
    assert res["x"].values.dtype == np.float16 and res["y"].values.dtype == np.float64


def test_apply_mask_toys():
    w = np.array([0.3, -0.2, 0.7], dtype=np.float32)
    out = apply_mask(w, [True, False, True])
    np.testing.assert_array_equal(out, np.array([0.3, 0.0, 0.7], dtype=np.float32))
    assert out.dtype == np.float32 and not np.shares_memory(out, w)
    np.testing.assert_array_equal(apply_mask(w, np.array([1.0, 0.0, 1.0], dtype=np.float32)), out)
    np.testing.assert_array_equal(apply_mask(w, [1, 0, 1]), out)
    assert not np.signbit(apply_mask(np.array([-1.0]), [False])).any()


def test_public_names():
    for name in ("prune", "prune_global", "apply_mask", "sparsity_schedule", "PruneResult"):
        assert name in weightshare.__all__ and hasattr(weightshare, name)


# =========================================================================== bad parameters

W = np.arange(24, dtype=np.float32).reshape(4, 6)

BAD_PRUNE = [
    ({}, ValueError, "give exactly one of sparsity or keep; got neither"),
    ({"sparsity": 0.5, "keep": 2}, ValueError, "got both (sparsity=0.5, keep=2)"),
    ({"sparsity": 1.0}, ValueError, "sparsity must be in [0, 1); got sparsity=1.0"),
    ({"sparsity": -0.1}, ValueError, "sparsity must be in [0, 1); got sparsity=-0.1"),
    ({"sparsity": float("nan")}, ValueError, "sparsity must be in [0, 1); got sparsity=nan"),
    ({"sparsity": "0.5"}, TypeError, "sparsity must be a number in [0, 1); got '0.5'"),
    ({"sparsity": True}, TypeError, "sparsity must be a number"),
    ({"keep": -1}, ValueError, "keep must be >= 0; got keep=-1"),
    ({"keep": 2.0}, TypeError, "keep must be an integer >= 0; got 2.0 of type float"),
    ({"keep": True}, TypeError, "keep must be an integer >= 0; got True"),
    ({"keep": 1, "axis": 2}, ValueError, "axis=2 is out of range for an array with 2 dimension(s)"),
    ({"keep": 1, "axis": 1.0}, TypeError, "axis must be None or an int; got 1.0"),
    ({"n_m": (2, 4), "keep": 3}, ValueError, "n_m=(2, 4) sets the sparsity itself"),
    ({"n_m": (2, 4), "sparsity": 0.5}, ValueError, "do not also give sparsity or keep"),
    ({"n_m": (3, 2)}, ValueError, "n_m=(n, m) needs n <= m; got n_m=(3, 2)"),
    ({"n_m": (0, 4)}, ValueError, "n_m must be a pair (n, m) of integers >= 1; got n_m=(0, 4)"),
    ({"n_m": (1, 3)}, ValueError, "n_m=(1, 3) needs the input axis (axis -2, size 4) to be a "
                                  "multiple of m=3; got shape (4, 6)"),
    ({"n_m": "2:4"}, TypeError, "n_m must be a pair (n, m) of integers; got '2:4'"),
    ({"n_m": (2, 4, 1)}, TypeError, "n_m must be a pair"),
    ({"block": (3, 4), "keep": 12}, ValueError, "block=(3, 4) must divide the last two dimensions "
                                                "(4, 6) of shape (4, 6); edge blocks are refused"),
    ({"block": (2, 2), "keep": 6}, ValueError, "keep=6 must be a multiple of the block size "
                                               "2x2=4 with block=(2, 2) (nearest: 4 or 8)"),
    ({"block": (2, 2)}, ValueError, "give exactly one of sparsity or keep; got neither"),
    ({"block": (0, 2), "keep": 0}, ValueError, "block must be a pair (rows, cols) of integers >= 1"),
    ({"block": 2, "keep": 0}, TypeError, "block must be a pair (rows, cols) of integers; got 2"),
    ({"block": (2, 2), "axis": 0, "keep": 4}, ValueError,
     "give at most one of axis, block and n_m; got axis and block"),
    ({"n_m": (2, 4), "axis": 0}, ValueError, "give at most one of axis, block and n_m; got axis and n_m"),
]


@pytest.mark.parametrize("kwargs", [{"keep": 25}, {"keep": 7, "axis": 0}, {"keep": 10 ** 9},
                                    {"block": (2, 2), "keep": 28}, {"block": (2, 2), "keep": 29}])
def test_keep_larger_than_the_tensor_keeps_all_of_it(kwargs):
    w = W.copy()
    w[0, :2] = 0                                # 22 non-zeros: "fewer if it had fewer"
    res = prune(w, **kwargs)
    assert np.array_equal(res.values, w) and res.n_kept == 22 and res.n_nonzero_before == 22
    glob = prune_global({"a": w, "b": np.ones(2)}, keep=27)
    assert np.array_equal(glob["a"].values, w) and glob["b"].n_kept == 2


@pytest.mark.parametrize("kwargs, exc, match", BAD_PRUNE)
def test_prune_rejects_bad_parameters(kwargs, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        prune(W, **kwargs)


@pytest.mark.parametrize("w, kwargs, exc, match", [
    (np.array([1.0, np.nan]), {"keep": 1}, ValueError, "weights must be finite; found 1 NaN"),
    (np.array([1.0, -np.inf]), {"keep": 1}, ValueError, "weights must be finite; found 0 NaN and 1 Inf"),
    (np.array([1, 2]), {"keep": 1}, TypeError, "weights must have a floating dtype"),
    (np.array([1.0, 2.0, 3.0]), {"block": (1, 1), "keep": 1}, ValueError,
     "block needs a tensor with at least 2 dimensions; got shape (3,)"),
    (np.array(1.0), {"n_m": (1, 1)}, ValueError, "n_m needs a tensor with at least 1 dimension"),
    (np.arange(6.0), {"n_m": (2, 4)}, ValueError, "input axis (axis 0, size 6) to be a multiple of m=4"),
])
def test_prune_rejects_bad_weights_and_shapes(w, kwargs, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        prune(w, **kwargs)


@pytest.mark.parametrize("tensors, kwargs, exc, match", [
    ({}, {"keep": 1}, ValueError, "tensors must hold at least one tensor"),
    ([np.ones(3)], {"keep": 1}, TypeError, "tensors must be a mapping of name -> array; got list"),
    ({"a": np.ones(3)}, {}, ValueError, "give exactly one of sparsity or keep; got neither"),
    ({"a": np.ones(3)}, {"sparsity": 1.5}, ValueError, "sparsity must be in [0, 1)"),
    ({"a": np.ones(3), "b": np.array([np.nan])}, {"keep": 1}, ValueError,
     "tensors['b'] must be finite"),
    ({"a": np.ones(3, dtype=int)}, {"keep": 1}, TypeError, "tensors['a'] must have a floating dtype"),
])
def test_prune_global_rejects_bad_parameters(tensors, kwargs, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        prune_global(tensors, **kwargs)


@pytest.mark.parametrize("w, mask, exc, match", [
    (np.ones(3), [True, False], ValueError, "mask must have the shape of weights (3,); got shape (2,)"),
    (np.ones(3), [0.5, 1, 0], ValueError, "mask must hold only 0 and 1 (or booleans); found 0.5 at index (0,)"),
    (np.ones(3), ["a", "b", "c"], TypeError, "mask must be a boolean array (or numbers 0 and 1); got dtype <U1"),
    (np.array([1.0, np.inf]), [True, True], ValueError, "weights must be finite"),
    (np.array([1, 2]), [True, True], TypeError, "weights must have a floating dtype"),
])
def test_apply_mask_rejects_bad_parameters(w, mask, exc, match):
    with pytest.raises(exc, match=re.escape(match)):
        apply_mask(w, mask)


# =========================================================================== properties

@given(data=st.data())
def test_keeps_exactly_keep_or_all_nonzeros_hypo(data):
    w = data.draw(weights())
    keep = data.draw(keep_counts(w))
    res = prune(w, keep=keep)
    assert res.n_kept == int(np.count_nonzero(res.values)) == min(keep, int(np.count_nonzero(w)))


@given(data=st.data())
def test_no_dropped_weight_larger_than_a_kept_one_hypo(data):
    w = data.draw(weights())
    res = prune(w, keep=data.draw(keep_counts(w)))
    mag = np.abs(w.astype(np.float64))
    dropped = mag[~res.mask]
    kept = mag[res.mask]
    if kept.size and dropped.size:
        assert dropped.max() <= kept.min()


@given(data=st.data())
def test_kept_set_follows_the_tie_rule_hypo(data):
    w = data.draw(weights())
    keep = data.draw(keep_counts(w))
    np.testing.assert_array_equal(prune(w, keep=keep).mask, ref_keep_set(w, keep))


@given(data=st.data())
def test_sparsity_leaves_ceil_sparsity_n_zeros_hypo(data):
    w = data.draw(weights())
    s = data.draw(st.floats(0.0, 1.0, exclude_max=True))
    res = prune(w, sparsity=s)
    want_kept = min(ref_n_kept(w.size, s), int(np.count_nonzero(w)))
    np.testing.assert_array_equal(res.mask, ref_keep_set(w, want_kept))


@given(data=st.data())
def test_kept_entries_unchanged_pruned_exactly_zero_hypo(data):
    w = data.draw(weights())
    res = prune(w, keep=data.draw(keep_counts(w)))
    assert res.values.dtype == w.dtype and res.values.shape == w.shape
    bits = f"u{w.dtype.itemsize}"
    np.testing.assert_array_equal(res.values.view(bits)[res.mask], w.view(bits)[res.mask])
    assert (res.values[~res.mask] == 0).all() and not np.signbit(res.values[~res.mask]).any()
    np.testing.assert_array_equal(res.mask, res.values != 0)


@given(data=st.data())
def test_prune_is_idempotent_hypo(data):
    w = data.draw(weights())
    keep = data.draw(keep_counts(w))
    once = prune(w, keep=keep).values
    np.testing.assert_array_equal(prune(once, keep=keep).values, once)


@given(data=st.data())
def test_pruning_never_revives_a_zero_hypo(data):
    w = data.draw(weights())
    res = prune(w, sparsity=data.draw(st.floats(0.0, 0.99)))
    assert not (res.mask & (w == 0)).any()


@given(data=st.data())
def test_masks_monotone_across_a_schedule_hypo(data):
    w = data.draw(weights())
    initial = data.draw(st.floats(0.0, 0.9))
    final = data.draw(st.floats(0.0, 0.95))
    end = data.draw(st.integers(1, 50))
    sched = weightshare.sparsity_schedule("polynomial", initial=initial, final=final,
                                          begin_step=0, end_step=end, frequency=1)
    current, mask = w, w != 0
    for step in range(0, end + 1, max(1, end // 7)):
        res = prune(current, sparsity=sched(step))
        assert not (res.mask & ~mask).any(), f"step {step} revived a pruned weight"
        current, mask = res.values, res.mask


@given(data=st.data())
def test_apply_mask_is_idempotent_hypo(data):
    w = data.draw(weights())
    mask = data.draw(hnp.arrays(bool, w.shape))
    once = apply_mask(w, mask)
    np.testing.assert_array_equal(apply_mask(once, mask), once)
    assert once.dtype == w.dtype


@given(data=st.data())
def test_apply_mask_keeps_zeros_of_a_pruned_tensor_after_updates_hypo(data):
    w = data.draw(weights(dtype="float64"))
    res = prune(w, keep=data.draw(keep_counts(w)))
    update = data.draw(hnp.arrays(np.float64, w.shape, elements=st.floats(-1, 1)))
    trained = apply_mask(res.values + update, res.mask)   # an optimizer step, then the mask
    assert np.count_nonzero(trained) <= res.n_kept
    assert (trained[~res.mask] == 0).all()


@given(data=st.data())
def test_global_keeps_exactly_keep_across_tensors_hypo(data):
    n = data.draw(st.integers(1, 4))
    tensors = {f"t{i}": data.draw(weights()) for i in range(n)}
    total = sum(t.size for t in tensors.values())
    nonzero = sum(int(np.count_nonzero(t)) for t in tensors.values())
    keep = data.draw(st.integers(0, total))
    res = prune_global(tensors, keep=keep)
    assert sum(int(np.count_nonzero(r.values)) for r in res.values()) == min(keep, nonzero)


@given(data=st.data())
def test_global_equals_pruning_the_concatenation_hypo(data):
    n = data.draw(st.integers(1, 4))
    tensors = {f"t{i}": data.draw(weights(dtype="float64")) for i in range(n)}
    flat = np.concatenate([t.ravel() for t in tensors.values()])
    s = data.draw(st.floats(0.0, 1.0, exclude_max=True))
    res = prune_global(tensors, sparsity=s)
    got = np.concatenate([r.mask.ravel() for r in res.values()])
    np.testing.assert_array_equal(got, prune(flat, sparsity=s).mask)


@given(data=st.data())
def test_n_m_groups_have_at_most_n_nonzeros_hypo(data):
    m = data.draw(st.integers(1, 6))
    n = data.draw(st.integers(1, m))
    groups = data.draw(st.integers(1, 4))
    lead = data.draw(st.lists(st.integers(1, 3), max_size=2))
    out = data.draw(st.integers(1, 4))
    shape = (*lead, groups * m, out)
    w = data.draw(weights(shape=shape))
    v = prune(w, n_m=(n, m)).values
    per_group = (np.moveaxis(v, -2, -1).reshape(*lead, out, groups, m) != 0).sum(axis=-1)
    assert per_group.max(initial=0) <= n


@given(data=st.data())
def test_n_m_matches_the_per_group_reference_hypo(data):
    m = data.draw(st.integers(1, 11))    # up to 8: pairwise ranks; beyond: a stable sort
    n = data.draw(st.integers(1, m))
    ndim = data.draw(st.integers(1, 3))
    shape = data.draw(shapes(min_dims=ndim, max_dims=ndim, max_side=3))
    ax = ndim - 2 if ndim >= 2 else 0
    shape = shape[:ax] + (shape[ax] * m,) + shape[ax + 1:]
    w = data.draw(weights(shape=shape))
    np.testing.assert_array_equal(prune(w, n_m=(n, m)).mask, ref_n_m(w, n, m))


@given(data=st.data())
def test_axis_matches_pruning_each_slice_hypo(data):
    w = data.draw(weights(shape=shapes(min_dims=2)))
    ax = data.draw(st.integers(-w.ndim, w.ndim - 1))
    keep = data.draw(st.integers(0, w.size // w.shape[ax]))
    res = prune(w, keep=keep, axis=ax)
    for i in range(w.shape[ax]):
        np.testing.assert_array_equal(np.take(res.mask, i, axis=ax),
                                      ref_keep_set(np.take(w, i, axis=ax), keep))


@given(data=st.data())
def test_blocks_match_the_norm_ranking_reference_hypo(data):
    r, c = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    lead = data.draw(st.lists(st.integers(1, 2), max_size=1))
    gr, gc = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3))
    w = data.draw(weights(shape=(*lead, gr * r, gc * c)))
    n_blocks = int(np.prod(lead, dtype=int)) * gr * gc
    kb = data.draw(st.integers(0, n_blocks))
    res = prune(w, keep=kb * r * c, block=(r, c))
    np.testing.assert_array_equal(res.mask, ref_block(w, r, c, kb))


@given(data=st.data())
def test_prune_then_cluster_keeps_every_zero_and_k_values_hypo(data):
    w = data.draw(weights())
    k = data.draw(st.integers(2, 8))
    pruned = prune(w, sparsity=data.draw(st.floats(0.0, 0.95))).values
    clustered = weightshare.cluster(pruned, k, keep_zeros=True).values
    assert (clustered[pruned == 0] == 0).all()
    assert np.unique(clustered).size <= k


@given(data=st.data())
def test_input_never_modified_hypo(data):
    w = data.draw(weights())
    before = w.copy()
    prune(w, keep=data.draw(keep_counts(w)))
    apply_mask(w, w > 0)
    np.testing.assert_array_equal(w, before)


@given(data=st.data())
def test_tie_rule_agrees_with_weightshare_testing_keep_set_hypo(data):
    # the lead's oracle (weightshare.testing) and this file's reference encode the same rule
    wst = pytest.importorskip("weightshare.testing")
    w = data.draw(weights())
    keep = data.draw(keep_counts(w))
    np.testing.assert_array_equal(prune(w, keep=keep).mask, wst.keep_set(w, keep))
