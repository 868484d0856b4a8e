"""Keras callbacks that keep the structure while training: ``KeepStructure``, ``PruneDuring``.

This is the one module of weightshare that imports Keras, and only when it is
imported by name (``from weightshare.keras import KeepStructure``);
``import weightshare`` never loads it. It works with Keras 3 (any backend)
and with tf-keras 2: when ``TF_USE_LEGACY_KERAS`` is ``1``/``true`` (the
variable TensorFlow reads for ``tf.keras``), it imports ``tf_keras``,
otherwise ``keras``.

The work is done by the framework-free core: :func:`weightshare.structure_of`
reads the structure of the model's kernels once, and
:meth:`weightshare.Structure.project` puts it back after every optimizer
step (the pruned zeros set to exactly 0.0, each cluster's weights set to the
cluster's mean: trained shared values, fixed assignment); ``PruneDuring``
prunes with :func:`weightshare.prune` along a
:func:`weightshare.sparsity_schedule`. Nothing wraps the layers, so the
model saves and loads as it is.

Kernels are the layer variables named ``kernel``, ``depthwise_kernel``,
``pointwise_kernel``, ``recurrent_kernel`` and ``embeddings`` (biases and
normalization variables are never touched: a bias initialised to zeros
would otherwise be pinned at zero). Variables are read with ``.numpy()``
and written with ``.assign()``, which both Keras generations have; the
callbacks run after every call of the train function, so with
``steps_per_execution > 1`` the structure is restored every that many steps.
"""

import os

import numpy as np

import weightshare

if os.environ.get("TF_USE_LEGACY_KERAS", None) in ("true", "True", "1"):
    import tf_keras as keras
else:
    import keras

__all__ = ["KeepStructure", "PruneDuring", "KERNEL_NAMES"]

#: the variable names (the last part of the path) that count as kernels
KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")
_FLOATS = ("float16", "float32", "float64")


def _short_name(variable):
    """'kernel' for Keras 3's 'kernel' and tf-keras' 'dense/kernel:0'."""
    return variable.name.rsplit("/", 1)[-1].split(":", 1)[0]


def _key(variable):
    """A unique name: Keras 3's ``path`` ('dense/kernel'), tf-keras' ``name`` ('dense/kernel:0')."""
    return getattr(variable, "path", None) or variable.name


def _read(variable):
    return np.asarray(variable.numpy())


def _layers(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _layers(layer)
        else:
            yield layer


def _kernels(model, layers):
    """{key: variable} of the float kernels of the model's layers (all, or those named)."""
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a {keras.__name__}.Model (this module imported "
                        f"{keras.__name__}; TF_USE_LEGACY_KERAS selects tf_keras); got "
                        f"{type(model).__module__}.{type(model).__name__}")
    all_layers = list(_layers(model))
    if layers is not None:
        if isinstance(layers, str):
            layers = [layers]
        known = {layer.name for layer in all_layers}
        unknown = [name for name in layers if name not in known]
        if unknown:
            raise ValueError(f"layers: no layer named {unknown[0]!r} in the model; its layers "
                             f"are {sorted(known)}")
        wanted = set(layers)
        all_layers = [layer for layer in all_layers if layer.name in wanted]
    out = {}
    for layer in all_layers:
        for v in layer.weights:
            dtype = getattr(v.dtype, "name", v.dtype)
            if _short_name(v) in KERNEL_NAMES and str(dtype) in _FLOATS:
                out.setdefault(_key(v), v)
    return out


class _ModelCallback(keras.callbacks.Callback):
    """A callback bound to the model it was made for."""

    def __init__(self, model):
        super().__init__()
        self._bound = model

    def set_model(self, model):
        if model is not self._bound:
            raise ValueError(f"{type(self).__name__} was made for model {self._bound.name!r}; "
                             f"it cannot train {getattr(model, 'name', model)!r}")
        super().set_model(model)

    def _sync(self):
        # Keras 3 on jax keeps the training state outside the variables during fit;
        # reading self.model writes it back, and the next step reads the variables again.
        return self.model


class KeepStructure(_ModelCallback):
    """Keep the pruned zeros at zero and clustered kernels on shared values while training.

    At construction the structure of the model's kernels is read from their
    current values (:func:`weightshare.structure_of`): where the zeros are,
    and for a clustered kernel (at most `max_values` distinct values) the
    cluster of each weight. After every training batch the structure is put
    back (:meth:`weightshare.Structure.project`): the zeros are set to exactly
    0.0 and every weight of a cluster to the mean of the cluster's current
    values. The shared values train; the assignment and the zeros stay.

    Parameters
    ----------
    model : keras.Model
        The model to train, pruned and/or clustered already (e.g. loaded from
        a file written by ``weightshare prune`` / ``cluster``).
    zeros : bool, default True
        Keep every exact zero of a kernel at zero.
    clusters : bool, default True
        Keep clustered kernels on their shared values.
    layers : list of str, optional
        Names of the layers whose kernels are kept; default all.
    max_values : int, default 256
        The most distinct values a clustered kernel holds (see
        :func:`weightshare.structure_of`).

    Attributes
    ----------
    structure : weightshare.Structure
        The structure read, keyed by variable (Keras 3 ``variable.path``,
        tf-keras ``variable.name``); only kernels with a mask or clusters.

    Examples
    --------
    ::

        from weightshare.keras import KeepStructure
        model = keras.models.load_model("pruned-k8.keras")
        model.fit(x, y, epochs=3, callbacks=[KeepStructure(model)])
    """

    def __init__(self, model, zeros=True, clusters=True, layers=None, max_values=256):
        super().__init__(model)
        kernels = _kernels(model, layers)
        values = {k: _read(v) for k, v in kernels.items()}
        read = weightshare.structure_of(values, zeros=zeros, clusters=clusters,
                                        max_values=max_values)
        kept = [k for k, t in read.tensors.items() if t.mask is not None or t.labels is not None]
        self._variables = {k: kernels[k] for k in kept}
        self.structure = weightshare.structure_of({k: values[k] for k in kept}, zeros=zeros,
                                                  clusters=clusters, max_values=max_values)

    def on_train_batch_end(self, batch, logs=None):
        if not self._variables:
            return
        self._sync()
        current = {k: _read(v) for k, v in self._variables.items()}
        for k, value in self.structure.project(current).items():
            self._variables[k].assign(value)


class PruneDuring(_ModelCallback):
    """Prune the model's kernels along a sparsity schedule during training, and keep them pruned.

    Before every training step at which ``schedule.should_prune(step)`` (the
    step is the optimizer's ``iterations``), each kernel is pruned by
    magnitude to ``schedule(step)`` with :func:`weightshare.prune`, starting
    from its current (already masked) values, so the masks only shrink.
    After every step the latest mask is re-applied. What TFMOT's
    ``prune_low_magnitude`` + ``UpdatePruningStep`` do, without wrapping
    the layers: the trained model saves as it is.

    Parameters
    ----------
    model : keras.Model
    schedule : weightshare.SparsitySchedule
        From :func:`weightshare.sparsity_schedule`.
    layers : list of str, optional
        Names of the layers whose kernels are pruned; default all.

    Attributes
    ----------
    masks : dict
        The current mask of each kernel pruned so far (keyed as
        ``KeepStructure.structure``).

    Examples
    --------
    ::

        from weightshare.keras import PruneDuring
        schedule = weightshare.sparsity_schedule("polynomial", initial=0.0, final=0.8,
                                                 begin_step=0, end_step=1000, frequency=100)
        model.fit(x, y, epochs=5, callbacks=[PruneDuring(model, schedule)])
    """

    def __init__(self, model, schedule, layers=None):
        super().__init__(model)
        if not isinstance(schedule, weightshare.SparsitySchedule):
            raise TypeError("schedule must be a weightshare.SparsitySchedule (from "
                            f"weightshare.sparsity_schedule); got {type(schedule).__name__}")
        self.schedule = schedule
        self._variables = _kernels(model, layers)
        self.masks = {}

    def on_train_batch_begin(self, batch, logs=None):
        model = self._sync()
        step = int(np.asarray(model.optimizer.iterations.numpy()))
        if not self.schedule.should_prune(step):
            return
        target = self.schedule(step)
        for k, v in self._variables.items():
            res = weightshare.prune(_read(v), sparsity=target)
            self.masks[k] = res.mask
            v.assign(res.values)

    def on_train_batch_end(self, batch, logs=None):
        if not self.masks:
            return
        self._sync()
        for k, mask in self.masks.items():
            v = self._variables[k]
            v.assign(weightshare.apply_mask(_read(v), mask))
