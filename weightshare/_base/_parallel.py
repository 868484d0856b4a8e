"""Tensors in parallel: a bounded window of work over a ``concurrent.futures`` executor.

A file job walks its tensors in file order (the writer reads one, asks for its new
values, writes them, and goes on). :class:`Lookahead` lets that walk stay serial
while the work runs ahead of it on other cores: when the writer asks for tensor i,
the tensors after it (in the order the writer is predicted to ask) are read and
submitted, at most ``window`` of them and ``budget`` bytes of input in flight, and
the writer then waits for tensor i's own result. Results are used in the writer's
order, so the output is written in the same order as a serial run; each result is
a pure function of its tensor (see :func:`tensor_seed` for random streams), so it
is identical bit for bit whatever runs it and in whatever order.

A prediction that turns out wrong costs time, never correctness: a tensor the
writer asks for that was not submitted is computed in this process.

Standard library only (``concurrent.futures``, ``multiprocessing``): the executor
is the user's (a Dask ``client.get_executor()``, a thread pool) or a process pool
of our own, started only for workloads large enough to pay for it
(:func:`use_processes`).
"""

import concurrent.futures as cf
import contextlib
import hashlib
import multiprocessing
import os
import signal
import sys
import threading

from ._validation import check_int

__all__ = ["cores", "check_jobs", "use_processes", "tensor_seed", "Lookahead",
           "PARALLEL_MIN_ENTRIES", "PARALLEL_MIN_TENSORS", "WINDOW_BYTES"]

#: our own process pool is started only when the tensors to work on hold at least this
#: many entries in total (below it, starting the workers costs more than they save)
PARALLEL_MIN_ENTRIES = 1 << 20
#: ... and there are at least this many of them
PARALLEL_MIN_TENSORS = 2
#: input bytes in flight at most (one tensor is always allowed, however large)
WINDOW_BYTES = 256 << 20


def cores():
    """The cores this process may run on (its CPU affinity where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def check_jobs(jobs, executor):
    """`jobs` as an int >= 1 (None: :func:`cores`), after checking `executor` has ``submit``."""
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise TypeError("executor must be None or a concurrent.futures.Executor (an object with "
                        f"a submit method); got {type(executor).__name__} {executor!r}")
    return cores() if jobs is None else check_int(jobs, "jobs", 1)


def use_processes(jobs, sizes):
    """Whether a job over tensors of `sizes` entries starts a process pool of `jobs` workers.

    The rule: ``jobs > 1``, at least :data:`PARALLEL_MIN_TENSORS` tensors and at least
    :data:`PARALLEL_MIN_ENTRIES` entries in total. Below that the job runs in this process.
    """
    sizes = list(sizes)
    return (jobs > 1 and len(sizes) >= PARALLEL_MIN_TENSORS
            and sum(sizes) >= PARALLEL_MIN_ENTRIES)


def tensor_seed(base, name):
    """Entropy of one tensor's random stream: the job's `base` and a hash of its `name`.

    ``numpy.random.SeedSequence(tensor_seed(base, name))`` is the same in every process
    and independent of the order tensors are worked on.
    """
    digest = hashlib.blake2b(name.encode("utf-8", "backslashreplace"), digest_size=16).digest()
    return [int(base)] + [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]


#: the signals that end a run (the CLI unwinds on them): held while workers are forked
_UNWINDING = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP")
                   if hasattr(signal, n))


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT/SIGTERM/SIGHUP while workers are forked: a handler that raises inside
    fork's own hooks is lost ("Exception ignored"), and the run would go on. Held, the
    signal acts right after, when the pool exists and can be shut down."""
    masked = hasattr(signal, "pthread_sigmask") and \
        threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _UNWINDING) if masked else None
    try:
        yield
    finally:
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


#: the setters of OpenBLAS's thread count, by the names its builds export (NumPy's wheels:
#: ``scipy_openblas_set_num_threads64_``)
_BLAS_SETTERS = ("openblas_set_num_threads", "openblas_set_num_threads64_",
                 "scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads")


def _one_blas_thread():
    """Make the OpenBLAS that NumPy loaded use one thread in this process (Linux; else nothing).

    A worker runs one tensor at a time on one core. OpenBLAS's own threads would busy-wait
    on the core another worker is using: measured on 2 cores, they gave a serial run
    nothing (the same wall time with one thread), and with them ``jobs=2`` ran at
    0.74-1.02x of ``jobs=1`` (1.21-1.51x without; docs/files.md). Found as threadpoolctl
    finds it: the library mapped into the process, and the setter it exports. The results
    do not change: the sums of a tensor's SSE and means do not go through BLAS
    (``weightshare._kmeans._dot``), and ``_auto._outer_diff`` is exact for any thread count.
    """
    import ctypes
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f
                    if "openblas" in line.lower() and ".so" in line}
    except OSError:
        return
    for path in sorted(libs):
        with contextlib.suppress(OSError):
            lib = ctypes.CDLL(path)
            for name in _BLAS_SETTERS:
                setter = getattr(lib, name, None)
                if setter is not None:
                    setter(1)
                    break


def _worker_start(parent):
    """In each worker: one BLAS thread (:func:`_one_blas_thread`); the default action for the
    signals that end a run (a worker killed by Ctrl-C, SIGTERM or SIGHUP just ends; its
    parent reports it), none of them held; on Linux, SIGTERM when the parent ends, however
    it ends (no worker outlives its run)."""
    _one_blas_thread()
    for signum in _UNWINDING:
        signal.signal(signum, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        import ctypes
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).prctl(1, int(signal.SIGTERM))     # PR_SET_PDEATHSIG
        if os.getppid() != parent:                              # it ended before that
            os._exit(1)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _UNWINDING)


def _process_pool(workers):
    """A process pool: forked workers on Linux, the platform's default elsewhere.

    Forked workers start in milliseconds and do not import the main module again, so a
    script that calls a file job at its top level (no ``if __name__ == "__main__":``
    guard) works; the pool starts all its workers before its own thread, and this
    process runs no other thread of ours. Where fork is not the safe choice (macOS,
    Windows: spawn), the main module is imported again in each worker and a script
    needs the guard (see docs/files.md).
    """
    ctx = multiprocessing.get_context("fork" if sys.platform.startswith("linux") else None)
    return cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_worker_start,
                                  initargs=(os.getpid(),))


def _broken(key):
    """The error of a pool whose worker died (the OS killed it: most often, out of memory)."""
    return MemoryError(f"a worker process died while working on {key!r} (out of memory?); "
                       "run with jobs=1 to work in this process")


class Lookahead:
    """``func(*load(key))`` for keys asked in (about) the order `keys` predicts, run ahead.

    Parameters
    ----------
    func : callable
        The work; a module-level function when it runs in other processes.
    keys : list
        The order the results will (probably) be asked for.
    load : callable(key) -> tuple
        The arguments of `func` for `key`, read in this process when the key is submitted.
        If it raises, the key is computed in this process when asked for instead.
    size_of : callable(key) -> int
        Bytes of input of `key` (without reading it), for the budget.
    executor : concurrent.futures.Executor or None
        None, or a pool we own (``own=True``: shut down by :meth:`close`), or the user's.
    window : int
        Keys in flight at most.
    budget : int
        Input bytes in flight at most (one key is always allowed).
    """

    def __init__(self, func, keys, load, size_of, executor, window, budget=WINDOW_BYTES,
                 own=False):
        self.func, self.keys, self.load, self.size_of = func, list(keys), load, size_of
        self.executor, self.window, self.budget, self.own = executor, window, budget, own
        self.next = 0
        self.flight = {}            # key -> (future, bytes)
        self.bytes = 0
        self.done = set()

    @classmethod
    def start(cls, func, keys, load, size_of, *, jobs, executor=None, sizes=()):
        """A Lookahead on `executor`, or on a pool of `jobs` processes when the rule of
        :func:`use_processes` says so, or one that computes everything in this process."""
        own = False
        if executor is None and use_processes(jobs, sizes):
            executor, own = _process_pool(min(jobs, len(keys))), True
        window = 2 * jobs if executor is not None else 0
        return cls(func, keys, load, size_of, executor, window, own=own)

    def _top_up(self):
        while self.next < len(self.keys) and len(self.flight) < self.window:
            key = self.keys[self.next]
            if key in self.done or key in self.flight:
                self.next += 1
                continue
            size = self.size_of(key)
            if self.flight and self.bytes + size > self.budget:
                return
            self.next += 1
            try:
                args = self.load(key)
            except Exception:           # the writer's own read reports it, in its order
                continue
            self.flight[key] = (self._submit(key, args), size)
            self.bytes += size

    def _submit(self, key, args):
        try:
            if not self.own:
                return self.executor.submit(self.func, *args)
            with _signals_held():            # our pool forks its workers on the first submit
                return self.executor.submit(self.func, *args)
        except cf.BrokenExecutor:
            raise _broken(key) from None

    def result(self, key, *args):
        """The result for `key` (`args`: its arguments, used if it was not submitted)."""
        self.done.add(key)
        if key not in self.flight and self.executor is not None:
            # not read ahead (the first key, or a wrong prediction): submit the caller's
            # values, so that the keys after it run meanwhile
            self.flight[key] = (self._submit(key, args), self.size_of(key))
            self.bytes += self.flight[key][1]
        self._top_up()
        if key not in self.flight:
            return self.func(*args)
        future, size = self.flight.pop(key)
        del args
        try:
            return future.result()
        except cf.BrokenExecutor:
            raise _broken(key) from None
        finally:
            self.bytes -= size
            self._top_up()

    def close(self, ok=True):
        """Cancel what is still in flight; shut our own pool down (waiting for it when `ok`)."""
        for future, _ in self.flight.values():
            future.cancel()
        self.flight.clear()
        if self.own:    # after an error too: the workers end after their current tensor
            self.executor.shutdown(wait=True, cancel_futures=True)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        self.close(ok=kind is None)
