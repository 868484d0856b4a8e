"""Names in Keras configs and weight stores: layer names, store group names, model classes,
float dtype names.

No I/O: the rules by which Keras names things, shared by the readers
(:mod:`weightshare._io`), the layer graph and the forward pass.
"""

import re

__all__ = ["MODEL_CLASSES", "FLOAT_DTYPE_NAMES", "snake_case", "layer_name"]

#: layer classes that are models holding layers of their own
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})

#: stored dtypes of floating-point weights, as the readers name them (``|V2`` is "bfloat16")
FLOAT_DTYPE_NAMES = ("float16", "float32", "float64", "bfloat16")


def snake_case(name):
    """Keras' ``to_snake_case`` (store group names): ``Conv2D`` -> ``conv2d``."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def layer_name(entry):
    """The name of a layer dict of a model config (``config.name``, or Keras 2.0's ``name``).

    The one rule for every reader of configs (file readers, layer graph,
    forward pass). A Functional entry carries the name twice: Keras builds the
    layer from ``config`` (so ``config.name`` is the layer's own name, the one
    its weights are saved under) and keys its wiring by the top-level ``name``.
    Keras 3 and tf-keras write both from ``layer.name``, so they agree in every
    file Keras writes (tests/_keras/test_keras_vocabulary.py checks every fixture); a
    Sequential entry has only ``config.name``, a Keras 2.0 one only ``name``.

    Examples
    --------
    >>> layer_name({"name": "fc", "config": {"name": "fc", "units": 2}})
    'fc'
    >>> layer_name({"class_name": "Dense", "name": "fc", "config": {"units": 2}})
    'fc'
    """
    cfg = entry.get("config")
    if isinstance(cfg, dict) and isinstance(cfg.get("name"), str):
        return cfg["name"]
    name = entry.get("name")
    return name if isinstance(name, str) else None
