"""The one writer: every file weightshare writes goes through :func:`atomic_output`.

:func:`check_output` decides, in one place, what an output path means:

- an existing folder, a missing output folder and a name longer than the
  file system allows are refused before any work;
- an input as output is refused: the same path, a symlink to an input, or
  another hard link of it (``os.path.samefile``: same device and inode);
- unless the job rewrites in place: then a symlink at the path is followed
  and the real file is replaced (the link stays a link to the new file),
  and a file with more than one hard link is refused (replacing one name
  would leave the other names with the old file, silently);
- otherwise a symlink at the output path is replaced by the new file, never
  written through: the file it pointed to is left as it was.

:func:`atomic_folder` does the same for an output that is a folder of files (a
sharded checkpoint): a temporary folder beside it, renamed into place whole.

:func:`atomic_output` writes a temporary file in the output's folder,
``fsync``\\ s it and renames it into place (``os.replace``) on success. On
any exception (an error, Ctrl-C, SIGTERM or SIGHUP in the command line) the
temporary file is removed and the output path is left as it was; a full
disk or quota is reported naming the output (never the input the OS blamed).
Inputs are never opened for writing.
"""

import contextlib
import errno
import os
import shutil
import signal
import tempfile
import threading

from ..errors import FileFormatError

__all__ = ["check_output", "same_file", "temp_path", "temp_file", "atomic_output",
           "atomic_folder", "unwind_later", "FULL_DISK"]

#: a temporary name keeps at most this many bytes of the output's name, so
#: that ``.{name}.XXXXXXXX{suffix}`` fits in NAME_MAX (255) for any valid name
_STEM_BYTES = 200
_NAME_MAX = 255
#: a full disk or quota: the error names the output, whatever file the OS named
FULL_DISK = frozenset(e for e in (errno.ENOSPC, getattr(errno, "EDQUOT", None), errno.EFBIG) if e)


def same_file(a, b):
    """Whether paths `a` and `b` are the same file (same path, a symlink, a hard link)."""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.abspath(a) == os.path.abspath(b) or os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:     # one of them does not exist
        return False


def _name_max(folder):
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return _NAME_MAX


def check_output(dst, inputs=(), *, in_place=None):
    """The file an output `dst` really replaces, after the checks every output passes.

    Parameters
    ----------
    dst : str or os.PathLike
    inputs : iterable of path (None entries are skipped)
        The files the job reads; none of them may be the output.
    in_place : bool or None
        None: the job has no in-place mode, an input as output is refused;
        False: refused, saying to pass ``in_place=True`` (``--in-place``);
        True: `dst` may be an input, rewritten in place (see the module).

    Returns
    -------
    str
        `dst`, or the real file a symlink at `dst` points to when an input
        is rewritten in place.
    """
    dst = os.fspath(dst)
    if os.path.isdir(dst):
        raise FileFormatError(dst, "is a folder; give the output file's name")
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, "the output folder does not exist", folder)
    same = [os.fspath(s) for s in inputs if s is not None and same_file(s, dst)]
    if same:
        if not in_place:
            other = "" if os.path.abspath(same[0]) == os.path.abspath(dst) else \
                f" (the same file as {same[0]})"
            hint = ("; pass in_place=True (--in-place) to replace it (still written atomically)"
                    if in_place is False else "; give the output another name")
            raise FileFormatError(dst, f"is the input file{other}{hint}")
        if os.path.islink(dst):
            dst = os.path.realpath(dst)
            folder = os.path.dirname(dst)
        links = os.stat(dst).st_nlink
        if links > 1:
            raise FileFormatError(dst, f"has {links} hard links: replacing it in place would "
                                       f"leave the other {links - 1} name(s) with the old file; "
                                       "write to another file instead")
    if len(os.fsencode(os.path.basename(dst))) > _name_max(folder):
        raise OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), dst)
    return dst


def temp_path(folder, stem, suffix):
    """A new empty temporary file ``.{stem}.XXXXXXXX{suffix}`` in `folder` (the caller removes it).

    A long `stem` is shortened so that the name fits any file system. An
    OSError names the folder (not the random temporary name).
    """
    if len(os.fsencode(stem)) > _STEM_BYTES:
        stem = stem[:_STEM_BYTES // 4]       # a character is at most 4 bytes
    try:
        fd, path = tempfile.mkstemp(dir=folder or ".", prefix=f".{stem}.", suffix=suffix)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create a file in the output folder "
                                   f"({exc.strerror})", folder or ".") from None
    os.close(fd)
    return path


#: signals that end a run by unwinding (the CLI turns SIGTERM and SIGHUP into exceptions)
_UNWINDING = tuple(getattr(signal, n) for n in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, n))


#: unwinding actions that arrived while a temporary file was being created
_PENDING = []
_HOLDING = [0]


def unwind_later(action):
    """Run `action` (a signal handler's ``raise``) now, or when the file being created has a name.

    A signal handler that unwinds (raises) calls this instead of raising
    directly: between the creation of a temporary file and the clean-up that
    knows its name, the action waits until the name is recorded.
    """
    if _HOLDING[0]:
        _PENDING.append(action)
        return
    action()


@contextlib.contextmanager
def _signals_held():
    """Hold the unwinding signals while a temporary file is created and its name recorded.

    A signal that unwinds between the creation of a file and the ``try`` that
    removes it would leave the file behind; held, it acts when the block ends,
    where the caller's clean-up already knows the name. SIGINT/SIGTERM/SIGHUP
    are blocked for the main thread (a signal the kernel hands to another
    thread still runs its Python handler in the main thread: handlers that go
    through :func:`unwind_later` wait too).
    """
    masked = hasattr(signal, "pthread_sigmask") and \
        threading.current_thread() is threading.main_thread()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _UNWINDING) if masked else None
    _HOLDING[0] += 1
    try:
        yield
    finally:
        _HOLDING[0] -= 1
        if masked:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        if not _HOLDING[0] and _PENDING:
            action = _PENDING[0]
            _PENDING.clear()
            action()


@contextlib.contextmanager
def temp_file(folder, stem, suffix):
    """A new empty temporary file in `folder` (see :func:`temp_path`), removed on exit.

    Removed whatever ends the block, a signal included: the file is created
    with the unwinding signals held, so no signal can fall between its
    creation and the clean-up that knows its name.
    """
    path = None
    try:
        with _signals_held():
            path = temp_path(folder, stem, suffix)
        yield path
    finally:
        if path is not None and os.path.exists(path):
            with contextlib.suppress(OSError):
                os.unlink(path)


def _sync_folder(folder):
    """Make the rename durable (best effort: not every system can fsync a folder)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_output(dst, mode_from=None, *, inputs=(), in_place=None):
    """Yield a temporary path next to the output; on success it replaces the output.

    `dst`, `inputs` and `in_place` are checked by :func:`check_output`
    first; the file replaced is what it returns. The temporary file gets the
    permissions `mode_from` has (when given and existing) or the usual
    ``0o666 & ~umask``; it is fsynced before the rename. On any exception it
    is removed and the output is left as it was.
    """
    target = check_output(dst, inputs, in_place=in_place)
    folder = os.path.dirname(os.path.abspath(target))
    tmp = None
    try:
        with _signals_held():
            tmp = temp_path(folder, os.path.basename(target), ".tmp")
        yield tmp
        if mode_from is not None and os.path.exists(mode_from):
            mode = os.stat(mode_from).st_mode & 0o7777
        else:
            mode = 0o666 & ~_umask()
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:     # the bytes are on disk before the name is
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        if exc.errno in FULL_DISK:
            why = exc.strerror or os.strerror(exc.errno)
            raise OSError(exc.errno, f"{why}: the output was not written", target) from None
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    _sync_folder(folder)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_folder(dst):
    """Yield a temporary folder next to `dst`; on success it becomes `dst`, whole.

    `dst` must be missing or an empty folder (the caller's checks say why in
    its own terms); its parent must exist. Every file of the folder is fsynced
    and the folder gets ``0o777 & ~umask`` before the rename. On any exception
    the temporary folder and all in it are removed and `dst` is left as it was.
    """
    dst = os.path.abspath(os.fspath(dst))
    parent = os.path.dirname(dst)
    tmp = None
    try:
        with _signals_held():
            tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(dst)[:100]}.")
        yield tmp
        for name in os.listdir(tmp):
            with open(os.path.join(tmp, name), "rb+") as f:
                os.fsync(f.fileno())
        os.chmod(tmp, 0o777 & ~_umask())
        os.replace(tmp, dst)
        tmp = None
    except OSError as exc:
        if exc.errno in FULL_DISK:
            why = exc.strerror or os.strerror(exc.errno)
            raise OSError(exc.errno, f"{why}: the output was not written", dst) from None
        raise
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp)
    _sync_folder(parent)
