"""cluster_file with a budget (bits=, size=): the k chosen per tensor, the budget kept in
the file written, the tie with uniform k on the digits model, nothing written on a bad
budget."""

import os

import numpy as np
import pytest

import weightshare
from weightshare.budget import packed_size

DIGITS = weightshare.examples.path("digits.keras")


def test_bits_3_on_digits_ties_uniform_k8():
    rows = weightshare.cluster_file(DIGITS, None, bits=3, dry_run=True)
    uniform = weightshare.cluster_file(DIGITS, None, 8, dry_run=True)
    assert [r.k for r in rows] == [8, 8, 8]
    assert sum(r.sse for r in rows) == sum(r.sse for r in uniform)
    assert rows.budget.uniform_k == 8 and rows.budget.used == 3.0


def test_size_budget_holds_for_the_tensors_written(tmp_path):
    out = tmp_path / "s.keras"
    rows = weightshare.cluster_file(DIGITS, out, size="3kB", method="optimal")
    written = {w.name: w.value for w in weightshare.read_weights(out)}
    total = sum(len(weightshare.encode(written[r.tensor], scheme="packed")) for r in rows)
    assert total <= 3000 and rows.budget.used <= 3000
    assert sum(packed_size(r.shape, r.k) for r in rows) == rows.budget.used
    assert all(r.distinct_after <= r.k for r in rows)
    # the tensors got different k (the budget chose them)
    assert len({r.k for r in rows}) > 1


def test_optimal_method_reaches_the_curve():
    rows = weightshare.cluster_file(DIGITS, None, size="3kB", method="optimal", dry_run=True)
    for r in rows:
        assert r.sse == pytest.approx(rows.budget.sse[r.tensor], rel=1e-6)


def test_too_small_a_budget_writes_nothing(tmp_path):
    out = tmp_path / "x.keras"
    with pytest.raises(ValueError, match=r"digits\.keras: size=100 bytes is below what k = 2"):
        weightshare.cluster_file(DIGITS, out, size=100)
    assert not os.path.exists(out) and os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, kwargs, match", [
    ((8,), {"bits": 3}, "k and bits=3 exclude each other"),
    ((), {}, "give k"),
    ((), {"bits": 3, "size": 1000}, "exclude each other"),
    ((), {"bits": 3, "per_channel": True}, "one k per tensor"),
    ((), {"size": 5000, "max_k": 1}, "max_k"),
])
def test_budget_arguments_are_checked(args, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        weightshare.cluster_file(DIGITS, None, *args, dry_run=True, **kwargs)


def test_nan_in_a_targeted_tensor_names_the_file(tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, a=np.array([[1.0, np.nan], [0.5, 0.25]], dtype=np.float32))
    with pytest.raises(weightshare.errors.FileFormatError, match="w.npz"):
        weightshare.cluster_file(path, None, bits=2, roles=("all",), dry_run=True)


def test_rate_gives_smaller_huffman_indices_than_plain_kmeans():
    plain = weightshare.cluster_file(DIGITS, None, 8, dry_run=True)
    ec = weightshare.cluster_file(DIGITS, None, 8, rate=0.002, dry_run=True)
    assert sum(r.sse for r in ec) > sum(r.sse for r in plain)
    w = {r.name: r.value for r in weightshare.read_weights(DIGITS)}
    ent = weightshare.encoded_sizes(weightshare.cluster(w["fc1/kernel"], 8, rate=0.002).values)
    ref = weightshare.encoded_sizes(weightshare.cluster(w["fc1/kernel"], 8).values)
    assert ent.entropy_bits < ref.entropy_bits and ent.huffman <= ref.huffman


@pytest.mark.parametrize("kwargs, match", [
    ({"bits": 3, "rate": 0.1}, "exclude each other"),
    ({"k": 8, "rate": 0.1, "per_channel": True}, "one LUT per tensor"),
    ({"k": 8, "rate": -0.1}, "rate"),
])
def test_rate_arguments_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        weightshare.cluster_file(DIGITS, None, dry_run=True, **kwargs)
