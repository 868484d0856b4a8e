"""The removal page is linked from the index (its examples run in tests/test_docs.py)."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_index_links_the_removal_page():
    assert "[removal.md](removal.md)" in (ROOT / "docs" / "index.md").read_text()
