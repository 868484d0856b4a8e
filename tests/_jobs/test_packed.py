"""Packed safetensors output: cluster_file(packed=True), load_packed, unpack_packed, axis=.

Inputs are the fixtures written by safetensors / torch / transformers
(tests/safetensors/generate_fixtures.py); the hostile packed files are made by
editing a packed output's header on purpose (no library writes them).
"""

import filecmp
import json
import os
import shutil
import struct

import numpy as np
import pytest

import weightshare
from weightshare._jobs._packed import is_packed, unpack_packed
from weightshare.errors import FileFormatError, TensorArgumentError

FIX = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures",
                   "safetensors")
NUMPY = os.path.join(FIX, "numpy_dtypes.safetensors")
TORCH = os.path.join(FIX, "torch_dtypes.safetensors")
BERT = os.path.join(FIX, "tiny_bert", "model.safetensors")
BERT_SHARDED = os.path.join(FIX, "tiny_bert_sharded")
LLAMA = os.path.join(FIX, "tiny_llama_bf16")


def header_of(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n)), 8 + n


def bits(a):
    return a.view(f"u{a.dtype.itemsize}") if a.dtype.kind == "f" else a


def same_tree(a, b):
    if os.path.isdir(a):
        assert sorted(os.listdir(a)) == sorted(os.listdir(b))
        return all(filecmp.cmp(os.path.join(a, n), os.path.join(b, n), shallow=False)
                   for n in os.listdir(a))
    return filecmp.cmp(a, b, shallow=False)


#: a few tensors of each transformers fixture (per-channel clustering of a whole model is slow)
SOME = {BERT: ["embeddings.token_type_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
               "encoder.layer.0.intermediate.dense.weight"],
        LLAMA: ["model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.up_proj.weight"]}
SOME[BERT_SHARDED] = SOME[BERT]


def run_both(tmp_path, src, k, **opts):
    ext = ".safetensors" if src.endswith(".safetensors") else ""
    plain, packed = str(tmp_path / f"plain{ext}"), str(tmp_path / f"packed{ext}")
    r1 = weightshare.cluster_file(src, plain, k, random_state=0, **opts)
    r2 = weightshare.cluster_file(src, packed, k, random_state=0, packed=True, **opts)
    assert r1 == r2
    return plain, packed


OPTIONS = [{}, {"per_channel": True}, {"group_size": 8}, {"per_channel_scale": True},
           {"per_channel_scale": True, "group_size": 4}, {"per_channel": True, "axis": -1}]


@pytest.mark.parametrize("src,k", [(BERT, 16), (LLAMA, 16), (TORCH, 4), (NUMPY, 300)])
@pytest.mark.parametrize("opts", OPTIONS, ids=lambda o: ",".join(o) or "tensor")
def test_load_packed_equals_the_plain_output_bit_for_bit(tmp_path, src, k, opts):
    roles = ("all",) if src in (TORCH, NUMPY) else ("kernel",)
    plain, packed = run_both(tmp_path, src, k, roles=roles, layers=SOME.get(src), **opts)
    want = weightshare.read_weights(plain)
    got = weightshare.load_packed(packed)
    assert list(got) == [r.name for r in want]
    for r in want:
        assert got[r.name].dtype == r.value.dtype and got[r.name].shape == r.value.shape
        assert np.array_equal(bits(got[r.name]), bits(r.value)), r.name


@pytest.mark.parametrize("src", [BERT, BERT_SHARDED, LLAMA, TORCH])
@pytest.mark.parametrize("opts", [{}, {"per_channel_scale": True, "group_size": 8}],
                         ids=["tensor", "scaled"])
def test_unpack_gives_the_plain_output_byte_for_byte(tmp_path, src, opts):
    plain, packed = run_both(tmp_path, src, 16, layers=SOME.get(src), **opts)
    out = str(tmp_path / ("un.safetensors" if src.endswith(".safetensors") else "un"))
    names = unpack_packed(packed, out)
    assert names and same_tree(plain, out)
    assert is_packed(packed) and not is_packed(out) and not is_packed(src)
    assert not same_tree(plain, packed) if not os.path.isdir(plain) else True


def test_packed_entries_follow_the_naming_convention(tmp_path):
    plain, packed = run_both(tmp_path, BERT, 16, layers=SOME[BERT])
    h, _ = header_of(packed)
    hp, _ = header_of(plain)
    name = "encoder.layer.0.attention.self.query.weight"      # F32 [32, 32]
    assert name not in h
    ind, book = h[name + ".ws_indices"], h[name + ".ws_codebook"]
    assert ind["dtype"] == "U8" and ind["shape"] == [32 * 32 * 4 // 8]      # 4 bits each
    assert book["dtype"] == "F32" and 1 <= book["shape"][0] <= 16
    note = json.loads(h["__metadata__"]["weightshare"])
    spec = note["packed"]["tensors"][name]
    assert note["packed"]["version"] == 1
    assert (spec["dtype"], spec["shape"], spec["layout"], spec["bits"]) == \
        ("F32", [32, 32], "tensor", 4)
    # untargeted tensors: same bytes, header order kept with the parts in place of the tensor
    keys = [k for k in h if k != "__metadata__"]
    plain_keys = [k for k in hp if k != "__metadata__"]
    assert [k[:-len(".ws_indices")] if k.endswith(".ws_indices") else k for k in keys
            if not k.endswith((".ws_codebook", ".ws_scale"))] == plain_keys
    # offsets contiguous from 0 (as the safetensors library requires), each aligned
    spans = sorted(tuple(v["data_offsets"]) for k, v in h.items() if k != "__metadata__")
    assert spans[0][0] == 0 and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    item = {"F32": 4, "F16": 2, "BF16": 2, "F64": 8, "U8": 1, "U16": 2}
    assert all(v["data_offsets"][0] % item[v["dtype"]] == 0 for k, v in h.items()
               if k != "__metadata__")
    assert os.path.getsize(packed) < os.path.getsize(plain) - 5000     # 12.5 kB of F32 -> 4 bits


def test_scaled_layout_stores_scales_and_one_codebook_row_per_group(tmp_path):
    _, packed = run_both(tmp_path, os.path.join(LLAMA, "model.safetensors.index.json"), 16,
                         per_channel_scale=True, group_size=4, layers=SOME[LLAMA] + [
                             "model.layers.0.mlp.gate_proj.weight"])
    files = sorted(f for f in os.listdir(packed) if f.endswith(".safetensors"))
    found = 0
    for f in files:
        h, _ = header_of(os.path.join(packed, f))
        for k, v in h.items():
            if k.endswith(".ws_scale"):
                base = k[:-len(".ws_scale")]
                spec = json.loads(h["__metadata__"]["weightshare"])["packed"]["tensors"][base]
                assert spec["scaled"] and spec["axis"] == 0 and spec["group_size"] == 4
                assert v["dtype"] == "F32" and v["shape"] == [spec["shape"][0]]  # BF16: F32
                assert h[base + ".ws_codebook"]["shape"][0] == -(-spec["shape"][0] // 4)
                found += 1
    assert found == 3
    index = json.load(open(os.path.join(packed, "model.safetensors.index.json")))
    assert "model.layers.1.mlp.up_proj.weight.ws_indices" in index["weight_map"]
    assert "model.layers.1.mlp.up_proj.weight" not in index["weight_map"]


def test_wide_codebooks_use_uint16_indices(tmp_path):
    plain, packed = run_both(tmp_path, BERT, 300, layers=["encoder.layer.0.intermediate.dense.weight"])
    h, _ = header_of(packed)
    name = "encoder.layer.0.intermediate.dense.weight"
    assert h[name + ".ws_indices"]["dtype"] == "U16"
    assert h[name + ".ws_indices"]["shape"] == h[name + ".ws_codebook"]["shape"][:0] + [64, 32]
    assert np.array_equal(weightshare.load_packed(packed)[name],
                          {r.name: r.value for r in weightshare.read_weights(plain)}[name])


def test_a_packed_file_is_not_clustered_again_by_default(tmp_path):
    _, packed = run_both(tmp_path, BERT, 8, layers=SOME[BERT][1:])
    roles = {r.name: r.role for r in weightshare.read_weights(packed, values=False)}
    assert {v for k, v in roles.items() if ".ws_" in k} == {"packed"}
    rows = weightshare.cluster_file(packed, str(tmp_path / "again.safetensors"), 4,
                                    dry_run=True)
    assert rows and not any(".ws_" in r.tensor for r in rows)
    assert SOME[BERT][1] not in {r.tensor for r in rows}


def test_unpacked_input_is_read_and_copied_as_it_is(tmp_path):
    got = weightshare.load_packed(BERT)
    assert list(got) == [r.name for r in weightshare.read_weights(BERT, values=False)]
    out = str(tmp_path / "copy.safetensors")
    assert unpack_packed(BERT, out) == [] and filecmp.cmp(BERT, out, shallow=False)


# ------------------------------------------------------------------------- refusals
def test_packed_is_for_safetensors_only(tmp_path):
    with pytest.raises(FileFormatError, match="safetensors files only"):
        weightshare.cluster_file(weightshare.examples.path("digits.keras"),
                                 str(tmp_path / "x.keras"), 4, packed=True)
    with pytest.raises(FileFormatError, match=r"must end in \.safetensors"):
        weightshare.cluster_file(BERT, str(tmp_path / "x.keras"), 4, packed=True)
    with pytest.raises(ValueError, match="packed=True and in_place=True"):
        weightshare.cluster_file(BERT, BERT, 4, packed=True, in_place=True)
    with pytest.raises(TypeError, match="packed"):
        weightshare.cluster_file(BERT, str(tmp_path / "x.safetensors"), 4, packed="yes")
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------------- axis
def test_axis_overrides_the_channel_axis_safetensors(tmp_path):
    out = str(tmp_path / "cols.safetensors")
    name = "encoder.layer.0.intermediate.dense.weight"        # [64, 32]
    weightshare.cluster_file(BERT, out, 2, layers=[name], per_channel=True, axis=1)
    w = {r.name: r.value for r in weightshare.read_weights(out)}[name]
    assert all(np.unique(w[:, j]).size <= 2 for j in range(w.shape[1]))     # per column
    assert max(np.unique(w[i]).size for i in range(w.shape[0])) > 2         # not per row
    h, _ = header_of(out)
    assert json.loads(h["__metadata__"]["weightshare"])["axis"] == 1


def test_axis_on_keras_files_and_its_errors(tmp_path):
    digits = weightshare.examples.path("digits.keras")
    out = str(tmp_path / "d.keras")
    weightshare.cluster_file(digits, out, 3, per_channel=True, axis=0)
    w = {r.name: r.value for r in weightshare.read_weights(out)}["fc1/kernel"]
    assert all(np.unique(w[i]).size <= 3 for i in range(w.shape[0]))
    with pytest.raises(TensorArgumentError, match=r"fc1/kernel: axis=2 is out of range"):
        weightshare.cluster_file(digits, str(tmp_path / "e.keras"), 3, per_channel=True,
                                 axis=2)
    with pytest.raises(ValueError, match="axis=0 needs per_channel"):
        weightshare.cluster_file(digits, str(tmp_path / "e.keras"), 3, axis=0)
    with pytest.raises(TypeError, match="axis must be an integer"):
        weightshare.cluster_file(digits, str(tmp_path / "e.keras"), 3, per_channel=True,
                                 axis=1.0)
    assert os.listdir(tmp_path) == ["d.keras"]


# ---------------------------------------------------------------------- hostile packed files
@pytest.fixture(scope="module")
def packed_bert(tmp_path_factory):
    """BERT with SOME tensors clustered to 16 values, packed (made once)."""
    out = str(tmp_path_factory.mktemp("packed") / "bert.safetensors")
    weightshare.cluster_file(BERT, out, 16, layers=SOME[BERT], packed=True)
    return out


def rewrite_header(path, edit):
    """The packed file at `path` with its header edited by `edit(header)` (data kept)."""
    h, start = header_of(path)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    edit(h)
    raw = json.dumps(h).encode()
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw + data)


NAME = "encoder.layer.0.attention.self.query.weight"


def _spec_edit(**changes):
    def edit(h):
        note = json.loads(h["__metadata__"]["weightshare"])
        note["packed"]["tensors"][NAME].update(changes)
        h["__metadata__"]["weightshare"] = json.dumps(note)
    return edit


def _out_of_range(h):
    # a codebook of one value: the indices (0..15) point past it
    b, _ = h[NAME + ".ws_codebook"]["data_offsets"]
    h[NAME + ".ws_codebook"]["shape"] = [1]
    h[NAME + ".ws_codebook"]["data_offsets"] = [b, b + 4]


def _version(h):
    note = json.loads(h["__metadata__"]["weightshare"])
    note["packed"]["version"] = 99
    h["__metadata__"]["weightshare"] = json.dumps(note)


@pytest.mark.parametrize("edit,words", [
    (_spec_edit(shape=[64, 32]), ("its indices is U8 of shape (512,)",
                                  "do not hold F32 of shape (64, 32)")),
    (_spec_edit(shape=[32, -1]), "shape [32, -1]"),
    (_spec_edit(bits=2), "its indices is U8 of shape (512,)"),
    (_spec_edit(bits=40), "bits 40"),
    (_spec_edit(dtype="I8"), "dtype 'I8'"),
    (_spec_edit(layout="channels", axis=5, group_size=1), "axis 5"),
    (_spec_edit(layout="rows"), "layout 'rows'"),
    (_spec_edit(scaled=True, layout="channels", axis=0, group_size=1), "no '"),
    (_out_of_range, "out of range of its codebook of 1 values"),
    (_version, "version 99"),
    (lambda h: h.pop(NAME + ".ws_codebook"), "holds no"),
])
def test_hostile_packed_files_are_one_line_errors(tmp_path, packed_bert, edit, words):
    packed = str(tmp_path / "packed.safetensors")
    shutil.copyfile(packed_bert, packed)
    rewrite_header(packed, edit)
    for call in (lambda: weightshare.load_packed(packed),
                 lambda: unpack_packed(packed, str(tmp_path / "u.safetensors"))):
        with pytest.raises(FileFormatError) as info:
            call()
        msg = str(info.value)
        words = (words,) if isinstance(words, str) else words
        assert "\n" not in msg and packed in msg and any(w in msg for w in words), msg
        assert NAME in msg or "__metadata__" in msg, msg
    assert not os.path.exists(tmp_path / "u.safetensors")


def test_truncated_packed_file(tmp_path, packed_bert):
    packed = str(tmp_path / "packed.safetensors")
    shutil.copyfile(packed_bert, packed)
    size = os.path.getsize(packed)
    with open(packed, "r+b") as f:
        f.truncate(size - 100)
    with pytest.raises(FileFormatError) as info:
        weightshare.load_packed(packed)
    assert packed in str(info.value) and "\n" not in str(info.value)


def test_load_packed_refuses_the_hardening_corpus_packed_cases(tmp_path):
    from hardening import corpus
    b = corpus._Builder(0)
    corpus.safetensors_cases(b)             # the safetensors part of corpus.build()
    cases = [c for c in b.cases if c.what.startswith("a packed .safetensors")]
    assert len(cases) == 3
    for i, case in enumerate(cases):
        path = tmp_path / f"{i}.safetensors"
        path.write_bytes(dict(case.files)["m.safetensors"])
        with pytest.raises(FileFormatError) as info:
            weightshare.load_packed(path)
        assert str(path) in str(info.value) and "\n" not in str(info.value)
        assert ": w: " in str(info.value) or "__metadata__" in str(info.value)


@pytest.mark.parametrize("src", [BERT, BERT_SHARDED])
def test_unpack_file_and_the_cli_give_the_plain_output(tmp_path, src, capsys):
    """weightshare unpack (and unpack_file) on a packed checkpoint: the plain output, byte
    for byte; --dry-run writes nothing and says the same size."""
    from weightshare.cli import main
    plain, packed = run_both(tmp_path, src, 16, layers=SOME.get(src))
    ext = ".safetensors" if src.endswith(".safetensors") else ""
    out = str(tmp_path / f"api{ext}")
    res = weightshare.unpack_file(packed, out)
    assert same_tree(plain, out) and res.dst == out and not res.dry_run
    dry = weightshare.unpack_file(packed, dry_run=True)
    assert dry.size_after == res.size_after and dry.sha256 == res.sha256
    cli = str(tmp_path / f"cli{ext}")
    assert main(["unpack", packed, "-o", cli, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["sha256"] == res.sha256
    assert same_tree(plain, cli)
