"""Lazy stage outputs (fluxgraph.stage_outputs) equal what a run writes; tile parts combine on the grid."""

from __future__ import annotations

import dask
import numpy as np
import pytest
import xarray as xr

import fluxgraph
from fluxgraph.errors import ConfigError
from fluxgraph.grid import PixelWindow, row_pixel_area_m2

BBOX = (109.99, -0.01, 110.01, 0.0)  # straddles tiles 00N_100E and 00N_110E


def test_stage_outputs_across_two_tiles_equal_the_run_outputs(tmp_path):
    lazy = fluxgraph.stage_outputs("demo://", stages="net_flux", bbox=BBOX)
    window = PixelWindow.from_bounds(*BBOX)
    assert lazy.net_flux.shape == window.shape == (40, 80)
    assert lazy.net_flux.chunks is not None  # dask-backed: nothing computed yet
    np.testing.assert_array_equal(lazy.lat.values, window.lat())
    np.testing.assert_array_equal(lazy.lon.values, window.lon())
    assert lazy.net_flux.attrs["units"] == "Mg CO2e/ha over the model period"
    with dask.config.set(scheduler="synchronous"):
        fluxgraph.run(["demo://"], out=tmp_path, bbox=BBOX, stages="net_flux", progress=False)
        written = xr.open_zarr(tmp_path / "fluxgraph.zarr", consolidated=False).net_flux.sel(
            lat=slice(0.0, -0.01), lon=slice(109.99, 110.01)).values
        values = lazy.net_flux.values
    assert np.count_nonzero(values) > 0
    np.testing.assert_array_equal(values, written)


def test_pixel_area_ha_matches_the_grid_rows():
    ds = fluxgraph.stage_outputs("demo://", stages="model_extent", bbox=BBOX)
    window = PixelWindow.from_bounds(*BBOX)
    np.testing.assert_allclose(fluxgraph.pixel_area_ha(ds).values, row_pixel_area_m2(window.row0, window.row1) / 1e4,
                               rtol=1e-12)


def test_distant_tiles_come_by_tile_not_as_one_empty_box():
    with pytest.raises(ConfigError, match="stage_outputs_by_tile"):
        fluxgraph.stage_outputs("demo://?size=400", stages="model_extent", tiles="test")
    parts = fluxgraph.stage_outputs_by_tile("demo://?size=400", stages="model_extent", tiles="test",
                                            intermediates=True)
    assert sorted(parts) == ["00N_110E", "10N_050E", "30N_090W", "70N_000E"]
    assert all(ds.model_extent.shape == (400, 400) and "tcd2000" in ds for ds in parts.values())
