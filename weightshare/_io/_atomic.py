"""Atomic output: a temporary file in the destination folder, renamed into place on success.

An interrupted or failed write leaves the destination as it was (the old file
or nothing) and no temporary file behind. Inputs are never opened for writing.
"""

import contextlib
import os
import tempfile

__all__ = ["temp_path", "atomic_output"]


def temp_path(folder, stem, suffix):
    """A new empty temporary file in `folder` (the caller removes it).

    An OSError names the folder (not the random temporary name).
    """
    try:
        fd, path = tempfile.mkstemp(dir=folder or ".", prefix=f".{stem}.", suffix=suffix)
    except OSError as exc:
        raise type(exc)(exc.errno, f"cannot create a file in the output folder "
                                   f"({exc.strerror})", folder or ".") from None
    os.close(fd)
    return path


@contextlib.contextmanager
def atomic_output(dst, mode_from=None):
    """Yield a temporary path next to `dst`; on success it replaces `dst`.

    The temporary file gets the permissions `mode_from` has (when given and
    existing) or the usual ``0o666 & ~umask``. On any exception it is
    removed and `dst` is left as it was.
    """
    folder = os.path.dirname(os.path.abspath(dst))
    tmp = temp_path(folder, os.path.basename(dst), ".tmp")
    try:
        yield tmp
        if mode_from is not None and os.path.exists(mode_from):
            mode = os.stat(mode_from).st_mode & 0o7777
        else:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        with open(tmp, "rb+") as f:     # the bytes are on disk before the name is
            os.fsync(f.fileno())
        os.replace(tmp, dst)
    finally:
        if os.path.exists(tmp):
            with contextlib.suppress(OSError):
                os.unlink(tmp)
