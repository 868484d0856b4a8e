"""Results computed once per pytest run and shared by all its processes (the xdist workers).

A long computation several tests read (a slice of the hardening matrix, a Keras probe
batch, the hardening corpus) runs in the first process that asks for it; a process
asking meanwhile waits on a file lock, then reads the pickled result. So a test can be
split into items that xdist spreads over its workers without any work being repeated,
and a module-scoped fixture set up again in another worker costs a read.
"""

import fcntl
import os
import pathlib
import pickle


def run_folder(tmp_path_factory):
    """The folder this run's processes share: the base temporary folder of the run."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def once(folder, name, compute):
    """``compute()``, run by the first process of the run that asks for `name`.

    The result is kept as ``<folder>/<name>.pickle``; a failed computation keeps
    nothing (the next process to ask computes, and fails, again).
    """
    folder = pathlib.Path(folder)
    path = folder / f"{name}.pickle"
    with open(folder / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if path.exists():
                return pickle.loads(path.read_bytes())
            value = compute()
            tmp = folder / f"{name}.pickle.tmp"
            tmp.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
            os.replace(tmp, path)
            return value
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
