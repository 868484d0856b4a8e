"""A layer's weights in ``layer.get_weights()`` order, from the records of a weights file.

The NumPy forward pass (:mod:`weightshare.forward`) takes, per layer path, the
layer's arrays in Keras order; a file lists its tensors in its own order.
:func:`records_by_layer` sorts a file's records into that order by role
(kernel before bias, moving mean before moving variance, ...), the forward
layer of a Bidirectional wrapper first and the query/key/value/output
projections of an attention layer in that order. No I/O: records in, records out.
"""

__all__ = ["records_by_layer", "weights_by_layer"]

#: Keras order of a layer's weights by role (lower first); unknown roles keep file order
_ROLE_ORDER = {"kernel": 0, "depthwise_kernel": 0, "embeddings": 0, "alpha": 0, "gamma": 0,
               "pointwise_kernel": 1, "recurrent_kernel": 1, "beta": 1, "bias": 2,
               "moving_mean": 3, "moving_variance": 4}
#: MultiHeadAttention sub-layers, by a word of their name
_MHA_ORDER = (("query", 0), ("key", 1), ("value", 2), ("output", 3))


def _keras_order(record, index):
    """Sort key putting a layer's records in ``layer.get_weights()`` order."""
    where = f"{record.name} {record.location}"
    backward = int("backward" in where)      # Bidirectional: forward layer first
    part = next((rank for word, rank in _MHA_ORDER if word in record.name[len(record.layer):]), 0)
    return backward, part, _ROLE_ORDER.get(record.role, 5), index


def records_by_layer(records, counts):
    """{forward layer path: its records in Keras order} for the layer paths of `counts`."""
    out = {}
    for path in counts:
        mine = [(r, i) for i, r in enumerate(records)
                if r.path == path or r.path.startswith(path + "/")
                or (r.layer == path and "/" not in path)]
        mine.sort(key=lambda ri: _keras_order(*ri))
        out[path] = [r for r, _ in mine]
    return out


def weights_by_layer(records, counts):
    """{forward layer path: arrays in Keras order} (the records' ``value``)."""
    return {path: [r.value for r in rs] for path, rs in records_by_layer(records, counts).items()}
