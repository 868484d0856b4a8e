"""The examples of the removal docs run and print what they say (docs/removal.md, docstrings)."""

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.mark.parametrize("name", ["weightshare.remove", "weightshare._remove._graph",
                                  "weightshare._remove._optimizer"])
def test_removal_docstring_examples(name, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.attempted > 0 and result.failed == 0


def test_removal_page_examples(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / "docs" / "removal.md"), module_relative=False,
                              optionflags=FLAGS)
    assert result.attempted > 0 and result.failed == 0


def test_index_links_the_removal_page():
    assert "[removal.md](removal.md)" in (ROOT / "docs" / "index.md").read_text()
