"""The exceptions weightshare raises for files.

Array functions raise plain ``ValueError``/``TypeError`` naming the parameter;
file functions raise :class:`FileFormatError` (a ``ValueError``) naming the
file and, where it applies, the dataset path inside it.

Names in a message are the file's text as it is, control characters
included; the command line escapes them when it prints the message
(:func:`weightshare._text.printable`), as it does for every table.
"""

__all__ = ["WeightshareError", "FileFormatError", "ForwardError"]


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


class ForwardError(WeightshareError, ValueError):
    """A model could not be run on the inputs it was given (:func:`weightshare.compare_models`).

    The message names the model; a caller that read the inputs from a file
    adds its name (the CLI does).
    """
