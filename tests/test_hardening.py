"""Hardening: broken inputs never give a traceback, a modified input or a half-written file.

The corpus (``tests/hardening/corpus.py``: 500+ inputs built from the
real-Keras fixtures) runs through every command that takes a file, in worker
processes that call ``weightshare.cli.main`` with warnings as errors,
captured output, an address-space limit and a timeout per run
(``tests/hardening/harness.py`` says what is checked). A sample of 60 runs is
repeated as real ``python -W error -m weightshare`` processes, and a large
rewrite is killed with SIGKILL at several points.

The matrix runs in :data:`SLICES` slices (every SLICES-th case), one test each,
so that pytest-xdist spreads them over its workers; the tests of the whole
matrix read the slices' runs (``run_cache.once``: each slice runs once per
pytest run, whichever worker asks first). The corpus is built once per run too.

The README's test command runs the first slice (every kind of case, through
every command), the first part of the real-process sample and 100 fuzzer
examples; the rest of each sweep is marked ``exhaustive`` and runs in CI
after it (``pytest --exhaustive -m exhaustive``, ``.ci/run``).

docs/robustness.md gives the guarantees and the numbers; reproduce them with
``python tests/hardening/harness.py --seed 0``.
"""

import collections
import dataclasses
import hashlib
import json
import os
import pathlib
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import h5py
import numpy as np
import pytest

from hardening import corpus, harness
from run_cache import once, run_folder

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: kinds of input the issue lists, each of which the corpus must hold
KINDS = ("truncate", "flip-superblock", "flip-header", "flip-attribute", "flip-data", "flip-zip",
         "special", "zip", "h5", "tensor", "npy", "arg", "output")
#: the matrix runs as this many tests, slice i holding cases[i::SLICES]
SLICES = 24
#: the real-process sample runs as this many tests
SAMPLE_PARTS = 6


@pytest.fixture(scope="session")
def shared(tmp_path_factory):
    """The folder the processes of this pytest run share (``run_cache``)."""
    return run_folder(tmp_path_factory)


def _cases(shared):
    return once(shared, "hardening-corpus", lambda: corpus.build(seed=0))


@pytest.fixture(scope="session")
def cases(shared):
    """The corpus (seed 0), built once per pytest run."""
    return _cases(shared)


def _slice(shared, i):
    """(runs, commands) of cases[i::SLICES] through every command, in one worker process."""
    def run():
        root = tempfile.mkdtemp(prefix="weightshare-hardening-")
        try:
            return harness.run_matrix(_cases(shared)[i::SLICES], root, workers=1)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    return once(shared, f"hardening-matrix-{i}-of-{SLICES}", run)


@pytest.fixture(scope="module")
def matrix(shared):
    """(runs, commands) of the whole matrix: every slice's runs."""
    runs = []
    for i in range(SLICES):
        part, commands = _slice(shared, i)
        runs.extend(part)
    return runs, commands


def _report(runs, limit=25):
    bad = [r for r in runs if r.problems]
    lines = [f"{len(bad)} of {len(runs)} runs failed"]
    for r in bad[:limit]:
        lines.append(f"- {r.case} [{r.command}] {' '.join(r.argv)}")
        lines.extend("    " + p.replace("\n", "\n    ") for p in r.problems)
    return "\n".join(lines)


# --------------------------------------------------------------------------- the corpus
def test_the_corpus_holds_500_described_cases_of_every_kind(cases):
    assert len(cases) >= 500
    assert len({c.id for c in cases}) == len(cases)
    kinds = collections.Counter(c.kind for c in cases)
    assert set(KINDS) <= set(kinds), set(KINDS) - set(kinds)
    for case in cases:
        assert case.what and case.input in dict(case.files), case.id
        assert set(case.commands) <= set(corpus.COMMANDS)
        assert all(case.expect_for(c) in ("any", "done", "refused") for c in case.commands)


def test_the_seeded_parts_of_the_corpus_are_deterministic():
    def digest(seed):
        b = corpus._Builder(seed)
        corpus.truncations(b)
        corpus.bitflips(b)
        h = hashlib.sha256()
        for case in b.cases:
            h.update(case.id.encode() + case.what.encode())
            for name, content in case.files:
                h.update(name.encode() + content)
        return h.hexdigest()
    assert digest(0) == digest(0) != digest(1)


def test_bit_flips_land_in_the_regions_they_name(cases):
    data = (corpus.FIXTURES / "k3_mlp.keras").read_bytes()
    regions = corpus._regions.file_regions(data)
    inner = corpus._regions.weights_member_offset(data)
    assert inner is not None
    for kind in ("superblock", "header", "attribute", "data"):
        assert regions[kind], kind
        assert all(inner[0] <= a < b <= inner[0] + inner[1] for a, b in regions[kind])
    bases = {}
    for case in cases:
        if case.kind.startswith("flip-") and case.kind != "flip-zip":
            name, new = case.files[0]
            fixture = case.what.split(":")[0]
            if fixture not in bases:
                base = (corpus.FIXTURES / fixture).read_bytes()
                bases[fixture] = (np.frombuffer(base, np.uint8), corpus._regions.file_regions(base))
            base, regions = bases[fixture]
            n = min(base.size, len(new))
            changed = np.flatnonzero(base[:n] != np.frombuffer(new, np.uint8, n))
            ranges = regions[case.kind[5:]]
            assert changed.size and any(a <= changed[0] < b for a, b in ranges), case.id


@pytest.mark.exhaustive
def test_the_script_writes_cases_with_what_they_are(tmp_path):
    r = subprocess.run([sys.executable, "-W", "error", str(ROOT / "tests/hardening/corpus.py"),
                        "--out", str(tmp_path), "--seed", "3", "--count", "30"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    index = json.loads((tmp_path / "index.json").read_text())
    assert len(index) == 30
    meta = json.loads((tmp_path / index[0]["id"] / "case.json").read_text())
    assert meta["what"] and meta["input"] and (tmp_path / index[0]["id"] / meta["input"]).exists()


# --------------------------------------------------------------------------- the matrix
def _parts(n):
    """0 .. n-1 as parameters, all but the first marked ``exhaustive``."""
    return [pytest.param(i, marks=[pytest.mark.exhaustive] if i else []) for i in range(n)]


@pytest.mark.slow
@pytest.mark.parametrize("part", _parts(SLICES))
def test_every_case_through_every_command(part, shared, cases):
    runs, commands = _slice(shared, part)
    assert not any(r.problems for r in runs), _report(runs)
    mine = {c.id: c for c in cases[part::SLICES]}
    assert {r.case for r in runs} == {i for i, c in mine.items() if set(c.commands) & set(commands)}
    wrong = [dataclasses.replace(r, problems=[f"expected {mine[r.case].expect_for(r.command)}"])
             for r in runs if {mine[r.case].expect_for(r.command), r.outcome} == {"done", "refused"}]
    assert not wrong, _report(wrong)


def test_the_first_slice_holds_every_kind_and_both_outcomes(shared, cases):
    runs, commands = _slice(shared, 0)
    kinds = {c.kind for c in cases[0::SLICES]}
    assert set(KINDS) <= kinds, set(KINDS) - kinds
    outcomes = collections.Counter(r.outcome for r in runs)
    assert outcomes["done"] > 25 and outcomes["refused"] > 50, outcomes
    assert {r.command for r in runs} == set(commands)


@pytest.mark.exhaustive
def test_the_matrix_holds_every_case_and_command(matrix, cases):
    runs, commands = matrix
    assert {"info", "cluster", "remove", "report", "compare"} <= set(commands)
    assert len(runs) >= 2500
    assert {r.case for r in runs} == {c.id for c in cases if set(c.commands) & set(commands)}


@pytest.mark.exhaustive
def test_the_numbers(matrix, cases):
    runs, commands = matrix
    numbers = harness.summarize(runs, cases, commands)
    assert numbers["tracebacks"] == numbers["modified_inputs"] == numbers["partial_outputs"] == 0
    assert numbers["done"] + numbers["refused"] == numbers["runs"]
    assert numbers["done"] > 500 and numbers["refused"] > 1000
    print(json.dumps({k: v for k, v in numbers.items() if k != "kinds"}))


@pytest.mark.exhaustive
def test_the_corpus_meets_its_expectations_in_both_directions(matrix, cases):
    runs, _ = matrix
    by_case = {c.id: c for c in cases}
    outcomes = collections.Counter((by_case[r.case].expect_for(r.command), r.outcome) for r in runs
                                   if r.case in by_case)
    assert outcomes[("done", "done")] > 100 and outcomes[("refused", "refused")] > 500
    assert outcomes[("done", "refused")] == outcomes[("refused", "done")] == 0


# --------------------------------------------------------------------------- real processes
def _sample(cases, n=60):
    """n (case, command) pairs spread over the corpus and the commands, deterministically."""
    commands, _ = harness.available_commands()
    usable = [c for c in cases if not (c.output == "readonly" and os.geteuid() == 0)]
    step = len(usable) / n
    out = []
    for i in range(n):
        case = usable[int(i * step)]
        cmds = [c for c in commands if c in case.commands]
        out.append((case, cmds[i % len(cmds)]))
    return out


def _interpreter_bytes():
    """Address space of a Python that has imported weightshare's CLI and h5py."""
    code = ("import weightshare.cli, weightshare.files, weightshare.compare, h5py\n"
            "with open('/proc/self/status') as f:\n"
            "    print([l for l in f if l.startswith('VmPeak')][0].split()[1])")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=60)
    return int(r.stdout.strip()) * 1024


@pytest.mark.slow
@pytest.mark.parametrize("part", _parts(SAMPLE_PARTS))
def test_a_sample_as_real_processes_with_warnings_as_errors(part, cases):
    sample = _sample(cases)[part::SAMPLE_PARTS]
    base = _interpreter_bytes()
    root = pathlib.Path(tempfile.mkdtemp(prefix="weightshare-hardening-sub-"))
    _, options = harness.available_commands()
    failures = []
    try:
        tree = harness.Tree(root)
        for case, command in sample:
            runs = harness.run_case(case, _Subprocess(base), tree, (command,), options)
            failures.extend(r for r in runs if r.problems)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert not failures, _report(failures)


class _Subprocess:
    """Runs a job as ``python -W error -m weightshare`` (the worker protocol of harness.Worker)."""

    def __init__(self, interpreter_bytes):
        self.base = interpreter_bytes

    def run(self, job):
        limit = self.base + (job["limit"] or 0)

        def limits():
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        start = time.perf_counter()
        try:
            r = subprocess.run([sys.executable, "-W", "error", "-m", "weightshare", *job["argv"]],
                               capture_output=True, text=True, cwd=ROOT, timeout=harness.JOB_TIMEOUT,
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, preexec_fn=limits)
        except subprocess.TimeoutExpired:
            return {"hung": True}
        seconds = time.perf_counter() - start
        if r.returncode < 0:
            return {"died": r.returncode}
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr,
                "escaped": r.stderr if "Traceback" in r.stderr else None,
                "seconds": seconds - 0.0, "peak_rss": None, "leaked_fds": []}


# --------------------------------------------------------------------------- SIGKILL
def _big_store(path, mb):
    """A Keras 3 weights store with a Dense kernel of about `mb` MB (random normal)."""
    n = int(np.sqrt(mb * (1 << 20) / 4))
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        f.create_dataset("layers/dense/vars/0", data=rng.standard_normal((n, n), np.float32))
        f.create_dataset("layers/dense/vars/1", data=rng.standard_normal(n, np.float32))
        f["layers/dense/vars"].attrs["name"] = "big"


def _sha(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def _cluster(src, dst):
    return subprocess.Popen([sys.executable, "-W", "error", "-m", "weightshare", "cluster",
                             str(src), "-o", str(dst), "-k", "4", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})


def _temp_files(folder, name):
    return [n for n in os.listdir(folder) if n != name]


def _run_until(src, dst, when, window):
    """Start `cluster`, SIGKILL it at a point tied to its progress; return its exit code.

    `when` is ("spawn", seconds after the start) or ("temp", fraction of `window`
    after its temporary output appeared) or ("never",).  Anchoring the kill to
    what the process has done, not to a wall-clock fraction of a warm-up run, keeps
    the test meaningful on a loaded machine and on a warm file cache.
    """
    p = _cluster(src, dst)
    try:
        if when[0] == "spawn":
            time.sleep(when[1])
        elif when[0] == "temp":
            while p.poll() is None and not _temp_files(dst.parent, dst.name):
                time.sleep(0.001)
            time.sleep(window * when[1])
        if when[0] != "never":
            p.send_signal(signal.SIGKILL)
        return p.wait(timeout=300)
    finally:
        p.stderr.close()


@pytest.mark.slow
def test_sigkill_mid_write_leaves_the_previous_file_or_nothing(tmp_path):
    src = tmp_path / "big.weights.h5"
    _big_store(src, 32)
    src_sha = _sha(src)
    ref = tmp_path / "ref" / "out.weights.h5"
    ref.parent.mkdir()
    # The reference run: how long the temporary output lives (the window to kill in).
    p = _cluster(src, ref)
    appeared = None
    while p.poll() is None:
        if appeared is None and _temp_files(ref.parent, ref.name):
            appeared = time.perf_counter()
        time.sleep(0.001)
    assert p.wait() == 0, p.stderr.read()
    p.stderr.close()
    assert appeared is not None, "the temporary output was never seen"
    window = time.perf_counter() - appeared
    ref_sha = _sha(ref)
    previous_sha = hashlib.sha256(harness.PREVIOUS).hexdigest()
    points = [("spawn", 0.05), ("temp", 0.0), ("temp", 0.2), ("temp", 0.5), ("never",)]
    outcomes = collections.Counter()
    for i, when in enumerate(points):
        for previous in (True, False):
            folder = tmp_path / f"kill{i}{'p' if previous else 'n'}"
            folder.mkdir()
            dst = folder / "out.weights.h5"
            if previous:
                dst.write_bytes(harness.PREVIOUS)
            code = _run_until(src, dst, when, window)
            if not dst.exists():
                assert not previous, "the previous file disappeared"
                state = "nothing"
            else:
                sha = _sha(dst)
                assert sha in (ref_sha, previous_sha) and (previous or sha == ref_sha), \
                    f"a partial file at {dst} after a kill at {when}"
                state = "complete" if sha == ref_sha else "previous"
            leftovers = _temp_files(folder, dst.name)
            assert all(n.startswith(".out.weights.h5.") and n.endswith((".tmp", ".h5"))
                       for n in leftovers), leftovers
            if when[0] == "never":
                assert code == 0 and state == "complete" and not leftovers
            outcomes[(when[0], state, code == -signal.SIGKILL, bool(leftovers))] += 1
    assert _sha(src) == src_sha
    # Kills at the temp file's appearance land while it is being written (the
    # window is seconds long; the poll is a millisecond): the process dies,
    # the destination is untouched, and a temporary file is what is left.
    mid_write = sum(n for (w, state, killed, left), n in outcomes.items()
                    if w == "temp" and killed and left and state in ("nothing", "previous"))
    assert mid_write >= 4, outcomes


# --------------------------------------------------------------------------- the fuzzer
@pytest.mark.slow
@pytest.mark.parametrize("seed, examples", [
    (0, 100), pytest.param(1, 1000, marks=pytest.mark.exhaustive)])
def test_the_reader_fuzzer_runs_a_fixed_number_of_examples_and_finds_nothing(seed, examples):
    """A bounded fuzzing run (fixed seed and count: the same examples every run, on any machine;
    hunt with other seeds).

    A failing input would be saved under tests/hardening/regressions/, which
    the corpus replays from then on.
    """
    r = subprocess.run([sys.executable, "-W", "error", str(ROOT / "tests/hardening/fuzz_readers.py"),
                        "--examples", str(examples), "--seconds", "600", "--seed", str(seed),
                        "--supervise"], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    done = [int(w) for line in r.stdout.splitlines() if "examples in" in line
            for w in line.split()[:1]]
    assert done and done[0] >= examples, r.stdout
