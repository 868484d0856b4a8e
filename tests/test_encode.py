"""weightshare.encode: lossless round trips, exact sizes, the byte layout, rejected blobs.

Hypothesis properties, one invariant each; hand-built toys pin the byte layout
of docs/format.md; every truncation and random bit flips of small blobs are
rejected.
"""

import heapq
import math
import struct
import zlib

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import weightshare
from weightshare._codec import _huffman
from weightshare._codec._bytes import Reader, uleb128, uleb128_size

SCHEMES = ("raw", "packed", "sparse", "huffman", "sparse_huffman")
FLOATS = (np.float16, np.float32, np.float64)


def same_bits(a, b):
    return (a.dtype == b.dtype and a.shape == b.shape
            and np.array_equal(a.view(f"u{a.itemsize}"), b.view(f"u{b.itemsize}")))


def header_size(shape, payload):
    """8 fixed bytes + ULEB128 total length + ULEB128 dims (docs/format.md)."""
    body = 8 + sum(uleb128_size(d) for d in shape) + payload + 4
    total = body + 1
    while body + uleb128_size(total) != total:
        total = body + uleb128_size(total)
    return total - payload - 4


# --------------------------------------------------------------------------- strategies

@st.composite
def tensors(draw, max_side=8, nan_free=True):
    """Float tensors of any rank 0-4 (empty included): clustered, sparse or arbitrary."""
    dtype = draw(st.sampled_from(FLOATS))
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=max_side))
    width = 8 * np.dtype(dtype).itemsize
    finite = st.floats(width=width, allow_nan=not nan_free, allow_infinity=not nan_free)
    kind = draw(st.sampled_from(["clustered", "arbitrary"]))
    if kind == "clustered":
        pool = draw(st.lists(finite, min_size=1, max_size=20))
        zeros = draw(st.sampled_from([0, 1, 3]))      # weight of 0.0 among the choices
        elements = st.sampled_from(pool + [0.0] * zeros)
    else:
        elements = finite
    return draw(hnp.arrays(dtype, shape, elements=elements))


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("scheme", SCHEMES + ("auto",))
@given(x=tensors())
def test_decode_encode_is_identity_bit_for_bit(scheme, x):
    assert same_bits(weightshare.decode(weightshare.encode(x, scheme=scheme)), x)


@pytest.mark.parametrize("scheme", SCHEMES)
@given(x=tensors(nan_free=False))
def test_round_trip_keeps_nan_inf_and_signed_zero_patterns(scheme, x):
    x = x.copy()
    if x.size:
        x.reshape(-1)[0] = -0.0
    assert same_bits(weightshare.decode(weightshare.encode(x, scheme=scheme)), x)


@pytest.mark.parametrize("scheme", SCHEMES)
@given(patterns=hnp.arrays(np.uint16, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0,
                                                           max_side=8),
                           elements=st.sampled_from([0, 0x3F80, 0xBF80, 0x4049, 0x0001, 0x7F80])))
def test_bfloat16_round_trip_from_bits_and_from_float32(scheme, patterns):
    widened = (patterns.astype(np.uint32) << 16).view(np.float32)
    for given_as in (patterns, widened):
        blob = weightshare.encode(given_as, scheme=scheme, dtype="bfloat16")
        assert weightshare.blob_info(blob).dtype == "bfloat16"
        assert same_bits(weightshare.decode(blob), widened)


@given(x=tensors())
def test_encoding_does_not_modify_the_input(x):
    before = x.copy()
    weightshare.encode(x)
    assert same_bits(x, before)


def test_non_contiguous_and_big_endian_inputs():
    x = np.arange(24, dtype=np.float32).reshape(4, 6)[:, ::2] % 3
    assert same_bits(weightshare.decode(weightshare.encode(x)), np.ascontiguousarray(x))
    big = np.array([1.5, 0.0, -2.0], dtype=">f8")
    y = weightshare.decode(weightshare.encode(big, scheme="packed"))
    assert y.dtype == np.float64 and np.array_equal(y, big)


# --------------------------------------------------------------------------- sizes

@given(x=tensors())
def test_encoded_sizes_are_the_lengths_of_the_blobs(x):
    sizes = weightshare.encoded_sizes(x)
    for scheme in SCHEMES:
        assert len(weightshare.encode(x, scheme=scheme)) == getattr(sizes, scheme)


@given(x=tensors())
def test_auto_is_the_smallest_scheme(x):
    sizes = weightshare.encoded_sizes(x)
    blob = weightshare.encode(x)
    assert len(blob) == sizes.best == min(getattr(sizes, s) for s in SCHEMES)
    assert weightshare.blob_info(blob).scheme == sizes.best_scheme


@given(x=tensors())
def test_packed_size_formula(x):
    """header + ULEB128(k) + k * itemsize + ceil(n * ceil(log2 k) / 8) + 4 (CRC)."""
    k = np.unique(x.view(f"u{x.itemsize}")).size
    b = max(k - 1, 0).bit_length()
    payload = uleb128_size(k) + k * x.itemsize + -(-x.size * b // 8)
    assert len(weightshare.encode(x, scheme="packed")) == header_size(x.shape, payload) + payload + 4


@given(x=tensors())
def test_raw_size_formula(x):
    payload = x.size * x.itemsize
    assert len(weightshare.encode(x, scheme="raw")) == header_size(x.shape, payload) + payload + 4


def _optimal_cost(counts):
    """Total bits of an optimal prefix code (reference: heapq Huffman)."""
    heap = [int(c) for c in counts if c > 0]
    if len(heap) <= 1:
        return 0
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        total += a + b
        heapq.heappush(heap, a + b)
    return total


@given(counts=st.lists(st.integers(0, 10**6), min_size=1, max_size=60))
def test_huffman_lengths_are_optimal(counts):
    lengths = _huffman.code_lengths(counts)
    assert int(np.dot(counts, lengths)) == _optimal_cost(counts)


@given(counts=st.lists(st.integers(0, 10**6), min_size=1, max_size=60))
def test_huffman_bits_within_one_bit_per_symbol_of_entropy(counts):
    counts = np.array(counts, dtype=np.int64)
    m = int(counts.sum())
    assume(m > 0)
    bits = int(np.dot(counts, _huffman.code_lengths(counts)))
    used = counts[counts > 0]
    entropy = float(np.dot(used, np.log2(m / used)))
    assert entropy - 1e-6 * m <= bits < entropy + m + 1e-6 * m


@given(x=tensors())
def test_huffman_blob_within_one_bit_per_symbol_of_entropy_plus_overhead(x):
    """8 * size <= n * (H + 1) + 8 * overhead + 7 padding bits, with overhead =
    header (8 + ULEB128 length <= 10 + ULEB128 dims), codebook (ULEB128 k + k *
    itemsize), code table (ULEB128 k + k bytes), ULEB128 bit count (<= 10),
    block size (1) and CRC (4). Streams this short have no block offsets."""
    s = weightshare.encoded_sizes(x)
    k = s.distinct
    overhead = (8 + 10 + sum(uleb128_size(d) for d in x.shape) + 2 * uleb128_size(k)
                + k * x.itemsize + k + 10 + 1 + 4)
    assert 8 * s.huffman <= s.entropy_bits + s.n + 8 * overhead + 7


def test_huffman_length_limit_halves_counts():
    fib = [1, 1]
    while len(fib) < 30:
        fib.append(fib[-1] + fib[-2])
    free = _huffman.code_lengths(fib)
    assert free.max() == 29
    limited = _huffman.code_lengths(fib, max_length=12)
    assert limited.max() <= 12
    assert sum(2.0 ** -int(length) for length in limited) == 1.0      # complete code


def test_large_streams_use_blocks_and_round_trip():
    rng = np.random.default_rng(0)
    values = np.array([0.0, 0.5, -0.5, 0.25, -0.25, 1.0, -1.0, 2.0], dtype=np.float32)
    x = values[rng.choice(8, size=(300, 1000), p=[.5, .2, .1, .1, .04, .03, .02, .01])]
    for scheme in ("huffman", "sparse_huffman"):
        blob = weightshare.encode(x, scheme=scheme)
        assert same_bits(weightshare.decode(blob), x)
    # the Huffman stream holds block offsets (B > 0) for a stream this long
    counts = np.bincount(np.searchsorted(np.sort(np.unique(x)), x.ravel()))
    assert _huffman._block_size(x.size, int(np.dot(counts, _huffman.code_lengths(counts)))) > 0


@pytest.mark.parametrize("m", [_huffman.CHAIN - 1, _huffman.CHAIN, _huffman.CHAIN + 1,
                               2 * _huffman.CHAIN + 1, 3 * _huffman.CHAIN + 5, 40_001])
def test_one_block_streams_decode_as_a_symbol_by_symbol_walk(m):
    """One-block streams of more symbols than the walk takes steps (doubling, walk, undoing
    the doublings), decoded against a plain walk over the code, symbol by symbol."""
    rng = np.random.default_rng(m)
    symbols = rng.choice(6, size=m, p=[.4, .3, .1, .1, .06, .04])
    lengths = _huffman.code_lengths(np.bincount(symbols, minlength=6))
    blob = _huffman.write_stream(symbols, lengths)
    reader = Reader(blob, 0, len(blob))
    got = _huffman.read_stream(reader, m, "symbols")
    n_bits = int(lengths[symbols].sum())
    assert _huffman._block_size(m, n_bits) == 0        # one block: the stream ends the blob
    code = _huffman._Code(lengths)
    by_code = {(int(code.codes[s]), int(lengths[s])): s for s in range(6)}
    n_bytes = (n_bits + 7) // 8
    bits = "".join(format(b, "08b") for b in blob[len(blob) - n_bytes:])
    walk, at = [], 0
    while len(walk) < m:
        n = 1
        while (int(bits[at:at + n], 2), n) not in by_code:
            n += 1
        walk.append(by_code[int(bits[at:at + n], 2), n])
        at += n
    assert np.array_equal(got, walk) and np.array_equal(got, symbols)


@given(m=st.integers(_huffman.CHAIN - 8, 6 * _huffman.CHAIN), alphabet=st.integers(2, 40),
       seed=st.integers(0, 2**32 - 1))
def test_one_block_streams_of_any_length_decode_to_their_symbols(m, alphabet, seed):
    rng = np.random.default_rng(seed)
    symbols = rng.choice(alphabet, size=m, p=rng.dirichlet(np.ones(alphabet)))
    lengths = _huffman.code_lengths(np.bincount(symbols, minlength=alphabet))
    blob = _huffman.write_stream(symbols, lengths)
    assert np.array_equal(_huffman.read_stream(Reader(blob, 0, len(blob)), m, "s"), symbols)


def test_one_block_stream_one_symbol_short_is_rejected():
    symbols = np.random.default_rng(3).choice(4, size=3 * _huffman.CHAIN + 7, p=[.5, .3, .1, .1])
    lengths = _huffman.code_lengths(np.bincount(symbols, minlength=4))
    blob = _huffman.write_stream(symbols, lengths)
    with pytest.raises(ValueError, match="do not decode to the stated symbol count"):
        _huffman.read_stream(Reader(blob, 0, len(blob)), symbols.size + 1, "symbols")


def test_unclustered_tensor_picks_raw():
    x = np.random.default_rng(1).normal(size=(64, 64)).astype(np.float32)
    s = weightshare.encoded_sizes(x)
    assert s.best_scheme == "raw" and s.distinct == 4096 and s.index_bits == 12


# --------------------------------------------------------------------------- the byte layout (docs/format.md)

def _with_crc(body):
    return body + struct.pack("<I", zlib.crc32(body))


def test_packed_toy_bytes():
    x = np.array([0.0, 1.0, 0.0, 1.0], dtype=np.float16)
    blob = weightshare.encode(x, scheme="packed")
    body = (b"WSEB" + bytes([1, 1, 1, 1])      # magic, version, scheme packed, float16, ndim 1
            + bytes([20, 4])                    # total length, shape (4,)
            + bytes([2]) + bytes.fromhex("0000 003c")   # k = 2, codebook 0x0000 0x3c00 (LE)
            + bytes([0b01010000]))              # indices 0 1 0 1, one bit each, MSB first
    assert blob == _with_crc(body)


def test_sparse_blob_written_by_hand_decodes_with_fillers():
    # 12 float32 entries: 2.0 at 0, 3.0 at 9, zero elsewhere; gaps in g = 2 bits,
    # so the run of 8 zeros needs two fillers (each bridges 3 zeros + itself).
    codebook = np.array([0.0, 2.0, 3.0], dtype="<f4").view("<u4")
    gaps = [0, 3, 3, 0]         # 2.0 | filler | filler | 3.0
    codes = [1, 0, 0, 2]
    payload = (bytes([3]) + codebook.tobytes() + bytes([2]) + bytes([4])
               + bytes([0b00111100]) + bytes([0b01000010]))
    body = b"WSEB" + bytes([1, 2, 2, 1])
    total = len(body) + 1 + 1 + len(payload) + 4
    blob = _with_crc(body + bytes([total, 12]) + payload)
    want = np.zeros(12, dtype=np.float32)
    want[0], want[9] = 2.0, 3.0
    assert same_bits(weightshare.decode(blob), want)
    assert gaps == [0, 3, 3, 0] and codes == [1, 0, 0, 2]


def test_huffman_blob_written_by_hand():
    # float64 [5, 5, 5, 7, 9, 5]: counts 4, 1, 1 -> lengths 1, 2, 2 -> canonical codes 0, 10, 11
    payload = (bytes([3]) + np.array([5.0, 7.0, 9.0], "<f8").tobytes()
               + bytes([3, 2, 3, 3])          # alphabet 3, lengths + 1
               + bytes([8, 0])                # 8 bits, one block
               + bytes([0b00010110]))          # 0 0 0 10 11 0
    body = b"WSEB" + bytes([1, 3, 3, 2])
    total = len(body) + 1 + 2 + len(payload) + 4
    blob = _with_crc(body + bytes([total, 2, 3]) + payload)
    want = np.array([5, 5, 5, 7, 9, 5], dtype=np.float64).reshape(2, 3)
    assert same_bits(weightshare.decode(blob), want)
    assert blob == weightshare.encode(want, scheme="huffman")


def test_scalar_and_empty_shapes():
    for x in (np.float32(2.5), np.zeros((0, 3), np.float16), np.zeros((), np.float64)):
        x = np.asarray(x)
        for scheme in SCHEMES:
            y = weightshare.decode(weightshare.encode(x, scheme=scheme))
            assert same_bits(y, x)


def test_uleb128():
    assert uleb128(0) == b"\x00" and uleb128(127) == b"\x7f" and uleb128(128) == b"\x80\x01"
    assert uleb128(624485) == bytes([0xE5, 0x8E, 0x26])
    for v in (0, 1, 127, 128, 2**14, 2**63 - 1):
        r = Reader(uleb128(v), 0, len(uleb128(v)))
        assert r.uleb("v") == v and uleb128_size(v) == len(uleb128(v))


# --------------------------------------------------------------------------- rejected blobs

SMALL = [np.array([[0.0, 0.5, 0.0], [0.5, -1.0, 0.0]], dtype=np.float32),
         np.array([1.0, 1.0, 2.0, 0.0, 0.0, 0.0, 0.0, 3.0], dtype=np.float16)]


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("x", SMALL, ids=["f32", "f16"])
def test_every_truncation_is_rejected(scheme, x):
    blob = weightshare.encode(x, scheme=scheme)
    for cut in range(len(blob)):
        with pytest.raises(ValueError, match="truncated|not a weightshare|corrupted"):
            weightshare.decode(blob[:cut])


@pytest.mark.parametrize("scheme", SCHEMES)
def test_trailing_bytes_are_rejected(scheme):
    blob = weightshare.encode(SMALL[0], scheme=scheme)
    with pytest.raises(ValueError, match="too long"):
        weightshare.decode(blob + b"\x00")


@pytest.mark.parametrize("scheme", SCHEMES)
@given(data=st.data())
def test_random_bit_flips_are_rejected(scheme, data):
    blob = bytearray(weightshare.encode(SMALL[0], scheme=scheme))
    n_bits = 8 * len(blob)
    flips = data.draw(st.sets(st.integers(0, n_bits - 1), min_size=1, max_size=3))
    for bit in flips:
        blob[bit // 8] ^= 0x80 >> (bit % 8)
    with pytest.raises(ValueError):
        weightshare.decode(bytes(blob))


def test_every_single_bit_flip_is_rejected():
    blob = weightshare.encode(SMALL[1], scheme="sparse_huffman")
    for bit in range(8 * len(blob)):
        bad = bytearray(blob)
        bad[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(ValueError):
            weightshare.decode(bytes(bad))


def test_crc_valid_but_inconsistent_payload_is_rejected():
    # packed float32, 4 entries with indices 0 1 2 3 into a codebook of 3, and a
    # correct CRC: what a broken writer would produce
    payload = bytes([3]) + np.array([0.0, 1.0, 2.0], "<f4").tobytes() + bytes([0b00011011])
    body = b"WSEB" + bytes([1, 1, 2, 1]) + bytes([8 + 2 + len(payload) + 4, 4]) + payload
    with pytest.raises(ValueError, match="outside the codebook"):
        weightshare.decode(_with_crc(body))


@pytest.mark.parametrize("blob, match", [
    (b"", "not a weightshare"),
    (b"PK\x03\x04" + bytes(30), "not a weightshare"),
    (b"WSEB", "truncated"),
    (b"WSEB" + bytes([9, 0, 2, 0]) + bytes([13]) + bytes(4), "CRC32|version"),
])
def test_bad_blobs(blob, match):
    with pytest.raises(ValueError, match=match):
        weightshare.decode(blob)


def test_unknown_version_is_named():
    body = b"WSEB" + bytes([9, 0, 2, 0]) + bytes([13])
    with pytest.raises(ValueError, match="unsupported format version 9"):
        weightshare.decode(_with_crc(body))


# --------------------------------------------------------------------------- bad arguments

@pytest.mark.parametrize("kwargs, exc, match", [
    (dict(values=[1, 2, 3]), TypeError, "floating dtype"),
    (dict(values=np.array([True])), TypeError, "floating dtype"),
    (dict(values=np.zeros(3, np.complex64)), TypeError, "floating dtype"),
    (dict(values=[[1.0], [2.0, 3.0]]), TypeError, "could not convert"),
    (dict(values=np.zeros(3), scheme="zip"), ValueError, "scheme must be one of"),
    (dict(values=np.zeros(3), dtype="int8"), ValueError, "dtype must be one of"),
    (dict(values=np.zeros(3), dtype="float32"), ValueError, "does not match"),
    (dict(values=np.array([1.1], np.float32), dtype="bfloat16"), ValueError,
     "exactly representable in bfloat16"),
    (dict(values=np.zeros(3, np.float64), dtype="bfloat16"), TypeError, "float32"),
])
def test_bad_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        weightshare.encode(**kwargs)


def test_decode_needs_bytes():
    with pytest.raises(TypeError, match="blob must be bytes"):
        weightshare.decode("WSEB")


def test_entropy_of_a_toy():
    s = weightshare.encoded_sizes(np.array([0, 0, 0, 0, 1, 1, 2, 3], dtype=np.float32))
    assert s.entropy_bits == pytest.approx(4 * 1 + 2 * 2 + 3 + 3)
    assert math.isclose(s.entropy_bits, 14.0)
