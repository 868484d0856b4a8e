"""Private machinery of :func:`weightshare.remove_units` (structured removal): the rules.

One job per module, no file access:

- :mod:`._rules`: per-class rules that propagate the removed units from the
  producer through pass-through layers to the consumers, and plan the slices
  and config edits (pure NumPy);
- :mod:`._optimizer`: which optimizer slots belong to which model variable.

The layer graph they walk is :mod:`weightshare._keras._graph`; the file is
read by :func:`weightshare._io._reader.open_model` and rewritten with changed shapes by
:mod:`weightshare._io._rebuild`.
"""
