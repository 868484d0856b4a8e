"""Text from a file, made safe to print on a terminal.

Layer names, tensor names, dataset paths and config strings come from the
file, and a file can hold any character in them. Printed as they are, an
escape sequence would act on the user's terminal (set the window title, erase
the line, move the cursor), a carriage return or newline would forge lines of
the output, and a right-to-left override would show a name backwards.
:func:`printable` is the one function through which the command line prints
such text: tables, progress bar, warnings and error lines.
Standard library only.
"""

import re

__all__ = ["printable"]

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
