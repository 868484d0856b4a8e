"""pack: size against the entropy floor and against gzip -9, and speed (not a test).

For the bundled digits model clustered at k = 4, 8, 16, 32 (pruned to 50 % or
75 % first, or not), and for MobileNetV2 built by real Keras 3 with random
weights (``keras.applications.MobileNetV2(weights=None)``, saved to a
temporary folder: nothing is downloaded) clustered at k = 16, pruned to 75 %
and clustered at k = 16, and as built, it prints in one run:

- ``pack``: the bytes of ``weightshare.pack_file``'s output;
- ``floor``: the entropy floor of the same file: the sum over the tensor
  regions pack encodes of ``n * H(values) / 8 + k * itemsize`` (the entropy
  of the bit patterns, zeros included, so that sparse positions are counted;
  plus the codebook), plus the deflated (``zlib`` level 9) rest of the file;
  a tensor whose deflated bytes are smaller than its entropy term (an
  unclustered one: Adam's moments, MobileNetV2's random kernels) counts as
  "rest", deflated;
- ``gzip -9``: ``gzip.compress(file, 9)``;
- ``pack/floor`` (goal: at most 1.05) and ``pack/gzip`` (goal on MobileNetV2
  pruned to 75 % + k = 16: at most 0.65);
- pack and unpack speed in MB of model per second (one run each, wall clock;
  goal: at least 50), and their times as multiples of ``gzip -9`` and of
  gunzip of the same file in the same run (``t/gzip -9``, ``t/gunzip``).

    PYTHONPATH=. python benchmarks/bench_pack.py [--quick]

``--quick`` skips MobileNetV2. The Keras 3 interpreter is
``$WEIGHTSHARE_KERAS3_PYTHON`` (default ``/work/kvenvs/keras3/bin/python``).
"""

import gzip
import mmap
import os
import subprocess
import sys
import tempfile
import time
import zlib

import numpy as np

import weightshare
from weightshare._io._regions import tensor_regions
from weightshare._jobs._wsz import cut

KS = (4, 8, 16, 32)
_BUILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import keras
keras.utils.set_random_seed(0)
keras.applications.MobileNetV2(weights=None).save(sys.argv[1])
"""


def floor_bytes(path):
    """The entropy floor of `path` (see the module docstring), in bytes."""
    _, regions = tensor_regions(path)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        regions = cut(regions, len(mm))
        view = memoryview(mm)
        total, rest, pos = 0.0, [], 0
        for offset, length, item in regions:
            rest.append(bytes(view[pos:offset]))
            bits = np.frombuffer(view[offset:offset + length], dtype=f"<u{item}")
            counts = np.unique(bits, return_counts=True)[1]
            n = bits.size
            h = float(np.dot(counts, np.log2(n / counts)))
            total += min(h / 8 + counts.size * item, len(zlib.compress(bits.tobytes(), 9)))
            pos = offset + length
            del bits
        rest.append(bytes(view[pos:]))
        view.release()
    return total + len(zlib.compress(b"".join(rest), 9))


def measure(path, tmp):
    packed, again = os.path.join(tmp, "m.wsz"), os.path.join(tmp, "again")
    size = os.path.getsize(path)
    t = time.perf_counter()
    p = weightshare.pack_file(path, packed)
    t_pack = time.perf_counter() - t
    t = time.perf_counter()
    weightshare.unpack_file(packed, again)
    t_unpack = time.perf_counter() - t
    with open(path, "rb") as f, open(again, "rb") as g:
        data = f.read()
        assert g.read() == data, "unpack(pack(F)) is not F"
    t = time.perf_counter()
    zipped = gzip.compress(data, 9)
    t_gzip = time.perf_counter() - t
    t = time.perf_counter()
    gzip.decompress(zipped)
    t_gunzip = time.perf_counter() - t
    gz = len(zipped)
    fl = floor_bytes(path)
    return {"size": size, "pack": p.size_after, "floor": fl, "gzip": gz,
            "pack/floor": p.size_after / fl, "pack/gzip": p.size_after / gz,
            "pack MB/s": size / 1e6 / t_pack, "unpack MB/s": size / 1e6 / t_unpack,
            "pack/gzip time": t_pack / t_gzip, "unpack/gunzip time": t_unpack / t_gunzip}


def _print(name, m):
    print(f"{name:26} {m['size']:>10} {m['pack']:>9} {m['floor']:>11.0f} {m['gzip']:>9} "
          f"{m['pack/floor']:>10.3f} {m['pack/gzip']:>9.3f} {m['pack MB/s']:>9.1f} "
          f"{m['unpack MB/s']:>11.1f} {m['pack/gzip time']:>10.2f} "
          f"{m['unpack/gunzip time']:>10.2f}")


def _rows(src, tmp, tag, ks, prunes):
    for sparsity in prunes:
        base = src
        if sparsity:
            base = os.path.join(tmp, f"{tag}-p{sparsity}.keras")
            weightshare.prune_file(src, base, sparsity=sparsity)
        for k in ks:
            out = os.path.join(tmp, f"{tag}-k{k}.keras")
            if k:
                weightshare.cluster_file(base, out, k, random_state=0)
            else:
                out = base
            label = f"{tag} " + (f"p{int(sparsity * 100)} " if sparsity else "") + \
                (f"k={k}" if k else "as built")
            yield label, measure(out, tmp)


def main(argv=None):
    quick = "--quick" in (argv if argv is not None else sys.argv[1:])
    print(f"{'model':26} {'file':>10} {'pack':>9} {'floor':>11} {'gzip -9':>9} "
          f"{'pack/floor':>10} {'pack/gzip':>9} {'pack MB/s':>9} {'unpack MB/s':>11} "
          f"{'t/gzip -9':>10} {'t/gunzip':>10}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        src = weightshare.examples.path("digits.keras")
        for label, m in _rows(src, tmp, "digits", KS, (0, 0.5, 0.75)):
            _print(label, m)
            results[label] = m
        python = os.environ.get("WEIGHTSHARE_KERAS3_PYTHON", "/work/kvenvs/keras3/bin/python")
        if quick or not os.path.exists(python):
            print("MobileNetV2 skipped" + ("" if quick else f": no Keras 3 at {python}"))
        else:
            mnv2 = os.path.join(tmp, "mobilenetv2.keras")
            subprocess.run([python, "-c", _BUILD, mnv2], check=True, capture_output=True)
            for ks, prunes in (((0, 16), (0,)), ((16,), (0.75,))):
                for label, m in _rows(mnv2, tmp, "MobileNetV2", ks, prunes):
                    _print(label, m)
                    results[label] = m
    clustered = [m["pack/floor"] for label, m in results.items() if "k=" in label]
    print(f"pack/floor over the clustered rows: {min(clustered):.3f} to {max(clustered):.3f}")
    speeds = [m["pack MB/s"] for m in results.values() if m["size"] > 1e6]
    if speeds:
        print(f"pack speed on MobileNetV2: {min(speeds):.1f} to {max(speeds):.1f} MB/s; "
              f"unpack {min(m['unpack MB/s'] for m in results.values() if m['size'] > 1e6):.1f}"
              f" to {max(m['unpack MB/s'] for m in results.values() if m['size'] > 1e6):.1f}")
    return results


if __name__ == "__main__":
    main()
