"""Initial centroids for Lloyd's algorithm.

Every initialiser takes the sorted distinct points ``x`` (float64), their
positive weights ``w``, the number of free centroids ``k`` (< len(x)) and a
``numpy.random.Generator``; it returns at most k sorted distinct float64
centroids inside [x[0], x[-1]]. The registry :data:`INITS` maps the public
names to them.

- ``linear``: evenly spaced over [min, max]. Han, Mao & Dally, "Deep
  Compression", ICLR 2016, found it the best of their three inits because it
  keeps centroids on the rare large weights.
- ``density``: quantiles of the weighted empirical CDF, interpolated linearly
  between data points (no grid snapping, hence no duplicates).
- ``random``: uniform draws over [min, max] (what TFMOT calls RANDOM).
- ``forgy``: k distinct data points, drawn in proportion to their weight
  (what Deep Compression calls random; Forgy, 1965).
- ``kmeans++``: greedy D² seeding (Arthur & Vassilvitskii, SODA 2007; the
  greedy variant with ``2 + ln k`` candidates per step, as scikit-learn, see
  :mod:`._kpp`); a fixed zero centroid counts as already chosen.
"""

import numpy as np

from ._kpp import greedy_kmeans_pp

__all__ = ["INITS"]


def _linear(x, w, k, rng, fixed_zero):
    return np.linspace(x[0], x[-1], k)


def _density(x, w, k, rng, fixed_zero):
    cdf = np.cumsum(w)
    cdf -= 0.5 * w          # mid-point plotting positions, strictly increasing
    cdf /= cdf[-1] + 0.5 * w[-1]
    levels = cdf[0] + (cdf[-1] - cdf[0]) * (np.arange(k) + 0.5) / k
    return np.interp(levels, cdf, x)


def _random(x, w, k, rng, fixed_zero):
    return np.sort(rng.uniform(x[0], x[-1], size=k))


def _forgy(x, w, k, rng, fixed_zero):
    if x.size > 1 and not np.all(x[1:] > x[:-1]):     # repeated values: draw distinct ones
        x, inverse = np.unique(x, return_inverse=True)
        w = np.bincount(inverse, weights=w)
    idx = rng.choice(x.size, size=k, replace=False, p=w / w.sum())
    return np.sort(x[idx])


def _kmeans_pp(x, w, k, rng, fixed_zero):
    idx = greedy_kmeans_pp(x[:, None], w, k, rng, np.zeros((1, 1)) if fixed_zero else None)
    return np.unique(x[idx])


INITS = {
    "linear": _linear,
    "density": _density,
    "random": _random,
    "forgy": _forgy,
    "kmeans++": _kmeans_pp,
}
