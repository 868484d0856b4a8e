"""Hypothesis strategies for weight tensors.

Bounded and NaN-free by default. Zeros, ties (repeated values), subnormals,
constant tensors and tiny tensors are mixed in on purpose, because that is
where compression code breaks; each can also be forced. Values are drawn as
``u`` in [-1, 1] and mapped through the inverse CDF of the chosen tail, so
shrinking moves values towards 0 and examples shrink to small, readable ones.
"""

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

__all__ = ["shapes", "weights", "k_values", "keras_like_layers", "DTYPES", "TAILS"]

DTYPES = ("float16", "float32", "float64")


def _laplace(u):
    return np.sign(u) * -np.log1p(-np.minimum(np.abs(u), 1 - 1e-9))


def _gaussian(u):
    # a smooth, bounded stand-in for the inverse normal CDF (shrinks like u)
    return np.sign(u) * np.sqrt(-2.0 * np.log1p(-np.minimum(np.abs(u), 1 - 1e-9)))


TAILS = {"laplace": _laplace, "gaussian": _gaussian, "uniform": lambda u: u}


def shapes(*, min_dims=1, max_dims=4, min_side=1, max_side=64, max_size=4096):
    """Array shapes with at most `max_size` entries (never empty unless min_side=0)."""
    base = hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side)
    return base.filter(lambda s: int(np.prod(s)) <= max_size)


def k_values(min_value=1, max_value=16):
    """Numbers of shared values to ask for."""
    return st.integers(min_value=min_value, max_value=max_value)


@st.composite
def weights(draw, shape=None, *, dtype="float32", zeros=None, tails="laplace", scale=0.1,
            ties=None, subnormals=None, constant=None, allow_nan=False, allow_inf=False):
    """Weight tensors that look like trained (and pruned) weights.

    Parameters
    ----------
    shape : tuple, strategy of tuples, or None
        Defaults to :func:`shapes` with at most 256 entries.
    dtype : str or strategy of str
        'float16', 'float32' or 'float64'.
    zeros : float in [0, 1], or None
        Expected fraction of exact zeros. None mixes zero-free, sparse and very
        sparse tensors.
    tails : {'laplace', 'gaussian', 'uniform'}
        Shape of the value distribution (Laplace: heavy-tailed, like trained weights).
    scale : float
        Typical magnitude of the values.
    ties : bool or None
        Draw the values from a handful of distinct ones (duplicates, already
        clustered tensors). None: sometimes.
    subnormals : bool or None
        Mix in subnormal values of the dtype. None: sometimes.
    constant : bool or None
        A tensor holding one value everywhere. None: sometimes.
    allow_nan, allow_inf : bool
        Mix in NaN / infinities (off by default).
    """
    if shape is None:
        shape = shapes(max_size=256)
    shp = draw(shape) if isinstance(shape, st.SearchStrategy) else tuple(shape)
    dt = np.dtype(draw(dtype) if isinstance(dtype, st.SearchStrategy) else dtype)
    if dt.name not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}; got {dt}")
    if tails not in TAILS:
        raise ValueError(f"tails must be one of {tuple(TAILS)}; got {tails!r}")
    n = int(np.prod(shp))
    unit = st.floats(-1.0, 1.0, allow_nan=False, allow_subnormal=False, width=64)
    u = draw(hnp.arrays(np.float64, n, elements=unit))
    x = scale * TAILS[tails](u)
    if constant if constant is not None else draw(st.integers(0, 9)) == 0:
        x[:] = x[0] if n else 0.0
    elif ties if ties is not None else draw(st.integers(0, 3)) == 0:
        pool = draw(hnp.arrays(np.float64, draw(st.integers(1, 4)), elements=unit))
        pick = draw(hnp.arrays(np.int64, n, elements=st.integers(0, pool.size - 1)))
        x = scale * TAILS[tails](pool)[pick]
    frac = zeros if zeros is not None else draw(st.sampled_from([0.0, 0.0, 0.3, 0.5, 0.9]))
    if frac > 0 and n:
        v = draw(hnp.arrays(np.float64, n, elements=st.floats(0.0, 1.0, allow_subnormal=False)))
        x[v < frac] = 0.0
    x = x.astype(dt)
    if (subnormals if subnormals is not None else draw(st.integers(0, 7)) == 0) and n:
        tiny = np.finfo(dt).smallest_subnormal
        at = draw(hnp.arrays(np.int64, draw(st.integers(1, min(n, 4))),
                             elements=st.integers(0, n - 1)))
        x[at] = tiny * draw(st.sampled_from([1, -1, 3, -7]))
    if (allow_nan or allow_inf) and n:
        specials = ([np.nan] if allow_nan else []) + ([np.inf, -np.inf] if allow_inf else [])
        at = draw(st.integers(0, n - 1))
        x[at] = draw(st.sampled_from(specials))
    return x.reshape(shp)


@st.composite
def keras_like_layers(draw, *, max_layers=3, max_units=32, dtype="float32", zeros=None):
    """A dict of named kernels and biases of consistent shapes, like a Dense stack.

    Keys are ``'<layer>/kernel'`` with shape (in, units) and ``'<layer>/bias'``
    with shape (units,); each layer's input size is the previous one's units.
    """
    n_layers = draw(st.integers(1, max_layers))
    sizes = draw(st.lists(st.integers(1, max_units), min_size=n_layers + 1, max_size=n_layers + 1))
    out = {}
    for i in range(n_layers):
        name = "dense" if i == 0 else f"dense_{i}"
        out[f"{name}/kernel"] = draw(weights((sizes[i], sizes[i + 1]), dtype=dtype, zeros=zeros))
        out[f"{name}/bias"] = draw(weights((sizes[i + 1],), dtype=dtype, zeros=0.0, scale=0.01))
    return out
