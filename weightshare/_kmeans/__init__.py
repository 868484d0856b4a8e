"""The 1-D k-means solvers behind :func:`weightshare.cluster` (NumPy only).

- :mod:`._optimal`: the exact dynamic program (Wu; Gronlund et al.), O(k n) with SMAWK-style row minima;
- :mod:`._auto`: near-optimal in a few sorts (atom DP, segmented start, sweeps);
- :mod:`._segmented`: the segmented DP start of ``auto``;
- :mod:`._lloyd`: Lloyd iterations; :mod:`._init`: the initialisations;
- :mod:`._points`: distinct values and their weights (the points every solver works on).
"""
