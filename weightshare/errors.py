"""The exceptions weightshare raises for files.

Array functions raise plain ``ValueError``/``TypeError`` naming the parameter;
file functions raise :class:`FileFormatError` (a ``ValueError``) naming the
file and, where it applies, the dataset path inside it.

Names in a message are the file's text as it is, control characters
included; :func:`printable` escapes them for a terminal, and the command
line prints every message and table through it.
"""

import re

__all__ = ["WeightshareError", "FileFormatError", "TensorArgumentError", "ForwardError", "printable"]


class WeightshareError(Exception):
    """Base class of weightshare's own exceptions."""


class FileFormatError(WeightshareError, ValueError):
    """A file is not what weightshare can read or rewrite.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    message : str
        What is wrong, in one line.
    dataset : str, optional
        The HDF5 path or zip member concerned.
    """

    def __init__(self, path, message, dataset=None):
        self.path = str(path)
        self.dataset = dataset
        self.message = message
        where = f"{self.path}: {dataset}: " if dataset else f"{self.path}: "
        super().__init__(where + message)


class TensorArgumentError(WeightshareError, ValueError):
    """An argument that one tensor of a sound file cannot take; the message names the tensor.

    Raised by the file jobs (:func:`weightshare.cluster_file`,
    :func:`weightshare.prune_file`) when the array function refuses an argument
    for this tensor, e.g. ``k=1`` on a tensor holding zeros that are kept zero.
    Unlike :class:`FileFormatError`, nothing is wrong with the file: change the
    argument.
    """


class ForwardError(WeightshareError, ValueError):
    """A model could not be run on the inputs it was given (:func:`weightshare.compare_models`).

    The message names the model; a caller that read the inputs from a file
    adds its name (the CLI does).
    """


# --------------------------------------------------------------------------- printing a file's text
#
# Layer names, tensor names, dataset paths and config strings come from the
# file, and a file can hold any character in them. Printed as they are, an
# escape sequence would act on the user's terminal (set the window title, erase
# the line, move the cursor), a carriage return or newline would forge lines of
# the output, and a right-to-left override would show a name backwards.
# :func:`printable` is the one function through which the command line prints
# such text: tables, progress bar, warnings and error lines.
# Standard library only.

#: C0 controls, DEL, C1 controls; U+2028/2029 (line and paragraph separators,
#: which ``str.splitlines`` splits at); the bidirectional embeddings, overrides
#: and isolates U+202A-202E and U+2066-2069; lone surrogates (a JSON "\udc80"),
#: which no terminal encoding can print.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match):
    char = match.group()
    code = ord(char)
    return _NAMED.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def printable(text):
    """`text` (any object, as ``str``) with control characters escaped as Python does.

    ``"\\x1b"`` (ESC) becomes the four characters ``\\x1b``, a newline ``\\n``,
    U+202E ``\\u202e``. Everything else, backslashes included, is left as it
    is, so a name without such characters prints unchanged.

    Examples
    --------
    >>> printable("dense\\x1b]0;title\\x07\\n")
    'dense\\\\x1b]0;title\\\\x07\\\\n'
    >>> printable("dense_1")
    'dense_1'
    """
    text = str(text)
    return _CONTROL.sub(_escape, text)
