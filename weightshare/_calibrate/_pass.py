"""One calibrated forward pass: each targeted layer clustered on the inputs it really sees.

:mod:`weightshare.files` runs the NumPy forward pass (:mod:`weightshare.forward`) with
:class:`CalibrationHook` called before every layer call. The pass runs the whole calibration
batch through the model. When it reaches a layer whose kernel is targeted (a
class of :data:`._stats.CALIBRATED`), it first takes that call's input
statistics, clusters the kernel with them as importance (the caller's
`compress`), shifts the bias by the mean output change (bias correction), and
only then computes the layer's output, with the new weights. So every layer's
statistics come from the outputs of the already-compressed layers before it,
in one pass. A layer called several times (a shared layer) is compressed at
its first call, from that call's inputs.
"""

from typing import NamedTuple, Optional

import numpy as np

from .._keras._names import MODEL_CLASSES, layer_name
from .._keras._order import records_by_layer
from ._stats import CALIBRATED, KERNEL_INDEX, bias_shift, has_bias, input_stats

__all__ = ["Calibrated", "CalibrationHook", "plan_layers"]


class Calibrated(NamedTuple):
    """The outcome for one kernel clustered in the calibrated pass."""

    values: np.ndarray              # the new kernel, in its stored dtype
    bias_name: Optional[str]        # the bias tensor corrected (None: none)
    bias: Optional[np.ndarray]      # its new values
    bias_correction: Optional[str]  # "corrected", "no bias" or None (not asked)


class CalibrationHook:
    """Called by the forward pass before each layer call (``hook(path, cls, cfg, inputs,
    weights)``): clusters the planned layers on their inputs, corrects their bias, and
    updates `weights` (the pass's own arrays) so the call computes with the new ones."""

    def __init__(self, plan, compress, bias_correction):
        self.plan, self.compress, self.correct = plan, compress, bias_correction
        self.done = {}

    def __call__(self, path, cls, cfg, inputs, weights):
        todo = self.plan.pop(path, None)
        if todo is None:
            return
        try:
            self._calibrate(cls, cfg, inputs[0], todo, weights[path])
        except (IndexError, KeyError, TypeError) as exc:
            raise ValueError(f"layer {path!r} ({cls}): {type(exc).__name__}: {exc}") from None

    def _calibrate(self, cls, cfg, x, records, w):
        kernel_rec = records[KERNEL_INDEX]
        stats = input_stats(cls, cfg, w[KERNEL_INDEX].shape, x)
        sw = np.broadcast_to(stats.importance, w[KERNEL_INDEX].shape)
        with np.errstate(divide="warn", over="warn", invalid="warn", under="ignore"):
            new = self.compress(kernel_rec, sw if sw.any() else None)   # NumPy's defaults
        new64 = np.asarray(new, dtype=np.float64)
        note, bias_name, bias = None, None, None
        if self.correct:
            if has_bias(cls, cfg) and len(records) > 1 and stats.mean is not None:
                bias_rec = records[1]
                shift = bias_shift(cls, cfg, stats.mean, w[KERNEL_INDEX] - new64)
                bias = (w[1] + shift.reshape(w[1].shape)).astype(bias_rec.value.dtype)
                bias_name, note = bias_rec.name, "corrected"
                w[1] = bias.astype(np.float64)
            else:
                note = "no bias"
        w[KERNEL_INDEX] = new64
        self.done[kernel_rec.name] = Calibrated(new, bias_name, bias, note)


def plan_layers(config, records, counts, targets):
    """{layer path: its records in Keras order} of the layers the calibrated pass clusters:
    a class of :data:`CALIBRATED` whose kernel is one of `targets`."""
    by_layer = records_by_layer(records, counts)
    classes = {}
    _classes(config, "", classes)
    return by_layer, {path: rs for path, rs in by_layer.items()
                      if classes.get(path) in CALIBRATED and rs
                      and rs[KERNEL_INDEX].name in targets}


def _classes(config, prefix, out):
    """{layer path: class name}, nested models expanded (as the forward pass names them)."""
    for layer in config["config"].get("layers", []):
        path = f"{prefix}{layer_name(layer)}"
        if layer["class_name"] in MODEL_CLASSES:
            _classes(layer, f"{path}/", out)
        else:
            out[path] = layer["class_name"]
