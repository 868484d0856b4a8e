"""bfloat16 without ml_dtypes: conversion by bit manipulation.

Keras stores a bfloat16 variable as a 2-byte opaque HDF5 type (``|V2``) with a
``dtype="bfloat16"`` attribute. Its bits are the upper half of a float32, so
widening is exact; narrowing rounds to nearest, ties to even (the rounding
``ml_dtypes`` and Keras use), and every NaN becomes the quiet NaN 0x7FC0.
"""

import numpy as np

__all__ = ["bf16_to_float32", "float32_to_bf16_bits", "round_to_bf16"]


def bf16_to_float32(raw):
    """float32 values of bfloat16 data given as ``|V2`` or uint16 bit patterns."""
    bits = np.ascontiguousarray(raw).view(np.uint16)
    return (bits.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(values):
    """uint16 bit patterns of the bfloat16 nearest to `values` (ties to even)."""
    u = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32)
    rounded = (u + np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1))) >> 16
    out = rounded.astype(np.uint16)
    out[np.isnan(np.asarray(values, dtype=np.float32))] = 0x7FC0
    return out


def round_to_bf16(values):
    """`values` rounded to the nearest bfloat16, as float32."""
    return bf16_to_float32(float32_to_bf16_bits(values))
