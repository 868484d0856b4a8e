"""The hardening corpus: broken inputs built from the real-Keras fixtures (see corpus.py)."""
