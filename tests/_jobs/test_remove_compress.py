"""``remove_units(..., compress=, strip=)`` and ``weightshare remove --compress --strip``.

The output is smaller than the plain removal's and holds the very same weights; ``strip`` leaves
out the optimizer state and the compile/training config as ``strip_file`` does.
"""

import json
import os
import pathlib
import zipfile

import h5py
import numpy as np
import pytest

import weightshare
from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
DIGITS = weightshare.examples.path("digits.keras")


def _weights(path):
    return {r.name: r.value for r in weightshare.read_weights(path)}


def _same(a, b):
    wa, wb = _weights(a), _weights(b)
    return list(wa) == list(wb) and all(
        wa[k].dtype == wb[k].dtype and np.array_equal(wa[k].view(np.uint8), wb[k].view(np.uint8))
        for k in wa)


@pytest.mark.parametrize("src", [DIGITS, FIX / "k2_digits.h5"], ids=os.path.basename)
@pytest.mark.parametrize("kw", [{"compress": True}, {"strip": True},
                                {"compress": True, "strip": True}], ids=str)
def test_smaller_with_the_same_weights(src, kw, tmp_path):
    suffix = pathlib.Path(src).suffix
    plain, small = tmp_path / f"plain{suffix}", tmp_path / f"small{suffix}"
    a = weightshare.remove_units(src, plain, layer="fc1", count=8)
    b = weightshare.remove_units(src, small, layer="fc1", count=8, **kw)
    assert os.path.getsize(small) < os.path.getsize(plain)
    assert _same(plain, small)
    assert a.removed == b.removed and a.params_after == b.params_after


def test_compress_deflates_the_sliced_datasets_too(tmp_path):
    out = tmp_path / "c.keras"
    res = weightshare.remove_units(DIGITS, out, layer="fc1", count=8, compress=True)
    sliced = {t.dataset for t in res.tensors}
    with zipfile.ZipFile(out) as z:
        assert z.getinfo("model.weights.h5").compress_type == zipfile.ZIP_STORED
        with z.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            big = [p for p in sliced if h5[p].nbytes > 4096]
            assert big and all(h5[p].compression == "gzip" for p in big)
            assert all(h5[p].compression is None or h5[p].nbytes > 0 for p in sliced)


def test_strip_leaves_out_the_optimizer_and_compile_config(tmp_path):
    out = tmp_path / "s.keras"
    res = weightshare.remove_units(DIGITS, out, layer="fc1", count=8, strip=True)
    assert res.optimizer == "stripped"
    assert not any(t.dataset.startswith("/optimizer/") for t in res.tensors)
    with zipfile.ZipFile(out) as z:
        config = json.loads(z.read("config.json"))
        with z.open("model.weights.h5") as f, h5py.File(f, "r") as h5:
            assert "optimizer" not in h5
    assert "compile_config" not in config
    fc1 = next(la for la in config["config"]["layers"] if la["config"].get("name") == "fc1")
    assert fc1["config"]["units"] == 56           # the removal's config edit is kept
    assert weightshare.strip_file(out, tmp_path / "again.keras").stripped is False


def test_strip_of_a_legacy_h5_drops_the_training_config(tmp_path):
    out = tmp_path / "s.h5"
    weightshare.remove_units(FIX / "k2_digits.h5", out, layer="fc1", count=8, strip=True,
                             compress=True)
    with h5py.File(out, "r") as h5:
        assert "optimizer_weights" not in h5 and "training_config" not in h5.attrs
        assert "model_config" in h5.attrs


def test_dry_run_with_strip_writes_nothing(tmp_path):
    res = weightshare.remove_units(DIGITS, layer="fc1", count=8, strip=True, compress=True,
                                   dry_run=True)
    assert res.dst is None and res.optimizer == "stripped"
    assert list(tmp_path.iterdir()) == []


def test_bad_flags():
    with pytest.raises(TypeError, match="compress"):
        weightshare.remove_units(DIGITS, layer="fc1", count=1, dry_run=True, compress=1)
    with pytest.raises(TypeError, match="strip"):
        weightshare.remove_units(DIGITS, layer="fc1", count=1, dry_run=True, strip="yes")


def test_cli_flags_and_size_line(tmp_path, capsys):
    out = tmp_path / "r.keras"
    assert main(["remove", DIGITS, "-o", str(out), "--layer", "fc1", "--count", "8",
                 "--compress", "--strip"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == f"file size: 104487 -> {os.path.getsize(out)} bytes " \
                   f"({104487 / os.path.getsize(out):.2f}x smaller)"
    assert main(["remove", DIGITS, "-o", str(tmp_path / "j.keras"), "--layer", "fc1",
                 "--count", "8", "--strip", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["optimizer"] == "stripped"
