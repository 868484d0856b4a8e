"""The ``weightshare`` command line: one subcommand per job, over the public API.

Each subcommand lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``func``; ``func(args)`` returns the
exit code. This module owns the boundary: any ``ValueError``, ``TypeError``
or ``OSError`` becomes one line on stderr and exit code 2, never a traceback.

Exit codes: 0 done, 2 bad input (file, argument or value), 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM), 129 hung up (SIGHUP). SIGTERM and SIGHUP
unwind like Ctrl-C while a command runs, so that the atomic writer removes its
temporary file; a signal that was ignored when ``main`` started (``nohup``)
stays ignored, and the previous handlers are restored when ``main`` returns.
stdout and stderr escape what their encoding cannot show (a file name in an
ASCII locale) rather than fail after the output was written. A reader that
closes the pipe early (``weightshare report m.keras --json | head -1``) ends
the command quietly with exit code 0, as ``head`` expects of Unix tools.
"""

import argparse
import contextlib
import functools
import signal
import sys
import threading

from . import _cluster, _compare, _info, _pack, _prune, _remove, _report, _strip
from ._common import EXIT_BAD_INPUT, EXIT_OK, discard_stdout, one_line
from ..files import unwind_later

from ..errors import printable

__all__ = ["main", "EXIT_OK", "EXIT_BAD_INPUT"]

#: subcommand modules, in the order ``--help`` lists them
_COMMANDS = (_info, _cluster, _prune, _remove, _strip, _report, _compare,   # workflow order
             _pack)


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT,
                  f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


class _Terminated(BaseException):
    """Raised in the main thread by SIGTERM or SIGHUP (like KeyboardInterrupt for SIGINT)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    for other in _SIGNALS:          # a second signal must not interrupt the clean-up
        signal.signal(other, signal.SIG_IGN)

    def stop():
        raise _Terminated(signum)
    unwind_later(stop)              # not between a temporary file's creation and its clean-up


_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextlib.contextmanager
def _signals_unwind():
    """SIGTERM and SIGHUP raise _Terminated while the block runs (main thread, default handlers)."""
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for signum in _SIGNALS:
            if signal.getsignal(signum) is signal.SIG_DFL:
                saved[signum] = signal.signal(signum, _terminate)
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@contextlib.contextmanager
def _streams_escape():
    """stdout/stderr write what their encoding cannot show as backslash escapes."""
    saved = []
    for stream in (sys.stdout, sys.stderr):
        errors = getattr(stream, "errors", None)
        if errors in ("strict", None) and hasattr(stream, "reconfigure"):
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors="backslashreplace")
                saved.append((stream, errors or "strict"))
    try:
        yield
    finally:
        for stream, errors in saved:
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors=errors)


def build_parser():
    """The argparse parser of the ``weightshare`` command."""
    from .. import __version__
    parser = _Parser(prog="weightshare",
                     description="Post-training weight sharing and sparsification of Keras models "
                                 "and NumPy arrays, without TensorFlow or Keras.")
    parser.add_argument("--version", action="version", version=f"weightshare {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for command in _COMMANDS:
        command.register(sub)
    return parser


@functools.lru_cache(maxsize=1)
def _parser():
    """The parser :func:`main` uses, built once per process (building it takes milliseconds)."""
    return build_parser()


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    with _streams_escape(), _signals_unwind():
        try:
            code = int(args.func(args) or 0)
            sys.stdout.flush()      # a closed pipe shows here, not in the interpreter's exit
            return code
        except BrokenPipeError:     # the reader (head, less) stopped reading: stop quietly
            discard_stdout()
            return EXIT_OK
        except KeyboardInterrupt:
            print(f"weightshare {args.command}: interrupted", file=sys.stderr)
            return 130
        except _Terminated as exc:
            name = "hung up" if exc.signum == getattr(signal, "SIGHUP", None) else "terminated"
            print(f"weightshare {args.command}: {name} ({signal.Signals(exc.signum).name})",
                  file=sys.stderr)
            return 128 + exc.signum
        except (ValueError, TypeError, OSError, MemoryError) as exc:
            print(f"weightshare {args.command}: error: "
                  f"{one_line(exc, getattr(args, 'model', None))}", file=sys.stderr)
            return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
