"""k per tensor from a budget (weightshare.budget): packed sizes are the encoder's, the
allocation fits its budget and never loses to a uniform k that fits, bad budgets are
refused naming the parameter."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import weightshare
from weightshare.budget import allocate_k, packed_size, parse_size


@given(st.integers(1, 300), st.integers(1, 40), st.sampled_from(["float16", "float32", "float64"]))
def test_packed_size_is_the_encoders(n, k, dtype):
    values = (np.arange(n) % k).astype(dtype).reshape(1, n)
    k_used = min(n, k)
    assert packed_size(values.shape, k_used, dtype) == len(weightshare.encode(values,
                                                                              scheme="packed"))


groups = st.lists(st.lists(st.floats(-3, 3, allow_nan=False, width=32), min_size=2, max_size=30),
                  min_size=1, max_size=3)


def _uniform_sse(arrays, k):
    return sum(weightshare.cluster(a, k, method="optimal").sse for a in arrays)


@given(groups, st.floats(1.0, 4.0))
def test_bits_never_lose_to_any_uniform_k_that_fits(values, bits):
    arrays = [np.array(v, dtype=np.float32) for v in values]
    res = allocate_k(arrays, bits=bits, exact=True)
    n = sum(a.size for a in arrays)
    for b in range(1, 7):       # uniform k = 2**b: b bits per weight, each tensor capped
        if b <= bits:
            assert res.total_sse <= _uniform_sse(arrays, 2 ** b) * (1 + 1e-9) + 1e-12
    assert res.used * n <= bits * n * (1 + 1e-12)


@given(groups, st.integers(0, 400))
def test_size_never_exceeds_the_budget(values, extra):
    arrays = [np.array(v, dtype=np.float32) for v in values]
    floor = sum(packed_size(a.shape, 2, "float32") for a in arrays)
    res = allocate_k(arrays, size=floor + extra)
    assert sum(packed_size(a.shape, k, "float32") for a, k in zip(arrays, res.k)) <= floor + extra


def test_allocation_beats_uniform_where_tensors_differ():
    rng = np.random.default_rng(0)
    wide, narrow = rng.standard_normal(2000), 0.01 * rng.standard_normal(2000)
    res = allocate_k({"wide": wide, "narrow": narrow}, bits=3)
    assert res.k["wide"] > res.k["narrow"]
    assert res.total_sse < 0.5 * res.uniform_sse and res.uniform_k == 8


def test_importance_enters_the_curves():
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(500), rng.standard_normal(500)
    plain = allocate_k([a, b], bits=2)
    heavy = allocate_k([a, b], bits=2, sample_weight=[np.full(500, 100.0), None])
    assert heavy.k[0] > heavy.k[1] and plain.k[0] == plain.k[1]
    assert heavy.sse[0] == pytest.approx(
        weightshare.cluster(a, heavy.k[0], method="optimal", sample_weight=np.full(500, 100.0)).sse)


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 0.5}, r"bits=0\.5 is below what k = 2"),
    ({"size": 10}, r"size=10 bytes is below what k = 2"),
    ({"bits": -1}, "bits"),
    ({"bits": 3, "size": 100}, "exactly one budget"),
    ({}, "exactly one budget"),
    ({"size": "12 parsecs"}, "size must be a byte count"),
])
def test_bad_budgets_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        allocate_k([np.linspace(-1, 1, 100)], **kwargs)


@pytest.mark.parametrize("text, value", [("40kB", 40000), ("1.5MiB", 1572864), ("4096", 4096),
                                         ("2 KiB", 2048), (77, 77)])
def test_parse_size(text, value):
    assert parse_size(text) == value


def test_ks_are_powers_of_two_or_the_distinct_count_for_bits():
    rng = np.random.default_rng(2)
    res = allocate_k([rng.standard_normal(300), np.repeat([0.5, 1.0, 2.0], 20)], bits=3)
    assert math.log2(res.k[0]).is_integer() and res.k[1] == 3
