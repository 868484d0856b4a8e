"""Fuzz the file readers: Hypothesis-driven mutations of real fixture bytes.

Each example takes a fixture written by a real library (Keras 3, tf-keras 2,
safetensors, transformers), applies 1-4 mutations (bit flips, overwritten
runs, truncation, zeroed runs, repeated chunks; half of them aimed at the
metadata regions ``regions.py`` finds: superblock, object headers, attribute
values, zip structures, the safetensors header) and runs ``info``, ``report``,
``cluster`` and ``remove`` on it in this process, through
``weightshare.cli.main``, with warnings as errors. It fails when a run

- lets an exception escape (a traceback) or exits with another code than 0 or 2,
- refuses with anything but one line on stderr naming the file,
- changes the input, or leaves a file in the output folder when it failed.

A failing input is saved to ``regressions/`` (``fuzz-<sha>.<ext>`` and a
``.json`` saying what failed), where the corpus (``corpus.py``) replays it in
every CI run. A hang or a crash (libhdf5 loops or dies on some damaged
files) cannot be caught in-process: the input being run is always in
``<work>/current.<ext>``, the process is stopped by ``faulthandler`` after
``--hang`` seconds, and ``--supervise`` (what CI uses) runs the fuzzer in a
child and saves that file when the child does not end normally.

Usage::

    python tests/hardening/fuzz_readers.py --examples 1000 --seed 0 --supervise   # CI
    python tests/hardening/fuzz_readers.py --seconds 3600 --seed 7      # hunting
"""

import argparse
import contextlib
import faulthandler
import hashlib
import io
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from hypothesis import HealthCheck, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.errors import HypothesisWarning  # noqa: E402

import regions as _regions  # noqa: E402

FIXTURES = HERE.parent / "fixtures" / "keras"
ST_FIXTURES = HERE.parent / "fixtures" / "safetensors"
REGRESSIONS = HERE / "regressions"
#: small fixtures of every format and producer: (file, a layer remove may shrink)
BASES = (("k3_mlp.keras", "hidden"), ("k3_mlp.weights.h5", "hidden"), ("k3_mlp.h5", "hidden"),
         ("k2_mlp.keras", "hidden"), ("k2_mlp.h5", "hidden"), ("k2_mlp.weights_only.h5", "hidden"),
         ("k3tf_cnn.h5", "conv1"), ("k2_cnn.keras", "conv1"), ("k3_bf16.weights.h5", "conv1"),
         ("k3_rnn.keras", "head"),
         # safetensors (``remove`` must refuse them: no architecture)
         ("numpy_dtypes.safetensors", "hidden"), ("model.safetensors", "hidden"))
_PATHS = {"numpy_dtypes.safetensors": ST_FIXTURES / "numpy_dtypes.safetensors",
          "model.safetensors": ST_FIXTURES / "tiny_bert" / "model.safetensors"}
_DATA = {name: (_PATHS.get(name) or FIXTURES / name).read_bytes() for name, _ in BASES}
_META = {name: [r for kind, rs in _regions.file_regions(data).items() if kind != "data"
                for r in rs] for name, data in _DATA.items()}
#: exit code of a run that found (and saved) a failing input; a hang exits 1 (faulthandler)
FOUND = 3


def _suffix(name):
    return ".weights.h5" if name.endswith(".weights.h5") else os.path.splitext(name)[1]


@st.composite
def mutated(draw):
    """(base name, layer, mutated bytes, description) of one fixture."""
    name, layer = draw(st.sampled_from(BASES))
    data = bytearray(_DATA[name])
    meta = _META[name]
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        if meta and draw(st.booleans()):
            lo, hi = meta[draw(st.integers(0, len(meta) - 1))]
            pos = draw(st.integers(lo, max(lo, hi - 1)))
        else:
            pos = draw(st.integers(0, len(data) - 1))
        pos = min(pos, len(data) - 1)
        op = draw(st.sampled_from(["flip", "write", "zero", "cut", "repeat"]))
        if op == "flip":
            bit = draw(st.integers(0, 7))
            data[pos] ^= 1 << bit
            ops.append(f"flip bit {bit}@{pos}")
        elif op == "write":
            run = draw(st.binary(min_size=1, max_size=16))
            data[pos:pos + len(run)] = run
            ops.append(f"write {run.hex()}@{pos}")
        elif op == "zero":
            n = draw(st.integers(1, 64))
            data[pos:pos + n] = bytes(len(data[pos:pos + n]))
            ops.append(f"zero {n}@{pos}")
        elif op == "cut":
            del data[max(pos, 1):]
            ops.append(f"cut@{max(pos, 1)}")
        else:
            n = draw(st.integers(1, 256))
            data[pos:pos] = data[max(0, pos - n):pos]
            ops.append(f"repeat {n}@{pos}")
    return name, layer, bytes(data), ", ".join(ops)


# --------------------------------------------------------------------------- one example
def _run(main, argv):
    out, err = io.StringIO(), io.StringIO()
    escaped = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), \
            warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code
        except BaseException as exc:  # noqa: BLE001 - a traceback a user would see
            import traceback
            rc, escaped = None, "".join(traceback.format_exception(exc))
        import gc
        gc.collect()
    return rc, out.getvalue(), err.getvalue(), escaped


def _state(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() + str(p.stat().st_mtime_ns)
            for p in sorted(pathlib.Path(folder).iterdir())}


def check_example(work, name, layer, data):
    """Run the commands on one input; a list of problems (empty: every invariant held)."""
    from weightshare.cli import main
    case = pathlib.Path(work) / "case"
    outs = pathlib.Path(work) / "out"
    for d in (case, outs):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    path = case / ("input" + _suffix(name))
    path.write_bytes(data)
    shutil.copy(path, pathlib.Path(work) / ("current" + _suffix(name)))
    before = _state(case)
    problems = []
    out = outs / ("out" + _suffix(name))
    for argv in (["info", str(path), "--json"], ["report", str(path), "--json"],
                 ["cluster", str(path), "-o", str(out), "-k", "4", "--json"],
                 ["remove", str(path), "-o", str(out), "--layer", layer, "--count", "1"]):
        if out.exists():
            out.unlink()
        rc, stdout, stderr, escaped = _run(main, argv)
        tag = argv[0]
        if escaped:
            problems.append(f"{tag}: an exception escaped: {escaped.strip().splitlines()[-1]}")
        elif rc not in (0, 2):
            problems.append(f"{tag}: exit code {rc}")
        elif rc == 2:
            lines = stderr.splitlines()
            if len(lines) != 1 or str(path) not in lines[0]:
                problems.append(f"{tag}: the error is not one line naming the file: {stderr!r}")
            if os.listdir(outs):
                problems.append(f"{tag}: files left in the output folder: {os.listdir(outs)}")
        elif rc == 0 and any(ln and not ln.startswith((f"weightshare {tag}: warning:",
                                                       f"weightshare {tag}: note:"))
                             for ln in stderr.splitlines()):
            problems.append(f"{tag}: stderr on success: {stderr!r}")
        if _state(case) != before:
            problems.append(f"{tag}: the input changed")
    return problems


def save_regression(name, data, what, problems):
    """Write a failing input to regressions/ (with a .json sidecar); returns its path."""
    REGRESSIONS.mkdir(exist_ok=True)
    digest = hashlib.sha256(data).hexdigest()[:12]
    path = REGRESSIONS / f"fuzz-{digest}{_suffix(name)}"
    path.write_bytes(data)
    model = name.split(".")[0]
    layer = dict(BASES).get(name, "hidden")
    side = {"what": f"fuzzer: {name}: {what}", "base": name, "model": model, "layer": layer,
            "problems": problems}
    path.with_name(path.name + ".json").write_text(json.dumps(side, indent=1) + "\n")
    return path


# --------------------------------------------------------------------------- driving
def fuzz(seconds, base_seed, work, hang, examples_per_round=40, derandomize=True, examples=None):
    """Run rounds of Hypothesis examples until `seconds` have passed; returns (examples, failure).

    With `examples`, stop after the round that reaches that many: the same
    examples every run, however fast the machine (a time bound runs more on a
    faster one).
    """
    import gc
    import weightshare.cli  # noqa: F401 - imported once: the modules are not garbage
    gc.collect()
    gc.freeze()      # the collection after each command then scans only what the examples made
    deadline = time.monotonic() + seconds
    count = [0]
    failing = []

    def body(example):
        name, layer, data, what = example
        count[0] += 1
        faulthandler.dump_traceback_later(hang, exit=True)
        try:
            problems = check_example(work, name, layer, data)
        finally:
            faulthandler.cancel_dump_traceback_later()
        if problems:
            failing.append((name, data, what, problems))
            raise AssertionError("; ".join(problems))

    round_no = 0
    while time.monotonic() < deadline and (examples is None or count[0] < examples):
        test = settings(max_examples=examples_per_round, deadline=None, database=None,
                        derandomize=False, print_blob=True,
                        suppress_health_check=list(HealthCheck))(given(mutated())(body))
        test = seed(base_seed * 100003 + round_no)(test)
        round_no += 1
        try:
            with warnings.catch_warnings():
                # the report of a failing example reprs its bytes (tens of kB): not a failure
                warnings.filterwarnings("ignore", "Generating overly large repr",
                                        HypothesisWarning)
                test()
        except AssertionError:
            name, data, what, problems = failing[-1]      # the shrunk example comes last
            return count[0], save_regression(name, data, what, problems)
    return count[0], None


def supervise(args):
    """Run the fuzzer in a child; save the input it was on if it hangs or crashes."""
    work = pathlib.Path(tempfile.mkdtemp(prefix="weightshare-fuzz-"))
    try:
        cmd = [sys.executable, "-W", "error", str(pathlib.Path(__file__).resolve()),
               "--seconds", str(args.seconds), "--seed", str(args.seed), "--work", str(work),
               "--hang", str(args.hang)] + \
            ([] if args.examples is None else ["--examples", str(args.examples)])
        proc = subprocess.run(cmd, capture_output=True, text=True,
                              timeout=args.seconds + 10 * args.hang + 120)
        sys.stdout.write(proc.stdout)
        if proc.returncode in (0, FOUND):
            sys.stderr.write(proc.stderr[-4000:])
            return proc.returncode
        current = [p for p in work.iterdir() if p.name.startswith("current")]
        if current:
            name = "k3_mlp" + _suffix(current[0].name)
            saved = save_regression(name, current[0].read_bytes(), "hang or crash",
                                    [f"the process ended with {proc.returncode} (a hang stopped "
                                     "by faulthandler, or a crash)"])
            print(f"the fuzzer died ({proc.returncode}); its input is saved as {saved}")
        sys.stderr.write(proc.stderr[-4000:])
        return FOUND
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="stop after this long")
    parser.add_argument("--examples", type=int, help="stop after this many examples (rounds of "
                                                     "40; what CI uses: the same examples on "
                                                     "any machine)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hang", type=float, default=20, help="seconds before an example is "
                                                               "a hang")
    parser.add_argument("--work", help="scratch folder (default: a temporary one)")
    parser.add_argument("--supervise", action="store_true",
                        help="run in a child process and save the input of a hang or crash")
    parser.add_argument("--memory", type=int, default=1024, help="address-space limit, MB "
                                                                  "above the start")
    args = parser.parse_args(argv)
    if args.supervise:
        return supervise(args)
    with open("/proc/self/status") as f:
        vm = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmSize"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (args.memory << 20), resource.RLIM_INFINITY))
    work = args.work or tempfile.mkdtemp(prefix="weightshare-fuzz-")
    os.makedirs(work, exist_ok=True)
    start = time.monotonic()
    n, saved = fuzz(args.seconds, args.seed, work, args.hang, examples=args.examples)
    print(f"{n} examples in {time.monotonic() - start:.0f} s (seed {args.seed})" +
          (f"; FAILED, saved {saved}" if saved else "; no failure"))
    return FOUND if saved else 0


if __name__ == "__main__":
    sys.exit(main())
