"""Calibration-aware clustering: importance from real inputs, and bias correction.

- :mod:`._stats`: per layer class, the second moment of the input that multiplies each
  weight (the diagonal of the layer's output-error Hessian) and the mean input, and the
  bias shift that cancels the mean output change clustering caused;
- :mod:`._pass`: one NumPy forward pass over the calibration inputs that clusters each
  targeted layer on the inputs the already-compressed layers before it produce;
- :mod:`._inputs`: the user's importance arrays and calibration inputs, checked.

See docs/importance.md for the derivation and its limits.
"""
