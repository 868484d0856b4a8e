"""Issue 21, items 3-5: grouped LUTs, per-channel scales, LUTs in a target dtype.

Property tests, one invariant each, on small arrays.
"""

import itertools
import pathlib

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import weightshare
from weightshare import cluster
from weightshare.cli import main
from weightshare._codec._bf16 import is_bf16_exact
from weightshare._codec._fp8 import encode_exact, fp8_table

FAST = settings(max_examples=40, deadline=None)
DTYPES = ("int8", "uint8", "float16", "bfloat16", "float8_e4m3")


@st.composite
def matrices(draw, max_rows=6, max_cols=7, zeros=True, dtype=np.float32):
    """A (rows, channels) tensor of few distinct values, some exact zeros, channels along axis 1."""
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(rows, cols)) * rng.choice([0.01, 1.0, 30.0], size=cols)
    if zeros:
        w[rng.random((rows, cols)) < draw(st.sampled_from([0.0, 0.3]))] = 0.0
    return w.astype(dtype)


def _same(a, b):
    """Bit-for-bit equal arrays (NaN padding included)."""
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


@FAST
@given(matrices(), st.integers(2, 5), st.integers(1, 8), st.sampled_from(["auto", "optimal"]))
def test_every_group_has_at_most_k_values_and_keeps_its_zeros(w, k, g, method):
    res = cluster(w, k, axis=1, group_size=g, method=method)
    for start in range(0, w.shape[1], g):
        block = res.values[:, start:start + g]
        assert np.unique(block).size <= k
        assert np.all(block[w[:, start:start + g] == 0] == 0)


@FAST
@given(matrices(), st.integers(1, 5), st.sampled_from(["auto", "optimal", "lloyd"]),
       st.booleans(), st.sampled_from([None, "int8", "float16"]))
def test_group_size_one_is_per_channel_bit_for_bit(w, k, method, keep_zeros, lut_dtype):
    kw = dict(method=method, keep_zeros=keep_zeros, lut_dtype=lut_dtype)
    if method == "lloyd":
        kw.update(init="kmeans++", random_state=3)
    try:
        a = cluster(w, k, axis=1, **kw)
    except ValueError:      # k=1 with zeros and non-zeros: the same error either way
        with pytest.raises(ValueError):
            cluster(w, k, axis=1, group_size=1, **kw)
        return
    b = cluster(w, k, axis=1, group_size=1, **kw)
    assert all(_same(x, y) for x, y in zip((a.values, a.labels, a.centroids),
                                           (b.values, b.labels, b.centroids)))
    assert (a.sse, a.n_iter) == (b.sse, b.n_iter)


@FAST
@given(matrices(), st.integers(2, 5), st.integers(0, 3), st.sampled_from(["auto", "optimal"]),
       st.sampled_from([None, "uint8", "bfloat16"]))
def test_group_size_of_all_channels_is_per_tensor_bit_for_bit(w, k, extra, method, lut_dtype):
    a = cluster(w, k, method=method, lut_dtype=lut_dtype)
    b = cluster(w, k, axis=1, group_size=w.shape[1] + extra, method=method, lut_dtype=lut_dtype)
    assert _same(a.values, b.values) and _same(a.labels, b.labels)
    assert _same(a.centroids[None], b.centroids) and a.sse == b.sse


@FAST
@given(matrices(dtype=np.float16) | matrices(), st.integers(2, 5),
       st.sampled_from([None, 2, 3]), st.sampled_from([None, "int8", "float8_e4m3"]))
def test_per_channel_scale_values_are_scale_times_lut_entry(w, k, g, lut_dtype):
    res = cluster(w, k, axis=1, group_size=g, per_channel_scale=True, lut_dtype=lut_dtype)
    group = np.arange(w.shape[1]) // (g or w.shape[1])
    lut = res.centroids[group[None, :], res.labels]          # each entry's LUT value
    assert np.array_equal(res.values, res.scales[None, :] * lut)    # in the input dtype
    assert res.values.dtype == w.dtype and res.scales.dtype == w.dtype


@FAST
@given(matrices(dtype=np.float16) | matrices(), st.integers(2, 5), st.sampled_from([None, 2]),
       st.sampled_from([None, "uint8"]))
def test_per_channel_scale_keeps_zeros_zero(w, k, g, lut_dtype):
    res = cluster(w, k, axis=1, group_size=g, per_channel_scale=True, lut_dtype=lut_dtype)
    assert np.all(res.values[w == 0] == 0)


@FAST
@given(matrices(dtype=np.float16) | matrices() | matrices(dtype=np.float64),
       st.sampled_from(["auto", "optimal"]))
def test_int8_lut_scale_is_max_abs_over_127_rounded_up_a_little(w, method):
    res = cluster(w, 4, lut_dtype="int8", method=method, keep_zeros=False)
    bits = np.finfo(w.dtype).nmant + 1 - 8        # the scale keeps p - 8 significand bits
    want = float(np.abs(w).max()) / 127
    got, tiny = float(res.lut_scales), float(np.finfo(w.dtype).smallest_subnormal)
    assert want <= got <= max(want * (1 + 2.0 ** (1 - bits)), want + tiny) or want == 0


@FAST
@given(st.integers(0, 2**32 - 1), st.integers(2, 5), st.integers(2, 4), st.integers(2, 4))
def test_per_channel_scale_never_worse_than_per_tensor_when_channel_ranges_differ(seed, k, cols,
                                                                                    spread):
    # the same weights in every channel (shuffled), scaled by 2**(spread*c): ranges differ by
    # at least 4x; powers of two keep every scaling exact
    rng = np.random.default_rng(seed)
    u = rng.laplace(size=40)
    w = np.stack([rng.permutation(u) * 2.0 ** (spread * c) for c in range(cols)], axis=1)
    scaled = cluster(w, k, axis=1, per_channel_scale=True, method="optimal").sse
    plain = cluster(w, k, method="optimal").sse
    assert scaled <= plain * (1 + 1e-9)


def _lut_rows(res):
    c = np.atleast_2d(res.centroids)
    return [row[~np.isnan(row)] for row in c]


@FAST
@given(matrices(dtype=np.float16) | matrices() | matrices(dtype=np.float64), st.integers(1, 6),
       st.sampled_from(DTYPES), st.sampled_from(["none", "groups", "scale"]),
       st.sampled_from(["auto", "optimal", "lloyd"]))
def test_every_centroid_is_exactly_representable_in_the_lut_dtype(w, k, lut_dtype, layout,
                                                                  method):
    kw = {"none": {}, "groups": dict(axis=1, group_size=2),
          "scale": dict(axis=1, per_channel_scale=True)}[layout]
    res = cluster(w, k, lut_dtype=lut_dtype, method=method, keep_zeros=False, **kw)
    scales = np.atleast_1d(res.lut_scales) if lut_dtype in ("int8", "uint8") else None
    for i, row in enumerate(_lut_rows(res)):
        r64 = row.astype(np.float64)
        if lut_dtype in ("int8", "uint8"):
            zp = int(np.atleast_1d(res.lut_zero_points)[i])
            q = r64 / float(scales[i]) + zp
            lo, hi = (-128, 127) if lut_dtype == "int8" else (0, 255)
            assert np.all(q == np.rint(q)) and np.all((lo <= q) & (q <= hi))
            assert lut_dtype == "uint8" or zp == 0
            assert np.array_equal((scales[i] * (q - zp).astype(w.dtype)), row)
        elif lut_dtype == "float16":
            assert np.array_equal(row.astype(np.float16).astype(w.dtype), row)
        elif lut_dtype == "bfloat16":
            assert np.array_equal(r64.astype(np.float32), r64) and is_bf16_exact(r64).all()
        else:
            assert encode_exact(r64, "float8_e4m3fn") is not None


def _grid_points(lut_dtype, res):
    if lut_dtype == "int8":
        return float(res.lut_scales) * np.arange(-128, 128, dtype=np.float64)
    if lut_dtype == "float16":
        t = np.arange(1 << 16, dtype=np.uint16).view(np.float16).astype(np.float64)
    else:
        t = fp8_table("float8_e4m3fn").astype(np.float64)
    return t[np.isfinite(t)]


def _brute_force(x, k, grid, keep_zeros):
    """min over every assignment of the points to k clusters (no contiguity assumed) of the
    SSE with each cluster at its best grid point (a zero cluster pinned at 0 with keep_zeros);
    `grid` sorted."""
    zero = keep_zeros and bool(np.any(x == 0))
    pts = x[x != 0] if zero else x
    best = np.inf
    for lab in itertools.product(range(k), repeat=pts.size):
        lab = np.array(lab)
        total = 0.0
        for j in range(k):
            p = pts[lab == j]
            if not p.size:
                continue
            if zero and j == 0:
                total += float(np.sum(p * p))
            else:   # sum (p - g)**2 = sum (p - mean)**2 + n (mean - g)**2: g nearest the mean
                i = int(np.clip(np.searchsorted(grid, p.mean()), 1, grid.size - 1))
                total += min(float(np.sum((p - g) ** 2)) for g in grid[i - 1:i + 1])
        best = min(best, total)
    return best


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from([0.0, -0.3, 0.01, 0.97, 2.37, 4.32, 5.29, 5.6, 5.75, 5.83, 127.0]),
                min_size=2, max_size=6),   # points about as far apart as the grid's (int8: 1)
       st.integers(2, 3), st.sampled_from(["int8", "float16", "float8_e4m3"]), st.booleans())
# cases where rounding the unconstrained optimum to the grid is not the optimum over the grid
@example([127.0, 0.01, 0.97, 4.32, 2.37], 3, "int8", False)
@example([30.0, 5.83, 5.75, 5.29, 5.6], 3, "float8_e4m3", False)
def test_optimal_on_the_grid_equals_brute_force(values, k, lut_dtype, keep_zeros):
    x = np.array(values)
    res = cluster(x, k, method="optimal", lut_dtype=lut_dtype, keep_zeros=keep_zeros)
    want = _brute_force(x, k, np.unique(_grid_points(lut_dtype, res)), keep_zeros)
    assert res.sse == pytest.approx(want, rel=1e-9, abs=1e-12)


def _round_to_grid(c, lut_dtype, res):
    if lut_dtype in ("int8", "uint8"):
        s, zp = float(res.lut_scales), int(res.lut_zero_points)
        lo, hi = (-128, 127) if lut_dtype == "int8" else (-zp, 255 - zp)
        return s * np.clip(np.rint(c / s), lo, hi)
    grid = {"float16": lambda: np.arange(1 << 16, dtype=np.uint16).view(np.float16),
            "float8_e4m3": lambda: fp8_table("float8_e4m3fn")}[lut_dtype]().astype(np.float64)
    grid = np.unique(grid[np.isfinite(grid)])
    return grid[np.argmin(np.abs(c[:, None] - grid[None, :]), axis=1)]


@FAST
@given(matrices(max_rows=12, dtype=np.float64), st.integers(2, 6),
       st.sampled_from(["int8", "uint8", "float16", "float8_e4m3"]),
       st.sampled_from(["auto", "lloyd"]), st.booleans())
def test_sse_at_most_that_of_rounding_the_unconstrained_result(w, k, lut_dtype, method,
                                                               keep_zeros):
    kw = dict(method=method, keep_zeros=keep_zeros)
    if method == "lloyd":
        kw.update(init="kmeans++", random_state=7)
    try:
        free = cluster(w, k, **kw)
    except ValueError:       # k too small for the fixed zero
        return
    res = cluster(w, k, lut_dtype=lut_dtype, **kw)
    c = np.unique(_round_to_grid(free.centroids.astype(np.float64), lut_dtype, res))
    rounded = np.min((w.reshape(-1, 1) - c[None, :]) ** 2, axis=1)
    if keep_zeros:
        rounded[w.reshape(-1) == 0] = 0.0     # the zeros keep the pinned 0.0 (on every grid)
    assert res.sse <= float(rounded.sum()) * (1 + 1e-12) + 1e-300


def test_a_last_shorter_group_gets_its_own_lut():
    w = np.arange(1.0, 11.0).reshape(2, 5)         # 5 channels in groups of 2: 2 + 2 + 1
    res = cluster(w, 2, axis=1, group_size=2)
    assert res.centroids.shape == (3, 2)
    assert np.array_equal(res.centroids[2], [5.0, 10.0])


def test_a_channel_of_zeros_gets_scale_one():
    w = np.array([[0.0, 2.0], [0.0, -4.0]], dtype=np.float32)
    res = cluster(w, 3, axis=1, per_channel_scale=True)
    assert res.scales.tolist() == [1.0, 4.0] and np.all(np.isfinite(res.values))
    assert np.array_equal(res.values, w)


@pytest.mark.parametrize("kw, match", [
    (dict(group_size=2), r"group_size=2 needs axis"),
    (dict(per_channel_scale=True), r"per_channel_scale=True needs axis"),
    (dict(axis=0, group_size=0), r"group_size must be >= 1; got group_size=0"),
    (dict(axis=0, lut_dtype="int4"), r"lut_dtype must be one of .*'int8'.*; got 'int4'"),
])
def test_bad_lut_options_name_the_parameter(kw, match):
    with pytest.raises(ValueError, match=match):
        cluster(np.arange(1.0, 7.0), 2, **kw)


@pytest.mark.parametrize("kw", [dict(axis=0, group_size=True), dict(axis=0, group_size=2.0),
                                dict(axis=0, per_channel_scale="yes")])
def test_lut_options_of_the_wrong_type_are_type_errors(kw):
    with pytest.raises(TypeError, match=next(iter(set(kw) - {"axis"}))):
        cluster(np.arange(1.0, 7.0), 2, **kw)


def _plain_dp(x, k, grid):
    """O(k m**2) DP over sorted distinct x (unit weights), each run at its best grid point."""
    m = x.size
    cw = np.arange(m + 1, dtype=np.float64)
    cs = np.concatenate(([0.0], np.cumsum(x)))
    cq = np.concatenate(([0.0], np.cumsum(x * x)))

    def cost(a, b):            # runs a..b-1 for an array of a
        n, s, q = b - cw[a], cs[b] - cs[a], cq[b] - cq[a]
        mean = s / n
        i = np.clip(np.searchsorted(grid, mean), 1, grid.size - 1)
        g = np.where(mean - grid[i - 1] <= grid[i] - mean, grid[i - 1], grid[i])
        return q - 2 * g * s + n * g * g

    D = np.full(m + 1, np.inf)
    D[1:] = cost(np.zeros(m, dtype=int), np.arange(1, m + 1))
    for _ in range(k - 1):
        E = np.full(m + 1, np.inf)
        for b in range(2, m + 1):
            a = np.arange(1, b)
            E[b] = np.min(D[a] + cost(a, b))
        D = E
    return D[m]


@pytest.mark.parametrize("lut_dtype", ["int8", "float8_e4m3"])
def test_optimal_on_the_grid_equals_a_plain_dp_on_a_larger_input(lut_dtype):
    # 1,500 distinct points: the solver's long-bracket and span steps run, not only the ragged one
    x = np.unique(np.random.default_rng(5).laplace(size=1500) * 3.0)
    res = cluster(x, 4, method="optimal", lut_dtype=lut_dtype, keep_zeros=False)
    grid = np.unique(_grid_points(lut_dtype, res))
    assert res.sse == pytest.approx(_plain_dp(x, 4, grid), rel=1e-9)


# --------------------------------------------------------------------------- files and CLI

DIGITS = "examples/digits.keras"
FIX = pathlib.Path(__file__).resolve().parent / "fixtures" / "keras"
OPTIONS = [dict(group_size=4), dict(per_channel_scale=True), dict(lut_dtype="int8"),
           dict(group_size=3, per_channel_scale=True, lut_dtype="float8_e4m3")]


@pytest.mark.parametrize("options", OPTIONS)
def test_cluster_file_writes_the_dense_reconstruction_in_the_same_dtype(tmp_path, options):
    out = tmp_path / "o.keras"
    weightshare.cluster_file(DIGITS, out, 6, method="optimal", **options)
    before = {r.name: r for r in weightshare.read_weights(DIGITS)}
    for r in weightshare.read_weights(out):
        if r.kind != "kernel":
            assert np.array_equal(r.value, before[r.name].value)
            continue
        axis = -1 if options.keys() & {"group_size", "per_channel_scale"} else None
        want = cluster(before[r.name].value, 6, method="optimal", axis=axis, **options).values
        assert r.value.dtype == want.dtype and r.value.shape == want.shape
        assert np.array_equal(r.value, want)


def test_cluster_file_bfloat16_groups_keep_k_values_per_group(tmp_path):
    weightshare.cluster_file(FIX / "k3_bf16.keras", tmp_path / "o.keras", 3, group_size=2)
    checked = 0
    for r in weightshare.read_weights(tmp_path / "o.keras"):
        if r.kind == "kernel" and r.value.ndim == 2:
            assert r.dtype == "bfloat16" and is_bf16_exact(r.value).all()
            for start in range(0, r.shape[-1], 2):
                assert np.unique(r.value[:, start:start + 2]).size <= 3
            checked += 1
    assert checked


@pytest.mark.parametrize("kwargs, match", [
    (dict(group_size=0), r"group_size must be >= 1; got group_size=0"),
    (dict(lut_dtype="int4"), r"lut_dtype must be one of .*; got 'int4'"),
    (dict(per_channel=True, group_size=2), r"per_channel=True and group_size=2 exclude"),
])
def test_cluster_file_rejects_bad_lut_options_and_writes_nothing(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        weightshare.cluster_file(DIGITS, tmp_path / "o.keras", 4, **kwargs)
    assert not (tmp_path / "o.keras").exists()


def test_cli_passes_the_lut_options_through(tmp_path):
    cli, api = tmp_path / "cli.keras", tmp_path / "api.keras"
    assert main(["cluster", DIGITS, "-o", str(cli), "-k", "5", "--group-size", "3",
                 "--per-channel-scale", "--lut-dtype", "uint8", "--quiet"]) == 0
    weightshare.cluster_file(DIGITS, api, 5, group_size=3, per_channel_scale=True,
                             lut_dtype="uint8")
    got = {r.name: r.value for r in weightshare.read_weights(cli)}
    for r in weightshare.read_weights(api):
        assert np.array_equal(got[r.name], r.value)


def test_cli_rejects_a_group_size_below_one(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cluster", DIGITS, "-o", str(tmp_path / "o.keras"), "-k", "4", "--group-size", "0"])
    assert exc.value.code == 2
    assert "--group-size: expected an integer >= 1; got '0'" in capsys.readouterr().err
    assert not (tmp_path / "o.keras").exists()
