"""Zonal sums of the flux outputs under the forest-extent rule — fluxgraph extension of spec/stages.md §13.

Public API
----------
zonal_sums
    Per zone, canopy threshold, loss year and driver: forest area and the per-pixel sums of gross emissions
    (all gases, CO2, CH4, N2O), gross removals and net flux.

Per-pixel values are the §13 step 1 forest-extent per-pixel values (float32 ``X * PA / 10000``), accumulated
in float64 in row-major pixel order, so a zone's total equals the sum of the forest-extent per-pixel layer
over its pixels. Loss-year rows and driver indices follow :func:`fluxgraph.kernels.emissions.sum_by_year_driver`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .derivatives import M2_PER_HA, _is_forest, _per_pixel

__all__ = ["ZONAL_VALUES", "zonal_sums"]

ZONAL_VALUES = ("forest_area_ha", "gross_emis_all_gases", "gross_emis_co2", "gross_emis_ch4", "gross_emis_n2o",
                "gross_removals", "net_flux")
"""The last axis of :func:`zonal_sums`: area (ha) then the six flux layers (Mg CO2(e) per pixel, summed)."""


@njit(cache=True)
def _zonal_kernel(zone, area, loss, driver, tcd, gain, agb_mangrove, plantation_pre2000, thresholds,
                  all_gases, co2, ch4, n2o, removals, net, model_years, out):
    nrow, ncol = zone.shape
    out_of_range = model_years + 1
    for i in range(nrow):
        a = area[i]
        ha = np.float64(a) / M2_PER_HA
        for j in range(ncol):
            z = zone[i, j]
            if z < 0:
                continue
            ls = np.int64(loss[i, j])
            r = ls if ls >= 0 and ls <= model_years else out_of_range
            d = np.int64(driver[i, j])
            k = d if d >= 1 and d <= 7 else 0
            for t in range(thresholds.shape[0]):
                if not _is_forest(tcd[i, j], gain[i, j], agb_mangrove[i, j], plantation_pre2000[i, j],
                                  thresholds[t]):
                    continue
                acc = out[z, t, r, k]
                acc[0] += ha
                acc[1] += np.float64(_per_pixel(all_gases[i, j], a))
                acc[2] += np.float64(_per_pixel(co2[i, j], a))
                acc[3] += np.float64(_per_pixel(ch4[i, j], a))
                acc[4] += np.float64(_per_pixel(n2o[i, j], a))
                acc[5] += np.float64(_per_pixel(removals[i, j], a))
                acc[6] += np.float64(_per_pixel(net[i, j], a))


def zonal_sums(zone, pixel_area_m2, loss, driver, tcd, gain, agb_mangrove, plantation_pre2000, all_gases, co2,
               ch4, n2o, removals, net, *, n_zones, thresholds=(30,), model_years=25):
    """Sum the flux outputs by zone, canopy threshold, loss year and driver.

    Parameters
    ----------
    zone : 2-D array of int
        Zone index 0…``n_zones`` − 1 of each pixel, −1 outside every zone.
    pixel_area_m2 : 1-D array of float32
        Pixel area of each row, m².
    loss, driver : 2-D arrays of int
        Loss-year code (0 none, 1…``model_years``) and driver code (1…7; anything else = no driver).
    tcd, gain, agb_mangrove, plantation_pre2000 : 2-D arrays
        Inputs of the forest-extent rule (:func:`fluxgraph.kernels.derivatives.forest_extent`).
    all_gases, co2, ch4, n2o : 2-D arrays of float32
        Gross emissions (biomass_soil) by gas, Mg CO2e ha⁻¹ over the model period.
    removals, net : 2-D arrays of float32
        Gross removals (Mg CO2 ha⁻¹, positive) and net flux (Mg CO2e ha⁻¹, negative = sink).
    n_zones : int, keyword-only
        Number of zones.
    thresholds : sequence of int, keyword-only
        Canopy thresholds T, percent (forest where TCD > T, or gain, or mangrove, and no pre-2000 plantation).
    model_years : int, keyword-only
        Number of loss years.

    Returns
    -------
    ndarray of float64, shape (n_zones, len(thresholds), model_years + 2, 8, 7)
        ``[zone, threshold, loss row, driver, value]``; values in the order of :data:`ZONAL_VALUES`: forest
        area in ha, then Mg CO2(e) over the model period. Loss row 0 = no loss, ``model_years`` + 1 = code out
        of range; driver 0 = none.
    """
    th = np.asarray(thresholds, dtype=np.int64)
    out = np.zeros((int(n_zones), th.size, int(model_years) + 2, 8, len(ZONAL_VALUES)), dtype=np.float64)
    area = np.ascontiguousarray(pixel_area_m2, dtype=np.float32)
    if area.shape != (np.shape(zone)[0],):
        raise ValueError(f"pixel_area_m2 must have one value per row ({np.shape(zone)[0]}), got {area.shape}")
    _zonal_kernel(zone, area, loss, driver, tcd, gain, agb_mangrove, plantation_pre2000, th, all_gases, co2, ch4,
                  n2o, removals, net, int(model_years), out)
    return out
