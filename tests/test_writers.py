"""Writers: valid COGs with the exact transform and nodata; Zarr v3 round trip with attributes."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

from fluxgraph.config import load_config
from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.writers import cog_path, create_zarr_store, write_cog, write_zarr_region


def _arr(name, window, values, chunks=(400, 400)):
    data = da.from_array(values, chunks=window.chunks(chunks))
    return xr.DataArray(data, dims=("lat", "lon"), coords={"lat": window.lat(), "lon": window.lon()}, name=name)


@pytest.mark.parametrize("single_task", [True, False], ids=["gdal-cog-driver", "odc-streaming"])
def test_cog_is_valid_with_exact_transform(tmp_path, monkeypatch, single_task):
    if not single_task:
        monkeypatch.setattr("fluxgraph.writers.SINGLE_TASK_COG_MAX_PX", 0)
    tw = TileId.parse("10S_040E").window
    win = PixelWindow(tw.row0, tw.row0 + 1000, tw.col0, tw.col0 + 1200)
    values = np.random.default_rng(0).random(win.shape).astype("float32")
    values[:100] = 0
    path = cog_path(tmp_path, "net_flux", TileId.parse("10S_040E"), naming="gfw", names=load_config().naming)
    assert path.endswith("10S_040E_net_flux_Mg_CO2e_ha_biomass_soil_2001_25.tif")
    dask.compute(write_cog(_arr("net_flux", win, values), win, path, tags={"model_version": "1.4.3"}))
    valid, errors, _warnings = cog_validate(path)
    assert valid, errors
    with rasterio.open(path) as src:
        assert src.crs.to_epsg() == 4326
        assert tuple(src.transform)[:6] == (0.00025, 0.0, 40.0, 0.0, -0.00025, -10.0)
        assert src.nodata == 0 and src.dtypes[0] == "float32"
        assert src.compression.name == "deflate" and src.overviews(1)
        np.testing.assert_array_equal(src.read(1), values)
        assert src.tags()["model_version"] == "1.4.3" and src.tags()["layer"] == "net_flux"
        assert src.tags()["tile"] == "10S_040E" and src.units[0] == "Mg CO2e/ha over the model period"


def test_zarr_round_trip_with_attributes_and_empty_chunks(tmp_path):
    store = tmp_path / "out.zarr"
    tile = TileId.parse("00N_000E").window
    p1 = PixelWindow(tile.row0, tile.row0 + 800, tile.col0, tile.col0 + 800)
    tile2 = TileId.parse("00N_010E").window
    p2 = PixelWindow(tile2.row0, tile2.row0 + 400, tile2.col0, tile2.col0 + 400)
    sw = create_zarr_store(store, ["net_flux", "model_extent"], p1.union_bbox(p2), (400, 400),
                           attrs={"model_version": "1.4.3"})
    v1 = np.zeros(p1.shape, "float32")
    v1[:400, :400] = 2.5  # one non-empty chunk of four
    v2 = np.full(p2.shape, -1.0, "float32")
    writes = [
        write_zarr_region(store, {"net_flux": _arr("net_flux", p1, v1),
                                  "model_extent": _arr("model_extent", p1, (v1 > 0).astype("uint8"))}, p1, sw),
        write_zarr_region(store, {"net_flux": _arr("net_flux", p2, v2),
                                  "model_extent": _arr("model_extent", p2, np.ones(p2.shape, "uint8"))}, p2, sw),
    ]
    dask.compute(*writes)
    ds = xr.open_zarr(store, consolidated=False)
    assert ds.attrs["model_version"] == "1.4.3"
    assert ds.net_flux.attrs["units"].startswith("Mg CO2e/ha")
    assert ds.net_flux.dtype == np.float32 and ds.model_extent.dtype == np.uint8
    np.testing.assert_array_equal(ds.net_flux.sel(lat=slice(0, -0.2), lon=slice(0, 0.2)).values, v1)
    np.testing.assert_array_equal(ds.net_flux.sel(lat=slice(0, -0.1), lon=slice(10, 10.1)).values, v2)
    stored = sorted(p.name for p in (store / "net_flux" / "c").rglob("*") if p.is_file())
    assert len(stored) == 2  # the 3 all-zero chunks of part 1 are not stored
    assert float(ds.net_flux.sum()) == pytest.approx(2.5 * 400 * 400 - 400 * 400)
