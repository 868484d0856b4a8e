"""Packed safetensors checkpoints: ``weightshare.load_packed`` and ``unpack_packed``.

``cluster_file(..., packed=True)`` (``weightshare cluster --packed``) stores
each clustered tensor as its indices and codebook; these functions read such
a file (or checkpoint) back without a framework. The format and its checks
live in :mod:`weightshare._io._st_packed`; docs/files.md ("Packed
safetensors") describes the naming convention.
"""

import os

from .._io._st_packed import is_packed_file, read_packed, unpack_checkpoint

__all__ = ["load_packed", "unpack_packed", "is_packed"]


def load_packed(path):
    """The dense tensors of a packed safetensors file or checkpoint, as NumPy arrays.

    Pure NumPy (neither ``safetensors`` nor a framework is imported). Each
    packed tensor is rebuilt from its ``NAME.ws_indices`` and
    ``NAME.ws_codebook`` (and ``NAME.ws_scale``); every other tensor is read
    as it is stored. The values are those the plain (not packed) output of
    the same ``cluster_file`` run stores, bit for bit.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.safetensors`` file, or a sharded checkpoint's
        ``model.safetensors.index.json`` or folder. A file that is not packed
        is read as well (every tensor as stored).

    Returns
    -------
    dict of str to ndarray
        Tensor name -> values, in the plain file's header order (shard by
        shard). float64/float32/float16 and integer tensors in their dtype;
        bfloat16 and float8 as exact float32 (``torch.from_numpy(v).to(
        torch.bfloat16)`` gives the stored bfloat16 back exactly).

    Raises
    ------
    weightshare.errors.FileFormatError
        Not a safetensors file, or a packed tensor that cannot be rebuilt
        (metadata that disagrees with the entries, an index out of range of
        its codebook, a truncated file): one line naming the file and tensor.

    Examples
    --------
    A one-tensor safetensors file (8-byte header length, JSON header, data),
    clustered to 4 values and written packed:

    >>> import json, os, struct, tempfile, numpy as np, weightshare
    >>> w = np.random.default_rng(0).normal(size=(8, 32)).astype("<f4")
    >>> head = json.dumps({"fc.weight": {"dtype": "F32", "shape": [8, 32],
    ...                                  "data_offsets": [0, w.nbytes]}}).encode()
    >>> d = tempfile.mkdtemp()
    >>> src, out = os.path.join(d, "m.safetensors"), os.path.join(d, "m-k4.safetensors")
    >>> with open(src, "wb") as f:
    ...     _ = f.write(struct.pack("<Q", len(head)) + head + w.tobytes())
    >>> _ = weightshare.cluster_file(src, out, 4, packed=True)
    >>> [r.name for r in weightshare.read_weights(out, values=False)]
    ['fc.weight.ws_indices', 'fc.weight.ws_codebook']
    >>> dense = weightshare.load_packed(out)
    >>> dense["fc.weight"].shape, np.unique(dense["fc.weight"]).size
    ((8, 32), 4)

    In PyTorch: ``model.load_state_dict({k: torch.from_numpy(v) for k, v in
    weightshare.load_packed(out).items()})``.
    """
    return read_packed(os.fspath(path))


def unpack_packed(src, dst):
    """Write the plain safetensors file (or checkpoint folder) of a packed one.

    The output is byte for byte what ``cluster_file`` writes without
    ``packed=True`` in the same run: the same header (keys, offsets,
    ``__metadata__``), the dense tensors, the index with its plain
    ``weight_map``. Written atomically (``dst``: a new ``.safetensors`` file,
    or a new folder for a checkpoint). A file that is not packed is copied.

    Parameters
    ----------
    src : str or os.PathLike
        The packed file, index or checkpoint folder.
    dst : str or os.PathLike
        The plain output.

    Returns
    -------
    list of str
        The tensors unpacked.
    """
    return unpack_checkpoint(os.fspath(src), dst)


def is_packed(path):
    """Whether `path` is a safetensors file or checkpoint with packed tensors (for the
    ``unpack`` command to choose :func:`unpack_packed`). Never raises for a readable path
    that is not such a file: False."""
    return is_packed_file(os.fspath(path))
