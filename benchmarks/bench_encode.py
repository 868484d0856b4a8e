"""Throughput of weightshare.encode / decode, as ratios to np.packbits and zlib of the same bytes.

The tensor: n float32 weights (default 1e7), clustered to k = 16 shared values with 50 % exact
zeros (the zero is one of the 16), like a pruned and clustered layer. Every time is the median
of ``--repeat`` runs; the baselines run in the same process on the same raw bytes
(``x.tobytes()``, 4 n bytes):

- ``np.packbits`` / ``np.unpackbits`` of those bytes (a memory-bound lower bar: one pass,
  compiled, no analysis);
- ``zlib.compress`` (level 6, its default, and level 9) / ``zlib.decompress``: the general
  purpose codec a user would reach for.

Columns: time, MB/s of raw float32 input (encode) or output (decode), the ratio to each
baseline (time / baseline time: > 1 means slower), and the encoded size.

Usage::

    python benchmarks/bench_encode.py               # n = 1e7, 5 repeats (about two minutes)
    python benchmarks/bench_encode.py --quick       # n = 1e6, 3 repeats
    python benchmarks/bench_encode.py --n 3e7 --repeat 7 --json
"""

import argparse
import json
import zlib

import numpy as np

import weightshare
from _timing import median_time

SCHEMES = ("raw", "packed", "sparse", "huffman", "sparse_huffman", "auto")


def tensor(n, seed, k=16, zeros=0.5):
    rng = np.random.default_rng(seed)
    centroids = np.sort(rng.normal(0, 0.05, k - 1)).astype(np.float32)
    x = centroids[rng.integers(0, k - 1, n)]
    x[rng.random(n) < zeros] = 0.0
    return x


def run(n, repeat, seed):
    x = tensor(n, seed)
    raw = x.tobytes()
    as_bytes = np.frombuffer(raw, dtype=np.uint8)
    packed_bits = np.packbits(as_bytes)
    z6, z9 = zlib.compress(raw, 6), zlib.compress(raw, 9)
    base = {
        "packbits": median_time(lambda: np.packbits(as_bytes), repeat),
        "unpackbits": median_time(lambda: np.unpackbits(packed_bits), repeat),
        "zlib6": median_time(lambda: zlib.compress(raw, 6), max(1, repeat // 2)),
        "zlib9": median_time(lambda: zlib.compress(raw, 9), 1),
        "decompress": median_time(lambda: zlib.decompress(z6), repeat),
    }
    rows = []
    for scheme in SCHEMES:
        blob = weightshare.encode(x, scheme=scheme)
        t_enc = median_time(lambda s=scheme: weightshare.encode(x, scheme=s), repeat)
        t_dec = median_time(lambda b=blob: weightshare.decode(b), repeat)
        assert np.array_equal(weightshare.decode(blob).view(np.uint32), x.view(np.uint32))
        rows.append({"scheme": scheme, "bytes": len(blob), "encode_s": t_enc, "decode_s": t_dec,
                     "encode_vs_packbits": t_enc / base["packbits"],
                     "encode_vs_zlib6": t_enc / base["zlib6"],
                     "decode_vs_unpackbits": t_dec / base["unpackbits"],
                     "decode_vs_zlib_decompress": t_dec / base["decompress"]})
    t_sizes = median_time(lambda: weightshare.encoded_sizes(x), repeat)
    return {"n": n, "repeat": repeat, "raw_bytes": len(raw), "zlib6_bytes": len(z6),
            "zlib9_bytes": len(z9), "baselines_s": base, "encoded_sizes_s": t_sizes, "rows": rows}


def show(res):
    n, base = res["n"], res["baselines_s"]
    mb = 4 * n / 1e6
    print(f"n = {n:,} float32 ({mb:.0f} MB), k = 16, 50 % zeros; medians of {res['repeat']} runs")
    print(f"baselines: packbits {base['packbits'] * 1e3:.1f} ms, unpackbits "
          f"{base['unpackbits'] * 1e3:.1f} ms, zlib level 6 {base['zlib6']:.2f} s "
          f"({res['zlib6_bytes']:,} B), level 9 {base['zlib9']:.2f} s ({res['zlib9_bytes']:,} B), "
          f"decompress {base['decompress'] * 1e3:.0f} ms")
    print(f"encoded_sizes (all five sizes, no bytes written): {res['encoded_sizes_s']:.3f} s\n")
    head = (f"{'scheme':>15} {'bytes':>11} {'encode':>9} {'MB/s':>6} {'/packbits':>9} {'/zlib6':>7}"
            f" {'decode':>9} {'MB/s':>6} {'/unpackbits':>11} {'/decompress':>11}")
    print(head)
    print("-" * len(head))
    for r in res["rows"]:
        print(f"{r['scheme']:>15} {r['bytes']:>11,} {r['encode_s'] * 1e3:>7.0f}ms "
              f"{mb / r['encode_s']:>6.0f} {r['encode_vs_packbits']:>9.1f} "
              f"{r['encode_vs_zlib6']:>7.2f} {r['decode_s'] * 1e3:>7.0f}ms "
              f"{mb / r['decode_s']:>6.0f} {r['decode_vs_unpackbits']:>11.1f} "
              f"{r['decode_vs_zlib_decompress']:>11.2f}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=float, default=1e7)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="n = 1e6, 3 repeats")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    n, repeat = (10**6, 3) if args.quick else (int(args.n), args.repeat)
    res = run(n, repeat, args.seed)
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        show(res)


if __name__ == "__main__":
    main()
