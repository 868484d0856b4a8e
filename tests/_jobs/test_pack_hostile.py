"""pack over the hardening corpus (a sample): the file back byte for byte, or one line, nothing written.

The corpus (``tests/hardening/corpus.py``: truncated, bit-flipped, forged and
hostile Keras, NumPy and safetensors inputs) is built once per pytest run and
shared with ``tests/test_hardening.py``. Every 25th case is packed: either the
pack unpacks to the input's exact bytes, or pack refuses in one line naming
the input and leaves the output folder empty. The whole corpus (1,182 cases:
622 packed, 560 refused) is run by
``PYTHONPATH=.:tests python tests/_jobs/test_pack_hostile.py``.
"""

import os
import pathlib
import sys

import pytest

import weightshare
from hardening import corpus
from run_cache import once, run_folder

STEP = 25


@pytest.fixture(scope="module")
def cases(tmp_path_factory):
    return once(run_folder(tmp_path_factory), "hardening-corpus", lambda: corpus.build(seed=0))


def outcome(case, folder):
    """'packed' or 'refused' for one case; AssertionError on anything else."""
    src = corpus.materialize(case, folder / "in")
    out = folder / "out"
    out.mkdir()
    try:
        weightshare.pack_file(src, out / "p.wsz")
    except (ValueError, OSError) as exc:        # FileFormatError is a ValueError
        text = str(exc)
        assert "\n" not in text and text, (case.id, text)
        assert os.listdir(out) == [], case.id
        return "refused"
    weightshare.unpack_file(out / "p.wsz", out / "back")
    assert (out / "back").read_bytes() == pathlib.Path(src).read_bytes(), case.id
    return "packed"


def test_a_sample_of_the_corpus_packs_exactly_or_is_refused(cases, tmp_path):
    seen = {"packed": 0, "refused": 0}
    for i, case in enumerate(cases[::STEP]):
        seen[outcome(case, tmp_path / str(i))] += 1
    assert seen["packed"] > 5 and seen["refused"] > 5, seen


if __name__ == "__main__":         # the whole corpus
    import tempfile
    totals = {"packed": 0, "refused": 0}
    with tempfile.TemporaryDirectory() as tmp:
        for i, case in enumerate(corpus.build(seed=0)):
            totals[outcome(case, pathlib.Path(tmp) / str(i))] += 1
    print(totals, file=sys.stderr)
