"""Quicklook maps from a real run's COGs and Zarr store, and from a coarser (4 km-like) Zarr variable."""

from __future__ import annotations

import dask
import matplotlib.image as mpimg
import numpy as np
import pytest
import rasterio
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from typer.testing import CliRunner

import fluxgraph
from fluxgraph.cli import app
from fluxgraph.errors import ConfigError, UnknownLayerError
from fluxgraph.plot import _colormap, _extend, load_map, plot_layer

TILE = "00N_110E"


@pytest.fixture(scope="module")
def run_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("plot")
    with dask.config.set(scheduler="synchronous"):
        fluxgraph.run(["demo://?size=400"], out=out, tiles=TILE, stages="gross_emissions_biomass_soil,net_flux",
                      progress=False)
    return out


def test_tile_map_from_the_cog_keeps_values_and_masks_nodata(run_out):
    m = load_map(outputs=run_out, layer="net_flux", tile=TILE, max_pixels=1000)
    with rasterio.open(run_out / "cog" / "net_flux" / f"{TILE}.tif") as src:
        raw = src.read(1)
        w, s, e, n = src.bounds
    assert m.values.shape == raw.shape and m.extent == (w, e, s, n)
    np.testing.assert_array_equal(m.values.mask, raw == 0)
    np.testing.assert_array_equal(m.values.compressed(), raw[raw != 0].astype(np.float64))
    assert m.meta["model_version"] == "1.4.3" and m.meta["model_years"] == "2001-2025"
    assert m.meta["units"] == "Mg CO2e/ha over the model period"


def test_bbox_map_from_zarr_averages_valid_pixels(run_out):
    ds = xr.open_zarr(run_out / "fluxgraph.zarr", consolidated=False)
    raw = ds.gross_emis_all_gases_biomass_soil.sel(lat=slice(0, -0.1), lon=slice(110.0, 110.1)).values
    m = load_map(outputs=run_out, layer="gross_emis_all_gases_biomass_soil", bbox="110,-0.1,110.1,0", max_pixels=80)
    assert raw.shape == (400, 400) and m.values.shape == (80, 80)  # blocks of 5 x 5
    blocks = np.where(raw == 0, np.nan, raw.astype(np.float64)).reshape(80, 5, 80, 5)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning, match="empty slice"):
        expected = np.nanmean(blocks, axis=(1, 3))
    np.testing.assert_array_equal(m.values.mask, np.isnan(expected))
    np.testing.assert_allclose(m.values.compressed(), expected[~np.isnan(expected)], rtol=1e-12)


def test_signed_layers_diverge_about_zero_and_emissions_start_at_zero(run_out):
    _, norm = _colormap(load_map(outputs=run_out, layer="net_flux", tile=TILE))
    assert isinstance(norm, TwoSlopeNorm) and norm.vcenter == 0 and norm.vmin == -norm.vmax
    cmap, norm = _colormap(load_map(outputs=run_out, layer="gross_emis_all_gases_biomass_soil", tile=TILE))
    assert not isinstance(norm, TwoSlopeNorm) and norm.vmin == 0 < norm.vmax
    assert cmap(np.ma.masked_invalid([np.nan]))[0][3] == 0  # nodata drawn transparent
    emis = load_map(outputs=run_out, layer="gross_emis_all_gases_biomass_soil", tile=TILE)
    assert _extend(emis.values, norm) == "max"  # no arrow below 0: emissions cannot be negative
    assert _extend(np.ma.masked_array([0.0, 1.0]), norm.__class__(vmin=0, vmax=2)) == "neither"


def test_cli_writes_pngs_for_cog_zarr_and_coarse_layers(run_out, tmp_path):
    # a 4 km-like variable in another store of the output folder (0.04 degree, its own dims)
    lat = np.arange(-0.02, -0.4, -0.04)
    lon = np.arange(110.02, 110.4, 0.04)
    vals = np.linspace(-1, 1, lat.size * lon.size).reshape(lat.size, lon.size).astype("float32")
    coarse = xr.Dataset({"net_flux_4km": (("lat", "lon"), vals, {"units": "Mt CO2e", "nodata": 0})},
                        coords={"lat": lat, "lon": lon})
    coarse.to_zarr(run_out / "aggregated_4km.zarr", zarr_format=3, consolidated=False, mode="w")
    runner = CliRunner()
    for args in (["--layer", "net_flux", "--tile", TILE], ["--layer", "net_flux_4km", "--bbox", "110,-0.4,110.4,0"],
                 ["--layer", "gross_emis_all_gases_biomass_soil", "--bbox", "110.05,-0.05,110.1,0"]):
        png = tmp_path / f"{args[1]}.png"
        result = runner.invoke(app, ["plot", "--outputs", str(run_out), *args, "--out", str(png)])
        assert result.exit_code == 0, result.output
        img = mpimg.imread(png)
        assert img.ndim == 3 and img.shape[0] > 500 and img.std() > 0.05
    result = runner.invoke(app, ["plot", "--cog", str(run_out / "cog" / "net_flux" / f"{TILE}.tif"),
                                 "--out", str(tmp_path / "cog.png")])
    assert result.exit_code == 0 and (tmp_path / "cog.png").is_file(), result.output
    m = load_map(outputs=run_out, layer="net_flux_4km", bbox="110,-0.4,110.4,0")
    np.testing.assert_allclose(m.values.compressed(), vals.ravel()[vals.ravel() != 0])


def test_plot_errors_name_what_is_wrong(run_out, tmp_path):
    with pytest.raises(UnknownLayerError, match="net_flux"):  # lists the layers there
        load_map(outputs=run_out, layer="no_such_layer", tile=TILE)
    with pytest.raises(ConfigError, match="give a region"):
        load_map(outputs=run_out, layer="net_flux")
    with pytest.raises(ConfigError, match="W < E"):
        load_map(outputs=run_out, layer="net_flux", bbox="110,0,109,1")
    with pytest.raises(ConfigError, match="does not overlap"):
        plot_layer(cog=run_out / "cog" / "net_flux" / f"{TILE}.tif", bbox="0,0,1,1", out=tmp_path / "x.png")
