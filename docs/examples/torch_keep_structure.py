"""Keep the structure while training in PyTorch: ``weightshare.structure_of`` + ``project``.

weightshare imports no framework; this example imports torch. The structure (pruned zeros,
the cluster of each weight) is read once from the pruned and clustered weights, and put back
after every optimizer step, in one call. Run it with torch and weightshare importable::

    PYTHONPATH=. python docs/examples/torch_keep_structure.py --check

It prunes the first layer of a small MLP to 80 % zeros, clusters it to 8 shared values (zero
one of them), trains 60 Adam steps on synthetic data and prints one JSON line. ``--check``
exits with status 1 unless the zeros stayed zero, at most 8 values remain, and the shared
values trained.
"""

import argparse
import json
import sys

import numpy as np
import torch

import weightshare


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--check", action="store_true", help="exit 1 unless the structure held")
    args = ap.parse_args(argv)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    x = torch.randn(512, 20)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()

    # prune and cluster the first layer's weight (arrays in, arrays out)
    w = model[0].weight.detach().numpy()
    shared = weightshare.cluster(weightshare.prune(w, sparsity=0.8).values, 8).values
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(shared))

    # read the structure once (only the tensors to keep: a zero-initialised bias would be pinned)
    params = {"0.weight": model[0].weight}
    structure = weightshare.structure_of({n: p.detach().numpy() for n, p in params.items()})

    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(args.steps):
        batch = slice(32 * step % 512, 32 * step % 512 + 32)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
        opt.step()
        with torch.no_grad():                                  # the one line per step
            for n, v in structure.project({n: p.detach().numpy() for n, p in params.items()}).items():
                params[n].copy_(torch.from_numpy(v))

    trained = model[0].weight.detach().numpy()
    out = {"torch_version": torch.__version__, "steps": args.steps,
           "zeros_before": int(np.count_nonzero(shared == 0)),
           "zeros_kept": bool((trained[shared == 0] == 0).all()),
           "nonzero_after": int(np.count_nonzero(trained)),
           "distinct_before": int(np.unique(shared).size),
           "distinct_after": int(np.unique(trained).size),
           "values_trained": bool(not np.array_equal(np.unique(trained), np.unique(shared)))}
    print(json.dumps(out))
    if args.check:
        ok = out["zeros_kept"] and out["distinct_after"] <= 8 and out["values_trained"]
        return 0 if ok else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
