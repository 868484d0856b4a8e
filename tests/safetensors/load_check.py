"""Run in the 'st' venv: load original and rewritten checkpoints with safetensors and transformers.

    python load_check.py ORIGINAL REWRITTEN CLASS     (CLASS: BertModel or LlamaForCausalLM)

Prints JSON: the largest |output difference| between the two models on fixed token ids, whether
every tensor of each shard loads with safetensors.torch, and the rewritten model's output when its
state dict is replaced by the tensors weightshare read (sent as .npz on stdin's path argv[4]).
"""

import json
import sys

import numpy as np
import torch
import transformers
from safetensors.torch import load_file


def outputs(model, ids):
    with torch.no_grad():
        out = model(input_ids=ids)
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state).float().numpy()


def main(original, rewritten, cls, reference):
    cls = getattr(transformers, cls)
    ids = torch.tensor([[1, 5, 9, 17, 33, 65, 99, 2]])
    a = cls.from_pretrained(original).eval()
    b = cls.from_pretrained(rewritten).eval()
    ref = np.load(reference)
    state = {k: torch.from_numpy(ref[k]).to(v.dtype) for k, v in b.state_dict().items()
             if k in ref.files}
    c = cls.from_pretrained(original).eval()
    c.load_state_dict(state, strict=False)
    import glob
    import os
    shards = sorted(glob.glob(os.path.join(rewritten, "*.safetensors")))
    n = sum(len(load_file(s)) for s in shards)
    oa, ob, oc = outputs(a, ids), outputs(b, ids), outputs(c, ids)
    print(json.dumps({"max_diff_vs_original": float(np.max(np.abs(oa - ob))),
                      "scale": float(np.max(np.abs(oa))),
                      "max_diff_vs_numpy_weights": float(np.max(np.abs(ob - oc))),
                      "tensors_loaded": n}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
