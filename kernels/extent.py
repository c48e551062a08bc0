"""Model extent (spec/stages.md §5) — GFW forest carbon flux model v1.4.3.

Public API
----------
model_extent
    1 where a pixel is in the model: (WHRC AGB > 0 and TCD > 0) or mangrove
    (after the original's float → uint8 cast) or gain.

The kernel is a per-pixel ``@njit(cache=True)`` loop (no ``fastmath``); inputs are
2-D arrays of one shape in their native dtypes and may be strided or zero-stride
(``np.broadcast_to``) views, which are never copied.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .removals import _as_2d_arrays

__all__ = ["model_extent"]


@njit(cache=True)
def _u8_cast_x86(x):
    """numpy's float → uint8 ``astype`` on x86-64: truncate to int32, keep the low byte.

    NaN and values outside the int32 range give 0 (cvttss2si returns 0x80000000).
    """
    v = np.float64(x)
    if not (v > -2147483649.0 and v < 2147483648.0):
        return 0
    return np.int64(v) & 0xFF


@njit(cache=True)
def _u8_cast_saturating(x):
    """A float → uint8 cast that saturates to [0, 255] (NaN → 0), as on ARM."""
    v = np.float64(x)
    if not (v > 0.0):
        return 0
    if v >= 255.0:
        return 255
    return np.int64(v)


@njit(cache=True)
def _model_extent_kernel(tcd, agb_whrc, agb_mangrove, gain, wrap, out):
    nrow, ncol = out.shape
    for i in range(nrow):
        for j in range(ncol):
            tcd_bio = (agb_whrc[i, j] > 0) and (tcd[i, j] > 0)
            m = _u8_cast_x86(agb_mangrove[i, j]) if wrap else _u8_cast_saturating(agb_mangrove[i, j])
            if tcd_bio or (m > 1) or (gain[i, j] == 1):
                out[i, j] = 1
            else:
                out[i, j] = 0


def model_extent(tcd, agb_whrc, agb_mangrove, gain, *, mangrove_cast_wrap=True):
    """Model extent: the pixels the flux model covers (spec/stages.md §5).

    ``E = ((AGB_W > 0) & (TCD > 0)) | (uint8(AGB_M) > 1) | (G == 1)``.

    Parameters
    ----------
    tcd : ndarray, 2-D, uint8
        Tree cover density 2000, percent (0–100). Required by the original (§B.25).
    agb_whrc : ndarray, 2-D, int16 (WHRC) or float32 (JPL, ``biomass_swap``)
        Aboveground biomass 2000, Mg dry matter ha⁻¹; 0 = nodata / absent tile.
    agb_mangrove : ndarray, 2-D, float32
        Mangrove aboveground biomass 2000, Mg dry matter ha⁻¹; 0 = nodata.
    gain : ndarray, 2-D, uint8
        Tree cover gain 2000–2020 (1 = gain).
    mangrove_cast_wrap : bool, default True
        True reproduces the original (Appendix B.1): the mangrove test is applied
        after numpy's x86 float → uint8 cast, which truncates and wraps modulo 256,
        so ``AGB_M < 2`` and ``⌊AGB_M⌋ mod 256 ∈ {0, 1}`` (e.g. 256.3, 512.8) do not
        qualify through the mangrove rule (NaN and |AGB_M| ≥ 2³¹ give 0, as on x86).
        False gives the corrected, platform-independent test: a saturating cast,
        i.e. ``AGB_M ≥ 2``.

    Returns
    -------
    ndarray of uint8, 2-D
        1 = in the model extent, 0 = outside (nodata).

    Notes
    -----
    ``legal_Amazon_loss`` (E = TCD·AGB only, TCD = PRODES extent) is obtained by
    passing the PRODES extent as ``tcd`` and zeros for ``agb_mangrove`` and ``gain``.
    Pre-2000 plantations are not removed (v1.4.3).
    """
    tcd, agb_whrc, agb_mangrove, gain = _as_2d_arrays(
        tcd=tcd, agb_whrc=agb_whrc, agb_mangrove=agb_mangrove, gain=gain
    )
    out = np.empty(tcd.shape, dtype=np.uint8)
    _model_extent_kernel(tcd, agb_whrc, agb_mangrove, gain, bool(mangrove_cast_wrap), out)
    return out
