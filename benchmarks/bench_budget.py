"""k per tensor from a bits budget, and entropy-constrained clustering (not a test).

Part 1, ``--bits 3``: for the bundled digits MLP, the same pruned to 50 %, and
MobileNetV2 (built with real Keras 3, random weights, saved to a temporary
folder; nothing is downloaded), the total SSE of ``cluster_file(bits=3)``
against the best uniform k within the same budget (k = 8: 3 bits per weight),
both as written (after rounding to float32), and the time of the budget run
against the plain ``cluster_file(k=8)``, in the same run.

Part 2, ECSQ: for each k in 2..32, plain k-means (``cluster(w, k)``) and
``cluster(w, k, rate=lam)`` for a few lam per k, each point (bytes of
``encode(values)``, the smallest scheme; SSE). A point is "above the curve"
when its SSE exceeds the plain points' lower envelope (piecewise linear in
bytes) at its size; only ECSQ points within the plain sizes (k = 2 .. 32) are
compared. Printed per tensor: ECSQ points above / compared, the best SSE
reduction at equal size and the best size reduction at equal SSE. With
``--plot OUT.png`` the curves of the digits' fc1 kernel and a MobileNetV2
kernel are drawn (matplotlib).

    PYTHONPATH=. python benchmarks/bench_budget.py [--quick] [--plot docs/images/ecsq.png]

MobileNetV2 needs a Keras 3 interpreter: ``WEIGHTSHARE_KERAS3_PYTHON`` (tests/keras/
setup_venvs.sh builds one); without it, that model is left out (and said so).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

import weightshare

_BUILD = """
import os, sys
os.environ["KERAS_BACKEND"] = "jax"
import keras
keras.utils.set_random_seed(0)
keras.applications.MobileNetV2(weights=None).save(sys.argv[1])
"""

#: lam = alpha * (plain SSE per weight) at each k. The plain curve's own slope there is
#: about 2 ln 2 = 1.39 times SSE/n per bit per weight (D ~ 2**(-2R)): alpha up to 1 stays
#: below it (ECSQ trades a little SSE for entropy at that k); alpha well above it
#: reaches for rates that plain k-means with a smaller k serves, with Huffman's
#: at-least-one-bit-per-symbol in the way.
ALPHAS = (0.125, 0.25, 0.5, 1.0)


def build_mobilenet(tmp):
    python = os.environ.get("WEIGHTSHARE_KERAS3_PYTHON")
    if not python or not os.path.exists(python):
        print("MobileNetV2 left out: set WEIGHTSHARE_KERAS3_PYTHON to a Keras 3 interpreter")
        return None
    path = os.path.join(tmp, "mobilenetv2.keras")
    subprocess.run([python, "-c", _BUILD, path], check=True, capture_output=True)
    return path


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def budget_rows(models, repeat):
    print("\n--bits 3 against uniform k = 8 (3 bits per weight), SSE as written")
    print(f"{'model':18} {'tensors':>7} {'SSE k=8':>11} {'SSE bits=3':>11} {'ratio':>6} "
          f"{'bits used':>9} {'time k=8':>9} {'time bits':>9} {'ratio':>6}  k chosen")
    for name, path in models:
        t8, tb = [], []
        for _ in range(repeat):     # alternate, so both see the same machine load
            t, plain = _timed(lambda: weightshare.cluster_file(path, None, 8, dry_run=True))
            t8.append(t)
            t, rows = _timed(lambda: weightshare.cluster_file(path, None, bits=3, dry_run=True))
            tb.append(t)
        s8, sb = sum(r.sse for r in plain), sum(r.sse for r in rows)
        a, b = float(np.median(t8)), float(np.median(tb))
        ks = np.bincount([r.k for r in rows])
        chosen = ", ".join(f"{k}:{c}" for k, c in enumerate(ks) if c)
        print(f"{name:18} {len(rows):7d} {s8:11.5g} {sb:11.5g} {sb / s8:6.3f} "
              f"{rows.budget.used:9.4f} {a:8.2f}s {b:8.2f}s {b / a:6.2f}  {chosen}")


def _points(w, k, lams):
    """(bytes of encode(values), SSE, k, lam, scheme encode chose) per lam (0: plain)."""
    out = []
    for lam in lams:
        res = weightshare.cluster(w, k, rate=lam) if lam else weightshare.cluster(w, k)
        s = weightshare.encoded_sizes(res.values)
        out.append((s.best, res.sse, k, lam, s.best_scheme))
    return out


def _envelope(points):
    """Lower envelope of (size, sse) points: a function size -> least SSE by linear
    interpolation between the Pareto points (inf below the smallest size)."""
    pts = sorted(points)
    pareto = []
    for s, e in pts:
        if not pareto or e < pareto[-1][1]:
            pareto.append((s, e))
    xs = np.array([p[0] for p in pareto], dtype=float)
    ys = np.array([p[1] for p in pareto])

    def at(size):
        if size < xs[0]:
            return np.inf
        return float(np.interp(size, xs, ys))
    return at, pareto


def ecsq_rows(tensors, ks):
    print("\nECSQ against plain k-means, k = " + ", ".join(map(str, ks)) +
          f"; lam = alpha * SSE_k / n for alpha in {ALPHAS}")
    print(f"{'tensor':34} {'n':>8} {'above':>7} {'above, Huffman':>14} "
          f"{'SSE at equal size':>18} {'size at equal SSE':>18} {'time ECSQ/plain':>16}")
    curves = {}
    for name, w in tensors:
        t0 = time.perf_counter()
        plain = [_points(w, k, [0.0])[0] for k in ks]
        tp = time.perf_counter() - t0
        t0 = time.perf_counter()
        ec = []
        for p in plain:
            sse, k = p[1], p[2]
            ec += _points(w, k, [a * sse / w.size for a in ALPHAS if sse > 0])
        te = time.perf_counter() - t0
        at, pareto = _envelope([(p[0], p[1]) for p in plain])
        lo, hi = pareto[0][0], pareto[-1][0]
        inside = [p for p in ec if lo <= p[0] <= hi]       # within the plain sizes
        above = [p for p in inside if p[1] > at(p[0]) * (1 + 1e-12)]
        coded = [p for p in inside if "huffman" in p[4]]
        above_coded = sum(1 for p in above if "huffman" in p[4])
        # the best SSE drop at equal size, and size drop at equal SSE (the plain size
        # interpolated at the point's SSE), over the ECSQ points inside the plain range
        sse_gain = max([1 - p[1] / at(p[0]) for p in inside] + [0.0])
        ps = np.array([q[0] for q in pareto], dtype=float)
        pe = np.array([q[1] for q in pareto])
        size_gain = 0.0
        for p in ec:
            if pe[-1] <= p[1] <= pe[0]:
                size_gain = max(size_gain, 1 - p[0] / float(np.interp(p[1], pe[::-1], ps[::-1])))
        print(f"{name:34} {w.size:8d} {len(above):3d}/{len(inside):<3d} "
              f"{above_coded:7d}/{len(coded):<6d} {sse_gain:17.1%} "
              f"{size_gain:17.1%} {te / max(tp, 1e-9) / len(ALPHAS):15.2f}x")
        curves[name] = (plain, ec)
    return curves


def ecsq_files(models):
    """Every kernel of a model at k = 8, plain and with one rate for all (lam = 0.5 *
    SSE/n of the plain run): total bytes of encode(values), total SSE, time."""
    print("\nECSQ over whole models, k = 8, one rate for every kernel (lam = 0.5 * plain SSE/n)")
    print(f"{'model':18} {'bytes plain':>12} {'SSE plain':>10} {'bytes ECSQ':>11} "
          f"{'SSE ECSQ':>10} {'bytes':>7} {'SSE':>7} {'time':>6}")
    for name, path in models:
        ws = [r.value for r in weightshare.read_weights(path) if r.kind == "kernel"]
        tp, plain = _timed(lambda: [weightshare.cluster(w, 8) for w in ws])
        lam = 0.5 * sum(r.sse for r in plain) / sum(w.size for w in ws)
        te, ec = _timed(lambda: [weightshare.cluster(w, 8, rate=lam) for w in ws])
        bp = sum(weightshare.encoded_sizes(r.values).best for r in plain)
        be = sum(weightshare.encoded_sizes(r.values).best for r in ec)
        sp, se = sum(r.sse for r in plain), sum(r.sse for r in ec)
        print(f"{name:18} {bp:12d} {sp:10.4g} {be:11d} {se:10.4g} {be / bp:7.3f} "
              f"{se / sp:7.3f} {te / tp:5.2f}x")


def plot(curves, names, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4.5))
    for ax, name in zip(np.atleast_1d(axes), names):
        plain, ec = curves[name]
        ax.plot([p[0] for p in plain], [p[1] for p in plain], "o-", label="k-means, k = 2..32")
        ax.scatter([p[0] for p in ec], [p[1] for p in ec], s=10, c="C1",
                   label="entropy-constrained (rate = lam)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("bytes of encode(values) (smallest scheme)")
        ax.set_ylabel("SSE")
        ax.set_title(name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    print(f"plot: {out}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer k, one timing repeat")
    ap.add_argument("--plot", metavar="OUT.png")
    args = ap.parse_args(argv)
    repeat = 1 if args.quick else 3
    ks = (2, 4, 8, 16, 32) if args.quick else tuple(range(2, 33))
    digits = weightshare.examples.path("digits.keras")
    with tempfile.TemporaryDirectory() as tmp:
        pruned = os.path.join(tmp, "digits-p50.keras")
        weightshare.prune_file(digits, pruned, sparsity=0.5)
        models = [("digits", digits), ("digits pruned 50%", pruned)]
        mnv2 = build_mobilenet(tmp)
        if mnv2:
            models.append(("MobileNetV2", mnv2))
        print("machine: 2 cores shared with other jobs; ratios are measured in one run")
        budget_rows(models, repeat)
        tensors = [(f"digits {r.name}", r.value) for r in weightshare.read_weights(digits)
                   if r.kind == "kernel"]
        if mnv2:
            picks = ("Conv1/kernel", "block_3_depthwise/kernel", "block_6_expand/kernel",
                     "block_13_project/kernel")
            tensors += [(f"MobileNetV2 {r.name}", r.value)
                         for r in weightshare.read_weights(mnv2) if r.name in picks]
        ecsq_files(models)
        curves = ecsq_rows(tensors, ks)
        if args.plot:
            names = ["digits fc1/kernel"] + (["MobileNetV2 block_6_expand/kernel"] if mnv2
                                             else [])
            plot(curves, names, args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
