"""``weightshare cluster --packed`` and ``--axis``: the CLI passes them to cluster_file."""

import os
import pathlib

import numpy as np

import weightshare
from weightshare.cli import main

ROOT = pathlib.Path(__file__).resolve().parents[2]
BERT = ROOT / "tests" / "fixtures" / "safetensors" / "tiny_bert" / "model.safetensors"
QUERY = "encoder.layer.0.attention.self.query.weight"


def cli(argv):
    try:
        return main([str(a) for a in argv])
    except SystemExit as exc:
        return exc.code


def test_packed_flag_writes_a_file_load_packed_reads(tmp_path, capsys):
    plain, packed = tmp_path / "plain.safetensors", tmp_path / "packed.safetensors"
    common = [BERT, "-k", "8", "--layers", QUERY, "--seed", "0", "--quiet"]
    assert cli(["cluster", *common, "-o", plain]) == 0
    assert cli(["cluster", *common, "-o", packed, "--packed"]) == 0
    names = {r.name for r in weightshare.read_weights(packed, values=False)}
    assert {QUERY + ".ws_indices", QUERY + ".ws_codebook"} <= names and QUERY not in names
    want = {r.name: r.value for r in weightshare.read_weights(plain)}[QUERY]
    assert np.array_equal(weightshare.load_packed(packed)[QUERY], want)


def test_packed_on_a_keras_file_is_one_line_error(tmp_path, capsys):
    out = tmp_path / "x.keras"
    assert cli(["cluster", weightshare.examples.path("digits.keras"), "-o", out, "-k", "4",
                "--packed"]) != 0
    err = capsys.readouterr().err
    assert "safetensors files only" in err and len(err.strip().splitlines()) == 1
    assert not os.path.exists(out)


def test_axis_flag(tmp_path, capsys):
    out = tmp_path / "cols.safetensors"
    assert cli(["cluster", BERT, "-o", out, "-k", "2", "--layers", QUERY, "--per-channel",
                "--axis", "-1", "--quiet"]) == 0
    w = {r.name: r.value for r in weightshare.read_weights(out)}[QUERY]
    assert all(np.unique(w[:, j]).size <= 2 for j in range(w.shape[1]))
    assert cli(["cluster", BERT, "-o", tmp_path / "e.safetensors", "-k", "2", "--layers", QUERY,
                "--per-channel", "--axis", "2"]) != 0
    assert f"{QUERY}: axis=2 is out of range" in capsys.readouterr().err
    assert cli(["cluster", BERT, "-o", tmp_path / "e.safetensors", "-k", "2", "--axis", "x"]) == 2
    assert not os.path.exists(tmp_path / "e.safetensors")


def test_help_describes_the_flags(capsys):
    assert cli(["cluster", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "--packed" in text and "NAME.ws_indices" in text and "load_packed" in text
    assert "--axis AXIS" in text and "[out, in]" in text
