"""Pictures of a report: weight histograms with the shared values, bytes per tensor.

matplotlib is an optional extra (``pip install 'weightshare[plot]'``), imported
only when :func:`plot_report` runs; it draws with the object-oriented API on
an Agg canvas, so no global backend or pyplot state is touched.
"""

import os

import numpy as np

from ._io._atomic import atomic_output, check_output
from .report import load_tensors, report as _report

__all__ = ["plot_report", "check_out", "choose_tensors", "matplotlib_available",
           "MATPLOTLIB_MISSING"]

MATPLOTLIB_MISSING = ("plotting needs matplotlib, which is not installed; "
                      "install it with: pip install 'weightshare[plot]'")
#: at most this many distinct values are marked as centroids on a histogram
_MAX_MARKED = 256
_DEFAULT_PANELS = 6


def matplotlib_available():
    """Whether matplotlib can be imported (checked before any work that ends in a plot)."""
    try:
        _matplotlib()
    except ModuleNotFoundError:
        return False
    return True


def _plain_log_ticks(ax):
    """Log-axis ticks that read as numbers (1, 10, 100, 4) rather than 10^2 or 4 x 10^0."""
    from matplotlib.ticker import FuncFormatter, NullFormatter
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())


def _matplotlib():
    try:
        import matplotlib  # noqa: F401  (a missing package is found here, not in a cached submodule)
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ModuleNotFoundError(MATPLOTLIB_MISSING) from None
    return Figure, FigureCanvasAgg


def choose_tensors(tensors, names):
    """The tensors to draw: `names` once each, in order (all known), or the largest six
    (matrices and kernels before vectors such as biases, which are seldom clustered)."""
    if names is None:   # the largest tensors, in model order
        big = sorted(tensors, key=lambda k: (np.ndim(tensors[k]) < 2,
                                             -np.size(tensors[k])))[:_DEFAULT_PANELS]
        return [k for k in tensors if k in big]
    if isinstance(names, str):
        raise TypeError(f"tensors must be a list of tensor names; got the str {names!r}")
    names = list(dict.fromkeys(names))      # a repeated name is drawn once
    unknown = [k for k in names if k not in tensors]
    if unknown:
        raise ValueError(f"tensors: {', '.join(map(repr, unknown[:8]))} not in the model; it "
                         f"has {', '.join(list(tensors)[:8])}{' ...' if len(tensors) > 8 else ''}")
    return names


def _paths(*sources):
    return [p for p in sources if isinstance(p, (str, os.PathLike))]


def check_out(out, inputs):
    """The image format of `out`, whose path passes the writer's checks: before any work.

    The format follows the extension; `out` must not be one of the `inputs`
    (paths) nor a folder (a symlink there is replaced, not followed).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    out = os.fspath(out)
    check_output(out, inputs)
    fmt = os.path.splitext(out)[1][1:].lower()
    if fmt not in FigureCanvasAgg.get_supported_filetypes():
        what = f"'.{fmt}' is not an image format" if fmt else "the name has no image extension"
        raise ValueError(f"{out}: {what}; give a name ending in .png, .svg or .pdf")
    return fmt


def plot_report(path_or_tensors, out, *, compare=None, tensors=None, rep=None):
    """Draw the weight histograms and the bytes per tensor into an image file.

    Parameters
    ----------
    path_or_tensors : dict of str to ndarray, or path
        As in :func:`weightshare.report`.
    out : str or os.PathLike
        Image file; the format follows the extension (``.png``, ``.svg``,
        ``.pdf``, ...; a name without one is refused). Written like every
        output of weightshare: a temporary file renamed into place, never
        over an input, a symlink at `out` replaced rather than followed.
    compare : dict or path, optional
        The original model: its weights are the histograms, and the model's
        shared values the marks.
    tensors : list of str, optional
        Tensors to draw a histogram of, once each in the order given
        (repeats are dropped); default: the six largest, kernels and
        matrices before vectors (biases).
    rep : Report, optional
        The report of `path_or_tensors` if already computed.

    Returns
    -------
    list of str
        The tensors drawn.

    Notes
    -----
    One histogram per chosen tensor (of the original with `compare`, else of
    the model), with the model's distinct values marked by vertical lines
    when there are at most 256 of them (the shared values of a clustered
    tensor), and one bar chart of bytes per tensor: raw, deflate, and the
    best encoding.

    Raises
    ------
    ModuleNotFoundError
        matplotlib is not installed (the message says how to install it).
    ValueError
        `out` is an input, a folder or has no image extension; a tensor
        named in `tensors` is not in the model (all checked before drawing).
    """
    Figure, FigureCanvasAgg = _matplotlib()
    inputs = _paths(path_or_tensors, compare)
    fmt = check_out(out, inputs)           # before any work
    values = load_tensors(path_or_tensors)
    chosen = choose_tensors(values, tensors)
    originals = values if compare is None else load_tensors(compare)
    rep = _report(values) if rep is None else rep
    n_panels = len(chosen) + 1
    cols = min(n_panels, 3)
    rows = -(-n_panels // cols)
    fig = Figure(figsize=(4.2 * cols, 3.2 * rows), layout="constrained")
    for i, name in enumerate(chosen):
        ax = fig.add_subplot(rows, cols, i + 1)
        distinct = np.unique(np.asarray(values[name], dtype=np.float64))
        distinct = distinct[np.isfinite(distinct)]
        if name not in originals:
            raise ValueError(f"compare: tensor {name!r} of the model is not in the original")
        v = np.asarray(originals[name], dtype=np.float64).ravel()
        ax.hist(v[np.isfinite(v)], bins=100, color="0.6")
        if distinct.size <= _MAX_MARKED:
            for c in distinct:
                ax.axvline(c, color="tab:red", linewidth=0.8, alpha=0.8)
        ax.set_title(f"{name}  (k={distinct.size})", fontsize=9)
        ax.set_yscale("log")
        _plain_log_ticks(ax)
        ax.tick_params(labelsize=7)
    ax = fig.add_subplot(rows, cols, n_panels)
    names = [r.name for r in rep.rows]
    x = np.arange(len(names))
    for j, (label, attr) in enumerate((("raw", "raw"), ("deflate", "deflate"),
                                       ("best encoding", "best"))):
        ax.bar(x + (j - 1) * 0.27, [getattr(r, attr) for r in rep.rows], width=0.27, label=label)
    ax.set_xticks(x, names, rotation=60, ha="right", fontsize=6)
    ax.set_ylabel("bytes")
    ax.set_yscale("log")
    _plain_log_ticks(ax)
    ax.legend(fontsize=7)
    ax.set_title(f"bytes per tensor (total ratio {rep.total.ratio or 0:.2f}x vs float32)",
                 fontsize=9)
    FigureCanvasAgg(fig)
    with atomic_output(out, inputs=inputs) as tmp:
        with open(tmp, "wb") as f:
            fig.savefig(f, format=fmt, dpi=110)
    return chosen
