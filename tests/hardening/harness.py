"""Run the hardening corpus through every command and check what must hold for every run.

For each case (``corpus.py``) and each command that takes a file (``info``,
``cluster``, ``prune``, ``remove``, ``report``, ``compare``: those the CLI
has), one run in a worker process (``worker.py``) checks:

- exit code 0 with a correct result (verified by reading the output back),
  or 2 with exactly one line on stderr, starting ``weightshare``, naming the
  file (and the dataset or the parameter, where the case says);
- nothing escaped ``main`` (no traceback), no warning text, no "Exception
  ignored", no file descriptor left open;
- no raw control character on stdout or stderr (a file's names are printed
  escaped);
- every file of the case folder (the input, and any file it links to)
  keeps its bytes (sha256) and mtime, and no file appears next to it (the
  run's working directory is the case folder, so a name the input resolves
  relative to it -- HDF5 external storage, a virtual dataset's source --
  lands among the files checked);
- on failure the output folder is exactly as it was (empty, or the previous
  file byte-identical): no partial output, no temporary file; on success it
  holds the output and nothing else;
- the run takes less than :data:`CASE_SECONDS` and stays under an
  address-space limit of :data:`ALLOWANCE` plus :data:`MULTIPLE` times the
  input size.

Run as a script to print the numbers of docs/robustness.md::

    python tests/hardening/harness.py --seed 0
"""

import argparse
import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import pathlib
import queue
import re
import selectors
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
if __package__:
    from . import corpus as _corpus
else:                        # run as a script
    import corpus as _corpus
    sys.path.insert(0, str(ROOT))
#: a run taking longer fails the case; the worker is killed after JOB_TIMEOUT
CASE_SECONDS = 5.0
JOB_TIMEOUT = 20.0
#: address-space limit of a run: ALLOWANCE + MULTIPLE * (bytes of the files it reads)
ALLOWANCE = 256 << 20
MULTIPLE = 20
PREVIOUS = b"a previous output file that must survive a failed run\n"
#: a control character printed raw: text from a file must reach the terminal escaped
RAW_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


# --------------------------------------------------------------------------- the CLI
def available_commands():
    """The commands of ``corpus.COMMANDS`` the installed CLI has, and the prune options."""
    from weightshare.cli import build_parser
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    have = [c for c in _corpus.COMMANDS if c in sub.choices]
    options = {}
    for name in have:
        options[name] = {s for a in sub.choices[name]._actions for s in a.option_strings}
    return tuple(have), options


def _original(model):
    """The pristine fixture ``compare`` runs the case against (one holding the architecture)."""
    for sfx in (".keras", ".h5"):
        if (_corpus.FIXTURES / (model + sfx)).exists():
            return model + sfx
    return "k3_mlp.keras"


def default_args(command, case, paths, options):
    """The default options of `command` for `case` (the case may replace them)."""
    if command == "info":
        return ["--json"]
    if command == "report":
        return ["--json"]
    if command == "cluster":
        return ["-k", "4", "--json"]
    if command == "prune":
        opts = options.get("prune", set())
        out = ["--sparsity", "0.5"] if "--sparsity" in opts else ["-s", "0.5"]
        return out + (["--json"] if "--json" in opts else [])
    if command == "remove":
        return ["--layer", case.layer, "--count", "1", "--json"]
    if command == "strip":
        return ["--compress", "--json"]
    if command == "compare":
        return ["--inputs", str(paths["inputs"]), "--json"]
    raise ValueError(command)


def build_argv(command, case, paths, options):
    """The argv of one run (placeholders of the case's arguments filled in)."""
    extra = case.args_for(command)
    if extra is None:
        extra = default_args(command, case, paths, options)
    else:
        extra = [a.format(**{k: str(v) for k, v in paths.items()}) for a in extra]
        if command == "compare" and "--inputs" not in extra:
            extra = ["--inputs", str(paths["inputs"])] + extra
        if "--json" in options.get(command, ()) and "--json" not in extra:
            extra = extra + ["--json"]
    if command == "compare":
        return ["compare", str(paths["original"]), str(paths["input"])] + extra
    argv = [command, str(paths["input"])]
    if command in _corpus.WRITERS:
        argv += ["-o", str(paths["output"])]
    return argv + extra


# --------------------------------------------------------------------------- snapshots
def snapshot(folder):
    """{relative path: state} of everything under `folder`, not following links or pipes."""
    out = {}
    folder = pathlib.Path(folder)
    if not os.path.lexists(folder):
        return out
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in sorted(dirnames + filenames):
            path = pathlib.Path(dirpath) / name
            rel = str(path.relative_to(folder))
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode))
            elif stat.S_ISREG(st.st_mode):
                out[rel] = ("file", _sha(path), st.st_mtime_ns, stat.S_IMODE(st.st_mode))
            else:
                out[rel] = ("other", stat.S_IFMT(st.st_mode))
    return out


def _sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _diff(before, after):
    changed = sorted(k for k in before if k in after and before[k] != after[k])
    gone = sorted(set(before) - set(after))
    new = sorted(set(after) - set(before))
    out = []
    if changed:
        out.append(f"changed: {changed}")
    if gone:
        out.append(f"removed: {gone}")
    if new:
        out.append(f"new: {new}")
    return "; ".join(out)


# --------------------------------------------------------------------------- workers
class Worker:
    """One ``worker.py`` process; restarted after a hang or a crash."""

    def __init__(self, log):
        self.log = log
        self.proc = None

    def start(self):
        env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
        self.proc = subprocess.Popen(
            [sys.executable, "-W", "error", str(HERE / "worker.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.log, cwd=str(ROOT), env=env, text=True, bufsize=1)
        ready = self._read(60)
        if not ready or not ready.get("ready"):
            raise RuntimeError(f"the worker did not start: {ready}")

    def _read(self, timeout):
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not sel.select(timeout):
                return None
            line = self.proc.stdout.readline()
        finally:
            sel.close()
        return json.loads(line) if line else {"died": self.proc.wait()}

    def run(self, job, timeout=JOB_TIMEOUT):
        if self.proc is None or self.proc.poll() is not None:
            self.start()
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        result = self._read(timeout)
        if result is None:
            self.stop()
            return {"hung": True}
        if "died" in result:
            self.proc = None
            return result
        return result

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for f in (self.proc.stdin, self.proc.stdout):
                try:
                    f.close()
                except OSError:
                    pass
            self.proc = None


# --------------------------------------------------------------------------- one run
@dataclasses.dataclass
class Run:
    """The result of one case through one command."""

    case: str
    kind: str
    command: str
    outcome: str           # "done", "refused" or "failed"
    rc: object
    seconds: float
    problems: list
    err: str
    argv: list
    peak_rss: object = None


class Tree:
    """The folders of a run: ``cases/<id>``, ``out/<id>/<command>``, ``shared`` (originals)."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        os.chmod(self.root, 0o755)          # an unprivileged run must reach the inputs
        self.cases = self.root / "cases"
        self.out = self.root / "out"
        self.shared = self.root / "shared"
        for d in (self.cases, self.out, self.shared):
            d.mkdir(mode=0o755)
        for name in os.listdir(_corpus.FIXTURES):
            if name.endswith((".keras", ".h5", "_io.npz")) and name.split(".")[0].split("_io")[0] \
                    in {m for _, m, _ in _corpus.BASES} | {"k3_mlp", "k3_cnn"}:
                shutil.copy(_corpus.FIXTURES / name, self.shared / name)
        self.shared_state = snapshot(self.shared)


def _output_paths(case, out_dir, input_path):
    sfx = _corpus.suffix(case.input) or ".bin"
    mode = case.output
    output = out_dir / ("out" + sfx)
    folder = out_dir
    if mode == "existing":
        output.write_bytes(PREVIOUS)
    elif mode == "readonly":
        os.chmod(out_dir, 0o555)
    elif mode == "missing":
        folder = out_dir / "missing"
        output = folder / ("out" + sfx)
    elif mode == "input":
        output = input_path
    elif mode == "dir":
        output.mkdir()
    elif mode == "link":
        os.symlink(input_path, output)
    elif mode == "victimlink":          # the case folder's snapshot proves the victim untouched
        os.symlink(input_path.parent / "victim.txt", output)
    elif mode == "victimhard":
        os.link(input_path.parent / "victim.txt", output)
    elif mode == "suffix":
        output = out_dir / ("out" + {".keras": ".h5", ".h5": ".keras"}.get(sfx, ".npy"))
    return output, folder


def _input_bytes(case_dir, paths, command):
    """Bytes of the files a run reads: the case folder's files (and compare's original, inputs)."""
    total = 0
    if command == "compare":
        total += os.path.getsize(paths["original"]) + os.path.getsize(paths["inputs"])
    for p in pathlib.Path(case_dir).iterdir():
        if p.is_file() and not p.is_symlink():
            total += p.stat().st_size
    return total


def run_case(case, worker, tree, commands, options, limit=True):
    """Every applicable command on `case`; returns a list of :class:`Run`."""
    case_dir = tree.cases / case.id
    input_path = _corpus.materialize(case, case_dir)
    before = snapshot(case_dir)
    runs = []
    for command in commands:
        if command not in case.commands:
            continue
        out_dir = tree.out / case.id / command
        out_dir.mkdir(parents=True)
        output, folder = _output_paths(case, out_dir, input_path)
        paths = {"input": input_path, "output": output, "folder": folder, "case": case_dir,
                 "original": tree.shared / _original(case.model),
                 "inputs": tree.shared / f"{case.model}_io.npz"}
        if not paths["inputs"].exists():
            paths["inputs"] = tree.shared / "k3_mlp_io.npz"
        argv = build_argv(command, case, paths, options)
        out_before = snapshot(out_dir)
        size = _input_bytes(case_dir, paths, command)
        job = {"argv": argv, "limit": ALLOWANCE + MULTIPLE * size if limit else None,
               "unprivileged": case.output == "readonly", "cwd": str(case_dir)}
        res = worker.run(job)
        problems = check_run(case, command, res, paths, before, snapshot(case_dir), out_dir,
                             out_before, snapshot(out_dir))
        if case.output == "readonly":
            os.chmod(out_dir, 0o755)
        if "rc" in res and res["rc"] == 0 and not problems:
            problems = verify_result(case, command, res, paths, argv)
        rc = res.get("rc")
        outcome = "failed" if problems else {0: "done", 2: "refused"}.get(rc, "failed")
        runs.append(Run(case.id, case.kind, command, outcome, rc, res.get("seconds", math.inf),
                        problems, res.get("err", ""), argv, res.get("peak_rss")))
        if problems:     # the next command must see the input as it was
            shutil.rmtree(case_dir, ignore_errors=True)
            input_path = _corpus.materialize(case, case_dir)
            before = snapshot(case_dir)
    return runs


# --------------------------------------------------------------------------- checks
def _names_ok(line, names, paths):
    fill = {k: str(v) for k, v in paths.items()}
    missing = []
    for item in names:
        options = item if isinstance(item, (tuple, list)) else (item,)
        if not any(o.format(**fill) in line for o in options):
            missing.append(" or ".join(repr(o.format(**fill)) for o in options))
    return missing


def check_run(case, command, res, paths, before, after, out_dir, out_before, out_after):
    """What must hold for every run, whatever its exit code: a list of problems (empty: ok)."""
    problems = []
    if res.get("hung"):
        return [f"no answer within {JOB_TIMEOUT} s (hang); the worker was killed"]
    if "died" in res:
        return [f"the process died (exit status {res['died']}): a crash"]
    rc, err, out = res["rc"], res["err"], res["out"]
    if res["escaped"]:
        problems.append("an exception escaped main (a traceback):\n" + res["escaped"])
    if rc not in (0, 2):
        problems.append(f"exit code {rc}, not 0 or 2")
    expect = case.expect_for(command)
    if expect == "done" and rc != 0:
        problems.append(f"expected to succeed; exit {rc}: {err.strip()}")
    if expect == "refused" and rc == 0:
        problems.append("expected a refusal; exit 0")
    for bad in ("Traceback", "Exception ignored", "Warning:", "HDF5-DIAG"):
        if bad in err:
            problems.append(f"stderr shows {bad!r}: {err[:2000]}")
    for stream, text in (("stdout", out), ("stderr", err)):
        raw = RAW_CONTROL.search(text)
        if raw:
            problems.append(f"{stream} holds the raw control character {raw.group()!r}: "
                            f"{text[max(0, raw.start() - 200):raw.start() + 200]!r}")
    lines = err.splitlines()
    if rc == 2:
        if len(lines) != 1:
            problems.append(f"stderr has {len(lines)} lines, not 1: {err[:2000]!r}")
        elif not lines[0].startswith("weightshare"):
            problems.append(f"the error line does not start with 'weightshare': {lines[0]!r}")
        else:
            names = case.names_for(command)
            missing = _names_ok(lines[0], names, paths)
            if missing:
                problems.append(f"the error line does not name {', '.join(missing)}: {lines[0]!r}")
    elif rc == 0:
        notes = [ln for ln in lines if ln.startswith(f"weightshare {command}: note: left as they "
                                                     "are: ")]
        extra = [ln for ln in lines if not ln.startswith(f"weightshare {command}: warning:")
                 and ln not in notes]
        if extra:
            problems.append(f"stderr is not empty on success: {err[:2000]!r}")
        if len(notes) > 1:
            problems.append(f"the note on what was left out is printed {len(notes)} times: "
                            f"{err[:2000]!r}")
    if res["leaked_fds"]:
        problems.append(f"file descriptors left open: {res['leaked_fds']}")
    if res["seconds"] > CASE_SECONDS:
        problems.append(f"took {res['seconds']:.1f} s (limit {CASE_SECONDS} s)")
    diff = _diff(before, after)
    if diff:
        problems.append(f"the case folder (the input) changed: {diff}")
    if rc != 0:
        diff = _diff(out_before, out_after)
        if diff:
            problems.append(f"the output folder changed on failure: {diff}")
    elif command in _corpus.WRITERS:
        name = os.path.relpath(paths["output"], out_dir)
        expected = {name} if not name.startswith("..") else set()
        if set(out_after) != expected:
            problems.append(f"the output folder holds {sorted(out_after)}, not just the output")
    else:
        diff = _diff(out_before, out_after)
        if diff:
            problems.append(f"a command that writes nothing changed the output folder: {diff}")
    return problems


# --------------------------------------------------------------------------- results
def _read(path, values=True):
    import weightshare
    return {r.name: r for r in weightshare.read_weights(path, values=values)}


def _same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind == "f":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def _k_of(argv):
    k = argv[argv.index("-k") + 1]
    if "=" in k:
        return {p.split("=")[0]: int(p.split("=")[1]) for p in k.split(",")}
    return int(k)


def verify_result(case, command, res, paths, argv):
    """Problems with a successful run's result (empty: correct)."""
    try:
        data = json.loads(res["out"]) if "--json" in argv else None
    except ValueError as exc:
        return [f"--json output is not JSON ({exc}): {res['out'][:300]!r}"]
    try:
        if command == "info":
            import weightshare.files
            tensors = data["tensors"]
            if data["format"] not in weightshare.files.FORMATS:
                return [f"unknown format {data['format']!r}"]
            for t in tensors:
                if not all(isinstance(d, int) and d >= 0 for d in t["shape"]):
                    return [f"bad shape {t['shape']} for {t['name']}"]
            return []
        if command == "report":
            rows, total = data["tensors"], data["total"]
            if total["size"] != sum(r["size"] for r in rows) or total["n_tensors"] != len(rows):
                return ["report totals do not add up"]
            return []
        if command == "compare":
            if not 0 <= data["top1_agreement"] <= 1 or data["samples"] < 1:
                return [f"compare result out of range: {data}"]
            return []
        src, dst = paths["input"], paths["output"]
        if not os.path.isfile(dst) or os.path.samefile(src, dst):
            return ["exit 0 but no output file"]
        before, after = _read(src), _read(dst)
        if [(r.name, r.shape, r.dtype) for r in before.values()] != \
                [(r.name, r.shape, r.dtype) for r in after.values()] and command != "remove":
            return ["the output's tensors (names, shapes, dtypes) differ from the input's"]
        if command == "cluster":
            return _verify_cluster(data, before, after, argv)
        if command == "prune":
            return _verify_prune(before, after)
        if command == "remove":
            return _verify_remove(data, before, after, case)
        if command == "strip":
            return [f"{name} changed" for name, old in before.items()
                    if not _same(old.value, after[name].value)]
    except Exception as exc:  # noqa: BLE001 - a result that cannot be read back is wrong
        return [f"the result cannot be verified ({type(exc).__name__}: {exc})"]
    return []


def _verify_cluster(data, before, after, argv):
    k = _k_of(argv)
    rows = {r["name"]: r for r in data["tensors"]}
    problems = []
    for name, old in before.items():
        new = after[name].value
        if name not in rows:
            if not _same(old.value, new):
                problems.append(f"{name} was not clustered but changed")
            continue
        kk = k if isinstance(k, int) else k.get(old.path, k.get(old.layer))
        if "--per-channel" in argv:
            continue
        distinct = np.unique(new[~np.isnan(new)]).size if new.dtype.kind == "f" else np.unique(new).size
        if distinct > kk or distinct != rows[name]["distinct_after"]:
            problems.append(f"{name}: {distinct} distinct values after clustering to k={kk} "
                            f"(reported {rows[name]['distinct_after']})")
        if "--no-keep-zeros" not in argv and np.any(new[old.value == 0] != 0):
            problems.append(f"{name}: a zero was moved")
    return problems


def _verify_prune(before, after):
    problems = []
    for name, old in before.items():
        new = after[name].value
        if new.dtype.kind == "f" and np.any((new != 0) & (new != old.value)):
            problems.append(f"{name}: pruning changed values other than to zero")
    return problems


def _verify_remove(data, before, after, case):
    if data["units_after"] != data["units_before"] - len(data["removed"]):
        return ["remove: units do not add up"]
    kern = [r for r in after.values() if r.layer == data["layer"] and r.kind == "kernel"]
    if not kern or kern[0].shape[-1] != data["units_after"]:
        return [f"remove: the kernel of {data['layer']} does not have {data['units_after']} units"]
    return []


# --------------------------------------------------------------------------- the matrix
def run_matrix(cases, root, workers=2, limit=True, progress=None):
    """Every case through every available command, in `workers` processes; list of Run."""
    commands, options = available_commands()
    tree = Tree(root)
    log = open(pathlib.Path(root) / "workers.log", "w")
    todo = queue.Queue()
    for case in cases:
        todo.put(case)
    runs, lock = [], threading.Lock()

    def drive():
        worker = Worker(log)
        try:
            while True:
                try:
                    case = todo.get_nowait()
                except queue.Empty:
                    return
                result = run_case(case, worker, tree, commands, options, limit=limit)
                with lock:
                    runs.extend(result)
                    if progress:
                        progress(len(runs))
        finally:
            worker.stop()
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(drive) for _ in range(workers)]:
            f.result()
    log.close()
    diff = _diff(tree.shared_state, snapshot(tree.shared))
    if diff:
        runs.append(Run("shared", "shared", "-", "failed", None, 0.0,
                        [f"the original models compare read changed: {diff}"], "", []))
    order = {c.id: i for i, c in enumerate(cases)}
    runs.sort(key=lambda r: (order.get(r.case, -1), commands.index(r.command)
                             if r.command in commands else -1))
    return runs, commands


def summarize(runs, cases, commands):
    """The numbers of docs/robustness.md, as a dict."""
    by = collections.Counter(r.outcome for r in runs)
    kinds = collections.defaultdict(collections.Counter)
    for r in runs:
        kinds[r.kind][r.outcome] += 1
    per_command = collections.defaultdict(collections.Counter)
    for r in runs:
        per_command[r.command][r.outcome] += 1
    tracebacks = sum(any("traceback" in p or "Traceback" in p for p in r.problems) for r in runs)
    modified = sum(any("case folder" in p for p in r.problems) for r in runs)
    partial = sum(any("output folder" in p for p in r.problems) for r in runs)
    return {"cases": len(cases), "commands": list(commands), "runs": len(runs),
            "done": by["done"], "refused": by["refused"], "failed": by["failed"],
            "tracebacks": tracebacks, "modified_inputs": modified, "partial_outputs": partial,
            "slowest_s": round(max((r.seconds for r in runs), default=0.0), 3),
            "kinds": {k: dict(v) for k, v in kinds.items()},
            "per_command": {k: dict(v) for k, v in per_command.items()}}


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the hardening corpus and print the numbers.")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--keep", help="keep the run's folder here")
    parser.add_argument("--failures", help="write the failed runs to this JSON file")
    args = parser.parse_args(argv)
    cases = _corpus.build(args.seed, args.count)
    root = args.keep or tempfile.mkdtemp(prefix="weightshare-hardening-")
    os.makedirs(root, exist_ok=True)
    start = time.perf_counter()
    try:
        runs, commands = run_matrix(cases, root, workers=args.workers)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    numbers = summarize(runs, cases, commands)
    numbers["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(numbers, indent=1))
    else:
        print(f"{numbers['cases']} cases x {len(commands)} commands ({', '.join(commands)}) = "
              f"{numbers['runs']} runs in {numbers['seconds']} s")
        print(f"done {numbers['done']}, refused cleanly {numbers['refused']}, "
              f"failed {numbers['failed']}")
        print(f"tracebacks {numbers['tracebacks']}, modified inputs {numbers['modified_inputs']}, "
              f"partial outputs {numbers['partial_outputs']}, slowest run {numbers['slowest_s']} s")
        for kind, counts in numbers["kinds"].items():
            print(f"  {kind:16} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if args.failures:
        with open(args.failures, "w") as f:
            json.dump([dataclasses.asdict(r) for r in runs if r.problems], f, indent=1)
    for r in runs:
        if r.problems:
            print(f"FAILED {r.case} {r.command}: {' '.join(r.argv)}\n  " + "\n  ".join(r.problems),
                  file=sys.stderr)
    return 1 if numbers["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
