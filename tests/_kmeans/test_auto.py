"""Tests of the pieces of the default solver (weightshare._kmeans._auto)."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightshare._kmeans import _auto
from weightshare._kmeans._optimal import Prefix

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False, width=64)


@given(hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=finite),
       hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 9)), elements=finite))
def test_outer_diff_is_the_broadcast_subtraction_bit_for_bit(a, b):
    j, w = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    a, b = a[:j, :w], b[:j, :w]
    assert np.array_equal(_auto._outer_diff(a, b), a[:, :, None] - b[:, None, :])


@given(hnp.arrays(np.float64, st.integers(1, 30), elements=finite, unique=True),
       st.integers(0, 2**32 - 1))
def test_prefix_with_an_inserted_zero_repeats_the_sums_at_zero(x, seed):
    # the virtual point (0.0, weight 0) adds nothing: the sums just repeat there
    x = np.sort(x[x != 0])
    if not x.size:
        return
    w = np.random.default_rng(seed).integers(1, 5, x.size).astype(float)
    z = int(np.searchsorted(x, 0.0))
    got, plain = Prefix(x, w, z, insert=True), Prefix(x, w)
    assert (got.m, got.z, got.mu) == (x.size + 1, z, plain.mu)
    for name in "WSQ":
        v = getattr(plain, name)
        assert np.array_equal(getattr(got, name), np.insert(v, z + 1, v[z]))


def _costs(P, bounds):
    c = P.cost(bounds[:-1], bounds[1:])
    return np.inf if np.isnan(c).any() or np.any(np.diff(bounds) < 1) else float(c.sum())


def _best_in_windows(P, bounds, reach):
    """Brute force: the cheapest bounds with boundary i anywhere strictly between
    the old boundaries i - reach and i + reach."""
    k = bounds.size - 1
    pad = [0] * (reach - 1) + bounds.tolist() + [P.m] * (reach - 1)
    ranges = [range(pad[i - 1] + 1, pad[i - 1 + 2 * reach]) for i in range(1, k)]
    best = np.inf
    for inner in itertools.product(*ranges):
        b = np.array((0,) + inner + (P.m,))
        if np.all(np.diff(b) >= 1):
            best = min(best, _costs(P, b))
    return best


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(6, 14), st.integers(3, 5), st.booleans(),
       st.booleans(), st.sampled_from([1, 2, 1 << 18]))
def test_sweep_returns_the_best_bounds_within_its_windows(seed, m, k, pinned, shift, block):
    # block: sweep steps set up per block of entries; 1 and 2 cut a block at every step
    rng = np.random.default_rng(seed)
    x = np.unique(rng.laplace(size=m))
    w = rng.integers(1, 4, x.size).astype(float)
    P = Prefix(x, w, int(np.searchsorted(x, 0.0)), insert=True) if pinned else Prefix(x, w)
    bounds = np.concatenate(([0], np.sort(rng.choice(np.arange(1, P.m), k - 1, replace=False)),
                             [P.m]))
    old = _costs(P, bounds)
    saved = _auto._BLOCK
    _auto._BLOCK = block
    try:
        new = _auto._sweep(P, bounds, 64, 32, shift)   # windows hold every position here
    finally:
        _auto._BLOCK = saved
    got = _costs(P, new)
    want = _best_in_windows(P, bounds, 2 if shift else 1)
    assert got <= old * (1 + 1e-12) + 1e-12
    assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
