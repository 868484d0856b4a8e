"""``weightshare cluster --jobs N``: the same output as --jobs 1; a bad N names the flag."""

import json

import pytest

import weightshare
from weightshare.cli import main
from weightshare._base import _parallel

DIGITS = weightshare.examples.path("digits.keras")


def test_jobs_2_writes_what_jobs_1_writes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(_parallel, "PARALLEL_MIN_ENTRIES", 0)     # a pool even for this file
    outs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.keras"
        assert main(["cluster", DIGITS, "-o", str(out), "-k", "8", "--jobs", jobs,
                     "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["tensors"]
        assert all(r.pop("seconds") >= 0 and r["method"] == "auto" for r in rows)
        outs.append((out.read_bytes(), rows))
    assert outs[0] == outs[1]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_a_bad_jobs_value_names_the_flag(value, capsys):
    with pytest.raises(SystemExit) as info:
        main(["cluster", DIGITS, "--dry-run", "-k", "8", "--jobs", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--jobs" in err and "expected an integer >= 1" in err and "\n" == err[-1]


def test_help_describes_jobs(capsys):
    with pytest.raises(SystemExit):
        main(["cluster", "--help"])
    assert "--jobs N" in capsys.readouterr().out
