"""A dot product of two 1-D float arrays whose rounding does not depend on threads.

``np.dot`` of two vectors calls BLAS (``ddot``), and OpenBLAS splits a long vector
over its threads and adds the partial sums: the last bits of the result then depend
on how many threads the process has, so a tensor's SSE would differ between a run
in this process and one in a worker with one BLAS thread (``weightshare._base._parallel``).
``np.einsum`` without ``optimize`` runs NumPy's own single-threaded loop: the same
bits in every process, at about the speed of ``np.dot`` (both are O(n)).
"""

import numpy as np

__all__ = ["dot"]


def dot(a, b):
    """``sum(a * b)`` of two 1-D arrays, as a Python float, the same in every process.

    >>> import numpy as np
    >>> dot(np.array([1.0, 2.0]), np.array([3.0, 4.0]))
    11.0
    """
    return float(np.einsum("i,i->", a, b))
