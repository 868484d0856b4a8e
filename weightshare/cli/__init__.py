"""The ``weightshare`` command line: one subcommand per job, over the public API.

Each subcommand lives in its own module with a ``register(subparsers)``
function that adds its parser and sets ``func``; ``func(args)`` returns the
exit code. This module owns the boundary: any ``ValueError``, ``TypeError``
or ``OSError`` becomes one line on stderr and exit code 2, never a traceback.

Exit codes: 0 done, 2 bad input (file, argument or value), 130 interrupted.
"""

import argparse
import importlib
import sys

from .._text import printable

__all__ = ["main", "EXIT_OK", "EXIT_BAD_INPUT"]

EXIT_OK = 0
EXIT_BAD_INPUT = 2

#: subcommand modules, in the order ``--help`` lists them
_COMMANDS = ("info", "cluster", "remove", "report", "compare", "prune")


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (and exit code 2)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT,
                  f"{self.prog}: error: {printable(message)} (see {self.prog} --help)\n")


def _one_line(exc):
    """The message of `exc` on one line, control characters (from a file's names) escaped."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(printable(text).split())


def build_parser():
    """The argparse parser of the ``weightshare`` command."""
    from .. import __version__
    parser = _Parser(prog="weightshare",
                     description="Post-training weight sharing and sparsification of Keras models "
                                 "and NumPy arrays, without TensorFlow or Keras.")
    parser.add_argument("--version", action="version", version=f"weightshare {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in _COMMANDS:
        importlib.import_module(f"{__name__}._{name}").register(sub)
    return parser


def main(argv=None):
    """Run the command line; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"weightshare {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, MemoryError) as exc:
        print(f"weightshare {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
