"""weightshare.report: numbers checked on hand-computed toys, totals, errors, inputs."""

import json
import math
import subprocess
import sys
import zlib

import numpy as np
import pytest

import weightshare

TOY = np.array([0.0, 0.0, 0.5, 0.5, 0.0, -1.0, 0.0, 0.0], dtype=np.float32)


def test_toy_row_by_hand():
    r = weightshare.report({"fc/kernel": TOY}).rows[0]
    assert (r.name, r.shape, r.dtype) == ("fc/kernel", (8,), "float32")
    assert (r.n, r.nonzeros, r.distinct, r.index_bits, r.raw) == (8, 3, 3, 2, 32)
    # header: 8 fixed + 1 length + 1 dim = 10; CRC 4
    # packed: k (1) + codebook 3 * 4 + 8 indices * 2 bits (2) = 15
    assert r.packed == 10 + 15 + 4
    # sparse: codebook 13; gap width 0 (ties go to the narrowest): 6 entries (3 non-zeros,
    # 3 filler zeros) -> g (1) + m (1) + 0 gap bytes + 6 * 2 bits (2) = 4
    assert r.sparse == 10 + 13 + 4 + 4
    # Huffman: counts 5, 2, 1 -> lengths 1, 2, 2 -> 11 bits (2 bytes); table: A (1) +
    # 3 lengths + n_bits (1) + block (1) = 6
    assert r.huffman == 10 + 13 + 6 + 2 + 4
    assert (r.best, r.best_scheme) == (29, "packed")
    assert r.entropy == pytest.approx((5 * math.log2(8 / 5) + 2 * 2 + 1 * 3) / 8)
    assert r.deflate == len(zlib.compress(TOY.tobytes(), 9))
    assert r.ratio == pytest.approx(32 / 29)
    assert r.ratio_eq1 == pytest.approx(8 * 32 / (8 * 2 + 3 * 32))
    assert r.sse is None and r.max_abs_error is None


def test_totals_are_sums_and_ratios_of_sums():
    b = np.ones(4, dtype=np.float16)
    rep = weightshare.report({"k": TOY, "b": b})
    t = rep.total
    assert [r.name for r in rep.rows] == ["k", "b"]
    assert (t.n_tensors, t.n, t.nonzeros, t.float32) == (2, 12, 7, 48)
    assert t.raw == 32 + 8
    for attr in ("packed", "sparse", "huffman", "sparse_huffman", "best", "deflate"):
        assert getattr(t, attr) == sum(getattr(r, attr) for r in rep.rows)
    assert t.ratio == pytest.approx(48 / t.best)
    # eq. 1 over the model: 12 * 32 / ((8 * 2 + 3 * 32) + (4 * 0 + 1 * 32))
    assert t.ratio_eq1 == pytest.approx(12 * 32 / (112 + 32))
    assert rep.rows[1].ratio_eq1 == pytest.approx(4.0)       # k = 1: n * b / b


def test_compare_adds_sse_and_max_error():
    original = TOY + np.float32(0.25)
    original[5] = -1.5
    rep = weightshare.report({"w": TOY, "v": np.zeros(2)}, compare={"w": original, "v": np.ones(2),
                                                                     "unused": np.ones(1)})
    w, v = rep.rows
    assert w.sse == pytest.approx(7 * 0.0625 + 0.25) and w.max_abs_error == 0.5
    assert v.sse == 2.0 and v.max_abs_error == 1.0
    assert rep.total.sse == pytest.approx(w.sse + 2.0) and rep.total.max_abs_error == 1.0


@pytest.mark.parametrize("compare, match", [
    ({"other": TOY}, "not in the original: w"),
    ({"w": TOY[:4]}, r"'w' has shape \(4,\) in the original and \(8,\)"),
])
def test_compare_mismatches_are_named(compare, match):
    with pytest.raises(ValueError, match=match):
        weightshare.report({"w": TOY}, compare=compare)


@pytest.mark.parametrize("source, exc, match", [
    ([TOY], TypeError, "must be a path or a dict"),
    ({1: TOY}, TypeError, "keys must be tensor names"),
    ({"w": np.arange(3)}, TypeError, "floating dtype"),
])
def test_bad_inputs(source, exc, match):
    with pytest.raises(exc, match=match):
        weightshare.report(source)


def test_npy_and_npz_paths(tmp_path):
    np.save(tmp_path / "w.npy", TOY)
    np.savez(tmp_path / "m.npz", a=TOY, b=np.ones(3, np.float64))
    assert weightshare.report(tmp_path / "w.npy").rows[0].name == "array"   # as read_weights
    rep = weightshare.report(str(tmp_path / "m.npz"), compare=tmp_path / "m.npz")
    assert [r.name for r in rep.rows] == ["a", "b"] and rep.total.sse == 0.0


def test_empty_and_scalar_tensors():
    rep = weightshare.report({"e": np.zeros((0, 4), np.float32), "s": np.float64(3.0) * np.ones(())})
    e, s = rep.rows
    assert e.n == 0 and e.ratio is None and e.ratio_eq1 is None and e.raw == 0
    assert s.shape == () and s.n == 1 and s.distinct == 1


def test_to_dict_is_json_and_table_lists_every_tensor():
    rep = weightshare.report({"fc/kernel": TOY, "fc/bias": np.ones(2, np.float32)},
                             compare={"fc/kernel": TOY, "fc/bias": np.ones(2, np.float32)})
    d = json.loads(json.dumps(rep.to_dict()))
    assert d["tensors"][0]["shape"] == [8] and d["total"]["n"] == 10
    lines = rep.table().splitlines()
    assert lines[0].split()[:3] == ["tensor", "shape", "dtype"] and "sse" in lines[0]
    assert [ln.split()[0] for ln in lines[2:4]] == ["fc/kernel", "fc/bias"]
    assert lines[-1].startswith("total")


def test_report_on_arrays_loads_no_h5py_and_no_matplotlib():
    code = ("import sys, numpy as np, weightshare\n"
            "weightshare.report({'w': np.zeros(4)}, compare={'w': np.ones(4)})\n"
            "print(','.join(m for m in ('h5py', 'matplotlib') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_input_is_not_modified():
    w = TOY.copy()
    weightshare.report({"w": w}, compare={"w": w + 1})
    assert np.array_equal(w, TOY)


# --------------------------------------------------------------------------- Keras files

import os  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGITS = os.path.join(ROOT, "examples", "digits.keras")
FIX = os.path.join(ROOT, "tests", "fixtures", "keras")


def test_keras_file_rows_follow_weightshare_files():
    rep = weightshare.report(DIGITS)
    records = weightshare.read_weights(DIGITS)
    assert [r.name for r in rep.rows] == [r.name for r in records]
    assert [r.shape for r in rep.rows] == [r.shape for r in records]
    assert rep.total.n == sum(r.value.size for r in records)


def test_bfloat16_tensors_are_measured_in_two_bytes():
    rep = weightshare.report(os.path.join(FIX, "k3_bf16.keras"))
    for row in rep.rows:
        assert row.dtype == "bfloat16" and row.raw == 2 * row.n
    kernel = weightshare.read_weights(os.path.join(FIX, "k3_bf16.keras"))[2].value
    assert rep.rows[2].packed == weightshare.encoded_sizes(kernel, dtype="bfloat16").packed


def test_compare_with_a_clustered_file_gives_its_sse(tmp_path):
    out = str(tmp_path / "digits-k8.keras")
    summary = {r.tensor: r for r in weightshare.cluster_file(DIGITS, out, 8)}
    rep = weightshare.report(out, compare=DIGITS)
    for row in rep.rows:
        if row.name in summary:
            assert row.distinct == 8
            assert row.sse == pytest.approx(summary[row.name].sse, rel=1e-12)
        else:
            assert row.sse == 0.0                          # biases untouched
