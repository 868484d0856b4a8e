"""Run ``weightshare.cli.main(argv)`` for many jobs in one process, each one isolated.

Started as ``python -W error tests/hardening/worker.py``; reads one JSON job per
line on stdin and writes one JSON result per line on its original stdout.

A job: ``{"argv": [...], "limit": bytes or null, "unprivileged": bool, "cwd": path or
null}``. For each job the worker

- runs it in the folder ``cwd`` (when given), and goes back after;

- resets the peak-RSS counter (``/proc/self/clear_refs``) and sets
  ``RLIMIT_AS`` to the current address-space size plus ``limit`` bytes, so a
  forged shape or a zip bomb hits a MemoryError instead of the machine;
- points file descriptors 1 and 2 at scratch files and ``sys.stdout`` /
  ``sys.stderr`` at ``StringIO`` (C libraries writing to stderr are caught too);
- turns every warning into an error (``warnings.simplefilter("error")``, as
  ``python -W error``) and collects garbage at the end, so a ResourceWarning
  of an unclosed file shows up as an "Exception ignored" text on stderr;
- with ``unprivileged`` (and only when running as root) drops the effective
  uid/gid to nobody for the call, so a read-only folder is read-only;
- reports the exit code (``SystemExit`` from argparse included), the
  captured output, any exception that escaped ``main`` (a traceback a user
  would have seen), the time, the peak RSS and file descriptors left open.

The parent kills the worker if a job takes too long (a hang) and starts a new
one; a crash (segfault) shows up as a worker that died.
"""

import gc
import importlib
import io
import json
import os
import pkgutil
import resource
import sys
import tempfile
import time
import traceback
import warnings

NOBODY = 65534


def _status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _preimport():
    """Import everything a command may import lazily (an unprivileged job cannot read /root)."""
    import numpy.lib.format  # noqa: F401
    import weightshare
    import weightshare.cli
    for mod in pkgutil.walk_packages(weightshare.__path__, "weightshare."):
        # weightshare.keras imports Keras (the one module that does); no command uses it
        if (mod.name.endswith((".plot", ".__main__")) or ".testing" in mod.name
                or mod.name == "weightshare.keras"):
            continue
        importlib.import_module(mod.name)
    weightshare.cli.build_parser()
    return weightshare.cli.main


def _fds():
    return set(os.listdir("/proc/self/fd"))


def run_job(main, job, scratch):
    out_f, err_f = scratch
    for f in scratch:
        f.seek(0)
        f.truncate()
    gc.collect()
    fds = _fds()
    peak_ok = _reset_peak()
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if job.get("limit"):
        resource.setrlimit(resource.RLIMIT_AS, (_status("VmSize") + int(job["limit"]), hard))
    saved_fd = os.dup(1), os.dup(2)
    saved_sys = sys.stdout, sys.stderr
    sys.stdout.flush()
    os.dup2(out_f.fileno(), 1)
    os.dup2(err_f.fileno(), 2)
    sys.stdout, sys.stderr = io.StringIO(), io.StringIO()
    drop = job.get("unprivileged") and os.geteuid() == 0
    rc, escaped = None, None
    home = os.getcwd()
    start = time.perf_counter()
    try:
        if job.get("cwd"):
            os.chdir(job["cwd"])
        if drop:
            os.setegid(NOBODY)
            os.seteuid(NOBODY)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                rc = main(job["argv"])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
                if not isinstance(exc.code, int) and exc.code is not None:
                    print(exc.code, file=sys.stderr)
            except BaseException:  # noqa: BLE001 - what a user would see as a traceback
                escaped = traceback.format_exc()
            gc.collect()
    finally:
        seconds = time.perf_counter() - start
        if drop:
            os.seteuid(0)
            os.setegid(0)
        os.chdir(home)
        text_out, text_err = sys.stdout.getvalue(), sys.stderr.getvalue()
        sys.stdout, sys.stderr = saved_sys
        os.dup2(saved_fd[0], 1)
        os.dup2(saved_fd[1], 2)
        os.close(saved_fd[0])
        os.close(saved_fd[1])
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    for f in scratch:
        f.seek(0)
    text_out += out_f.read().decode("utf-8", "replace")
    text_err += err_f.read().decode("utf-8", "replace")
    leaked = sorted(_fds() - fds)
    leaked = [os.readlink(f"/proc/self/fd/{fd}") for fd in leaked
              if os.path.exists(f"/proc/self/fd/{fd}")]
    return {"rc": rc, "out": text_out, "err": text_err, "escaped": escaped, "seconds": seconds,
            "peak_rss": _status("VmHWM") if peak_ok else None, "leaked_fds": leaked}


def serve():
    main = _preimport()
    gc.freeze()      # what the imports made is not garbage: collections scan only what a job makes
    reply = os.fdopen(os.dup(1), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)                    # nothing but replies reaches the pipe
    os.close(devnull)
    scratch = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
    reply.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        result = run_job(main, json.loads(line), scratch)
        reply.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(serve())
