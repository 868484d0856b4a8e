"""The example files bundled with weightshare, wherever it is installed.

``digits.keras`` is a small Keras 3 model (64 -> 64 -> 32 -> 10, trained on
scikit-learn's digits); ``digits_test.npz`` holds its test inputs ``x_test``
and labels ``y_test``. Both ship in the wheel, so the documentation's
examples run from any folder.

Examples
--------
>>> import weightshare
>>> weightshare.file_format(weightshare.examples.path("digits.keras"))
'keras_zip'
"""

import os
from importlib import resources

__all__ = ["NAMES", "path"]

#: the bundled files
NAMES = ("digits.keras", "digits_test.npz")


def path(name):
    """The path of the bundled example file `name` (one of :data:`NAMES`), as a str.

    Raises
    ------
    ValueError
        `name` is not a bundled example (the message lists them).
    """
    if name not in NAMES:
        raise ValueError(f"name must be one of {', '.join(NAMES)}; got {name!r}")
    found = resources.files(__name__) / name
    if not found.is_file():     # pragma: no cover - an installation without its package data
        raise FileNotFoundError(f"the bundled example {name!r} is missing from {found}")
    return os.fspath(found)
