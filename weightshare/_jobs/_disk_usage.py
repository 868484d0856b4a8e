"""The file on disk: what its bytes hold, and what each size option would make of it.

:func:`disk_usage` splits a file's size into weights, optimizer state,
config/metadata and container overhead (:mod:`weightshare._io._disk`), and
measures the size each option would give by running the job for real into a
temporary folder that is removed afterwards (:data:`OPTIONS`): ``--compress``,
``strip``, ``strip --compress``. ``weightshare report`` prints it before its
per-tensor table.
"""

import os
import tempfile
from typing import NamedTuple, Optional

from .._base._validation import check_flag
from ..errors import printable
from .._io._disk import disk_parts
from .._io._reader import FORMATS, open_weights
from .._io._strip import STRIP_FORMATS
from ..files import transform_file
from ._pack_file import pack_file
from ._strip_file import strip_file

__all__ = ["DiskUsage", "disk_usage", "OPTIONS", "OPTIONS_MAX_BYTES"]

#: files larger than this (bytes) get no option sizes (each option rewrites the whole file)
OPTIONS_MAX_BYTES = 1 << 30


def _compress(src, dst):
    transform_file(src, dst, _unchanged, select=_nothing, compress=True)


def _strip(src, dst):
    strip_file(src, dst)


def _strip_compress(src, dst):
    strip_file(src, dst, compress=True)


def _pack(src, dst):
    return pack_file(src, dry_run=True).size_after     # the size, nothing written


#: option -> (its name in the text, the formats it applies to, job(src, dst) or None, the
#: output's file name for an input named `name`). Each job writes one file, whose size is the
#: option's size, or returns that size (an int) without writing.
OPTIONS = {
    "compress": ("--compress", STRIP_FORMATS, _compress, None),
    "strip": ("strip", STRIP_FORMATS, _strip, None),
    "strip_compress": ("strip --compress", STRIP_FORMATS, _strip_compress, None),
    "pack": ("pack", tuple(f for f in FORMATS if f != "safetensors_sharded"), _pack, None),
}


def _unchanged(record, values):      # pragma: no cover - never selected
    return None


def _nothing(record):
    return False


class DiskUsage(NamedTuple):
    """Result of :func:`disk_usage`. Sizes are in bytes; the four parts add up to `size`.

    Attributes
    ----------
    format : str
        One of :data:`weightshare.files.FORMATS`.
    size : int
        The file's size (a sharded safetensors checkpoint: the sum over its
        shards, the index file not included).
    files : int
        Files counted in `size` (shards).
    weights : int
        Stored bytes of the values of every tensor that is not optimizer state
        (deflated datasets: their compressed bytes).
    optimizer : int
        Stored bytes of the optimizer state (and tf-keras' compiled metrics):
        what ``strip`` leaves out.
    config : int
        Config and metadata (``config.json`` + ``metadata.json`` of a
        ``.keras`` as stored; a legacy ``.h5``'s ``model_config``,
        ``training_config``, ``keras_version``, ``backend`` attributes).
    overhead : int
        The rest: HDF5 object headers, heaps, B-trees and free space, zip and
        ``.npy`` headers, the safetensors JSON header.
    options : dict of str to int or None
        The size of the file each option writes: ``compress``
        (``--compress``), ``strip``, ``strip_compress`` (``strip
        --compress``), ``pack``; None where the option does not apply to the
        format, was not computed (see `note`), or is not available.
    note : str or None
        Why option sizes are missing, when they are (the file is over the
        bound, or a job refused the file: its one-line error).
    """

    format: str
    size: int
    files: int
    weights: int
    optimizer: int
    config: int
    overhead: int
    options: dict
    note: Optional[str]

    def to_dict(self):
        """A JSON-ready dict."""
        d = self._asdict()
        d["options"] = dict(self.options)
        return d

    def table(self):
        """The text ``weightshare report`` prints before its per-tensor table."""
        files = f" in {self.files} files" if self.files > 1 else ""
        lines = [f"file on disk: {self.size:,} bytes{files} ({self.format}); "
                 f"percentages are of the file's size"]
        for label, value, what in (
                ("weights", self.weights, "stored bytes of the tensors' values"),
                ("optimizer state", self.optimizer, "what strip leaves out"),
                ("config/metadata", self.config, ""),
                ("overhead", self.overhead, "HDF5/zip/npy/safetensors headers and the rest")):
            pct = f"{100 * value / self.size:5.1f} %" if self.size else "    -  "
            lines.append(f"  {label:17}{value:>14,}  {pct}" + (f"  {what}" if what else ""))
        lines.append("size with each option (bytes; file size / option size):")
        for key, (label, _, _, _) in OPTIONS.items():
            value = self.options.get(key)
            if value is None:
                lines.append(f"  {label:17}{'n/a':>14}")
            else:
                ratio = (f"{self.size / value:.2f}x smaller" if 0 < value < self.size else
                         "the same size" if value == self.size else
                         f"{value / self.size:.2f}x larger" if value else "")
                lines.append(f"  {label:17}{value:>14,}  {ratio}")
        if self.note:       # may quote the file's name or its text: escaped
            lines.append(printable(f"  ({self.note})"))
        return "\n".join(lines)


def disk_usage(path, *, options=True):
    """What the bytes of a weights file hold, and the size each size option would give.

    Parameters
    ----------
    path : str or os.PathLike
        Any file :func:`weightshare.read_weights` reads: ``.keras``,
        ``.weights.h5``, legacy ``.h5``, ``.npy``, ``.npz``, a safetensors
        file or sharded checkpoint (its index or folder).
    options : bool, default True
        Measure the options' sizes (``DiskUsage.options``) by running each
        job for real (``transform_file(..., compress=True)``, ``strip_file``,
        ``strip_file(..., compress=True)``) into a temporary folder that is
        removed afterwards, one after the other: this costs about three
        rewrites of the file, and up to twice its size in temporary disk
        space at a time. Skipped (None, with a `note`) for a file larger
        than :data:`OPTIONS_MAX_BYTES` (1 GiB); options that do not apply to
        the format (NumPy, safetensors) are None; an option whose job
        refuses the file is None, its error in ``DiskUsage.note``.

    Returns
    -------
    DiskUsage

    Raises
    ------
    weightshare.errors.FileFormatError
        The file cannot be read; nothing is written.

    Examples
    --------
    >>> import weightshare
    >>> d = weightshare.disk_usage(weightshare.examples.path("digits.keras"))
    >>> d.size, d.weights + d.optimizer + d.config + d.overhead == d.size
    (104487, True)
    >>> d.optimizer > d.weights          # Adam's two moments per weight
    True
    >>> d.options["strip_compress"] < d.options["strip"] < d.size
    True
    >>> d.options["pack"] < d.size       # weightshare pack: lossless
    True
    """
    options = check_flag(options, "options")
    path = os.fspath(path)
    with open_weights(path) as wf:
        fmt = wf.fmt
        parts = disk_parts(wf)
    sizes = {key: None for key in OPTIONS}
    note = None
    if options and parts["size"] > OPTIONS_MAX_BYTES:
        note = (f"option sizes not computed: the file is larger than {OPTIONS_MAX_BYTES:,} "
                "bytes")
    elif options:
        with tempfile.TemporaryDirectory(prefix="weightshare-disk-") as tmp:
            for key, (_, formats, job, name_of) in OPTIONS.items():
                if job is None or fmt not in formats:
                    continue
                name = os.path.basename(path)
                dst = os.path.join(tmp, name_of(name) if name_of else name)
                try:
                    size = job(path, dst)
                except (ValueError, OSError) as exc:   # FileFormatError is a ValueError
                    # the file reads but this job refuses it: that option's size is unknown
                    why = " ".join(str(exc).split())
                    note = (note + "; " if note else "") + f"{OPTIONS[key][0]}: {why}"
                    continue
                if size is None:
                    sizes[key] = os.path.getsize(dst)
                    os.remove(dst)
                else:
                    sizes[key] = int(size)
    return DiskUsage(fmt, note=note, options=sizes, **parts)
