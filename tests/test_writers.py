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
from fluxgraph.writers import cog_blocksizes, cog_path, create_zarr_store, read_cog_tags, write_cog, write_zarr_region


def _arr(name, window, values, chunks=(400, 400)):
    data = da.from_array(values, chunks=window.chunks(chunks))
    return xr.DataArray(data, dims=("lat", "lon"), coords={"lat": window.lat(), "lon": window.lon()}, name=name)


@pytest.mark.parametrize(("shape", "chunks", "overviews"), [
    ((1000, 1200), (400, 400), True),
    ((800, 2000), (400, 40000), True),
    ((1000, 1200), (400, 40000), False),
    ((401, 400), (400, 400), True),
])
def test_cog_is_valid_with_exact_shape_transform_and_tags(tmp_path, shape, chunks, overviews):
    tw = TileId.parse("10S_040E").window
    win = PixelWindow(tw.row0, tw.row0 + shape[0], tw.col0, tw.col0 + shape[1])
    values = np.random.default_rng(0).random(win.shape).astype("float32")
    values[:100] = 0
    path = cog_path(tmp_path, "net_flux", TileId.parse("10S_040E"), naming="gfw", names=load_config().naming)
    assert path.endswith("10S_040E_net_flux_Mg_CO2e_ha_biomass_soil_2001_25.tif")
    dask.compute(write_cog(_arr("net_flux", win, values, chunks), win, path, overviews=overviews,
                           tags={"model_version": "1.4.3"}))
    valid, errors, _warnings = cog_validate(path)
    assert valid, errors
    with rasterio.open(path) as src:
        assert (src.height, src.width) == shape  # never padded beyond the part
        assert src.crs.to_epsg() == 4326
        assert tuple(src.transform)[:6] == (0.00025, 0.0, 40.0, 0.0, -0.00025, -10.0)
        assert src.nodata == 0 and src.dtypes[0] == "float32"
        assert src.compression.name == "deflate"
        assert bool(src.overviews(1)) == (overviews and shape[0] % 2 == 0)
        assert src.block_shapes[0] == (400, 400)
        np.testing.assert_array_equal(src.read(1), values)
        assert read_cog_tags(path)["model_version"] == "1.4.3"
        n_overviews = len(src.overviews(1))
    for level in range(n_overviews):  # nearest overviews: every second pixel, offset 1 (as odc-geo's nearest)
        with rasterio.open(path, overview_level=level) as ovr:
            step = 2 ** (level + 1)
            np.testing.assert_array_equal(ovr.read(1), values[step - 1::step, step - 1::step])


@pytest.mark.parametrize("shape", [(40000, 40000), (10000, 10000), (1000, 1000), (4400, 3600), (4001, 4000)])
def test_cog_blocksizes_need_no_padding(shape):
    sizes = cog_blocksizes(shape)
    n = 0 if shape[0] % 2 else len(sizes) - 1
    assert all(side % 2**n == 0 for side in shape)  # every overview halves exactly
    assert max(shape) / 2**n <= sizes[-1] < max(shape) / 2**n + 16  # the top level is one tile
    assert sizes[0] == 400


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
