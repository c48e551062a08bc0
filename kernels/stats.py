"""Per-block summary statistics of an output layer, in one pass (no spec section: run bookkeeping).

Public API
----------
block_stats
    Non-zero count, minimum, maximum, area-weighted sum and sum of one 2-D block.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["block_stats"]


@njit(cache=True, nogil=True)
def _block_stats(block, row_area_m2):  # pragma: no cover - compiled
    out = np.zeros(5, dtype=np.float64)
    lo = np.inf
    hi = -np.inf
    nonzero = 0.0
    total = 0.0
    plain = 0.0
    for i in range(block.shape[0]):
        row = 0.0
        for j in range(block.shape[1]):
            v = np.float64(block[i, j])
            if v != 0.0:
                nonzero += 1.0
                row += v
            if v < lo:
                lo = v
            if v > hi:
                hi = v
        total += row * row_area_m2[i]
        plain += row
    out[0] = nonzero
    out[1] = lo
    out[2] = hi
    out[3] = total
    out[4] = plain
    return out


def block_stats(block: np.ndarray, row_area_m2: np.ndarray) -> np.ndarray:
    """Summary of one block in one pass over its pixels.

    Parameters
    ----------
    block : numpy.ndarray
        2-D layer values (any real dtype). NaN is neither counted as non-zero in the minimum nor maximum
        (comparisons with NaN are false) but propagates into the sum.
    row_area_m2 : numpy.ndarray
        Area of one pixel of each row of ``block``, m² (float64, length ``block.shape[0]``).

    Returns
    -------
    numpy.ndarray
        float64 ``[non-zero count, minimum, maximum, sum of value × pixel area (m²), sum of values]``;
        an empty block gives ``[0, inf, -inf, 0, 0]``.
    """
    if block.ndim != 2 or row_area_m2.shape != (block.shape[0],):
        raise ValueError(f"block {block.shape} and row areas {row_area_m2.shape} do not match")
    return _block_stats(block, np.ascontiguousarray(row_area_m2, dtype=np.float64))
