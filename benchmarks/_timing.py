"""Timing shared by the benchmarks: medians of repeated wall-clock runs."""

import time

import numpy as np

__all__ = ["timed", "median_time"]


def timed(fn, repeat):
    """(median seconds of `repeat` calls of `fn`, what the last call returned)."""
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times)), out


def median_time(fn, repeat):
    """Median seconds of `repeat` calls of `fn`."""
    return timed(fn, repeat)[0]
