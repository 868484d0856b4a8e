"""Keep the structure while training: the pruning mask and the shared values.

A pruned or clustered tensor loses its structure as soon as an optimizer
updates it: the zeros become small non-zeros and every weight of a cluster
moves on its own. :func:`structure_of` reads the structure once, from the
weights as they are (after ``prune`` / ``cluster``); :meth:`Structure.project`
puts it back after every optimizer step:

- **the mask**: every weight that was exactly zero is set to exactly 0.0;
- **the clusters**: every weight of a clustered tensor keeps the cluster it
  had (its *label*, fixed), and all weights of a cluster are set to the mean
  of their current values. The shared values are trained; the assignment is
  not. Zero stays pinned at exactly 0.

With plain SGD at learning rate ``lr`` the mean rule is exactly SGD on the
shared value with learning rate ``lr / n`` (``n`` the cluster's size): the
mean of ``c - lr * g_i`` is ``c - lr * mean(g_i)``. Training the shared values
as variables (TFMOT's ``cluster_weights``, Deep Compression) gives a centroid
the *sum* of its members' gradients instead. With Adam each member's step is
normalised on its own, so the mean moves by at most about ``lr`` per step
(less when the members disagree). docs/training.md compares the two.

This is core weightshare: NumPy arrays in, NumPy arrays out; no framework is
imported. ``weightshare.keras.KeepStructure`` calls it from a Keras callback;
any other training loop calls :meth:`Structure.project` after its optimizer
step.
"""

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from ._base._validation import check_flag, check_int, check_weights

__all__ = ["Structure", "TensorStructure", "structure_of"]

#: a tensor with at most this many distinct values (and fewer than its size) counts as clustered
MAX_VALUES = 256


class TensorStructure(NamedTuple):
    """The structure of one tensor, as read by :func:`structure_of`.

    Attributes
    ----------
    shape : tuple of int
        The tensor's shape; :meth:`Structure.project` checks it.
    mask : ndarray of bool or None
        True where a weight may be non-zero; None when nothing is pinned at
        zero (``zeros=False``, or the tensor held no zero).
    labels : ndarray of int32 or None
        For a clustered tensor, each weight's cluster, ``0 .. n_clusters - 1``
        (``-1`` where the mask pins a zero); None for a tensor that is not
        clustered (``clusters=False``, or too many distinct values).
    n_clusters : int
        Number of clusters (shared values other than the pinned zero); 0 when
        the tensor is not clustered.
    """

    shape: tuple
    mask: object
    labels: object
    n_clusters: int


class _Plan(NamedTuple):
    """What project needs for one tensor, precomputed (flat)."""

    keep: object        # flat bool mask or None
    labels: object      # flat int64 labels with pinned zeros at n_clusters, or None
    first: object       # flat index of one member per label (the reference for the mean)
    counts: object      # float64 members per label (1 for the pinned-zero label)


class Structure:
    """Masks and cluster assignments of one tensor or of named tensors.

    Made by :func:`structure_of`; apply it with :meth:`project`.

    Attributes
    ----------
    tensors : dict
        ``{name: TensorStructure}``; a structure read from a single array has
        the one name ``None``.
    """

    def __init__(self, tensors, single):
        self.tensors = dict(tensors)
        self._single = single
        self._plans = {name: _plan(t) for name, t in self.tensors.items()}

    def __repr__(self):
        masked = sum(t.mask is not None for t in self.tensors.values())
        clustered = sum(t.labels is not None for t in self.tensors.values())
        what = "1 array" if self._single else f"{len(self.tensors)} tensors"
        return f"<Structure of {what}: {masked} masked, {clustered} clustered>"

    def project(self, weights):
        """Put the structure back: re-apply the masks, set each cluster to its mean.

        Parameters
        ----------
        weights : array_like of float, or mapping of name -> array_like
            The current weights, shaped as when the structure was read: one
            array if it was read from one array, else a mapping holding (at
            least) every name of the structure. Finite; never modified.

        Returns
        -------
        ndarray, or dict of name -> ndarray
            New arrays of the same shapes and dtypes: exactly 0.0 where the
            mask pins a zero; in a clustered tensor, every weight of a cluster
            equal to the mean of the cluster's current entries (computed in
            float64, rounded once to the dtype); other weights unchanged.
            Names of a mapping that the structure does not hold are passed
            through unchanged. Idempotent, and the identity on the weights the
            structure was read from.

        Examples
        --------
        >>> import numpy as np, weightshare
        >>> w = np.array([0.0, 0.5, 0.5, -1.0, 0.0, -1.0], dtype=np.float32)
        >>> s = weightshare.structure_of(w)
        >>> trained = w + np.array([0.125, 0.25, 0.5, 0.25, -0.125, 0.0], dtype=np.float32)
        >>> s.project(trained)
        array([ 0.   ,  0.875,  0.875, -0.875,  0.   , -0.875], dtype=float32)
        >>> np.array_equal(s.project(w), w)
        True
        """
        if self._single:
            if isinstance(weights, Mapping):
                raise TypeError("weights must be one array: this structure was read from one "
                                "array; got a mapping")
            x = check_weights(weights, allow_empty=True)
            return _project(x, self.tensors[None], self._plans[None], "weights")
        if not isinstance(weights, Mapping):
            raise TypeError("weights must be a mapping of name -> array: this structure was "
                            f"read from named tensors; got {type(weights).__name__}")
        missing = [name for name in self.tensors if name not in weights]
        if missing:
            raise ValueError(f"weights lacks {len(missing)} tensor(s) of the structure, "
                             f"first {missing[0]!r}")
        out = {}
        for name, value in weights.items():
            t = self.tensors.get(name)
            if t is None:
                out[name] = value
                continue
            label = f"weights[{name!r}]"
            out[name] = _project(check_weights(value, label, allow_empty=True), t,
                                 self._plans[name], label)
        return out


def _read(x, zeros, clusters, max_values):
    """The TensorStructure of one checked array."""
    flat = x.reshape(-1)
    zero = flat == 0
    mask = ~zero.reshape(x.shape) if zeros and zero.any() else None
    labels, n = None, 0
    if clusters and flat.size:
        values, inverse = np.unique(flat, return_inverse=True)
        if values.size <= max_values and values.size < flat.size:
            inverse = inverse.reshape(-1).astype(np.int64)
            if zeros:
                # zeros are pinned, not a cluster: number the other values 0 .. n-1
                z = np.flatnonzero(values == 0)
                if z.size:
                    inverse = np.where(inverse == z[0], -1, inverse - (inverse > z[0]))
                n = values.size - z.size
            else:
                n = values.size
            labels = inverse.astype(np.int32).reshape(x.shape)
    return TensorStructure(tuple(x.shape), mask, labels, int(n))


def _plan(t):
    keep = None if t.mask is None else t.mask.reshape(-1)
    if t.labels is None:
        return _Plan(keep, None, None, None)
    n = t.n_clusters
    labels = t.labels.reshape(-1).astype(np.int64)
    labels = np.where(labels < 0, n, labels)          # the pinned zero is label n
    counts = np.bincount(labels, minlength=n + 1).astype(np.float64)
    first = np.zeros(n + 1, dtype=np.int64)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(counts[:-1]).astype(np.int64)))
    present = counts > 0
    first[present] = order[starts[present]]
    counts[n] = max(counts[n], 1.0)
    return _Plan(keep, labels, first, counts)


def _project(x, t, plan, label):
    if x.shape != t.shape:
        raise ValueError(f"{label} must have the shape the structure was read from, "
                         f"{t.shape}; got {x.shape}")
    if plan.labels is None:
        if plan.keep is None:
            return x.copy()
        return np.where(t.mask, x, np.zeros((), dtype=x.dtype))
    flat = x.reshape(-1).astype(np.float64)
    # mean = reference + mean(x - reference): exactly the reference when all members are equal
    ref = flat[plan.first]
    means = ref + np.bincount(plan.labels, weights=flat - ref[plan.labels],
                              minlength=ref.size) / plan.counts
    means[-1] = 0.0                                   # the pinned zero
    return means[plan.labels].astype(x.dtype).reshape(x.shape)


def structure_of(weights, *, zeros=True, clusters=True, max_values=MAX_VALUES):
    """Read the structure (mask, cluster of each weight) of one tensor or named tensors.

    Parameters
    ----------
    weights : array_like of float, or mapping of name -> array_like
        The weights as pruned / clustered (before training on). Finite.
    zeros : bool, default True
        Pin every exact zero: :meth:`Structure.project` sets it back to
        exactly 0.0.
    clusters : bool, default True
        Keep clustered tensors on shared values: a tensor with at most
        `max_values` distinct values, and fewer than its size (so at least
        one value is shared), is clustered; each weight's cluster is the value
        it holds now. With ``zeros=True`` the zero is pinned, not a cluster;
        with ``zeros=False`` it is a cluster like the others (trained).
    max_values : int, default 256
        The most distinct values a clustered tensor may hold (``k`` of
        ``cluster``; per-channel clustering holds up to ``k`` per channel, so
        raise it to ``k * channels`` for those).

    Returns
    -------
    Structure
        ``structure.project(weights)`` re-applies it; ``structure.tensors``
        holds one :class:`TensorStructure` per tensor (the name ``None`` for a
        single array).

    Examples
    --------
    A pruned and clustered tensor (k=2 shared values and a pinned zero):

    >>> import numpy as np, weightshare
    >>> w = weightshare.cluster(weightshare.prune(np.linspace(-1, 1, 12), sparsity=0.5).values, 3).values
    >>> w
    array([-0.81818182, -0.81818182, -0.81818182,  0.        ,  0.        ,
            0.        ,  0.        ,  0.        ,  0.        ,  0.81818182,
            0.81818182,  0.81818182])
    >>> s = weightshare.structure_of(w)
    >>> t = s.tensors[None]
    >>> t.n_clusters, t.labels.tolist()
    (2, [0, 0, 0, -1, -1, -1, -1, -1, -1, 1, 1, 1])

    After an optimizer step, ``project`` puts the zeros back and moves every
    weight of a cluster to the cluster's new mean:

    >>> step = np.array([0.3, 0.0, 0.0, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, -0.3, 0.0, 0.0])
    >>> p = s.project(w + step)
    >>> p.round(4).tolist()
    [-0.7182, -0.7182, -0.7182, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.7182, 0.7182, 0.7182]

    Named tensors (a ``state_dict``-like mapping) work the same way:

    >>> b = np.array([0.1, 0.2, 0.3, 0.4])
    >>> s = weightshare.structure_of({"fc/kernel": w.reshape(3, 4), "fc/bias": b})
    >>> s
    <Structure of 2 tensors: 1 masked, 1 clustered>
    >>> out = s.project({"fc/kernel": (w + step).reshape(3, 4), "fc/bias": b + 0.5})
    >>> int(np.count_nonzero(out["fc/kernel"])), np.unique(out["fc/kernel"]).size, out["fc/bias"]
    (6, 3, array([0.6, 0.7, 0.8, 0.9]))
    """
    zeros = check_flag(zeros, "zeros")
    clusters = check_flag(clusters, "clusters")
    max_values = check_int(max_values, "max_values", 1)
    if isinstance(weights, Mapping):
        tensors = {}
        for name, value in weights.items():
            x = check_weights(value, f"weights[{name!r}]", allow_empty=True)
            tensors[name] = _read(x, zeros, clusters, max_values)
        return Structure(tensors, single=False)
    x = check_weights(weights, allow_empty=True)
    return Structure({None: _read(x, zeros, clusters, max_values)}, single=True)
