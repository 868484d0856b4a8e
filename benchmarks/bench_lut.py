"""LUT layouts: the SSE each one reaches, at 2, 3, 4 and 6 bits, as a ratio to one LUT per tensor.

For every kernel of the bundled digits model (Dense, 64x64, 64x32, 32x10) and
for a synthetic conv-like kernel (3x3x64x128, Laplace entries, output channels
scaled by log-uniform factors over two decades, as trained conv filters
differ), each mode is run with ``method="optimal"`` and k = 2**bits:

- ``tensor``: one LUT per tensor (the reference, measured in the same run);
- ``channel``: one LUT per output channel;
- ``group8``: one LUT per 8 output channels (``group_size=8``);
- ``scale``: per-channel scales, one shared LUT (``per_channel_scale=True``);
- ``scale+group8``: both;
- ``int8``, ``float8``: one LUT per tensor in int8 (scale * q) / float8_e4m3;
- ``scale+int8``: per-channel scales and one int8 LUT.

Prints, per tensor group and mode, the SSE as a ratio to ``tensor`` (summed
over the tensors) and the time as a ratio to ``tensor``. Usage::

    python benchmarks/bench_lut.py [--bits 2 3 4 6]
"""

import argparse
import time

import numpy as np

import weightshare

MODES = {
    "tensor": {},
    "channel": dict(axis=-1),
    "group8": dict(axis=-1, group_size=8),
    "scale": dict(axis=-1, per_channel_scale=True),
    "scale+group8": dict(axis=-1, per_channel_scale=True, group_size=8),
    "int8": dict(lut_dtype="int8"),
    "float8": dict(lut_dtype="float8_e4m3"),
    "scale+int8": dict(axis=-1, per_channel_scale=True, lut_dtype="int8"),
}


def tensors():
    digits = [r.value for r in weightshare.read_weights(weightshare.examples.path("digits.keras"))
              if r.kind == "kernel"]
    rng = np.random.default_rng(0)
    conv = rng.laplace(0, 0.02, size=(3, 3, 64, 128)) * 10.0 ** rng.uniform(-1, 1, size=128)
    return {"digits (3 Dense kernels)": digits, "conv 3x3x64x128": [conv.astype(np.float32)]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bits", type=int, nargs="+", default=[2, 3, 4, 6])
    args = ap.parse_args()
    for name, ts in tensors().items():
        print(f"\n{name}: SSE / SSE(tensor)  (time / time(tensor))")
        print("mode".ljust(14) + "".join(f"{b} bits".rjust(18) for b in args.bits))
        ref = {}
        for mode, kw in MODES.items():
            cells = []
            for bits in args.bits:
                t = time.perf_counter()
                sse = sum(weightshare.cluster(w, 2 ** bits, method="optimal", **kw).sse
                          for w in ts)
                t = time.perf_counter() - t
                if mode == "tensor":
                    ref[bits] = (sse, t)
                r_sse, r_t = ref[bits]
                cells.append(f"{sse / r_sse:8.3f} ({t / r_t:5.1f}x)")
            print(mode.ljust(14) + "".join(c.rjust(18) for c in cells))


if __name__ == "__main__":
    main()
