"""Stage outputs as lazy xarray, for notebooks: nothing is computed or written until asked.

:func:`stage_outputs` plans and builds the same graph as :func:`fluxgraph.run` (per tile part,
from what the inputs provide) and hands back the layers as one dask-backed Dataset on the global
grid, so a region can be sliced, plotted and summed on a cluster without writing files.
:func:`pixel_area_ha` gives the area of each row's pixels for per-hectare → per-pixel totals.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from fluxgraph.catalog import get_layer
from fluxgraph.config import RunConfig, load_config
from fluxgraph.errors import ConfigError
from fluxgraph.grid import PX_PER_DEG, RES, pixel_area_m2
from fluxgraph.mosaic import Region, with_crs
from fluxgraph.sources import Source

__all__ = ["pixel_area_ha", "stage_outputs", "stage_outputs_by_tile"]

MAX_EMPTY_FRACTION = 0.5
"""Largest share of a combined Dataset's bounding box that may lie outside every tile part."""


def stage_outputs_by_tile(
    inputs: str | Path | Sequence[str | Path | Source],
    *,
    stages: str | Iterable[str] = "all",
    tiles: str | Iterable[str] | None = None,
    bbox: str | Sequence[float] | None = None,
    intermediates: bool = False,
    config: RunConfig | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, xr.Dataset]:
    """The outputs of ``stages`` over a region, lazily, one Dataset per tile part.

    Parameters
    ----------
    inputs : str, Path, Source or a sequence of them
        Input locations (folders, ``s3://…``, ``demo://…``), earlier ones win.
    stages : str or iterable of str
        Stage names (``"net_flux"``, ``"model_extent,gross_emissions_biomass_soil"``) or ``"all"``.
    tiles, bbox :
        The region: tile ids or a list name, and/or ``W,S,E,N`` in degrees.
    intermediates : bool
        Also return every layer computed on the way (and every layer read).
    config : RunConfig, optional
        Run configuration (defaults if omitted).

    Returns
    -------
    dict of str to xarray.Dataset
        Tile id → dask-backed ``(lat, lon)`` variables with units, nodata and sign attributes.

    Raises
    ------
    MissingLayerError
        A required input has no file for a tile (the message names layer, tile and paths tried).
    """
    from fluxgraph.runner import build_part, plan_parts

    config = config or load_config()
    if not isinstance(inputs, list | tuple):  # one location (str, Path or a Source object)
        inputs = [inputs]
    mosaic, targets, plans, _skipped = plan_parts(inputs, Region.parse(tiles=tiles, bbox=bbox), stages, config,
                                                  storage_options)
    out: dict[str, xr.Dataset] = {}
    for part, the_plan in plans:
        written, arrays = build_part(mosaic, part, the_plan, targets, config, save_intermediates=False)
        out[str(part.tile)] = with_crs(xr.Dataset(dict(arrays) if intermediates else written))
    return out


def stage_outputs(
    inputs: str | Path | Sequence[str | Path | Source],
    *,
    stages: str | Iterable[str] = "all",
    tiles: str | Iterable[str] | None = None,
    bbox: str | Sequence[float] | None = None,
    intermediates: bool = False,
    config: RunConfig | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """The outputs of ``stages`` over a region as one lazy Dataset (see :func:`stage_outputs_by_tile`).

    Tile parts are combined on the global grid; pixels of the bounding box outside every part
    hold each layer's nodata.

    Raises
    ------
    ConfigError
        The parts are so far apart that most of their bounding box would be empty (e.g. tiles on
        different continents): use :func:`stage_outputs_by_tile` or a ``bbox`` instead.
    """
    parts = stage_outputs_by_tile(inputs, stages=stages, tiles=tiles, bbox=bbox, intermediates=intermediates,
                                  config=config, storage_options=storage_options)
    if len(parts) == 1:
        return next(iter(parts.values()))
    covered = sum(ds.sizes["lat"] * ds.sizes["lon"] for ds in parts.values())
    lats = np.concatenate([ds["lat"].values for ds in parts.values()])
    lons = np.concatenate([ds["lon"].values for ds in parts.values()])
    box = (round((lats.max() - lats.min()) / RES) + 1) * (round((lons.max() - lons.min()) / RES) + 1)
    if covered < (1 - MAX_EMPTY_FRACTION) * box:
        raise ConfigError(
            f"the tile parts {', '.join(parts)} are far apart: their bounding box would be "
            f"{box / covered:.0f}x larger than the pixels they cover; use stage_outputs_by_tile() "
            "or give a bbox"
        )
    names = list(next(iter(parts.values())).data_vars)
    fill = {n: np.array(get_layer(n).nodata, dtype=get_layer(n).np_dtype).item() for n in names}
    combined = xr.combine_by_coords(list(parts.values()), join="outer", fill_value=fill,
                                    combine_attrs="override")
    return with_crs(combined.sortby("lat", ascending=False))


def pixel_area_ha(obj: xr.DataArray | xr.Dataset) -> xr.DataArray:
    """Area of the pixels of each row of ``obj`` (ha, float64, along ``lat``), on the WGS84 ellipsoid.

    ``obj`` must lie on the 0.00025° global grid (its ``lat`` are pixel centres).

    Multiply a per-hectare layer by it to get per-pixel values (e.g. Mg CO2e/ha → Mg CO2e).
    """
    rows = np.rint((90.0 - obj["lat"].values) * PX_PER_DEG - 0.5)  # global row of each pixel centre
    return xr.DataArray(pixel_area_m2(90.0 - rows / PX_PER_DEG) / 1e4, dims=("lat",), coords={"lat": obj["lat"]},
                        name="pixel_area", attrs={"units": "ha"})
