"""Helpers shared by the subcommands: tables, JSON, progress, argument parsers.

Text that comes from a file (layer and tensor names, dataset paths, config
strings) reaches the terminal only through :func:`printable` (tables, the
progress bar, notes and warnings, the error line of ``weightshare.cli``):
its control characters are shown escaped. JSON output is escaped by
``json.dump`` itself and keeps the names exactly.
"""

import argparse
import contextlib
import json
import math
import numbers
import os
import sys
import time

from ..errors import printable
from ..files import output_file

__all__ = ["EXIT_OK", "EXIT_BAD_INPUT", "print_table", "print_json", "json_document", "json_plain",
           "Progress", "parse_k", "parse_k_map", "parse_list", "per_layer", "add_dry_run",
           "with_default", "note_skipped", "skipped_json",
           "stdout_may_close", "discard_stdout", "plural", "output_name", "one_line",
           "printable", "add_quiet"]


def discard_stdout():
    """Point stdout at the null device, so that the interpreter's own last flush is quiet."""
    try:
        fd = sys.stdout.fileno()
    except (OSError, ValueError):       # not a real file (captured, replaced): nothing to flush
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)


#: exit codes: done, bad input (file, argument or value); 130 is an interrupt
EXIT_OK = 0
EXIT_BAD_INPUT = 2


@contextlib.contextmanager
def stdout_may_close(written=None):
    """Let a reader such as ``head`` close stdout early: stop printing quietly, exit 0.

    Any other failure to print (a full disk, a closed terminal) after the
    output file `written` was written says that it was: the file is complete
    and stays, the exit code is 2.
    """
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        discard_stdout()
    except (OSError, ValueError) as exc:
        if written is None:
            raise
        with contextlib.suppress(OSError, ValueError):
            discard_stdout()
        why = " ".join((getattr(exc, "strerror", None) or str(exc) or type(exc).__name__).split())
        raise OSError(getattr(exc, "errno", None), f"{written} was written (complete), but its "
                                                   f"summary could not be printed: {why}") from None


def output_name(args):
    """The file a rewriting command writes: OUT, or MODEL with --in-place.

    The writer's own rule (:func:`weightshare.files.output_file`): in place, a
    symlink is followed to the real file, which is the file replaced.
    """
    dst = args.model if args.output is None else args.output
    return output_file(dst, args.model, in_place=args.in_place)


def one_line(exc, file=None):
    """`exc` in one line; a bare MemoryError names `file` (the command's input) when given."""
    if isinstance(exc, MemoryError) and not str(exc):
        return printable(f"{file}: out of memory") if file else "out of memory"
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.filename}: {exc.strerror}" if exc.filename is not None else exc.strerror
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(printable(text).split())


def plural(n, noun):
    """'1 tensor', '3 tensors' (an English count)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def print_table(headers, rows, out=None):
    """A plain aligned text table (cells shown through :func:`printable`)."""
    out = out or sys.stdout
    cells = [[printable(c) for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip(), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip(), file=out)


def json_document(command, input, output, tensors, fields=None):
    """The one JSON shape of every command (``_schema.SCHEMA``, docs/cli.md).

    ``command``, ``input``, ``output`` (None: nothing written), the command's
    own `fields`, then ``tensors`` (rows keyed ``name`` first).
    """
    return {"command": command, "input": os.fspath(input),
            "output": None if output is None else os.fspath(output),
            **(fields or {}), "tensors": list(tensors)}


def json_plain(obj):
    """`obj` as standard JSON values: a number that is not finite becomes None (null),
    NumPy scalars plain numbers, tuples lists."""
    if isinstance(obj, dict):
        return {str(k): json_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_plain(v) for v in obj]
    if obj is None or isinstance(obj, (str, bool)):
        return obj
    if getattr(getattr(obj, "dtype", None), "kind", None) == "b":      # numpy.bool_
        return bool(obj)
    if isinstance(obj, numbers.Integral):
        return int(obj)
    if isinstance(obj, numbers.Real):
        return float(obj) if math.isfinite(obj) else None
    return str(obj)


def print_json(obj):
    """Print `obj` as standard JSON (never NaN or Infinity: see :func:`json_plain`)."""
    json.dump(json_plain(obj), sys.stdout, indent=2, allow_nan=False)
    print()


class Progress:
    """A one-line progress bar on stderr; silent unless stderr is a terminal (or when quiet).

    Called as ``progress(done, total, record)`` after each step (a tensor: a record with
    ``name`` and ``shape``); shows the steps done, the parameters per second so far and
    the time left (the mean time per step so far, times the steps left).
    """

    def __init__(self, label, quiet=False, minimum=8):
        self.label = label
        self.on = not quiet and sys.stderr.isatty()
        self.minimum = minimum
        self.shown = False
        self.start = time.monotonic()
        self.params = 0

    def __call__(self, done, total, record):
        self.params += math.prod(getattr(record, "shape", ()) or (0,))
        if not self.on or total < self.minimum:
            return
        sys.stderr.write("\r" + self.line(done, total, record, time.monotonic() - self.start))
        sys.stderr.flush()
        self.shown = True

    def line(self, done, total, record, elapsed):
        """The text of the bar after `done` of `total` steps in `elapsed` seconds."""
        width = 20
        filled = int(width * done / max(total, 1))
        rate = f"{_si(self.params / elapsed)} params/s" if elapsed > 0 and self.params else ""
        left = elapsed * (total - done) / done if done else 0.0
        name = printable(getattr(record, "name", record))[:30]
        return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} "
                f"{rate:>17} {_clock(left)} left {name:<30}")

    def close(self):
        if self.shown:
            sys.stderr.write("\r" + " " * 110 + "\r")
            sys.stderr.flush()


def _si(x):
    """1234567 -> '1.2M' (k, M, G)."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def _clock(seconds):
    """Seconds as 'm:ss' (or 'h:mm:ss')."""
    s = int(round(seconds))
    h, m = divmod(s // 60, 60)
    return f"{h}:{m:02d}:{s % 60:02d}" if h else f"{m}:{s % 60:02d}"


def parse_list(text):
    """'a,b,c' -> ['a', 'b', 'c'] (argparse type)."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list; got {text!r}")
    return items


def per_layer(convert, scalar, metavar):
    """An argparse type: one value, or per-layer values ``LAYER=V,...`` (dict in file order).

    The one syntax of per-layer targets (``-k``/``--k`` of cluster, ``--sparsity`` and
    ``--keep`` of prune). `convert` turns the text of a value into the value
    (``ValueError`` when it cannot); `scalar` names one value in the error message
    ("an integer"), `metavar` the value in ``LAYER=V`` ("K"). A layer name may be a
    glob pattern: ``fc1=16,*=8`` gives fc1 16 and every other targeted layer 8.
    """
    def parse(text):
        try:
            if "=" not in text:
                return convert(text)
            out = {}
            for part in parse_list(text):
                name, _, value = part.partition("=")
                if not name.strip() or name.strip() in out:
                    raise ValueError(name)
                out[name.strip()] = convert(value)
            return out
        except (ValueError, argparse.ArgumentTypeError):
            raise argparse.ArgumentTypeError(f"expected {scalar} or LAYER={metavar},... ; got "
                                             f"{text!r}") from None
    return parse


#: '8' -> 8, 'fc1=16,fc2=8' -> {'fc1': 16, 'fc2': 8} (argparse type)
parse_k = per_layer(int, "an integer", "K")


def parse_k_map(text):
    """'fc1=16,fc2=8' -> {'fc1': 16, 'fc2': 8} (argparse type)."""
    out = parse_k(text)
    if not isinstance(out, dict):
        raise argparse.ArgumentTypeError(f"expected LAYER=K,... ; got {text!r}")
    return out


def with_default(default, per_layer_values):
    """A job's per-layer argument from one value for every targeted layer and some per layer.

    ``(8, {'fc1': 16})`` -> ``{'fc1': 16, '*': 8}``: the glob ``*`` comes last, so the
    named layers keep their own value (the library's rule: exact names win over patterns).
    """
    if isinstance(default, dict):            # -k fc1=16,fc2=8 (same as --k)
        per_layer_values = {**default, **(per_layer_values or {})}
        default = None
    if not per_layer_values:
        return default
    if default is None:
        return dict(per_layer_values)
    return {**per_layer_values, "*": default}


def note_skipped(command, skipped):
    """One note on stderr naming the weights a job left as they are, and how to target them.

    `skipped`: the job's :class:`weightshare.SkippedWeight` rows (every format gives them).
    """
    by_role = [s for s in skipped if s.reason == "role"]
    parts = []
    if by_role:
        layers = {}
        for s in by_role:
            layers.setdefault((s.layer, s.layer_class), []).append(s.role)
        shown = [f"layer {name!r}" + (f" ({cls})" if cls else "") + ": "
                 + ", ".join(dict.fromkeys(roles)) for (name, cls), roles in layers.items()]
        if len(shown) > 6:
            shown = shown[:5] + [f"{len(shown) - 5} more layers"]
        roles = ",".join(dict.fromkeys(s.role for s in by_role))
        parts.append(f"{'; '.join(shown)} (roles that are not kernel-like: target them with "
                     f"--roles {roles})")
    by_dtype = [s for s in skipped if s.reason != "role"]
    if by_dtype:
        dtypes = ", ".join(dict.fromkeys(s.dtype for s in by_dtype))
        parts.append(f"{plural(len(by_dtype), 'tensor')} of dtype {dtypes} (not float16, "
                     f"bfloat16, float32 or float64: never changed)")
    if parts:
        print(printable(f"weightshare {command}: note: left as they are: " + "; ".join(parts)),
              file=sys.stderr)


def skipped_json(skipped):
    """The ``skipped`` list of a command's JSON."""
    return [s.to_dict() for s in skipped]


def int_at_least(low):
    """An argparse type: an integer >= `low` ('8' -> 8), the error naming the bound."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if value < low:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}; got {text!r}")
        return value
    return parse


#: '0' -> 0 (argparse type): a seed is an integer >= 0
parse_seed = int_at_least(0)


def add_target_options(p, verb, roles_example):
    """--layers and --roles: which weights of the model a rewriting command `verb`s."""
    p.add_argument("--layers", type=parse_list, metavar="L1,L2",
                   help="the model's own layer names (or nested paths such as inner/dense) to "
                        f"{verb}, matched exactly (default: every layer)")
    p.add_argument("--roles", type=parse_list, default=["kernel"], metavar="R1,R2",
                   help=f"weights to {verb}: 'kernel' (every kernel-like weight, the default), or "
                        f"exact roles such as {roles_example}; 'all' for everything")


def add_quiet(p):
    """--quiet of a command that reads a file without rewriting it (report, compare)."""
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def add_rewrite_options(p):
    """--in-place and --quiet of a command that rewrites MODEL tensor by tensor."""
    p.add_argument("--in-place", action="store_true",
                   help="replace MODEL itself (still written atomically); a symlink is followed "
                        "and the real file replaced; a file with several hard links is refused")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_dry_run(p)


def add_dry_run(p):
    """--dry-run: compute and print everything, write nothing."""
    p.add_argument("--dry-run", action="store_true",
                   help="compute and print everything (the same table or JSON, with "
                        '"dry_run": true and "output": null), write nothing: no output, no '
                        "temporary file; -o is then optional")


def add_size_options(p, strip=True):
    """--compress (and --strip) of a command that rewrites a Keras file."""
    p.add_argument("--compress", action="store_true",
                   help="store the floating-point weights of OUT with HDF5's deflate filter "
                        "(.keras, .weights.h5, .h5; lossless, loads in stock Keras; needs "
                        "HDF5 >= 1.10 to read)")
    if strip:
        p.add_argument("--strip", action="store_true",
                       help="leave optimizer state and the compile/training config out of OUT "
                            "(see 'weightshare strip --help')")


def file_size(path):
    """The size of `path` in bytes (what --compress and --strip report)."""
    return os.path.getsize(path)


def size_line(before, dst):
    """'file size: N -> M bytes (Rx smaller)' for a command run with --compress or --strip."""
    after = file_size(dst)
    ratio = f"{before / after:.2f}x smaller" if after else "empty"
    return f"file size: {before} -> {after} bytes ({ratio})"
