"""File jobs built on the adapters: read a model, change some tensors, write it back.

- :mod:`._prune_file`: :func:`weightshare.prune_file` (magnitude pruning of a file).
- :mod:`._strip_file`: :func:`weightshare.strip_file` (optimizer state and compile config out).
- :mod:`._pack_file`: :func:`weightshare.pack_file` / :func:`weightshare.unpack_file` (the
  ``.wsz`` container, whose bytes :mod:`._wsz` reads and writes).

:func:`weightshare.cluster_file` lives in :mod:`weightshare.files`; structured removal
in :mod:`weightshare.remove` with its rules in :mod:`weightshare._remove`.
"""
