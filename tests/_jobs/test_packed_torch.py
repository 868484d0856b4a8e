"""A packed checkpoint in real PyTorch: the library loads it, and the one-liner of docs/files.md
(``load_state_dict({k: torch.from_numpy(v) for k, v in load_packed(p).items()})``) gives the model
the plain output's weights. Runs tests/safetensors/load_check.py in the ``st`` interpreter
(torch + safetensors + transformers; tests/keras/setup_venvs.sh): unset, skipped unless
``WEIGHTSHARE_REQUIRE_KERAS=1``. ``load_packed`` itself runs here (the st venv has no h5py)."""

import json
import os
import subprocess

import numpy as np
import pytest

import weightshare
from keras_env import keras_python

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(TESTS, "fixtures", "safetensors")

_LOAD = """
import json, sys, glob, os
from safetensors.torch import load_file
n = {os.path.basename(p): sorted(load_file(p)) for p in sorted(glob.glob(os.path.join(sys.argv[1], "*.safetensors")))}
print(json.dumps(n))
"""


@pytest.mark.keras
@pytest.mark.slow
@pytest.mark.parametrize("model, cls, opts", [
    pytest.param("tiny_bert_sharded", "BertModel", {}, marks=pytest.mark.exhaustive),
    # --exhaustive (CI) only: in the README's test command, load_packed equals the plain output
    # bit for bit (test_packed.py) and the plain output loads in transformers (test_safetensors)
    pytest.param("tiny_llama_bf16", "LlamaForCausalLM", {"per_channel_scale": True, "group_size": 8},
                 marks=pytest.mark.exhaustive)])
def test_packed_checkpoint_in_torch(tmp_path, model, cls, opts):
    python = keras_python("st")
    src = os.path.join(FIX, model)
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    weightshare.cluster_file(src, plain, 16, random_state=0, **opts)
    weightshare.cluster_file(src, packed, 16, random_state=0, packed=True, **opts)
    # the safetensors library reads the packed shards: the parts, under their names
    res = subprocess.run([python, "-c", _LOAD, str(packed)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    names = [n for shard in json.loads(res.stdout).values() for n in shard]
    assert any(n.endswith(".ws_indices") for n in names)
    assert any(n.endswith(".ws_codebook") for n in names)
    # the one-liner's arrays, loaded into the model, give the plain checkpoint's outputs exactly
    ref = tmp_path / "ref.npz"
    np.savez(ref, **weightshare.load_packed(packed))
    res = subprocess.run([python, os.path.join(TESTS, "safetensors", "load_check.py"), src,
                          str(plain), cls, str(ref)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    got = json.loads(res.stdout.strip().splitlines()[-1])
    assert got["max_diff_vs_numpy_weights"] == 0.0
    assert got["max_diff_vs_original"] <= 0.2 * got["scale"]
