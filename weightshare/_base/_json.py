"""Model configs as JSON, with bounded nesting.

Every model config weightshare reads (``config.json`` and ``metadata.json`` of
a ``.keras`` file, the ``model_config`` attribute of a legacy ``.h5``, a config
given as text to :func:`weightshare.forward.forward`) is parsed by
:func:`loads`. Python's JSON parser and serializer, ``copy.deepcopy`` and every
walk over a parsed config recurse once per level, so a config nested
thousands of levels deep would reach the interpreter's recursion limit in one
of them. Keras writes configs about a dozen levels deep (four or five more per
nested model): anything deeper than :data:`MAX_DEPTH` is refused, in one line,
before it is used. Standard library only.
"""

import json

__all__ = ["MAX_DEPTH", "NestingError", "loads", "check_depth", "copy"]

#: Deepest nesting of a config (the top-level object is level 1): real Keras
#: configs nest 8 to 12 levels, a model nested in a model about 5 more.
MAX_DEPTH = 100


_CONTAINERS = (dict, list, tuple)


class NestingError(ValueError):
    """A JSON document nested deeper than :data:`MAX_DEPTH`."""


def _too_deep(what):
    return NestingError(f"{what} is nested more than {MAX_DEPTH} levels deep (weightshare reads "
                        f"at most {MAX_DEPTH}; Keras writes about a dozen)")


def check_depth(obj, what="the JSON"):
    """Return `obj` (parsed JSON: dicts, lists, scalars) or raise NestingError if too deep.

    One level at a time, without recursion; stops at level ``MAX_DEPTH + 1``.
    """
    level = [obj] if isinstance(obj, _CONTAINERS) else []
    depth = 0
    while level:
        depth += 1
        if depth > MAX_DEPTH:
            raise _too_deep(what)
        below = []
        for item in level:
            children = item.values() if isinstance(item, dict) else item
            below.extend(v for v in children if isinstance(v, _CONTAINERS))
        level = below
    return obj


def loads(text, what="the JSON"):
    """``json.loads(text)``, refusing nesting deeper than MAX_DEPTH (NestingError, a ValueError).

    `what` names the document in the message (e.g. ``"config.json"``).
    """
    try:
        obj = json.loads(text)
    except RecursionError:      # the parser recursed past the interpreter's limit
        raise _too_deep(what) from None
    return check_depth(obj, what)


def copy(obj):
    """A deep copy of parsed JSON `obj` (checked by :func:`check_depth` first)."""
    check_depth(obj)
    return json.loads(json.dumps(obj))
