"""The progress bar of every command that walks a file (cluster, prune, report, compare)."""

import io
import sys

import pytest

import weightshare
from weightshare.cli import main
from weightshare.cli._common import Progress
from weightshare.compare import compare_models, load_array

DIGITS = weightshare.examples.path("digits.keras")
DIGITS_TEST = weightshare.examples.path("digits_test.npz")


class _Rec:
    def __init__(self, name, shape):
        self.name, self.shape = name, shape


def test_the_line_says_tensors_done_rate_and_time_left():
    p = Progress("clustering")
    p.params = 3_000_000
    line = p.line(3, 12, _Rec("dense/kernel", (1000, 1000)), elapsed=1.5)
    assert "3/12" in line and "2.0M params/s" in line and "0:04 left" in line
    assert "dense/kernel" in line


def test_silent_when_not_a_terminal_or_quiet(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    for p in (Progress("x"), Progress("x", quiet=True, minimum=0)):
        for i in range(1, 10):
            p(i, 9, _Rec(f"t{i}", (4,)))
        p.close()
    assert err.getvalue() == ""


def test_drawn_on_a_terminal_and_erased(monkeypatch):
    class Tty(io.StringIO):
        def isatty(self):
            return True
    err = Tty()
    monkeypatch.setattr(sys, "stderr", err)
    p = Progress("measuring", minimum=0)
    p(1, 2, _Rec("a\x1b[31m", (10,)))       # a name from a file: escaped
    p.close()
    text = err.getvalue()
    assert "measuring" in text and "1/2" in text and "\x1b" not in text
    assert text.endswith("\r")


def test_report_and_compare_call_their_progress():
    calls = []
    weightshare.report(DIGITS, progress=lambda *a: calls.append(a))
    assert [c[:2] for c in calls] == [(i, len(calls)) for i in range(1, len(calls) + 1)]
    assert all(hasattr(c[2], "shape") for c in calls) and len(calls) >= 3
    steps = []
    compare_models(DIGITS, DIGITS, load_array(DIGITS_TEST)[:4],
                   progress=lambda *a: steps.append(a))
    assert [s[:2] for s in steps] == [(1, 3), (2, 3), (3, 3)]
    with pytest.raises(TypeError, match="progress must be callable"):
        weightshare.report(DIGITS, progress=3)


@pytest.mark.parametrize("argv", [["report", DIGITS, "--quiet"],
                                  ["compare", DIGITS, DIGITS, "--inputs", DIGITS_TEST,
                                   "--quiet"]])
def test_report_and_compare_take_quiet(argv, capsys):
    assert main(argv) == 0
    assert capsys.readouterr().err == ""
