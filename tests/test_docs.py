"""The examples in the docstrings and in docs/*.md run and print what they say.

Nothing is listed by hand: every module of the package and every page under
docs/ whose text holds a ``>>>`` example is found by walking the folders, so
a module or page that is added or renamed is tested without editing this file.
"""

import doctest
import importlib
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PKG = ROOT / "weightshare"
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def _module_name(path):
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = sorted(_module_name(p) for p in PKG.rglob("*.py") if ">>> " in p.read_text())
PAGES = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").rglob("*.md")
               if ">>> " in p.read_text())


def test_the_walk_finds_the_examples_we_know_of():
    assert {"weightshare.cluster", "weightshare.remove", "weightshare.files"} <= set(MODULES)
    assert {"docs/clustering.md", "docs/removal.md"} <= set(PAGES)


@pytest.mark.filterwarnings("error")   # a warning fails the example (issue 25)
@pytest.mark.parametrize("name", MODULES)
def test_module_docstring_examples(name, monkeypatch, tmp_path):
    # as test_page_examples: from a folder without the checkout's examples/ (issue 25, item 10)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(importlib.import_module(name), optionflags=FLAGS)
    assert result.attempted > 0, f"{name} has no examples"
    assert result.failed == 0


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("page", PAGES)
def test_page_examples(page, monkeypatch, tmp_path):
    # from a folder without the checkout's examples/: the bundled files come from
    # weightshare.examples.path (tests/fixtures, not bundled, stay reachable for removal.md)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    monkeypatch.chdir(tmp_path)
    assert not (tmp_path / "examples").exists()
    result = doctest.testfile(str(ROOT / page), module_relative=False, optionflags=FLAGS)
    assert result.attempted > 0, f"{page} has no examples"
    assert result.failed == 0
