"""PRELES map mode (fluxgraph.preles_map): chunking, restarts, site-mode equality, interpolation, I/O.

The test region straddles a corner of the 0.25° weather grid (61.75° N, 24.25° E), so its
pixels fall into four coarse cells. The synthetic fAPAR has ~15 % NaN (non-forest) pixels.
"""

from __future__ import annotations

import json

import dask
import numpy as np
import pandas as pd
import pytest
import rasterio
import typer
import xarray as xr
from fluxgraph.kernels.preles import STATE_NAMES
from typer.testing import CliRunner

from fluxgraph._cli_preles import preles_map
from fluxgraph.errors import PrelesInputError
from fluxgraph.grid import PixelWindow
from fluxgraph.preles import BIRCH_PARAMS, run_site
from fluxgraph.preles_map import (
    point_weather,
    run_preles_map,
    synthetic_fapar,
    synthetic_weather_grid,
    synthetic_weather_like,
    write_preles_map,
)

WIN = PixelWindow.from_bounds(24.24, 61.74, 24.26, 61.76)  # 80 x 80 px around a 0.25° cell corner
VARS = ("GPP", "ET", *STATE_NAMES)


@pytest.fixture(scope="module")
def fapar() -> xr.DataArray:
    with dask.config.set(scheduler="synchronous"):
        return synthetic_fapar(WIN, seed=3).compute()


@pytest.fixture(scope="module")
def weather(fapar) -> xr.Dataset:
    return synthetic_weather_like(fapar, n_years=2, seed=1)


@pytest.fixture(scope="module")
def nearest(weather, fapar) -> xr.Dataset:
    with dask.config.set(scheduler="synchronous"):
        return run_preles_map(weather, fapar).compute()


def assert_same(a: xr.Dataset, b: xr.Dataset, names=VARS) -> None:
    for name in names:
        np.testing.assert_array_equal(a[name].to_numpy(), b[name].to_numpy(), err_msg=name)


def test_result_layout(nearest, fapar):
    assert nearest.GPP.dims == ("period", "lat", "lon") and nearest.SW.dims == ("lat", "lon")
    assert list(pd.DatetimeIndex(nearest.period.values).year) == [2020, 2021]
    assert list(nearest.n_days.values) == [366, 365]
    assert nearest.GPP.attrs["units"] == "g C m-2 per year" and nearest.ET.attrs["units"] == "mm per year"
    forest = np.isfinite(fapar.values)
    assert 0.3 < forest.mean() < 0.97
    gpp = nearest.GPP.values
    assert np.isnan(gpp[:, ~forest]).all() and np.isfinite(gpp[:, forest]).all()
    assert 700 < np.nanmean(gpp) < 1400 and 200 < np.nanmean(nearest.ET.values) < 500
    assert json.loads(nearest.attrs["params"])["beta"] == 0.7457


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
def test_chunking_does_not_change_results(weather, fapar, nearest, interp):
    ref = nearest if interp == "nearest" else run_preles_map(weather, fapar, interp=interp).compute()
    for chunks in [{"lat": 40, "lon": 40}, {"lat": 17, "lon": 23}, {"lat": 80, "lon": 7}]:
        got = run_preles_map(weather, fapar.chunk(chunks), interp=interp)
        assert got.GPP.data.numblocks[1:] == (-(-80 // chunks["lat"]), -(-80 // chunks["lon"]))
        assert_same(got.compute(), ref)


@pytest.mark.parametrize("interp", ["nearest", "bilinear"])
def test_two_years_equal_one_year_then_restart(weather, fapar, nearest, interp):
    full = nearest if interp == "nearest" else run_preles_map(weather, fapar, interp=interp).compute()
    y1 = run_preles_map(weather.sel(time="2020"), fapar, interp=interp).compute()
    y2 = run_preles_map(weather.sel(time="2021"), fapar.chunk(30), interp=interp, states=y1).compute()
    np.testing.assert_array_equal(y1.GPP.values[0], full.GPP.values[0])
    np.testing.assert_array_equal(y2.GPP.values[0], full.GPP.values[1])
    np.testing.assert_array_equal(y2.ET.values[0], full.ET.values[1])
    assert_same(y2, full, STATE_NAMES)


def test_nearest_equals_site_mode(weather, fapar, nearest):
    picks = []
    for r0 in (0, 40):  # one forest pixel in each quadrant = each of the 4 coarse cells
        for c0 in (0, 40):
            r, c = np.argwhere(np.isfinite(fapar.values[r0 : r0 + 40, c0 : c0 + 40]))[7]
            picks.append((r0 + r, c0 + c))
    cells = set()
    for r, c in picks:
        lat, lon = float(fapar.lat[r]), float(fapar.lon[c])
        cell = weather.sel(lat=lat, lon=lon, method="nearest")
        cells.add((float(cell.lat), float(cell.lon)))
        df = cell[["PAR", "TAir", "VPD", "Precip", "CO2"]].to_dataframe()[["PAR", "TAir", "VPD", "Precip", "CO2"]]
        pd.testing.assert_frame_equal(point_weather(weather, lat, lon), df.rename_axis("date"), check_freq=False)
        df["fAPAR"] = float(fapar.values[r, c])
        site = run_site(df)
        for k, year in enumerate((2020, 2021)):
            daily = site["GPP"][site.index.year == year].to_numpy()
            assert nearest.GPP.values[k, r, c] == np.cumsum(daily)[-1]  # the kernel's summation order
            daily_et = site["ET"][site.index.year == year].to_numpy()
            assert nearest.ET.values[k, r, c] == np.cumsum(daily_et)[-1]
        for name, value in site.attrs["end_states"].items():
            assert nearest[name].values[r, c] == value or (np.isnan(value) and np.isnan(nearest[name].values[r, c]))
    assert len(cells) == 4


def test_bilinear_differs_and_matches_hand_computation(weather, fapar, nearest):
    full = fapar.fillna(0.7)  # make every pixel forest (pixels are independent: others unchanged)
    bil = run_preles_map(weather, full, interp="bilinear").compute()
    forest = np.isfinite(fapar.values)
    assert (bil.GPP.values[:, forest] != nearest.GPP.values[:, forest]).mean() > 0.99
    # The pixel just SE of the cell corner: centre 61.749875 N, 24.250125 E. Coarse centres around
    # it: lat 61.625 / 61.875, lon 24.125 / 24.375 (0.25° cells), so by hand
    # wy = (61.749875 - 61.625) / 0.25 = 0.4995 and wx = (24.250125 - 24.125) / 0.25 = 0.5005.
    r = int(np.argmin(np.abs(full.lat.values - 61.749875)))
    c = int(np.argmin(np.abs(full.lon.values - 24.250125)))
    assert full.lat.values[r] == pytest.approx(61.749875, abs=1e-9)
    assert full.lon.values[c] == pytest.approx(24.250125, abs=1e-9)
    wy, wx = 0.4995, 0.5005
    v = {k: weather[k].sel(lat=[61.625, 61.875], lon=[24.125, 24.375]).to_numpy() for k in weather.data_vars}
    hand = pd.DataFrame(
        {k: (1 - wy) * ((1 - wx) * a[:, 0, 0] + wx * a[:, 0, 1]) + wy * ((1 - wx) * a[:, 1, 0] + wx * a[:, 1, 1])
         for k, a in v.items()},
        index=weather.indexes["time"].rename("date"),
    )  # fmt: skip
    pw = point_weather(weather, float(full.lat[r]), float(full.lon[c]), interp="bilinear")
    np.testing.assert_allclose(pw.to_numpy(), hand[pw.columns].to_numpy(), rtol=1e-12, atol=0)
    corners = v["TAir"][0]  # day 0: the pixel sits almost at the corner, so ≈ the mean of the 4 cells
    assert hand["TAir"].iloc[0] == pytest.approx(corners.mean(), abs=0.002 * np.ptp(corners) + 1e-12)
    hand["fAPAR"] = float(full.values[r, c])
    site = run_site(hand[["PAR", "TAir", "VPD", "Precip", "CO2", "fAPAR"]])
    near = run_preles_map(weather, full.isel(lat=[r], lon=[c])).compute()
    for k, year in enumerate((2020, 2021)):
        expected = site["GPP"][site.index.year == year].sum()
        assert bil.GPP.values[k, r, c] == pytest.approx(expected, rel=1e-12)
        assert abs(bil.GPP.values[k, r, c] - near.GPP.values[k, 0, 0]) > 1e-6 * expected


def test_forest_type_table_and_parameter_maps(weather, fapar, nearest):
    types = xr.DataArray(np.where(fapar.lon.values[None, :] < 24.25, 1, 2) * np.ones((80, 1), dtype=np.int64),
                         dims=("lat", "lon"), coords={"lat": fapar.lat, "lon": fapar.lon})  # fmt: skip
    table = {1: {}, 2: {"beta": 0.9, "soildepth": 600}}
    got = run_preles_map(weather, fapar.chunk(32), params=types, param_table=table).compute()
    west = types.values == 1
    np.testing.assert_array_equal(got.GPP.values[:, west], nearest.GPP.values[:, west])
    other = run_preles_map(weather, fapar, params={"beta": 0.9, "soildepth": 600.0}).compute()
    np.testing.assert_array_equal(got.GPP.values[:, ~west], other.GPP.values[:, ~west])
    # same thing as a DataFrame table (NaN = default) and as per-pixel parameter maps
    df = pd.DataFrame({"beta": [np.nan, 0.9], "soildepth": [np.nan, 600.0]}, index=[1, 2])
    assert_same(run_preles_map(weather, fapar, params=types, param_table=df).compute(), got)
    beta = xr.where(types == 1, 0.7457, 0.9)
    depth = xr.where(types == 1, 413.0, 600.0)
    assert_same(run_preles_map(weather, fapar, params={"beta": beta, "soildepth": depth}).compute(), got)
    # a type that the table lacks
    with pytest.raises(PrelesInputError, match=r"no row for forest type\(s\) \[2\]"):
        run_preles_map(weather, fapar, params=types, param_table={1: {}}).compute()
    with pytest.raises(PrelesInputError, match="also give param_table"):
        run_preles_map(weather, fapar, params=types)


def test_fapar_time_series(weather, fapar, nearest):
    yearly = xr.concat([fapar, fapar * 0.9], dim=pd.DatetimeIndex(["2020-01-01", "2021-01-01"], name="time"))
    got = run_preles_map(weather, yearly.chunk({"lat": 40})).compute()
    np.testing.assert_array_equal(got.GPP.values[0], nearest.GPP.values[0])
    y1 = run_preles_map(weather.sel(time="2020"), fapar).compute()
    y2 = run_preles_map(weather.sel(time="2021"), fapar * 0.9, states=y1).compute()
    np.testing.assert_array_equal(got.GPP.values[1], y2.GPP.values[0])
    # a daily series that is constant equals the 2-D fAPAR
    small = fapar.isel(lat=slice(30, 50), lon=slice(30, 50))
    daily = small.expand_dims(time=weather.indexes["time"]).copy()
    assert_same(run_preles_map(weather, daily).compute(), run_preles_map(weather, small).compute())
    with pytest.raises(PrelesInputError, match="starts on 2020-02-01"):
        run_preles_map(weather, yearly.assign_coords(time=pd.DatetimeIndex(["2020-02-01", "2021-01-01"])))


def test_monthly_and_daily_periods(weather, fapar, nearest):
    small = fapar.isel(lat=slice(0, 12), lon=slice(0, 12))
    month = run_preles_map(weather, small, period="month", outputs=("GPP", "ET", "Drainage")).compute()
    day = run_preles_map(weather.isel(time=slice(0, 40)), small, period="day").compute()
    assert month.sizes["period"] == 24 and list(month.n_days.values[:2]) == [31, 29]
    assert month.GPP.attrs["units"] == "g C m-2 per month" and "Drainage" in month
    ref = nearest.isel(lat=slice(0, 12), lon=slice(0, 12))
    np.testing.assert_allclose(month.GPP.values[:12].sum(0), ref.GPP.values[0], rtol=1e-12)
    assert_same(month, ref, STATE_NAMES)
    np.testing.assert_allclose(day.GPP.values[:31].sum(0), month.GPP.values[0], rtol=1e-12)
    assert day.sizes["period"] == 40 and (day.n_days.values == 1).all()


def test_input_errors(weather, fapar):
    with pytest.raises(PrelesInputError, match=r"missing variable.*VPD"):
        run_preles_map(weather.drop_vars("VPD"), fapar)
    with pytest.raises(PrelesInputError, match="does not cover the fAPAR extent"):
        run_preles_map(weather.isel(lon=slice(2, None)), fapar)
    with pytest.raises(PrelesInputError, match="does not cover the fAPAR extent: fAPAR lat"):
        run_preles_map(weather.isel(lat=slice(0, 2)), fapar)
    gap = weather.drop_sel(time=pd.Timestamp("2020-03-01"))
    with pytest.raises(PrelesInputError, match=r"daily without gaps, but 2020-02-29.*followed by 2020-03-02"):
        run_preles_map(gap, fapar)
    with pytest.raises(PrelesInputError, match="daily without gaps"):
        run_preles_map(weather.resample(time="2D").mean(), fapar)
    with pytest.raises(PrelesInputError, match="etmodel must be 0 or 1"):
        run_preles_map(weather, fapar, etmodel=2)
    with pytest.raises(PrelesInputError, match="unknown PRELES parameter"):
        run_preles_map(weather, fapar, params={"nope": 1})
    with pytest.raises(PrelesInputError, match="not on the fAPAR grid"):
        run_preles_map(weather, fapar, params={"beta": fapar.isel(lat=slice(1, None)) + 0.1})
    with pytest.raises(PrelesInputError, match=r"outside \[0, 1\]"):
        run_preles_map(weather, fapar * 100).compute()
    with pytest.raises(PrelesInputError, match="states lack variable"):
        run_preles_map(weather, fapar, states=xr.Dataset({"SW": fapar}))
    # accepted variants: ERA5-style names, a constant CO2, ascending latitude
    era = weather.drop_vars("CO2").rename(lat="latitude", lon="longitude").sortby("latitude")
    era["CO2"] = 410.0
    small = fapar.isel(lat=slice(0, 8), lon=slice(0, 8))
    const = weather.copy()
    const["CO2"] = xr.full_like(weather.PAR, 410.0)
    assert_same(run_preles_map(era, small).compute(), run_preles_map(const, small).compute())


def test_synthetic_weather_grid_is_smooth():
    w = synthetic_weather_grid([62.0, 61.0, 60.0], [20.0, 25.0], n_years=1, seed=0)
    assert w.PAR.dims == ("time", "lat", "lon") and w.sizes["time"] == 366
    t = w.TAir.mean("time").values
    assert t[2, 0] > t[1, 0] > t[0, 0] and 0.3 < t[2, 0] - t[1, 0] < 0.7  # warmer southwards, ~0.5 °C/deg
    assert (w.VPD >= 0).all() and (w.VPD <= 6).all() and (w.Precip >= 0).all()
    assert 6000 < float(w.PAR.sum("time")[1, 0]) < 8000


def test_deciduous_table_row(weather, fapar):
    types = xr.full_like(fapar, 7.0).where(np.isfinite(fapar))  # float map, NaN where no forest
    got = run_preles_map(weather, fapar, params=types, param_table={7: BIRCH_PARAMS}).compute()
    ok = np.argwhere(np.isfinite(fapar.values))[5]
    df = point_weather(weather, float(fapar.lat[ok[0]]), float(fapar.lon[ok[1]]))
    df["fAPAR"] = float(fapar.values[tuple(ok)])
    site = run_site(df, params=BIRCH_PARAMS)
    assert got.GPP.values[0, ok[0], ok[1]] == pytest.approx(site["GPP"].loc["2020"].sum(), rel=1e-12)
    assert got.PhenoS.values[ok[0], ok[1]] == site.attrs["end_states"]["PhenoS"]


def test_write_zarr_and_cog(tmp_path, weather, fapar, nearest):
    ds = run_preles_map(weather, fapar.chunk(40))
    write_preles_map(ds, tmp_path / "out.zarr", cog_dir=tmp_path / "cog")
    back = xr.open_zarr(tmp_path / "out.zarr", consolidated=False)
    assert back.GPP.dtype == np.float32 and back.SW.dtype == np.float64
    assert back.GPP.encoding["chunks"] == (1, 40, 40)
    np.testing.assert_array_equal(back.GPP.values, nearest.GPP.values.astype(np.float32))
    assert_same(back, nearest, STATE_NAMES)
    assert json.loads(back.attrs["params"])["beta"] == 0.7457
    cont = run_preles_map(weather.sel(time="2021"), fapar, states=back).compute()  # restart from the store
    np.testing.assert_array_equal(cont.GPP.values[0], run_preles_map(
        weather.sel(time="2021"), fapar, states=nearest).compute().GPP.values[0])  # fmt: skip
    with rasterio.open(tmp_path / "cog" / "GPP" / "2021" / "70N_020E.tif") as src:
        assert src.crs.to_epsg() == 4326 and src.shape == (80, 80)
        assert tuple(src.transform)[:6] == pytest.approx((0.00025, 0.0, 24.24, 0.0, -0.00025, 61.76))
        np.testing.assert_array_equal(src.read(1), nearest.GPP.values[1].astype(np.float32))


@pytest.mark.cluster
def test_local_cluster_two_years_400px(tmp_path):
    from distributed import Client, LocalCluster

    win = PixelWindow.from_bounds(24.2, 61.7, 24.3, 61.8)  # 400 x 400 px
    fap = synthetic_fapar(win, seed=0, chunks=200)
    wx = synthetic_weather_like(fap, n_years=2, seed=0)
    ds = run_preles_map(wx, fap)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster):  # fmt: skip
        write_preles_map(ds, tmp_path / "map.zarr")
    back = xr.open_zarr(tmp_path / "map.zarr", consolidated=False)
    assert back.GPP.shape == (2, 400, 400) and back.SW.shape == (400, 400)
    assert 700 < float(back.GPP.isel(period=0).mean()) < 1400
    sub = fap.isel(lat=slice(190, 215), lon=slice(390, 400))  # across chunk edges, the region's corner
    ref = run_preles_map(wx, sub).compute()
    got = back.isel(lat=slice(190, 215), lon=slice(390, 400)).compute()
    np.testing.assert_array_equal(got.GPP.values, ref.GPP.values.astype(np.float32))
    assert_same(got, ref, STATE_NAMES)


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("preles-map")(preles_map)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer's subcommand syntax
        pass

    return app


def _write_tif(path, arr: xr.DataArray, nodata: float) -> None:
    win = PixelWindow.from_bounds(float(arr.lon.min()), float(arr.lat.min()), float(arr.lon.max()),
                                  float(arr.lat.max()), snap="out")  # fmt: skip
    win = PixelWindow(win.row0, win.row0 + arr.sizes["lat"], win.col0, win.col0 + arr.sizes["lon"])
    from affine import Affine

    with rasterio.open(path, "w", driver="GTiff", width=arr.sizes["lon"], height=arr.sizes["lat"], count=1,
                       dtype="float32", crs="EPSG:4326", transform=Affine(*win.transform), nodata=nodata) as dst:
        dst.write(np.nan_to_num(arr.values, nan=nodata).astype("float32"), 1)


def test_cli_preles_map(cli, tmp_path, weather, fapar):
    small = fapar.isel(lat=slice(0, 40), lon=slice(0, 40))
    _write_tif(tmp_path / "fapar.tif", small, -1.0)
    pytest.importorskip("h5netcdf")
    weather.to_netcdf(tmp_path / "weather.nc", engine="h5netcdf")
    out = tmp_path / "map.zarr"
    r = CliRunner().invoke(cli, ["preles-map", "--weather", str(tmp_path / "weather.nc"), "--fapar",
                                 str(tmp_path / "fapar.tif"), "--out", str(out), "--cluster", "none"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "2020-01-01 (366 d): mean GPP" in r.output
    back = xr.open_zarr(out, consolidated=False)
    ref = run_preles_map(weather, small.astype(np.float32).astype(np.float64)).compute()
    np.testing.assert_array_equal(back.GPP.values, ref.GPP.values.astype(np.float32))

    table = tmp_path / "table.csv"
    pd.DataFrame({"type": [1], "beta": [0.8]}).to_csv(table, index=False)
    _write_tif(tmp_path / "types.tif", xr.ones_like(small), 0.0)
    r = CliRunner().invoke(cli, ["preles-map", "--weather", "synthetic", "--fapar", str(tmp_path / "fapar.tif"),
                                 "--out", str(out), "--cluster", "none", "--years", "1", "--period", "month",
                                 "--forest-type", str(tmp_path / "types.tif"), "--param-table", str(table)])
    assert r.exit_code == 0, r.output
    assert xr.open_zarr(out, consolidated=False).sizes["period"] == 12

    r = CliRunner().invoke(cli, ["preles-map", "--weather", str(tmp_path / "weather.nc"), "--fapar",
                                 str(tmp_path / "fapar.tif"), "--out", str(out), "--cluster", "none",
                                 "--interp", "cubic"])  # fmt: skip
    assert r.exit_code == 1 and "interp must be 'nearest' or 'bilinear'" in r.output
