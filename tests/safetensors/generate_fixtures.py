"""Write the safetensors fixtures with the real libraries (run in the 'st' venv).

    DIR/st/bin/python tests/safetensors/generate_fixtures.py [OUT]   (default tests/fixtures/safetensors)

DIR/st is built by tests/keras/setup_venvs.sh (torch CPU, safetensors, transformers). Writes:

- ``numpy_dtypes.safetensors``: safetensors.numpy, F64/F32/F16 matrices and vectors, integer and
  bool tensors, a ``__metadata__``;
- ``torch_dtypes.safetensors``: safetensors.torch, BF16 matrices and a bias, F8_E4M3 and F8_E5M2
  matrices, an F16 norm weight;
- ``numpy_dtypes.values.npz``, ``torch_dtypes.values.npz``: each tensor's values as the library
  loads them (bfloat16 and float8 widened to float32 by torch), the reference of the reader's test;
- ``fp8_codes.safetensors``: every one of the 256 codes of each float8 format (as F8 tensors) and
  the float32 value torch gives each (``e4m3_values``, ``e5m2_values``): the reference of the
  decoder's test;
- ``tiny_bert/``: a random BertModel (hidden 32, 2 layers) from ``save_pretrained``;
- ``tiny_bert_sharded/``: the same model saved with ``max_shard_size="40KB"`` (an index + shards);
- ``tiny_llama_bf16/``: a random LlamaForCausalLM (hidden 32, 2 layers) in bfloat16, sharded.

Everything is seeded; nothing is downloaded (configs are built here).
"""

import os
import shutil
import sys

import numpy as np
import torch
from safetensors.numpy import save_file as save_numpy
from safetensors.numpy import load_file as load_numpy
from safetensors.torch import load_file as load_torch, save_file as save_torch

HERE = os.path.dirname(os.path.abspath(__file__))


def main(out):
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(0)
    save_numpy({
        "layer.0.dense.weight": rng.standard_normal((16, 8)).astype(np.float32),
        "layer.0.dense.bias": rng.standard_normal(16).astype(np.float32),
        "layer.1.conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float16),
        "layer.1.norm.weight": np.ones(4, np.float16),
        "head.weight": rng.standard_normal((5, 16)),                      # float64
        "embeddings.position_embeddings.weight": rng.standard_normal((6, 8)).astype(np.float32),
        "position_ids": np.arange(6, dtype=np.int64)[None],
        "counts": np.arange(7, dtype=np.int32),
        "codes": np.arange(9, dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty.weight": np.zeros((0, 4), np.float32),
    }, os.path.join(out, "numpy_dtypes.safetensors"), metadata={"format": "np", "note": "fixture"})

    torch.manual_seed(0)
    save_torch({
        "model.layers.0.mlp.up_proj.weight": torch.randn(24, 16).to(torch.bfloat16),
        "model.layers.0.mlp.up_proj.bias": torch.randn(24).to(torch.bfloat16),
        "model.layers.0.self_attn.q_proj.weight": (torch.randn(16, 16) * 4).to(torch.float8_e4m3fn),
        "model.layers.0.self_attn.k_proj.weight": (torch.randn(16, 16) * 4).to(torch.float8_e5m2),
        "model.layers.0.input_layernorm.weight": torch.ones(16, dtype=torch.float16),
        "lm_head.weight": torch.randn(10, 16).to(torch.bfloat16),
    }, os.path.join(out, "torch_dtypes.safetensors"), metadata={"format": "pt"})

    np.savez(os.path.join(out, "numpy_dtypes.values.npz"),
             **load_numpy(os.path.join(out, "numpy_dtypes.safetensors")))
    loaded = load_torch(os.path.join(out, "torch_dtypes.safetensors"))
    np.savez(os.path.join(out, "torch_dtypes.values.npz"),
             **{k: (v.to(torch.float32) if v.dtype in (torch.bfloat16, torch.float8_e4m3fn,
                                                       torch.float8_e5m2) else v).numpy()
                for k, v in loaded.items()})

    codes = torch.arange(256, dtype=torch.int32).to(torch.uint8)
    save_torch({
        "e4m3_codes": codes.clone().view(torch.float8_e4m3fn),
        "e4m3_values": codes.view(torch.float8_e4m3fn).to(torch.float32),
        "e5m2_codes": codes.clone().view(torch.float8_e5m2),
        "e5m2_values": codes.view(torch.float8_e5m2).to(torch.float32),
    }, os.path.join(out, "fp8_codes.safetensors"))

    from transformers import BertConfig, BertModel, LlamaConfig, LlamaForCausalLM
    torch.manual_seed(1)
    bert = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=4, intermediate_size=64,
                                max_position_embeddings=32))
    for name, kwargs in (("tiny_bert", {}), ("tiny_bert_sharded", {"max_shard_size": "40KB"})):
        path = os.path.join(out, name)
        shutil.rmtree(path, ignore_errors=True)
        bert.save_pretrained(path, **kwargs)
    torch.manual_seed(2)
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                                         num_attention_heads=4, num_key_value_heads=2,
                                         intermediate_size=64, max_position_embeddings=32,
                                         tie_word_embeddings=False)).to(torch.bfloat16)
    path = os.path.join(out, "tiny_llama_bf16")
    shutil.rmtree(path, ignore_errors=True)
    llama.save_pretrained(path, max_shard_size="30KB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else
         os.path.join(HERE, "..", "fixtures", "safetensors"))
