"""Derivative outputs and 4-km aggregation (spec/stages.md §13) — GFW forest carbon flux model v1.4.3.

Public API
----------
forest_extent
    The forest-extent rule of §13 step 1: ``((TCD > T) | gain | mangrove AGB != 0) & no pre-2000 plantation``.
derivative_outputs
    One key layer per hectare → per pixel (full extent), per hectare (forest extent) and per pixel
    (forest extent), in float32 as the original computes them.
cell_sums
    The 160 × 160-pixel float32 block sums of §13 steps 2–3 (numpy, see its notes).
annualise
    Block sums → Mt CO2(e) per year per 0.04° cell, with the removals sign flip.

The per-pixel kernels are ``@njit(cache=True)`` loops (no ``fastmath``) on 2-D arrays of one shape, which may
be zero-stride views (``np.broadcast_to``) such as a per-row pixel area.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["CELL_PX", "annualise", "cell_sums", "derivative_outputs", "forest_extent"]

CELL_PX = 160
"""Source pixels along a side of a 0.04° aggregation cell (spec/stages.md §1, §13)."""
M2_PER_HA = 10000


@njit(cache=True)
def _is_forest(tcd, gain, agb_mangrove, plantation_pre2000, threshold):
    # NaN mangrove AGB compares != 0, as in numpy
    return ((tcd > threshold) or (gain == 1) or (agb_mangrove != 0)) and (plantation_pre2000 == 0)


@njit(cache=True)
def _per_pixel(value, area):
    """float32 ``value * area / 10000`` in the spec's order (Mg ha⁻¹ × m² → Mg per pixel)."""
    return np.float32(np.float32(np.float32(value) * np.float32(area)) / np.float32(M2_PER_HA))


@njit(cache=True)
def _forest_extent_kernel(tcd, gain, agb_mangrove, plantation_pre2000, threshold, out):
    nrow, ncol = out.shape
    for i in range(nrow):
        for j in range(ncol):
            out[i, j] = 1 if _is_forest(tcd[i, j], gain[i, j], agb_mangrove[i, j], plantation_pre2000[i, j],
                                        threshold) else 0


@njit(cache=True)
def _derivatives_kernel(x, area, tcd, gain, agb_mangrove, plantation_pre2000, threshold, full, per_ha, per_px):
    nrow, ncol = x.shape
    for i in range(nrow):
        for j in range(ncol):
            v = np.float32(x[i, j])
            p = _per_pixel(v, area[i, j])
            full[i, j] = p
            if _is_forest(tcd[i, j], gain[i, j], agb_mangrove[i, j], plantation_pre2000[i, j], threshold):
                per_ha[i, j] = v
                per_px[i, j] = p
            else:
                per_ha[i, j] = 0
                per_px[i, j] = 0


def forest_extent(tcd, gain, agb_mangrove, plantation_pre2000, *, threshold=30):
    """Forest-extent mask of the derivative outputs (spec/stages.md §13 step 1).

    Parameters
    ----------
    tcd : 2-D array of uint8
        Tree cover density 2000, percent.
    gain : 2-D array of uint8
        Tree cover gain flag (1 = gain).
    agb_mangrove : 2-D array of float
        Mangrove aboveground biomass 2000, Mg biomass ha⁻¹ (the test is ``!= 0``, Appendix B.2).
    plantation_pre2000 : 2-D array of uint8
        1 where a plantation was established in or before 2000 (a missing tile is zeros).
    threshold : int, keyword-only
        Canopy threshold, percent; the test is strictly ``TCD > threshold`` (30 in the original; 50 and 75
        are the usual alternatives).

    Returns
    -------
    ndarray of uint8
        1 = forest extent.
    """
    out = np.empty(np.shape(tcd), dtype=np.uint8)
    _forest_extent_kernel(tcd, gain, agb_mangrove, plantation_pre2000, int(threshold), out)
    return out


def derivative_outputs(x, pixel_area_m2, tcd, gain, agb_mangrove, plantation_pre2000, *, threshold=30):
    """Per-pixel and forest-extent versions of one per-hectare flux layer (spec/stages.md §13 step 1).

    Parameters
    ----------
    x : 2-D array of float32
        Flux per hectare over the model period (gross removals Mg CO2 ha⁻¹, gross emissions or net flux
        Mg CO2e ha⁻¹).
    pixel_area_m2 : 2-D array of float32
        Pixel area, m² (a zero-stride per-row view is enough). The original reads a float32 area tile; the
        product is taken in float32 like the original's.
    tcd, gain, agb_mangrove, plantation_pre2000 : 2-D arrays
        Inputs of the forest-extent rule (see :func:`forest_extent`).
    threshold : int, keyword-only
        Canopy threshold, percent (``TCD > threshold``).

    Returns
    -------
    per_pixel_full : ndarray of float32
        ``X * PA / 10000``: Mg per pixel over the model period, everywhere.
    per_ha_forest : ndarray of float32
        ``X`` inside the forest extent, 0 outside: Mg ha⁻¹.
    per_pixel_forest : ndarray of float32
        ``per_ha_forest * PA / 10000``: Mg per pixel inside the forest extent, 0 outside.
    """
    shape = np.shape(x)
    full = np.empty(shape, dtype=np.float32)
    per_ha = np.empty(shape, dtype=np.float32)
    per_px = np.empty(shape, dtype=np.float32)
    _derivatives_kernel(x, pixel_area_m2, tcd, gain, agb_mangrove, plantation_pre2000, int(threshold),
                        full, per_ha, per_px)
    return full, per_ha, per_px


def cell_sums(block: np.ndarray, *, row_offset: int = 0, col_offset: int = 0) -> np.ndarray:
    """Float32 sums of the 160 × 160-pixel cells of a block (spec/stages.md §13 step 2).

    Parameters
    ----------
    block : 2-D array of float32
        Per-pixel values (Mg per pixel); nodata is 0.
    row_offset, col_offset : int, keyword-only
        Position of the block's first pixel inside its first cell (0…159). A block that does not start
        or end on the 160-px lattice is padded with zeros (nodata) to whole cells, so a partly covered cell
        is summed as if the pixels outside the block were nodata, exactly as the original sums a 10° tile
        whose other pixels are 0.

    Returns
    -------
    ndarray of float32, shape (cell rows, cell columns)
        ``numpy.sum`` of each cell as a contiguous 160 × 160 float32 array.

    Notes
    -----
    This is numpy, not numba, on purpose: the original sums each 160 × 160 window it reads with
    ``numpy.sum``, whose pairwise float32 summation order a compiled loop would not reproduce bit for bit
    (Appendix B.26). Each cell is copied to a contiguous array first, as a window read from a file is.
    """
    if not (0 <= row_offset < CELL_PX and 0 <= col_offset < CELL_PX):
        raise ValueError(f"offsets must lie in 0…{CELL_PX - 1}, got ({row_offset}, {col_offset})")
    nrow, ncol = block.shape
    cr = -(-(row_offset + nrow) // CELL_PX)
    cc = -(-(col_offset + ncol) // CELL_PX)
    if row_offset or col_offset or nrow % CELL_PX or ncol % CELL_PX:
        padded = np.zeros((cr * CELL_PX, cc * CELL_PX), dtype=block.dtype)
        padded[row_offset:row_offset + nrow, col_offset:col_offset + ncol] = block
        block = padded
    out = np.empty((cr, cc), dtype=np.float32)
    for i in range(cr):
        for j in range(cc):
            cell = np.ascontiguousarray(block[i * CELL_PX:(i + 1) * CELL_PX, j * CELL_PX:(j + 1) * CELL_PX])
            out[i, j] = np.sum(cell)
    return out


def annualise(sums: np.ndarray, *, model_years: int, sign: int) -> np.ndarray:
    """Cell sums (Mg per cell over the model period) → Mt per year per cell (spec/stages.md §13 step 3).

    Parameters
    ----------
    sums : ndarray of float32
        Output of :func:`cell_sums`.
    model_years : int, keyword-only
        Years of the model period (25 for 2001–2025).
    sign : {1, -1}, keyword-only
        −1 for gross removals (negative at 4 km), 1 for emissions and net flux.

    Returns
    -------
    ndarray of float32
        ``S / model_years / 1e6`` (× −1 for removals), float32 at each step as in the original.
    """
    if sign not in (1, -1):
        raise ValueError(f"sign must be 1 or -1, not {sign!r}")
    s = np.asarray(sums, dtype=np.float32) / model_years / 1e6
    return s * -1 if sign == -1 else s
