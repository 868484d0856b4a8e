"""Input statistics of one layer call, and the bias shift of bias correction.

For a layer ``y = x W + b`` (Dense; a convolution is the same product on the
im2col patches of its input), the output error that replacing ``W`` by ``W_q``
causes is ``e = x (W - W_q)``. Its expected square per output ``o`` is
``d_o^T E[x x^T] d_o`` with ``d_o`` the column of ``W - W_q``; the diagonal of
``E[x x^T]``, ``E[x_j^2]``, weights each weight's squared error (the diagonal
of the layer's output-error Hessian, as GPTQ/OBQ use). Its mean is
``E[x] (W - W_q)``; adding that to ``b`` makes the mean output the same as
before clustering (bias correction, Nagel et al. 2019).

:func:`input_stats` gives, for one call of a layer on a batch of inputs,
``importance`` (broadcastable to the kernel) and ``mean`` (what
:func:`bias_shift` needs), for the classes of :data:`CALIBRATED`.
"""

import itertools
from typing import NamedTuple, Optional

import numpy as np

from .._forward import _nn

__all__ = ["CALIBRATED", "KERNEL_INDEX", "Stats", "input_stats", "bias_shift", "has_bias"]

#: the layer classes whose kernel gets calibration importance
CALIBRATED = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
              "Embedding")
#: the kernel is the first array of these layers (Keras order); the bias the second
KERNEL_INDEX = 0


class Stats(NamedTuple):
    """What one layer call's inputs say about its kernel."""

    importance: np.ndarray          # E[x^2] per weight, broadcastable to the kernel
    mean: Optional[np.ndarray]      # E[x] per input entry (None: no bias to correct)


def has_bias(cls, cfg):
    """Whether a layer of a CALIBRATED class holds a bias (Embedding never does)."""
    return cls != "Embedding" and bool(cfg.get("use_bias", True))


def _tuple(value, n):
    if isinstance(value, (list, tuple)):
        return tuple(int(v) for v in value)
    return (int(value),) * n


def _rank(cls):
    return int(cls[-2])          # Conv2D -> 2, DepthwiseConv1D -> 1


def _patch_moments(cls, cfg, x, ks):
    """(E[p^2], E[p]) of the im2col patch entries: arrays of shape (*ks, c_in), the mean over
    the batch and every output position of the input under each kernel offset (padding
    zeros included, as they enter the product)."""
    rank = _rank(cls)
    strides = _tuple(cfg.get("strides", 1), rank)
    dilation = _tuple(cfg.get("dilation_rate", 1), rank)
    xp, outs = _nn._padded(x, ks, strides, dilation, cfg.get("padding", "valid"))
    c = x.shape[-1]
    sq = np.zeros(tuple(ks) + (c,))
    mean = np.zeros(tuple(ks) + (c,))
    for offset in itertools.product(*(range(k) for k in ks)):
        p = _nn._window(xp, offset, outs, strides, dilation).reshape(-1, c)
        if p.shape[0]:
            sq[offset] = np.einsum("ij,ij->j", p, p) / p.shape[0]
            mean[offset] = p.mean(axis=0)
    return sq, mean


def input_stats(cls, cfg, kernel_shape, x):
    """:class:`Stats` of one call of a `cls` layer on the inputs `x` (batch first).

    Dense: ``E[x_j^2]`` per input feature (over the batch and any other leading
    axes), shape ``(n_in, 1)``. Conv: ``E[p^2]`` per kernel offset and input
    channel of the im2col patches, shape ``(*k, c_in, 1)`` (``(*k, c_in / groups,
    c_out)`` with groups). DepthwiseConv: the same per offset and channel,
    ``(*k, c, 1)``. Embedding: the frequency of each token among the inputs,
    ``(vocab, 1)`` (one-hot inputs: their second moment is the frequency).
    """
    x = np.asarray(x)
    if cls == "Embedding":
        ids = x.astype(np.int64).ravel()
        vocab = kernel_shape[0]
        ids = ids[(ids >= 0) & (ids < vocab)]
        counts = np.bincount(ids, minlength=vocab)[:vocab].astype(np.float64)
        return Stats((counts / max(x.size, 1))[:, None], None)
    x = x.astype(np.float64, copy=False)
    if cls == "Dense":
        flat = x.reshape(-1, x.shape[-1])
        if flat.shape[-1] != kernel_shape[0]:
            raise ValueError(f"its input has {flat.shape[-1]} features; the kernel takes "
                             f"{kernel_shape[0]}")
        n = max(flat.shape[0], 1)
        return Stats((np.einsum("ij,ij->j", flat, flat) / n)[:, None], flat.sum(axis=0) / n)
    ks = tuple(kernel_shape[:-2])
    if x.ndim != len(ks) + 2:
        raise ValueError(f"its input has shape {x.shape[1:]}; the kernel is {kernel_shape}")
    sq, mean = _patch_moments(cls, cfg, x, ks)
    if cls.startswith("Depthwise"):
        return Stats(sq[..., None], mean)
    groups = int(cfg.get("groups", 1) or 1)
    if groups == 1:
        return Stats(sq[..., None], mean)
    cin_g, cout = kernel_shape[-2], kernel_shape[-1]
    per = sq.reshape(ks + (groups, cin_g))                  # [..., g, c]: channel g*cin_g + c
    imp = np.repeat(np.moveaxis(per, -2, -1), cout // groups, axis=-1)   # (*k, cin_g, cout)
    return Stats(imp, mean)


def bias_shift(cls, cfg, mean, delta):
    """``E[x] (W - W_q)`` per output unit: what to add to the bias so that the mean output
    over the calibration inputs is what it was before clustering.

    `mean` is :attr:`Stats.mean`, `delta` is ``W - W_q`` (float64, the kernel's shape).
    """
    if cls == "Dense":
        return mean @ delta
    axes = tuple(range(delta.ndim - 1))
    if cls.startswith("Depthwise"):
        shift = np.sum(mean[..., None] * delta, axis=axes[:-1])         # (c, multiplier)
        return shift.reshape(-1)
    groups = int(cfg.get("groups", 1) or 1)
    if groups == 1:
        return np.tensordot(mean, delta, axes=(axes, axes))
    cin_g, cout = delta.shape[-2], delta.shape[-1]
    cout_g = cout // groups
    return np.concatenate([
        np.tensordot(mean[..., g * cin_g:(g + 1) * cin_g],
                     delta[..., g * cout_g:(g + 1) * cout_g], axes=(axes, axes))
        for g in range(groups)])
