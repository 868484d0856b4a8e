"""bfloat16 by bits (weightshare._codec._bf16) against independent references.

The references below never shift bits to round: they decode patterns with
float64 arithmetic (sign, exponent, mantissa) and round by comparing
distances to the two neighbouring bfloat16 values in float64, where every
float32 value and every difference of two of them is exact.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from weightshare._codec._bf16 import bf16_to_float32, float32_to_bf16_bits, round_to_bf16

ALL_BF16 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def reference_decode(bits16):
    """float64 value of bfloat16 bit patterns: (-1)^s * 2^(e-127) * (1 + m/128), subnormals, inf."""
    b = np.asarray(bits16, dtype=np.int64)
    sign = np.where(b >> 15, -1.0, 1.0)
    exp, mant = (b >> 7) & 0xFF, (b & 0x7F).astype(np.float64)
    with np.errstate(over="ignore"):
        normal = (1 + mant / 128) * np.exp2(exp.astype(np.float64) - 127)
    value = np.where(exp == 0, mant / 128 * 2.0 ** -126, normal)
    value = np.where(exp == 255, np.where(mant == 0, np.inf, np.nan), value)
    return sign * value


def reference_round(x):
    """bfloat16 bits nearest to float32 `x`, ties to the even pattern; NaN -> 0x7FC0."""
    x = np.asarray(x, dtype=np.float32).ravel()
    out = np.empty(x.size, dtype=np.uint16)
    with np.errstate(invalid="ignore"):          # signalling NaN patterns
        mag = np.abs(x.astype(np.float64))
    # the bfloat16 at or below |x|: search the sorted positive finite patterns by value
    positive = np.arange(0x7F80, dtype=np.int64)                  # 0 .. max finite
    values = reference_decode(positive)
    below = np.clip(np.searchsorted(values, mag, side="right") - 1, 0, positive.size - 1)
    down = values[below]
    up = np.where(below + 1 < positive.size, values[np.minimum(below + 1, positive.size - 1)],
                  2.0 ** 128)                                    # past max: infinity at 2^128
    d_down, d_up = mag - down, up - mag
    take_up = (d_up < d_down) | ((d_up == d_down) & (below % 2 == 1))
    pattern = below + take_up
    pattern = np.where(np.isinf(mag), 0x7F80, pattern)
    neg = np.signbit(x)
    out[:] = (pattern | np.where(neg, 0x8000, 0)).astype(np.uint16)
    out[np.isnan(x)] = 0x7FC0
    return out


def test_widening_is_exact_for_every_pattern():
    with np.errstate(invalid="ignore"):          # signalling NaN patterns
        got = bf16_to_float32(ALL_BF16).astype(np.float64)
    ref = reference_decode(ALL_BF16)
    nan = np.isnan(ref)
    assert np.array_equal(np.isnan(got), nan)
    np.testing.assert_array_equal(got[~nan], ref[~nan])
    np.testing.assert_array_equal(np.signbit(got[~nan]), np.signbit(ref[~nan]))


def test_widening_accepts_opaque_v2_as_stored_in_hdf5():
    raw = ALL_BF16[:1000].view("V2")
    np.testing.assert_array_equal(bf16_to_float32(raw), bf16_to_float32(ALL_BF16[:1000]))


@pytest.mark.parametrize("low", [0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF])
def test_rounding_of_every_exponent_and_mantissa(low):
    """Every bfloat16 pattern with the low 16 float32 bits set to below/at/above the tie."""
    bits = (ALL_BF16.astype(np.uint32) << 16) | np.uint32(low)
    x = bits.view(np.float32)
    got, ref = float32_to_bf16_bits(x), reference_round(x)
    np.testing.assert_array_equal(got, ref)


SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, -np.nan,
                    3.4028235e38, -3.4028235e38,                  # float32 max: rounds to inf
                    3.3895314e38,                                 # bfloat16 max, exact
                    1e-40, -1e-45, 1.1754944e-38, 9.2e-41,        # subnormals, min normal
                    1.0 + 2.0 ** -8, 1.0 + 3 * 2.0 ** -8,          # ties: to even (down, up)
                    1.0 + 2.0 ** -9, 65504.0], dtype=np.float32)


def test_specials():
    got = float32_to_bf16_bits(SPECIAL)
    np.testing.assert_array_equal(got, reference_round(SPECIAL))
    assert got[0] == 0x0000 and got[1] == 0x8000                  # signed zeros kept
    assert got[4] == 0x7F80 and got[5] == 0xFF80                  # infinities kept
    assert got[6] == got[7] == 0x7FC0                             # every NaN: the quiet NaN
    assert got[8] == 0x7F80 and got[9] == 0xFF80                  # float32 max overflows
    assert got[10] == 0x7F7F
    assert got[15] == 0x3F80 and got[16] == 0x3F82                # ties to even


def test_nan_payloads_and_signs_become_the_quiet_nan():
    bits = np.array([0x7F800001, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7FC00000], np.uint32)
    np.testing.assert_array_equal(float32_to_bf16_bits(bits.view(np.float32)), [0x7FC0] * 5)


@given(hnp.arrays(np.float32, hnp.array_shapes(max_dims=3, max_side=8),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_rounding_matches_the_reference_hypo(x):
    np.testing.assert_array_equal(float32_to_bf16_bits(x), reference_round(x).reshape(x.shape))


@given(hnp.arrays(np.uint16, st.integers(1, 64)))
def test_narrowing_inverts_widening_hypo(bits):
    wide = bf16_to_float32(bits)
    nan = np.isnan(wide)
    np.testing.assert_array_equal(float32_to_bf16_bits(wide)[~nan], bits[~nan])


@given(hnp.arrays(np.float32, st.integers(1, 64), elements=st.floats(-1e6, 1e6, width=32)))
def test_rounding_is_idempotent_and_nearest_hypo(x):
    r = round_to_bf16(x)
    np.testing.assert_array_equal(round_to_bf16(r), r)
    np.testing.assert_array_equal(np.signbit(r), np.signbit(x))
    # no bfloat16 magnitude is closer: the neighbouring patterns are at least as far from |x|
    pattern = float32_to_bf16_bits(r).astype(np.int64) & 0x7FFF
    mag, err = np.abs(x.astype(np.float64)), np.abs(np.abs(r.astype(np.float64)) - np.abs(x))
    for step in (-1, 1):
        other = reference_decode(np.clip(pattern + step, 0, 0x7F7F))
        assert np.all(np.abs(other - mag) >= err)


def test_shapes_and_non_contiguous_input():
    x = np.linspace(-3, 3, 24, dtype=np.float32).reshape(4, 6)[:, ::2]
    got = float32_to_bf16_bits(x)
    assert got.shape == x.shape and got.dtype == np.uint16
    np.testing.assert_array_equal(got, reference_round(x).reshape(x.shape))
    assert float32_to_bf16_bits(np.float32(1.5)).shape == ()
