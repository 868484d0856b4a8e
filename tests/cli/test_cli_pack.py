"""``weightshare pack`` / ``weightshare unpack``: the round trip, --dry-run, one-line refusals."""

import os
import pathlib

import weightshare
from weightshare.cli import main

DIGITS = pathlib.Path(weightshare.examples.path("digits.keras"))


def test_pack_then_unpack_gives_the_file_back(tmp_path, capsys):
    assert main(["pack", str(DIGITS), "-o", str(tmp_path / "d.wsz")]) == 0
    out = capsys.readouterr().out
    assert "file size: 104487 ->" in out and "byte for byte" in out
    assert main(["unpack", str(tmp_path / "d.wsz"), "-o", str(tmp_path / "d.keras")]) == 0
    assert "(checked)" in capsys.readouterr().out
    assert (tmp_path / "d.keras").read_bytes() == DIGITS.read_bytes()


def test_dry_run_writes_nothing_and_needs_no_output(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pack", str(DIGITS), "--dry-run"]) == 0
    assert "dry run: nothing written" in capsys.readouterr().out
    assert os.listdir(tmp_path) == []
    weightshare.pack_file(DIGITS, tmp_path / "d.wsz")
    assert main(["unpack", "d.wsz", "--dry-run"]) == 0
    assert os.listdir(tmp_path) == ["d.wsz"]


def test_a_bad_pack_is_one_line_exit_2_nothing_written(tmp_path, capsys):
    bad = tmp_path / "bad.wsz"
    bad.write_bytes(DIGITS.read_bytes())
    assert main(["unpack", str(bad), "-o", str(tmp_path / "o.keras")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a weightshare pack" in err and str(bad) in err
    weightshare.pack_file(DIGITS, bad)
    bad.write_bytes(bad.read_bytes()[:-7])
    assert main(["unpack", str(bad), "-o", str(tmp_path / "o.keras")]) == 2
    assert "damaged or truncated" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["bad.wsz"]


def test_output_is_required_without_dry_run(tmp_path, capsys):
    assert main(["pack", str(DIGITS)]) == 2
    assert "give -o OUT" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_help_describes_every_flag(capsys):
    for command in ("pack", "unpack"):
        try:
            main([command, "--help"])
        except SystemExit as exc:
            assert exc.code == 0
        text = capsys.readouterr().out
        assert all(flag in text for flag in ("--output", "--dry-run", "--json", "byte for byte"))
