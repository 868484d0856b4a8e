"""The base every layer may import: argument validation (:mod:`._validation`).

The errors themselves are public, in :mod:`weightshare.errors`.
"""
