"""Which optimizer slots belong to which model variable (pure; shapes only).

Keras stores optimizer state as a flat list with no per-slot names in the
weights store (``optimizer/vars/0, 1, ...``), with names that identify nothing
but position in Keras 2.0 files (``Variable_123:0``), and with readable names
in newer legacy files. The one layout every Keras generation shares is:

    leading scalars  (iteration, learning_rate; a LossScaleOptimizer adds its own
                      and its inner optimizer's),
    then k slots per trainable variable, in ``model.trainable_variables`` order,
    either interleaved (Adam: m0, v0, m1, v1, ...) or in blocks (m0, m1, ..., v0, v1, ...).

:func:`match_slots` tries both layouts against the stored shapes. It returns an
assignment only when every slot's shape equals the shape of the variable it
would belong to, and when all layouts that fit agree on the slots of the
variables that change. Otherwise the caller drops the state and says so.
"""

__all__ = ["match_slots"]


def _layouts(n_prefix, n_vars, k):
    interleaved = [None] * n_prefix + [i // k for i in range(n_vars * k)]
    yield "interleaved", interleaved
    if k > 1:
        yield "blocks", [None] * n_prefix + [i % n_vars for i in range(n_vars * k)]


def match_slots(slot_shapes, var_shapes, changed):
    """Assign optimizer slots to trainable variables.

    Parameters
    ----------
    slot_shapes : sequence of tuple of int
        Shapes of the stored optimizer variables, in stored order.
    var_shapes : sequence of tuple of int
        Shapes of the model's trainable variables, in ``trainable_variables`` order.
    changed : set of int
        Indices (into `var_shapes`) of the variables whose shape changes.

    Returns
    -------
    list of (int or None) or None
        For each slot, the index of its variable (None for the leading
        scalars); None when the assignment cannot be proven.

    Examples
    --------
    >>> match_slots([(), (), (8, 16), (8, 16), (16,), (16,)], [(8, 16), (16,)], {0, 1})
    [None, None, 0, 0, 1, 1]
    >>> match_slots([(), (3,)], [(4,)], {0}) is None
    True
    """
    slot_shapes = [tuple(s) for s in slot_shapes]
    var_shapes = [tuple(s) for s in var_shapes]
    n_prefix = 0
    while n_prefix < len(slot_shapes) and slot_shapes[n_prefix] == ():
        n_prefix += 1
    rest = len(slot_shapes) - n_prefix
    if rest == 0:
        return [None] * len(slot_shapes)
    n_vars = len(var_shapes)
    if n_vars == 0 or rest % n_vars:
        return None
    k = rest // n_vars
    fitting = []
    for _, owner in _layouts(n_prefix, n_vars, k):
        if all(o is None or slot_shapes[i] == var_shapes[o] for i, o in enumerate(owner)):
            fitting.append(owner)
    if not fitting:
        return None
    first = fitting[0]
    mine = {i for i, o in enumerate(first) if o in changed}
    for other in fitting[1:]:
        if {i for i, o in enumerate(other) if o in changed} != mine or \
                any(first[i] != other[i] for i in mine):
            return None
    return first
