"""Packed safetensors sizes: packed output against the plain output and ``gzip -9``.

For each checkpoint and clustering option, ``weightshare.cluster_file`` at
k = 16 writes the plain output and the packed one (``packed=True``); the
table gives bytes on disk (every file of a checkpoint folder, its index and
config included) and each as a ratio to the plain output, measured in the
same run:

- ``plain``: the plain clustered output (the same size as the input);
- ``gzip plain``: ``gzip -9`` of it (Python's ``gzip`` module, level 9;
  a folder's files each gzipped, sizes summed);
- ``packed``: the packed output;
- ``gzip packed``: ``gzip -9`` of the packed output.

Checkpoints: the tiny transformers models of tests/fixtures/safetensors
(``tiny_bert``, float32, hidden size 32; ``tiny_llama_bf16``, bfloat16,
sharded) and, with ``--big``, a generated float32 file of four
1024 x 1024 Laplace matrices (written with ``safetensors.numpy``, a
benchmark-only dependency).

Usage::

    python benchmarks/bench_packed_sizes.py [--big] [--k 16]
"""

import argparse
import gzip
import os
import pathlib
import sys
import tempfile

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import weightshare  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "safetensors"
OPTIONS = {"per tensor": {}, "per channel": {"per_channel": True},
           "group 8": {"group_size": 8}, "per-channel scale": {"per_channel_scale": True}}


def _files(path):
    if os.path.isdir(path):
        return [os.path.join(path, n) for n in sorted(os.listdir(path))]
    return [path]


def size(path):
    return sum(os.path.getsize(f) for f in _files(path))


def gzip_size(path):
    total = 0
    for f in _files(path):
        with open(f, "rb") as fh:
            total += len(gzip.compress(fh.read(), compresslevel=9, mtime=0))
    return total


def _big(folder):
    from safetensors.numpy import save_file
    rng = np.random.default_rng(0)
    tensors = {f"layers.{i}.weight": rng.laplace(scale=0.02, size=(1024, 1024)).astype(np.float32)
               for i in range(4)}
    path = os.path.join(folder, "big.safetensors")
    save_file(tensors, path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--big", action="store_true", help="also a generated 4 x 1024 x 1024 file")
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = [("tiny_bert (F32)", str(FIXTURES / "tiny_bert" / "model.safetensors")),
                  ("tiny_llama_bf16 (BF16, 2 shards)", str(FIXTURES / "tiny_llama_bf16"))]
        if args.big:
            inputs.append(("4 x 1024x1024 (F32)", _big(tmp)))
        print(f"k = {args.k}; bytes on disk, ratio to the plain output in parentheses")
        print(f"{'checkpoint':34} {'option':18} {'plain':>9} {'gzip plain':>16} "
              f"{'packed':>16} {'gzip packed':>16}")
        for label, src in inputs:
            for i, (name, opts) in enumerate(OPTIONS.items()):
                ext = ".safetensors" if src.endswith(".safetensors") else ""
                plain = os.path.join(tmp, f"plain{i}{ext}")
                packed = os.path.join(tmp, f"packed{i}{ext}")
                weightshare.cluster_file(src, plain, args.k, random_state=0, **opts)
                weightshare.cluster_file(src, packed, args.k, random_state=0, packed=True,
                                         **opts)
                p, gp, q, gq = size(plain), gzip_size(plain), size(packed), gzip_size(packed)
                print(f"{label:34} {name:18} {p:9d} {gp:9d} ({gp / p:.3f}) "
                      f"{q:9d} ({q / p:.3f}) {gq:9d} ({gq / p:.3f})")
                for path in (plain, packed):
                    for f in _files(path):
                        os.unlink(f)
                    if os.path.isdir(path):
                        os.rmdir(path)


if __name__ == "__main__":
    main()
