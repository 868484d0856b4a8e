"""safetensors files (single and sharded): reading, roles, same-shape rewrites, hostile headers.

Fixtures in tests/fixtures/safetensors/ are written by the safetensors library, torch and
transformers (tests/safetensors/generate_fixtures.py); the hostile headers below are built by
hand on purpose (no library writes them).
"""

import json
import os
import shutil
import struct

import numpy as np
import pytest

import weightshare
from weightshare.errors import FileFormatError

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures", "safetensors")
NUMPY = os.path.join(FIX, "numpy_dtypes.safetensors")
TORCH = os.path.join(FIX, "torch_dtypes.safetensors")
BERT = os.path.join(FIX, "tiny_bert")
BERT_SHARDED = os.path.join(FIX, "tiny_bert_sharded")
LLAMA = os.path.join(FIX, "tiny_llama_bf16")


def header_of(path):
    """(header dict, data start) parsed here independently of weightshare."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


def raw_bytes(path, name):
    header, start = header_of(path)
    b, e = header[name]["data_offsets"]
    with open(path, "rb") as f:
        f.seek(start + b)
        return f.read(e - b)


def st_bytes(header, data=b""):
    """A safetensors file's bytes from a header (dict or raw str) and data."""
    raw = header if isinstance(header, (bytes, str)) else json.dumps(header)
    raw = raw.encode() if isinstance(raw, str) else raw
    return struct.pack("<Q", len(raw)) + raw + data


def write(tmp_path, name, content):
    p = tmp_path / name
    p.write_bytes(content)
    return str(p)


# ------------------------------------------------------------------------------------ reading
@pytest.mark.parametrize("path", [NUMPY, TORCH])
def test_values_equal_what_the_library_loads(path):
    ref = np.load(path[:-len(".safetensors")] + ".values.npz")
    records = weightshare.read_weights(path)
    assert sorted(r.name for r in records) == sorted(ref.files)
    for r in records:
        want = ref[r.name]
        assert r.value.shape == want.shape, r.name
        np.testing.assert_array_equal(r.value, want, err_msg=r.name)
        if r.dtype in ("bfloat16", "float8_e4m3fn", "float8_e5m2"):
            assert r.value.dtype == np.float32
        else:
            assert r.value.dtype == want.dtype, r.name


def test_formats_dtypes_and_roles():
    assert weightshare.file_format(NUMPY) == "safetensors"
    assert weightshare.file_format(BERT) == "safetensors"            # a folder with one file
    assert weightshare.file_format(BERT_SHARDED) == "safetensors_sharded"
    assert weightshare.file_format(os.path.join(LLAMA, "model.safetensors.index.json")) == \
        "safetensors_sharded"
    by = {r.name: r for r in weightshare.read_weights(NUMPY, values=False)}
    assert (by["layer.0.dense.weight"].role, by["layer.0.dense.weight"].kind) == ("weight", "kernel")
    assert by["layer.0.dense.bias"].role == "bias"
    assert by["layer.1.norm.weight"].role == "norm"
    assert by["embeddings.position_embeddings.weight"].role == "position"
    assert by["position_ids"].role == "integer" and by["mask"].dtype == "bool"
    assert by["head.weight"].dtype == "float64" and by["layer.1.conv.weight"].dtype == "float16"
    assert by["layer.1.conv.weight"].kind == "kernel"       # a rank-4 convolution kernel
    assert all(r.channel_axis == 0 for r in by.values())


def test_fp8_decoder_matches_torch_on_all_256_codes():
    values = {r.name: r.value for r in weightshare.read_weights(os.path.join(FIX,
                                                                             "fp8_codes.safetensors"))}
    for fmt in ("e4m3", "e5m2"):
        got, want = values[f"{fmt}_codes"], values[f"{fmt}_values"]
        assert got.shape == want.shape == (256,)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        assert np.array_equal(got[ok].view(np.uint32), want[ok].view(np.uint32))   # -0.0 too


def test_sharded_reads_every_tensor_once_from_its_shard():
    index = json.load(open(os.path.join(BERT_SHARDED, "model.safetensors.index.json")))
    records = weightshare.read_weights(BERT_SHARDED, values=False)
    assert sorted(r.name for r in records) == sorted(index["weight_map"])
    for r in records:
        assert r.location == f"{index['weight_map'][r.name]}:{r.name}"
    single = {r.name: r.value for r in weightshare.read_weights(BERT)}
    for r in weightshare.read_weights(BERT_SHARDED):
        np.testing.assert_array_equal(r.value, single[r.name])


# ------------------------------------------------------------------------------------ hostile
def _entry(dtype="F32", shape=(2,), offsets=(0, 8)):
    return {"dtype": dtype, "shape": list(shape), "data_offsets": list(offsets)}


HOSTILE = {
    "header past the file": (struct.pack("<Q", 1000) + b"{}", "past the end of the file", None),
    "header too large": (struct.pack("<Q", 200_000_000) + b"{}", "at most", None),
    "too short": (b"\x01\x00", "too short", None),
    "not json": (st_bytes("{not json"), "not JSON", None),
    "not an object": (st_bytes("[1, 2]"), "not an object", None),
    "duplicate name": (st_bytes('{"a": %s, "a": %s}' % (json.dumps(_entry()), json.dumps(
        _entry(offsets=(8, 16)))), bytes(16)), "'a' twice", None),
    "overlap": (st_bytes({"a": _entry(), "b": _entry(offsets=(4, 12))}, bytes(16)),
                "overlaps", "b"),
    "end before begin": (st_bytes({"a": _entry(offsets=(8, 0))}, bytes(8)), "before", "a"),
    "offsets past the end": (st_bytes({"a": _entry(offsets=(0, 8))}, bytes(4)),
                             "past the end of the data", "a"),
    "size disagrees": (st_bytes({"a": _entry(shape=(3,), offsets=(0, 8))}, bytes(8)),
                       "12 bytes", "a"),
    "unknown dtype": (st_bytes({"a": _entry(dtype="C64")}, bytes(8)), "'C64'", "a"),
    "negative dim": (st_bytes({"a": _entry(shape=(-2,))}, bytes(8)), "shape", "a"),
    "bool dim": (st_bytes({"a": _entry(shape=(True,), offsets=(0, 4))}, bytes(4)), "shape", "a"),
    "metadata not str": (st_bytes({"__metadata__": {"x": 1}, "a": _entry()}, bytes(8)),
                         "string -> string", "__metadata__"),
    "entry not object": (st_bytes({"a": [1, 2]}), "not an object", "a"),
    "deep json": (st_bytes("[" * 5000 + "]" * 5000), "nested", None),
    "not utf-8": (st_bytes(b'{"\xff": 1}'), "UTF-8", None),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_headers_are_one_line_errors_naming_file_and_tensor(tmp_path, case):
    content, words, tensor = HOSTILE[case]
    path = write(tmp_path, "bad.safetensors", content)
    with pytest.raises(FileFormatError) as info:
        weightshare.read_weights(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(path) and words in msg, msg
    if tensor is not None:
        assert info.value.dataset == tensor
    out = tmp_path / "out.safetensors"
    with pytest.raises(FileFormatError):
        weightshare.cluster_file(path, out, 4)
    assert sorted(os.listdir(tmp_path)) == ["bad.safetensors"]     # nothing written


def _sharded_copy(tmp_path, src=BERT_SHARDED):
    dst = tmp_path / "ckpt"
    shutil.copytree(src, dst)
    return dst


def _edit_index(folder, edit):
    p = folder / "model.safetensors.index.json"
    index = json.loads(p.read_text())
    edit(index)
    p.write_text(json.dumps(index))
    return str(p)


def test_index_naming_a_missing_shard(tmp_path):
    d = _sharded_copy(tmp_path)
    os.unlink(d / "model-00002-of-00003.safetensors")
    with pytest.raises(FileFormatError, match="model-00002-of-00003.safetensors.*missing"):
        weightshare.read_weights(str(d))


def test_tensor_in_two_shards(tmp_path):
    d = _sharded_copy(tmp_path)
    shutil.copyfile(d / "model-00001-of-00003.safetensors", d / "extra.safetensors")
    name = "embeddings.LayerNorm.bias"
    _edit_index(d, lambda ix: ix["weight_map"].__setitem__("zz", "extra.safetensors"))
    with pytest.raises(FileFormatError, match="in two shards") as info:
        weightshare.read_weights(str(d))
    assert info.value.dataset == name


@pytest.mark.parametrize("edit, words", [
    (lambda ix: ix["weight_map"].pop("pooler.dense.bias"), "does not list it"),
    (lambda ix: ix["weight_map"].__setitem__("ghost", "model-00001-of-00003.safetensors"),
     "whose header does not hold it"),
    (lambda ix: ix["weight_map"].__setitem__("pooler.dense.bias", "../x.safetensors"),
     "own folder"),
    (lambda ix: ix.pop("weight_map"), "not a safetensors index"),
])
def test_index_that_disagrees_with_the_shards(tmp_path, edit, words):
    d = _sharded_copy(tmp_path)
    index = _edit_index(d, edit)
    with pytest.raises(FileFormatError, match=words) as info:
        weightshare.read_weights(index)
    assert "\n" not in str(info.value)


# ------------------------------------------------------------------------------------ writing
def _check_rewrite(src, dst, targets):
    """Untargeted tensors byte-identical, header order/dtypes/shapes kept, metadata kept."""
    h0, _ = header_of(src)
    h1, _ = header_of(dst)
    keys0 = [k for k in h0 if k != "__metadata__"]
    assert [k for k in h1 if k != "__metadata__"] == keys0
    for k in keys0:
        assert h1[k] == h0[k]
        if k not in targets:
            assert raw_bytes(dst, k) == raw_bytes(src, k), k
    meta = h1["__metadata__"]
    for k, v in (h0.get("__metadata__") or {}).items():
        assert meta[k] == v
    return json.loads(meta["weightshare"])


def test_cluster_single_float_file_bit_for_bit(tmp_path):
    out = tmp_path / "k4.safetensors"
    rows = weightshare.cluster_file(NUMPY, out, 4, method="optimal")
    targets = {r.tensor for r in rows}
    assert targets == {"layer.0.dense.weight", "layer.1.conv.weight", "head.weight"}
    note = _check_rewrite(NUMPY, str(out), targets)
    assert note["job"] == "cluster" and note["k"] == 4 and sorted(note["tensors"]) == sorted(
        targets | {"empty.weight"})
    before = {r.name: r.value for r in weightshare.read_weights(NUMPY)}
    after = {r.name: r.value for r in weightshare.read_weights(str(out))}
    for name in targets:
        want = weightshare.cluster(before[name], 4, method="optimal").values.astype(
            before[name].dtype)
        assert after[name].dtype == before[name].dtype
        assert np.array_equal(after[name].view(f"u{want.itemsize}"),
                              want.view(f"u{want.itemsize}")), name
        assert np.unique(after[name]).size <= 4


def test_cluster_bf16_stores_at_most_k_bf16_values_and_leaves_fp8(tmp_path):
    out = tmp_path / "k8.safetensors"
    rows = weightshare.cluster_file(TORCH, out, 8, method="optimal")
    assert {r.tensor for r in rows} == {"model.layers.0.mlp.up_proj.weight", "lm_head.weight"}
    _check_rewrite(TORCH, str(out), {r.tensor for r in rows})    # FP8 tensors byte-identical
    before = {r.name: r.value for r in weightshare.read_weights(TORCH)}
    for r in weightshare.read_weights(str(out)):
        if r.name in {x.tensor for x in rows}:
            assert r.dtype == "bfloat16"
            bits = r.value.view(np.uint32)
            assert np.all(bits & 0xFFFF == 0)             # exactly bfloat16
            assert np.unique(r.value).size <= 8
            assert np.max(np.abs(r.value - before[r.name])) < np.ptp(before[r.name]) / 4


def test_per_channel_is_per_output_row(tmp_path):
    out = tmp_path / "pc.safetensors"
    weightshare.cluster_file(NUMPY, out, 3, per_channel=True, layers=["layer.0.dense.weight"])
    w = {r.name: r.value for r in weightshare.read_weights(str(out))}["layer.0.dense.weight"]
    assert w.shape == (16, 8)
    assert all(np.unique(row).size <= 3 for row in w)
    assert np.unique(w).size > 3                        # rows have their own values


def test_no_change_copies_the_file_byte_for_byte(tmp_path):
    out = tmp_path / "same.safetensors"
    rows = weightshare.transform_file(NUMPY, out, lambda r, v: None)
    assert rows and not any(r.changed for r in rows)
    assert out.read_bytes() == open(NUMPY, "rb").read()


def test_fp8_written_only_when_exact(tmp_path):
    name = "model.layers.0.self_attn.q_proj.weight"
    out = tmp_path / "f8.safetensors"
    rows = weightshare.transform_file(TORCH, out, lambda r, v: -v, select=lambda r: r.name == name)
    assert rows[0].changed
    before = {r.name: r.value for r in weightshare.read_weights(TORCH)}
    after = {r.name: r.value for r in weightshare.read_weights(str(out))}
    np.testing.assert_array_equal(after[name], -before[name])
    with pytest.raises(FileFormatError, match="exactly float8_e4m3fn"):
        weightshare.transform_file(TORCH, tmp_path / "no.safetensors", lambda r, v: v * 1.01,
                                   select=lambda r: r.name == name)
    assert not (tmp_path / "no.safetensors").exists()


def test_sharded_rewrite_keeps_the_layout(tmp_path):
    out = tmp_path / "bert-k16"
    rows = weightshare.cluster_file(BERT_SHARDED, out, 16, layers=["encoder.layer.*"])
    assert rows and all(r.tensor.startswith("encoder.layer.") for r in rows)
    names = sorted(os.listdir(BERT_SHARDED))
    assert sorted(os.listdir(out)) == names                  # same shards, index, config.json
    assert (out / "config.json").read_bytes() == open(os.path.join(BERT_SHARDED,
                                                                   "config.json"), "rb").read()
    index0 = json.load(open(os.path.join(BERT_SHARDED, "model.safetensors.index.json")))
    index1 = json.loads((out / "model.safetensors.index.json").read_text())
    assert index1["weight_map"] == index0["weight_map"]
    assert index1["metadata"]["weightshare"]["job"] == "cluster"
    targets = {r.tensor for r in rows}
    for shard in sorted(set(index0["weight_map"].values())):
        src, dst = os.path.join(BERT_SHARDED, shard), str(out / shard)
        mine = {t for t in targets if index0["weight_map"][t] == shard}
        if mine:
            _check_rewrite(src, dst, mine)
        else:
            assert open(src, "rb").read() == open(dst, "rb").read()
    assert [x for x in os.listdir(tmp_path) if x.startswith(".")] == []


def test_sharded_failure_leaves_nothing(tmp_path):
    out = tmp_path / "never"

    def fn(record, values):
        if record.name.startswith("encoder.layer.1"):
            raise ValueError("boom")
        return values * 0

    with pytest.raises(FileFormatError, match="boom"):
        weightshare.transform_file(BERT_SHARDED, out, fn)
    assert os.listdir(tmp_path) == []


def test_sharded_output_must_be_a_new_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("keep")
    with pytest.raises(FileFormatError, match="new folder"):
        weightshare.cluster_file(LLAMA, tmp_path / "full", 4)
    assert (tmp_path / "full" / "x").read_text() == "keep"
    with pytest.raises(FileFormatError, match="input folder"):
        weightshare.cluster_file(LLAMA, os.path.join(LLAMA, "sub"), 4)
    (tmp_path / "empty").mkdir()
    weightshare.cluster_file(LLAMA, tmp_path / "empty", 4)     # an empty folder is replaced
    assert "model.safetensors.index.json" in os.listdir(tmp_path / "empty")


def test_prune_and_report_work_on_safetensors(tmp_path):
    out = tmp_path / "sparse"
    rows = weightshare.prune_file(LLAMA, out, n_m=(2, 4))
    assert len(rows) == 16                   # 2 x 7 projections, the token table, lm_head
    after = {r.name: r.value for r in weightshare.read_weights(str(out))}
    for r in rows:
        w = after[r.tensor]
        assert np.count_nonzero(w) <= w.size // 2
    rep = weightshare.report(str(out), compare=os.path.join(LLAMA, "model.safetensors.index.json"))
    by = {r.name: r for r in rep.rows}
    assert len(by) == 21                                 # every float tensor
    pruned = by["model.layers.0.mlp.up_proj.weight"]
    kept = by["model.norm.weight"]
    assert kept.sse == 0 and pruned.sse > 0 and pruned.nonzeros <= pruned.n // 2


# ------------------------------------------------------------------------------------ real libraries
@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("model, cls, k", [
    (BERT_SHARDED, "BertModel", 256),
    pytest.param(LLAMA, "LlamaForCausalLM", 256, marks=pytest.mark.exhaustive)])
def test_rewritten_checkpoints_load_in_transformers(tmp_path, model, cls, k):
    import subprocess
    from keras_env import keras_python
    python = keras_python("st")
    out = tmp_path / "out"
    weightshare.cluster_file(model, out, k)
    ref = tmp_path / "ref.npz"
    np.savez(ref, **{r.name: r.value for r in weightshare.read_weights(str(out))})
    script = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "safetensors", "load_check.py")
    res = subprocess.run([python, script, model, str(out), cls, str(ref)], capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["tensors_loaded"] == len(weightshare.read_weights(model, values=False))
    assert got["max_diff_vs_numpy_weights"] <= 1e-5 * max(1.0, got["scale"])
    assert got["max_diff_vs_original"] <= 0.1 * got["scale"]


def test_cli_info_shows_roles_and_cluster_names_what_it_skips(tmp_path):
    import subprocess
    import sys
    env = dict(os.environ, PYTHONPATH=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    info = subprocess.run([sys.executable, "-m", "weightshare", "info", LLAMA], capture_output=True,
                          text=True, env=env)
    assert info.returncode == 0 and "safetensors_sharded, 21 tensors" in info.stdout
    assert any(line.startswith("model.norm.weight") and " norm " in line
               for line in info.stdout.splitlines())
    out = tmp_path / "k4"
    res = subprocess.run([sys.executable, "-m", "weightshare", "cluster", LLAMA, "-o", str(out),
                          "-k", "4"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""           # norms are not kernel-like by design: no note
    assert "16 tensors clustered" in res.stdout
    res = subprocess.run([sys.executable, "-m", "weightshare", "cluster", NUMPY, "--dry-run",
                          "-k", "4"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stderr == (
        "weightshare cluster: note: left as they are: layer 'embeddings.position_embeddings."
        "weight': position (roles that are not kernel-like: target them with --roles position); "
        "4 tensors of dtype int64, int32, uint8, bool (not float16, bfloat16, float32 or "
        "float64: never changed)\n")
