"""``weightshare.disk_usage``: what a file's bytes hold, and each option's size, for real."""

import os
import pathlib
import tempfile

import numpy as np
import pytest

import weightshare
from weightshare._jobs import _disk_usage
from weightshare.errors import FileFormatError

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
ST = ROOT / "tests" / "fixtures" / "safetensors"
DIGITS = weightshare.examples.path("digits.keras")
SHARDED = ST / "tiny_llama_bf16"
KERAS = [FIX / n for n in ("k3_digits.keras", "k3_mlp.weights.h5", "k3_cnn.h5", "k2_digits.h5",
                           "k2_mlp.weights_only.h5", "k3_bf16.keras")]


@pytest.mark.parametrize("path", KERAS + [ST / "tiny_bert", ST / "tiny_llama_bf16",
                                          ST / "numpy_dtypes.safetensors",
                                          FIX / "digits_test.npz"], ids=lambda p: p.name)
def test_the_parts_add_up_to_the_file(path):
    d = weightshare.disk_usage(path, options=False)
    assert d.weights + d.optimizer + d.config + d.overhead == d.size
    assert min(d.weights, d.optimizer, d.config, d.overhead) >= 0
    assert d.weights > 0


def test_a_sharded_checkpoint_is_the_sum_over_its_shards():
    folder = ST / "tiny_llama_bf16"
    shards = sorted(folder.glob("*.safetensors"))
    d = weightshare.disk_usage(folder)
    assert d.files == len(shards) > 1
    assert d.size == sum(os.path.getsize(s) for s in shards)
    assert d.options == {"compress": None, "strip": None, "strip_compress": None, "pack": None}
    assert d.config == d.optimizer == 0


def test_npy_weights_are_the_array_bytes_and_the_header_is_overhead(tmp_path):
    path = tmp_path / "w.npy"
    arr = np.arange(300, dtype=np.float32).reshape(10, 30)
    np.save(path, arr)
    d = weightshare.disk_usage(path)
    assert (d.format, d.weights, d.overhead) == ("npy", arr.nbytes, os.path.getsize(path) - 1200)


def test_a_deflated_npz_member_counts_its_compressed_bytes(tmp_path):
    path = tmp_path / "w.npz"
    np.savez_compressed(path, a=np.zeros(4096, np.float32))
    d = weightshare.disk_usage(path)
    assert 0 < d.weights < 4096 * 4 // 10


def test_the_optimizer_bytes_are_what_strip_leaves_out(tmp_path):
    s = weightshare.strip_file(DIGITS, tmp_path / "s.keras")
    d = weightshare.disk_usage(DIGITS, options=False)
    assert d.optimizer == s.optimizer_bytes > d.weights
    stripped = weightshare.disk_usage(tmp_path / "s.keras", options=False)
    assert stripped.optimizer == 0 and stripped.weights == d.weights


def test_config_is_the_config_members_as_stored():
    import zipfile
    with zipfile.ZipFile(DIGITS) as z:
        want = sum(z.getinfo(n).compress_size for n in ("config.json", "metadata.json"))
    assert weightshare.disk_usage(DIGITS, options=False).config == want


def test_a_compressed_file_counts_its_deflated_bytes(tmp_path):
    out = tmp_path / "k4.keras"
    weightshare.cluster_file(DIGITS, out, 4, random_state=0, compress=True, strip=True)
    d = weightshare.disk_usage(out, options=False)
    assert 0 < d.weights < 26280 // 4       # 26,280 bytes of float32 values, deflated
    assert d.weights + d.optimizer + d.config + d.overhead == d.size


@pytest.mark.parametrize("path", [DIGITS, FIX / "k2_digits.h5", FIX / "k3_mlp.weights.h5"],
                         ids=os.path.basename)
def test_each_option_is_the_size_its_job_writes(path, tmp_path):
    d = weightshare.disk_usage(path)
    name = os.path.basename(path)
    weightshare.transform_file(path, tmp_path / ("c-" + name), lambda r, v: None,
                               select=lambda r: False, compress=True)
    weightshare.strip_file(path, tmp_path / ("s-" + name))
    weightshare.strip_file(path, tmp_path / ("sc-" + name), compress=True)
    weightshare.pack_file(path, tmp_path / ("p-" + name + ".wsz"))
    assert d.options == {"compress": os.path.getsize(tmp_path / ("c-" + name)),
                         "strip": os.path.getsize(tmp_path / ("s-" + name)),
                         "strip_compress": os.path.getsize(tmp_path / ("sc-" + name)),
                         "pack": os.path.getsize(tmp_path / ("p-" + name + ".wsz"))}
    assert d.options["strip_compress"] < d.size


def test_the_options_leave_nothing_behind(tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    assert weightshare.disk_usage(DIGITS).options["compress"] > 0
    assert list(scratch.iterdir()) == []


def test_a_file_over_the_bound_gets_no_option_sizes_and_says_why(monkeypatch):
    monkeypatch.setattr(_disk_usage, "OPTIONS_MAX_BYTES", 1000)
    d = weightshare.disk_usage(DIGITS)
    assert set(d.options.values()) == {None} and "1,000 bytes" in d.note
    assert "option sizes not computed" in d.table()


def test_options_false_runs_no_job():
    d = weightshare.disk_usage(DIGITS, options=False)
    assert set(d.options.values()) == {None} and d.note is None


def test_the_text_says_what_each_number_is_a_share_of():
    text = weightshare.disk_usage(DIGITS).table()
    assert text.splitlines()[0] == ("file on disk: 104,487 bytes (keras_zip); percentages are of "
                                    "the file's size")
    assert "file size / option size" in text and "pack" in text
    assert "n/a" in weightshare.disk_usage(SHARDED).table()     # pack: not for a checkpoint


def test_bad_arguments_and_files(tmp_path):
    with pytest.raises(TypeError, match="options"):
        weightshare.disk_usage(DIGITS, options="yes")
    bad = tmp_path / "bad.keras"
    bad.write_bytes(b"not a model")
    with pytest.raises(FileFormatError, match="bad.keras"):
        weightshare.disk_usage(bad)


def test_a_job_that_refuses_the_file_leaves_its_option_out_and_says_why(monkeypatch):
    def refuse(src, dst):
        raise FileFormatError(src, "cannot be\nrebuilt")
    label, formats, _, name_of = _disk_usage.OPTIONS["strip"]
    monkeypatch.setitem(_disk_usage.OPTIONS, "strip", (label, formats, refuse, name_of))
    d = weightshare.disk_usage(DIGITS)
    assert d.options["strip"] is None and d.options["compress"] > 0
    assert d.note.startswith("strip: ") and "cannot be rebuilt" in d.note
    assert "\n" not in d.table().splitlines()[-1]
