"""Greedy k-means++ seeding in any number of dimensions (NumPy only).

Arthur & Vassilvitskii, "k-means++: the advantages of careful seeding",
SODA 2007, draw each new centre with probability proportional to its
(weighted) squared distance D² to the nearest centre chosen so far. The
*greedy* variant draws ``2 + floor(ln k)`` candidates per step and keeps the
one that lowers the potential (the weighted sum of D²) most; it is what
scikit-learn's ``KMeans(init="k-means++")`` does (after Arthur & Vassilvitskii's
own implementation), and it makes one unlucky draw far less likely to leave
two centres in one cluster (Grunau, Özüdoğru, Rozhoň & Tětek, "A nearly tight
analysis of greedy k-means++", SODA 2023).
"""

import math

import numpy as np

__all__ = ["greedy_kmeans_pp", "n_local_trials"]


def n_local_trials(k):
    """Candidates drawn per step: ``2 + floor(ln k)`` (scikit-learn's choice)."""
    return 2 + int(math.log(k))


def _d2(X, c):
    """Squared distances of the rows of X (n, d) to each row of c (t, d): shape (t, n)."""
    if X.shape[1] == 1:
        d = X[:, 0][None, :] - c[:, 0][:, None]
        return d * d
    out = np.zeros((c.shape[0], X.shape[0]))
    for j in range(X.shape[1]):      # d is small (a few entries per vector)
        d = X[:, j][None, :] - c[:, j][:, None]
        out += d * d
    return out


def greedy_kmeans_pp(X, w, k, rng, start=None):
    """Indices of up to k seeds among the rows of `X`, chosen greedily.

    Parameters
    ----------
    X : ndarray of float64, shape (n, d)
    w : ndarray of float64, shape (n,), positive weights
    k : int >= 1, seeds wanted (besides `start`)
    rng : numpy.random.Generator
    start : ndarray (s, d), optional
        Centres that count as already chosen (the pinned zero). Without it
        the first seed is drawn in proportion to `w`.

    Returns
    -------
    ndarray of int64: row indices of the chosen seeds, in order of choice
    (fewer than k when every point already coincides with a centre).
    """
    n = X.shape[0]
    trials = n_local_trials(max(k, 1))
    chosen = []
    if start is None or len(start) == 0:
        cw = np.cumsum(w)
        first = int(np.searchsorted(cw, rng.random() * cw[-1], side="right"))
        first = min(first, n - 1)
        chosen.append(first)
        d2 = _d2(X, X[first:first + 1])[0]
    else:
        d2 = _d2(X, np.asarray(start, dtype=np.float64)).min(axis=0)
    while len(chosen) < k:
        cum = np.cumsum(w * d2)
        pot = float(cum[-1])
        if not pot > 0:         # every point already is a centre
            break
        cand = np.searchsorted(cum, rng.random(trials) * pot, side="right")
        np.minimum(cand, n - 1, out=cand)
        dc = _d2(X, X[cand])
        np.minimum(dc, d2[None, :], out=dc)
        best = int(np.argmin(dc @ w))
        chosen.append(int(cand[best]))
        d2 = dc[best]
    return np.asarray(chosen, dtype=np.int64)
