"""Stage ``create_derivative_outputs`` (spec/stages.md §13 step 1): per-pixel and forest-extent layers.

For gross removals, gross emissions (all gases, biomass_soil) and net flux, each per hectare over the model
period, it writes the per-pixel layer over the full extent and the per-hectare and per-pixel layers over the
forest extent ``((TCD2000 > T) | gain | mangrove AGB != 0) & no pre-2000 plantation``. ``T`` is
``[stages.create_derivative_outputs] tcd_threshold`` (30 as in the original; 50 or 75 on request). Pixel area
is the grid's exact WGS84 area of each row (:func:`fluxgraph.grid.row_pixel_area_m2`) as float32, the
dtype of the original's area tiles. A missing key layer or pre-2000 plantation tile reads as zeros.

The 4-km maps of steps 2–4 are made from the forest-extent per-pixel layers by :mod:`fluxgraph.aggregate`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr
from fluxgraph.kernels.derivatives import derivative_outputs
from fluxgraph.stages._apply import apply_kernel

from fluxgraph.errors import ConfigError
from fluxgraph.graph import Stage, StageContext
from fluxgraph.grid import PX_PER_DEG, row_pixel_area_m2

__all__ = ["KEY_LAYERS", "STAGE", "tcd_threshold"]

KEY_LAYERS: dict[str, str] = {
    "gross_removals": "gross_removals",
    "gross_emis_all_gases_biomass_soil": "gross_emis",
    "net_flux": "net_flux",
}
"""Per-hectare key layer → prefix of its three derivative layers (``{prefix}_per_pixel_full`` …)."""
EXTENT_INPUTS = ("tcd2000", "gain", "mangrove_agb_2000", "plantation_pre2000")


def tcd_threshold(params: dict[str, Any]) -> int:
    """The canopy threshold (percent) of ``[stages.create_derivative_outputs]``, validated."""
    value = params.get("tcd_threshold", 30)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
        raise ConfigError(
            f"stages.create_derivative_outputs.tcd_threshold must be an integer percent 0-100 "
            f"(30, 50 or 75 in GFW products), not {value!r}"
        )
    return value


def row_area_f32(lat: np.ndarray) -> np.ndarray:
    """Pixel area (m², float32) of the rows whose centre latitudes are ``lat`` (contiguous, decreasing)."""
    rows = np.rint((90.0 - np.asarray(lat, dtype=np.float64)) * PX_PER_DEG - 0.5).astype(np.int64)
    return row_pixel_area_m2(int(rows[0]), int(rows[-1]) + 1).astype(np.float32)


def _compute(ctx: StageContext) -> dict[str, xr.DataArray]:
    threshold = tcd_threshold(ctx.params)
    area = ctx.per_row(row_area_f32(ctx["tcd2000"]["lat"].values), "pixel_area")
    extent = [ctx[n] for n in EXTENT_INPUTS]
    out: dict[str, xr.DataArray] = {}
    for key, prefix in KEY_LAYERS.items():
        full, per_ha, per_px = apply_kernel(derivative_outputs, ctx[key], area, *extent,
                                            output_dtypes=["float32"] * 3, threshold=threshold)
        out |= {f"{prefix}_per_pixel_full": full, f"{prefix}_per_ha_forest": per_ha,
                f"{prefix}_per_pixel_forest": per_px}
    return out


STAGE = Stage(
    name="create_derivative_outputs",
    outputs=tuple(f"{p}_{kind}" for p in KEY_LAYERS.values()
                  for kind in ("per_pixel_full", "per_ha_forest", "per_pixel_forest")),
    inputs=("tcd2000",),
    optional=(*KEY_LAYERS, *EXTENT_INPUTS[1:]),  # a missing tile is zeros
    compute=_compute,
    description="per-pixel (full extent) and per-ha / per-pixel (forest extent: TCD > threshold, gain, "
                "mangrove, minus pre-2000 plantations) removals, emissions and net flux",
    kernel="fluxgraph.kernels.derivatives.derivative_outputs",
    spec="spec/stages.md §13",
)
