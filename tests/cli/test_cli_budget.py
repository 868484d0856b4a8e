"""weightshare cluster --bits / --size / --max-k: the table's k, the budget line, the JSON
budget object (validated against the one schema), one-line errors, nothing written."""

import json

import pytest

import weightshare
from weightshare.cli import main

from test_cli_json import validate  # the one schema validator (tests/cli is on sys.path)

DIGITS = weightshare.examples.path("digits.keras")


def test_bits_prints_the_budget_line(capsys):
    assert main(["cluster", DIGITS, "--dry-run", "--bits", "3"]) == 0
    out = capsys.readouterr().out
    assert "budget 3 bits per weight: used 3" in out and "best uniform k=8" in out


def test_size_json_has_the_budget(capsys):
    assert main(["cluster", DIGITS, "--dry-run", "--size", "3kB", "--max-k", "32", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert validate(doc) == []
    b = doc["budget"]
    assert b["kind"] == "size" and b["limit"] == 3000 and b["used"] <= 3000
    assert max(t["k"] for t in doc["tensors"]) <= 32
    assert b["total_sse"] <= b["uniform_sse"]


def test_k_json_has_a_null_budget(capsys):
    assert main(["cluster", DIGITS, "--dry-run", "-k", "4", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["budget"] is None


@pytest.mark.parametrize("argv, message", [
    (["--bits", "3", "-k", "4"], "-k/--k and --bits exclude each other"),
    (["--bits", "3", "--size", "3kB"], "--bits and --size exclude each other"),
    (["--bits", "0.5"], "bits=0.5 is below what k = 2"),
    (["--size", "1x"], "argument --size"),
    (["--bits", "nan"], "argument --bits"),
    (["-k", "4", "--max-k", "8"], "--max-k goes with --bits or --size"),
])
def test_errors_are_one_line_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "o.keras"
    try:
        code = main(["cluster", DIGITS, "-o", str(out), *argv])
    except SystemExit as exc:       # argparse's own errors
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_rate_flag_reaches_the_solver(capsys):
    assert main(["cluster", DIGITS, "--dry-run", "-k", "8", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)["total"]["sse"]
    assert main(["cluster", DIGITS, "--dry-run", "-k", "8", "--rate", "0.002", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert validate(doc) == [] and doc["total"]["sse"] > plain
