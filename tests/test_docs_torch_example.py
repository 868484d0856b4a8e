"""docs/examples/torch_keep_structure.py, run with real PyTorch (the ``st`` interpreter).

weightshare imports no framework, so the example runs in a subprocess with the interpreter named
by ``WEIGHTSHARE_ST_PYTHON`` (torch + safetensors; tests/keras/setup_venvs.sh) and the repository
root on PYTHONPATH. Unset: skipped, unless ``WEIGHTSHARE_REQUIRE_KERAS=1``, where it fails.
"""

import json
import os
import pathlib
import subprocess

import pytest

from keras_env import keras_python

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "examples" / "torch_keep_structure.py"


@pytest.mark.keras
@pytest.mark.slow
def test_the_pytorch_loop_keeps_zeros_and_shared_values(tmp_path):
    python = keras_python("st")
    env = dict(os.environ, PYTHONPATH=str(ROOT), CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([python, str(EXAMPLE), "--steps", "60"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["zeros_before"] == 1024 and out["zeros_kept"]          # 80 % of 64 x 20, pinned
    assert out["nonzero_after"] == 1280 - 1024
    assert out["distinct_before"] == 8 and out["distinct_after"] <= 8
    assert out["values_trained"]
