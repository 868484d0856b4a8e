"""bfloat16 without ml_dtypes: conversion by bit manipulation.

Keras stores a bfloat16 variable as a 2-byte opaque HDF5 type (``|V2``) with a
``dtype="bfloat16"`` attribute. Its bits are the upper half of a float32, so
widening is exact; narrowing rounds to nearest, ties to even (the rounding
``ml_dtypes`` and Keras use), and every NaN becomes the quiet NaN 0x7FC0.
"""

import numpy as np

__all__ = ["bf16_to_float32", "float32_to_bf16_bits", "round_to_bf16", "bf16_bits_of",
           "is_bf16_exact", "bf16_is_zero", "is_bf16_storage"]


def is_bf16_storage(dtype):
    """True for the dtype h5py gives a Keras bfloat16 dataset: opaque, 2 bytes (``|V2``)."""
    dtype = np.dtype(dtype)
    return dtype.kind == "V" and dtype.itemsize == 2 and dtype.fields is None


def bf16_to_float32(raw):
    """float32 values of bfloat16 data given as ``|V2`` or uint16 bit patterns."""
    bits = np.asarray(raw, order="C").view(np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(values):
    """uint16 bit patterns of the bfloat16 nearest to `values` (ties to even).

    ``(u + 0x7FFF + ((u >> 16) & 1)) >> 16`` on the float32 bits ``u``, in
    place on one uint32 work array (memory: the input plus 1.5 times its
    float32 size); every NaN becomes 0x7FC0.
    """
    f = np.asarray(values, dtype=np.float32, order="C")
    shape = f.shape
    f = f.reshape(-1)               # 0-d arithmetic would give scalars
    u = f.view(np.uint32)
    work = u >> 16
    work &= np.uint32(1)
    work += np.uint32(0x7FFF)
    work += u                       # wraps only for NaN bit patterns, replaced below
    work >>= 16
    out = work.astype(np.uint16)
    del work
    out[np.isnan(f)] = 0x7FC0
    return out.reshape(shape)


def bf16_bits_of(values):
    """uint16 bit patterns of bfloat16 values held as float32: the upper halves, no rounding.

    Exact for values :func:`is_bf16_exact` accepts (what :func:`bf16_to_float32`
    gives); any other value is truncated (use :func:`float32_to_bf16_bits` to round).
    """
    u = np.asarray(values, dtype=np.float32, order="C").view(np.uint32)
    return (u >> 16).astype(np.uint16)


def is_bf16_exact(values):
    """Boolean array: True where a float32 value is exactly a bfloat16 (lower 16 bits zero)."""
    u = np.asarray(values, dtype=np.float32, order="C").view(np.uint32)
    return (u & np.uint32(0xFFFF)) == 0


def bf16_is_zero(raw):
    """Boolean array: True where bfloat16 data (``|V2`` or uint16 bits) is +0 or -0."""
    bits = np.asarray(raw, order="C").view(np.uint16)
    return (bits & np.uint16(0x7FFF)) == 0


def round_to_bf16(values):
    """`values` rounded to the nearest bfloat16, as float32."""
    return bf16_to_float32(float32_to_bf16_bits(values))
