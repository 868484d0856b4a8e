"""The examples in the docstrings and in docs/*.md run and print what they say.

Modules and pages are listed explicitly; a page or module that other parts of
the project add registers itself here.
"""

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

MODULES = ["weightshare.cluster", "weightshare.files", "weightshare.testing.checks", "weightshare.testing.oracles",
           "weightshare.prune", "weightshare.encode", "weightshare.report",
           "weightshare.forward", "weightshare.compare", "weightshare._prune_file"]
PAGES = ["docs/clustering.md", "docs/testing.md", "docs/files.md", "docs/pruning.md", "docs/format.md",
         "docs/report.md", "docs/deep_compression.md"]


@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.parametrize("page", PAGES)
def test_page_examples(page, monkeypatch):
    monkeypatch.chdir(ROOT)
    result = doctest.testfile(str(ROOT / page), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 0, f"{page} has no examples"
    assert result.failed == 0
