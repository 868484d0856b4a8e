"""Private machinery of :func:`weightshare.remove_units` (structured removal).

One job per module:

- :mod:`._graph`: the layer graph read from a model config (Sequential and
  Functional; Keras 3 ``config.json``, Keras 3 and Keras 2 legacy ``model_config``);
- :mod:`._rules`: per-class rules that propagate the removed units from the
  producer through pass-through layers to the consumers, and plan the slices
  and config edits (pure NumPy, no file access);
- :mod:`._optimizer`: which optimizer slots belong to which model variable;
- :mod:`._source`: reading a Keras file (format, config, datasets per layer);
- :mod:`._rebuild`: the writer that re-creates a file with changed shapes
  (exact HDF5 attribute types, same zip members) and the atomic output.

Only ``_source`` and ``_rebuild`` import h5py.
"""
