"""``weightshare report``: the file on disk, printed before the per-tensor table, and in --json."""

import json

import weightshare
from weightshare.cli import main
from weightshare.cli._report import PER_TENSOR

DIGITS = weightshare.examples.path("digits.keras")


def test_the_file_comes_first_then_the_tensors(capsys):
    assert main(["report", DIGITS]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("file on disk: 104,487 bytes")
    assert [ln.split()[0] for ln in lines[1:5]] == ["weights", "optimizer", "config/metadata",
                                                    "overhead"]
    blank = lines.index("")
    assert lines[blank + 1] == PER_TENSOR and lines[blank + 2].split()[0] == "tensor"


def test_json_carries_the_same_numbers(capsys):
    assert main(["report", DIGITS, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["disk"]
    assert got == weightshare.disk_usage(DIGITS).to_dict()


def test_no_disk_leaves_it_out(capsys):
    assert main(["report", DIGITS, "--no-disk"]) == 0
    assert capsys.readouterr().out.split()[0] == "tensor"
    assert main(["report", DIGITS, "--no-disk", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["disk"] is None


def test_help_describes_the_flag(capsys):
    try:
        main(["report", "--help"])
    except SystemExit:
        pass
    assert "--no-disk" in capsys.readouterr().out
