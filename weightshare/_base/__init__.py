"""The base every layer may import: argument validation (:mod:`._validation`), and the
bounded window of tensors in flight on an executor (:mod:`._parallel`, standard library only).

The errors themselves are public, in :mod:`weightshare.errors`.
"""
