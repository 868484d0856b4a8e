"""A removed, compressed (and stripped) file loads in the Keras that wrote it (marker ``keras``).

For each producer (Keras 3 on jax, tf-keras), the trained fixture (``.keras`` and legacy ``.h5``)
has 4 units of ``fc1`` removed three ways: plain, ``compress=True``, and ``compress=True,
strip=True``. tests/keras/load_check.py loads each the default way: all load, with the same
weights bit for bit (sha256 of every variable), the stripped one uncompiled and with no warning
about optimizer variables.
"""

import json
import pathlib
import subprocess

import pytest

import weightshare
from keras_env import keras_python

ROOT = pathlib.Path(__file__).resolve().parents[2]
FIX = ROOT / "tests" / "fixtures" / "keras"
CHECK = ROOT / "tests" / "keras" / "load_check.py"


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("producer", [pytest.param("k3", marks=pytest.mark.exhaustive), "k2"])
def test_removed_and_compressed_files_load_with_the_same_weights(producer, tmp_path):
    jobs, groups = [], []
    for suffix in (".keras", ".h5"):
        src = FIX / f"{producer}_trained{suffix}"
        # Keras 3 cannot compile its own legacy .h5 with loss="mse" (an unstripped one)
        unstripped = {"compile": False} if (producer, suffix) == ("k3", ".h5") else {}
        group = []
        for tag, kw in (("plain", {}), ("c", {"compress": True}),
                        ("sc", {"compress": True, "strip": True})):
            out = tmp_path / f"{tag}{suffix}"
            weightshare.remove_units(src, out, layer="fc1", units=[0, 3, 5, 7], **kw)
            jobs.append({"file": str(out), **({} if kw.get("strip") else unstripped)})
            group.append(str(out))
        assert pathlib.Path(group[1]).stat().st_size < pathlib.Path(group[0]).stat().st_size
        groups.append(group)
    path = tmp_path / "jobs.json"
    path.write_text(json.dumps(jobs))
    out = subprocess.run([keras_python(producer), str(CHECK), "--producer", producer, str(path)],
                         capture_output=True, text=True, timeout=600)
    rows = {row["file"]: row for row in map(json.loads, (
        line for line in out.stdout.splitlines() if line.startswith("{")))}
    assert len(rows) == len(jobs), out.stderr[-2000:]
    for plain, comp, stripped in groups:
        for path in (plain, comp, stripped):
            assert rows[path]["ok"], (path, rows[path]["error"])
        assert rows[plain]["shapes"][0] == [8, 12]
        assert rows[comp]["weights"] == rows[plain]["weights"]
        assert rows[stripped]["weights"] == rows[plain]["weights"]
        assert not rows[stripped]["compiled"]
        assert not [w for w in rows[stripped]["warnings"] if "optimizer" in w.lower()], \
            rows[stripped]["warnings"]
