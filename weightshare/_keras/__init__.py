"""What Keras configs and weight stores mean, with no I/O.

- :mod:`._names`: layer names, store group names, the model classes;
- :mod:`._roles`: the role of each weight of a layer (kernel, bias, ...) and its output axis;
- :mod:`._nodes`: the calls of a Functional layer (its inbound nodes), Keras 3 and Keras 2;
- :mod:`._graph`: the layer graph of a Sequential or Functional config.

The readers (:mod:`weightshare._io`), removal and the forward pass take their Keras
vocabulary from here.
"""
