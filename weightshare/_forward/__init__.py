"""The layer kernels of the NumPy forward pass (:mod:`weightshare.forward`).

- :mod:`._layers`: the table of supported Keras layer classes and how each is computed;
- :mod:`._nn`: the array kernels (dense, convolutions, pooling, normalisation, activations).
"""
