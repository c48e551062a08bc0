"""Derivative outputs (spec/stages.md §13 step 1), 4-km maps (steps 2-4) and zonal statistics."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from fluxgraph.kernels.derivatives import CELL_PX, annualise, cell_sums, derivative_outputs, forest_extent
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rasterio.windows import Window

from fluxgraph.grid import pixel_area_m2

SHAPE = (6, 7)


def _spec_step1(x, pa, tcd, gain, agb_m, pp, threshold):
    """spec/stages.md §13 step 1, written as the spec gives it (numpy, float32 inputs)."""
    forest = ((tcd > threshold) | (gain == 1) | (agb_m != 0)) & (pp == 0)
    per_pixel_full = x * pa / 10000
    per_ha_forest = np.where(forest, x, np.float32(0))
    per_pixel_forest = per_ha_forest * pa / 10000
    return forest, per_pixel_full, per_ha_forest, per_pixel_forest


@given(
    x=arrays(np.float32, SHAPE, elements=st.floats(-500, 5000, width=32)),
    lat=st.floats(-55, 80),
    tcd=arrays(np.uint8, SHAPE, elements=st.integers(0, 100)),
    gain=arrays(np.uint8, SHAPE, elements=st.integers(0, 1)),
    agb_m=arrays(np.float32, SHAPE, elements=st.sampled_from([0.0, 0.5, 120.0, np.nan])),
    pp=arrays(np.uint8, SHAPE, elements=st.integers(0, 1)),
    threshold=st.sampled_from([30, 50, 75]),
)
def test_step1_matches_the_spec_bit_for_bit(x, lat, tcd, gain, agb_m, pp, threshold):
    pa = np.broadcast_to(pixel_area_m2(lat - np.arange(SHAPE[0]) * 0.00025)[:, None].astype(np.float32), SHAPE)
    forest, full, per_ha, per_px = _spec_step1(x, pa, tcd, gain, agb_m, pp, threshold)
    got = derivative_outputs(x, pa, tcd, gain, agb_m, pp, threshold=threshold)
    for g, want in zip(got, (full, per_ha, per_px), strict=True):
        assert g.dtype == np.float32
        assert g.tobytes() == want.astype(np.float32).tobytes()
    assert forest_extent(tcd, gain, agb_m, pp, threshold=threshold).tobytes() == forest.astype(np.uint8).tobytes()


def test_forest_rule_threshold_is_strict_and_plantations_are_removed():
    tcd = np.array([[30, 31, 50, 51, 75, 76, 0, 0, 0, 90]], np.uint8)
    gain = np.array([[0, 0, 0, 0, 0, 0, 1, 0, 0, 0]], np.uint8)
    mangrove = np.array([[0, 0, 0, 0, 0, 0, 0, 3, 0, 0]], np.float32)
    pp = np.array([[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]], np.uint8)
    assert forest_extent(tcd, gain, mangrove, pp, threshold=30).tolist() == [[0, 1, 1, 1, 1, 1, 1, 1, 0, 0]]
    assert forest_extent(tcd, gain, mangrove, pp, threshold=50).tolist() == [[0, 0, 0, 1, 1, 1, 1, 1, 0, 0]]
    assert forest_extent(tcd, gain, mangrove, pp, threshold=75).tolist() == [[0, 0, 0, 0, 0, 1, 1, 1, 0, 0]]


def test_per_pixel_is_per_hectare_times_the_area_at_a_known_latitude():
    from fluxgraph.stages.create_derivative_outputs import row_area_f32
    from pyproj import Geod

    # the pixel whose top edge is 45°N, 10°E: its area on the WGS84 ellipsoid by an independent method
    lon0, top = 10.0, 45.0
    ring_lons = [lon0, lon0 + 0.00025, lon0 + 0.00025, lon0]
    ring_lats = [top, top, top - 0.00025, top - 0.00025]
    area = abs(Geod(ellps="WGS84").polygon_area_perimeter(ring_lons, ring_lats)[0])
    assert 540 < area < 550  # ~769 m² at the equator × cos(45°)
    grid_area = row_area_f32(np.array([top - 0.000125]))
    assert grid_area[0] == pytest.approx(area, rel=1e-6)
    per_ha = np.array([[250.0, 1.5, -3.0]], np.float32)
    full, _, _ = derivative_outputs(per_ha, np.broadcast_to(grid_area[:, None], per_ha.shape),
                                    np.full(per_ha.shape, 90, np.uint8), *(np.zeros(per_ha.shape, d)
                                                                          for d in ("u1", "f4", "u1")))
    np.testing.assert_allclose(full, per_ha * area / 10000, rtol=2e-6)


def _windowed_block_sums(path, *, pad_to: tuple[int, int]) -> np.ndarray:
    """The original's step 2: read 160 × 160 windows of the per-pixel tile and numpy.sum each (zeros outside)."""
    with rasterio.open(path) as src:
        data = src.read(1)
    padded = np.zeros(pad_to, np.float32)
    padded[: data.shape[0], : data.shape[1]] = data
    tmp = path.parent / "padded.tif"
    profile = {"driver": "GTiff", "width": pad_to[1], "height": pad_to[0], "count": 1, "dtype": "float32",
               "tiled": True, "blockxsize": CELL_PX, "blockysize": CELL_PX,
               "transform": rasterio.transform.from_origin(0.0, 0.0, 0.5, 0.5)}
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.write(padded, 1)
    out = np.zeros((pad_to[0] // CELL_PX, pad_to[1] // CELL_PX), np.float32)
    with rasterio.open(tmp) as src:
        for i in range(out.shape[0]):
            for j in range(out.shape[1]):
                out[i, j] = np.sum(src.read(1, window=Window(j * CELL_PX, i * CELL_PX, CELL_PX, CELL_PX)))
    return out


def test_cell_sums_pad_partial_cells_with_nodata():
    rng = np.random.default_rng(3)
    block = rng.gamma(2.0, 3.0, (200, 330)).astype(np.float32)
    sums = cell_sums(block, row_offset=40, col_offset=100)
    assert sums.shape == (2, 3)
    padded = np.zeros((320, 480), np.float32)
    padded[40:240, 100:430] = block
    assert sums.tobytes() == cell_sums(padded).tobytes()
    assert float(sums.sum(dtype=np.float64)) == pytest.approx(float(block.sum(dtype=np.float64)), rel=1e-6)
    with pytest.raises(ValueError, match="offsets"):
        cell_sums(block, row_offset=160)


def test_annualise_flips_removals_only():
    s = np.array([[25e6, 0.0]], np.float32)
    assert annualise(s, model_years=25, sign=-1).tolist() == [[-1.0, 0.0]]
    assert annualise(s, model_years=25, sign=1).tolist() == [[1.0, 0.0]]
    with pytest.raises(ValueError):
        annualise(s, model_years=25, sign=2)


# ---- a whole run through the CLI on demo data ------------------------------------------------------------------

TILE = "00N_110E"
SIZE = 400
T_RUN = 50  # the demo run's canopy threshold (--tcd-threshold), not the default 30


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    root = tmp_path_factory.mktemp("derivatives")
    (root / "run.toml").write_text('[naming]\naggregation_date = "20260327"\n')
    res = CliRunner().invoke(app, ["run", "--inputs", f"demo://?size={SIZE}&seed=5", "--tiles", TILE,
                                   "--stages", "all", "--naming", "gfw", "--cluster", "none",
                                   "--tcd-threshold", str(T_RUN), "--config", str(root / "run.toml"),
                                   "--out", str(root / "out")])
    assert res.exit_code == 0, res.output
    return root / "out"


def _open(out):
    import xarray as xr

    return xr.open_zarr(out / "fluxgraph.zarr", consolidated=False).sel(lat=slice(0, -SIZE / 4000),
                                                                         lon=slice(110, 110 + SIZE / 4000))


def _inputs():
    from fluxgraph.mosaic import open_mosaic

    return open_mosaic(f"demo://?size={SIZE}&seed=5", tiles=TILE,
                       layers=["tcd2000", "gain", "mangrove_agb_2000", "plantation_pre2000", "loss_year"])


def test_run_writes_the_nine_layers_under_the_original_names(demo_run):
    from fluxgraph.stages.create_derivative_outputs import row_area_f32

    ds, src = _open(demo_run), _inputs()
    pa = np.broadcast_to(row_area_f32(ds["lat"].values)[:, None], (SIZE, SIZE))
    for key, prefix in (("gross_removals", "gross_removals"), ("gross_emis_all_gases_biomass_soil", "gross_emis"),
                        ("net_flux", "net_flux")):
        forest, full, per_ha, per_px = _spec_step1(ds[key].values, pa, src.tcd2000.values, src.gain.values,
                                                   src.mangrove_agb_2000.values, src.plantation_pre2000.values, T_RUN)
        assert 0 < forest.mean() < 1
        for kind, want in (("per_pixel_full", full), ("per_ha_forest", per_ha), ("per_pixel_forest", per_px)):
            assert ds[f"{prefix}_{kind}"].values.tobytes() == want.tobytes(), (prefix, kind)
    names = {p.name for p in (demo_run / "cog").iterdir()}
    for pattern in ("gross_removals_AGCO2_BGCO2_Mg_pixel_all_forest_types_full_extent_2001_25",
                    "gross_emis_all_gases_all_drivers_Mg_CO2e_ha_biomass_soil_forest_extent_2001_25",
                    "net_flux_Mg_CO2e_pixel_biomass_soil_forest_extent_2001_25"):
        assert f"{TILE}_{pattern}.tif" in names


MAPS_4KM = {
    "gross_removals_AGCO2_BGCO2_Mt_per_year_all_forest_types__tcd50_0_04deg_modelv1_4_3_std_20260327.tif":
        ("gross_removals_AGCO2_BGCO2_Mg_pixel_all_forest_types_forest_extent_2001_25", -1),
    "gross_emis_all_gases_all_drivers_Mt_per_year_CO2e_biomass_soil__tcd50_0_04deg_modelv1_4_3_std_20260327.tif":
        ("gross_emis_all_gases_all_drivers_Mg_CO2e_pixel_biomass_soil_forest_extent_2001_25", 1),
    "net_flux_Mt_per_year_CO2e_biomass_soil__tcd50_0_04deg_modelv1_4_3_std_20260327.tif":
        ("net_flux_Mg_CO2e_pixel_biomass_soil_forest_extent_2001_25", 1),
}


@pytest.mark.parametrize("name", MAPS_4KM)
def test_4km_maps_are_the_spec_block_sums_of_the_per_pixel_tiles(demo_run, name):
    from fluxgraph.writers import read_cog_tags

    source, sign = MAPS_4KM[name]
    per_pixel = demo_run / "cog" / f"{TILE}_{source}.tif"
    with rasterio.open(demo_run / "cog" / "0_04deg" / name) as src:
        got = src.read(1)
        assert src.res == pytest.approx((0.04, 0.04)) and src.crs.to_epsg() == 4326 and src.nodata == 0
        assert (src.bounds.left, src.bounds.top) == pytest.approx((110.0, 0.0))
    assert "Mt CO2" in read_cog_tags(demo_run / "cog" / "0_04deg" / name)["units"]
    cells = -(-SIZE // CELL_PX)
    expected = _windowed_block_sums(per_pixel, pad_to=(cells * CELL_PX, cells * CELL_PX)) / 25 / 1e6
    expected = expected * -1 if sign == -1 else expected
    assert got.shape == (cells, cells)
    assert got.tobytes() == expected.tobytes()
    with rasterio.open(per_pixel) as src:
        total_mg = src.read(1).sum(dtype=np.float64)
    assert got.sum(dtype=np.float64) == pytest.approx(sign * total_mg / 25 / 1e6, rel=1e-5)
    if sign == -1:
        assert got.max() <= 0 < total_mg


# ---- zonal statistics --------------------------------------------------------------------------------------------

def _zones_file(path, geoms, names):
    import geopandas as gpd

    gpd.GeoDataFrame({"zone": names}, geometry=geoms, crs="EPSG:4326").to_file(path)
    return path


def test_zonal_sums_equal_the_per_pixel_outputs_inside_hand_made_polygons(demo_run, tmp_path):
    import shapely

    from fluxgraph import zonal_stats

    ds = _open(demo_run)
    lat, lon = ds["lat"].values, ds["lon"].values
    # a rectangle with edges a quarter pixel inside rows 40-139 and columns 200-329: exactly those centres
    q = 0.25 / 4000
    rect = shapely.box(lon[200] - 0.000125 + q, lat[139] - 0.000125 + q, lon[329] + 0.000125 - q,
                       lat[40] + 0.000125 - q)
    tri = shapely.Polygon([(110.001, -0.002), (110.045, -0.004), (110.01, -0.09)])  # apart from rect
    zones = _zones_file(tmp_path / "zones.geojson", [rect, tri], ["rect", "tri"])
    table = zonal_stats(outputs=demo_run, zones=zones, by="zone", tcd=[T_RUN])
    totals = table[table.loss_year == "all"].set_index("zone")

    in_tri = shapely.contains_xy(tri, *np.meshgrid(lon, lat))
    masks = {"rect": np.zeros((SIZE, SIZE), bool), "tri": in_tri}
    masks["rect"][40:140, 200:330] = True
    for zone, mask in masks.items():
        for col, layer in (("gross_emissions_all_gases_Mg_CO2e", "gross_emis_per_pixel_forest"),
                           ("gross_removals_Mg_CO2", "gross_removals_per_pixel_forest"),
                           ("net_flux_Mg_CO2e", "net_flux_per_pixel_forest")):
            want = ds[layer].values[mask].astype(np.float64).sum()
            assert want != 0
            assert totals.loc[zone, col] == pytest.approx(want, rel=1e-12), (zone, col)

    # the detail rows split the totals by loss year and driver; the gases add up to all gases
    detail = table[table.loss_year != "all"]
    for zone in ("rect", "tri"):
        rows = detail[detail.zone == zone]
        for col in ("forest_area_ha", "gross_emissions_all_gases_Mg_CO2e", "net_flux_Mg_CO2e"):
            assert rows[col].sum() == pytest.approx(totals.loc[zone, col], rel=1e-9)
    gases = totals[["gross_emissions_CO2_Mg_CO2e", "gross_emissions_CH4_Mg_CO2e",
                    "gross_emissions_N2O_Mg_CO2e"]].sum(axis=1)
    np.testing.assert_allclose(gases, totals["gross_emissions_all_gases_Mg_CO2e"], rtol=1e-5)
    loss = _inputs().loss_year.values
    rect_2010 = detail[(detail.zone == "rect") & (detail.loss_year == "2010")]
    want_2010 = ds["gross_emis_per_pixel_forest"].values[masks["rect"] & (loss == 10)].astype(np.float64).sum()
    assert rect_2010["gross_emissions_all_gases_Mg_CO2e"].sum() == pytest.approx(want_2010, rel=1e-12)


def test_zonal_cli_writes_parquet_for_several_thresholds(demo_run, tmp_path):
    import pandas as pd
    import shapely
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    zones = _zones_file(tmp_path / "z.gpkg", [shapely.box(110.0, -0.1, 110.05, -0.05),
                                             shapely.box(110.05, -0.1, 110.1, -0.05),
                                             shapely.box(120.0, 5.0, 121.0, 6.0)], ["west", "east", "away"])
    out = tmp_path / "t.parquet"
    res = CliRunner().invoke(app, ["zonal", "--outputs", str(demo_run), "--zones", str(zones), "--by", "zone",
                                   "--tcd", "30,50,75", "--out", str(out), "--cluster", "none"])
    assert res.exit_code == 0, res.output
    table = pd.read_parquet(out)
    totals = table[table.loss_year == "all"].set_index(["zone", "tcd_threshold"])
    assert len(totals) == 9  # every zone and threshold is listed, even one outside the run
    assert totals.loc[("away", 30), "forest_area_ha"] == 0
    for zone in ("west", "east"):
        areas = totals.loc[zone, "forest_area_ha"]
        assert areas[30] >= areas[50] >= areas[75] > 0
        assert 0.5 * 0.05 * 0.05 * 111.32e3**2 / 1e4 < areas[30] <= 0.05 * 0.05 * 111.32e3**2 / 1e4

    res = CliRunner().invoke(app, ["zonal", "--outputs", str(demo_run), "--zones", str(zones), "--by", "nope",
                                   "--cluster", "none"])
    assert res.exit_code == 2 and "no field 'nope'" in res.output and "zone" in res.output
    res = CliRunner().invoke(app, ["zonal", "--outputs", str(tmp_path), "--zones", str(zones), "--by", "zone",
                                   "--cluster", "none"])
    assert res.exit_code == 2 and "fluxgraph.zarr" in res.output


@pytest.mark.cluster
def test_zonal_on_a_multiprocess_cluster_equals_in_process(demo_run, tmp_path):
    import shapely
    from distributed import Client, LocalCluster

    from fluxgraph import zonal_stats

    zones = _zones_file(tmp_path / "z.geojson", [shapely.box(110.0, -0.1, 110.06, -0.02)], ["a"])
    local = zonal_stats(outputs=demo_run, zones=zones, by="zone", tcd=[30, 75])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        remote = zonal_stats(outputs=demo_run, zones=zones, by="zone", tcd=[30, 75], client=client)
    assert remote.equals(local)


# ---- 4-km cells chunk by chunk -----------------------------------------------------------------------------------

@pytest.mark.parametrize("chunk", [(400, 400), (800, 800), (4000, 4000), (400, 40000), (2000, 10000)])
def test_4km_cells_do_not_depend_on_chunks_or_window_alignment(chunk):
    import dask.array as da
    import xarray as xr

    from fluxgraph.aggregate import CellWindow, lazy_cells
    from fluxgraph.grid import PixelWindow, TileId

    t = TileId.parse("10S_040E").window
    window = PixelWindow(t.row0 + 3930, t.row0 + 5010, t.col0 + 70, t.col0 + 1370)  # no edge on the 160-px lattice
    values = np.random.default_rng(7).gamma(1.5, 2.0, window.shape).astype(np.float32)
    values[values < 2] = 0
    arr = xr.DataArray(da.from_array(values, chunks=window.chunks(chunk)), dims=("lat", "lon"))
    got = lazy_cells(arr, window, chunks=chunk, model_years=25, sign=-1).compute()

    cells = CellWindow.of(window)
    assert got.shape == cells.shape == (8, 9)
    frame = np.zeros((cells.shape[0] * CELL_PX, cells.shape[1] * CELL_PX), np.float32)
    r, c = window.row0 - cells.row0 * CELL_PX, window.col0 - cells.col0 * CELL_PX
    frame[r:r + window.shape[0], c:c + window.shape[1]] = values  # outside the window = nodata
    assert got.tobytes() == annualise(cell_sums(frame), model_years=25, sign=-1).tobytes()


def test_4km_map_mosaics_parts_of_several_tiles(tmp_path):
    from fluxgraph.aggregate import write_maps
    from fluxgraph.config import load_config
    from fluxgraph.grid import PixelWindow, TileId
    from fluxgraph.writers import read_cog_tags

    a = TileId.parse("00N_110E").window
    b = TileId.parse("10N_050E").window
    wa = PixelWindow(a.row0, a.row0 + 320, a.col0, a.col0 + 480)  # 2 x 3 cells at 110E, 0N
    wb = PixelWindow(b.row0 + 160, b.row0 + 320, b.col0, b.col0 + 160)  # 1 cell at 50E, 9.96N
    parts = [(wa, {"net_flux_4km": np.full((2, 3), 1.5, np.float32)}),
             (wb, {"net_flux_4km": np.full((1, 1), -2.0, np.float32)})]
    paths = write_maps(tmp_path, parts, config=load_config(), naming="fluxgraph", tags={"model_version": "x"})
    with rasterio.open(paths["net_flux_4km"]) as src:
        data = src.read(1)
        assert src.bounds.left == pytest.approx(50.0) and src.bounds.top == pytest.approx(9.96)
        assert src.res == pytest.approx((0.04, 0.04))
        row, col = src.index(110.02, -0.02)
        assert data[row:row + 2, col:col + 3].tolist() == [[1.5] * 3] * 2
        row, col = src.index(50.02, 9.94)
        assert data[row, col] == -2.0
        assert data.sum() == pytest.approx(6 * 1.5 - 2.0)
    assert read_cog_tags(paths["net_flux_4km"])["model_version"] == "x"


def test_zonal_errors_name_the_inputs_and_the_fix(demo_run, tmp_path):
    import shapely

    from fluxgraph import FluxgraphError, zonal_stats

    zones = _zones_file(tmp_path / "z.geojson", [shapely.box(110.0, -0.05, 110.05, 0.0)], ["a"])
    with pytest.raises(FluxgraphError, match=r"nowhere.*--inputs"):
        zonal_stats(outputs=demo_run, zones=zones, by="zone", inputs=[str(tmp_path / "nowhere")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FluxgraphError, match=r"tcd2000.*--inputs"):
        zonal_stats(outputs=demo_run, zones=zones, by="zone", inputs=[str(tmp_path / "empty")])
    with pytest.raises(FluxgraphError, match="integer percent"):
        zonal_stats(outputs=demo_run, zones=zones, by="zone", tcd=["thirty"])
    with pytest.raises(FluxgraphError, match=r"\.csv or \.parquet"):
        zonal_stats(outputs=demo_run, zones=zones, by="zone", out=tmp_path / "t.xlsx")


def test_zonal_overlaps_go_to_the_later_feature_and_features_with_one_name_are_one_zone(demo_run, tmp_path):
    import shapely

    from fluxgraph import zonal_stats

    a1, b, a2 = (shapely.box(110.0, -0.05, 110.05, 0.0), shapely.box(110.03, -0.07, 110.08, -0.03),
                 shapely.box(110.06, -0.1, 110.1, -0.08))
    zones = _zones_file(tmp_path / "z.gpkg", [a1, b, a2], ["A", "B", "A"])
    totals = zonal_stats(outputs=demo_run, zones=zones, by="zone", tcd=[T_RUN]).query("loss_year == 'all'")
    totals = totals.set_index("zone")
    ds = _open(demo_run)
    x, y = np.meshgrid(ds["lon"].values, ds["lat"].values)
    inside = {name: shapely.contains_xy(g, x, y) for name, g in (("a1", a1), ("b", b), ("a2", a2))}
    masks = {"A": (inside["a1"] & ~inside["b"]) | inside["a2"], "B": inside["b"]}
    per_px = ds["net_flux_per_pixel_forest"].values.astype(np.float64)
    for zone, mask in masks.items():
        assert totals.loc[zone, "net_flux_Mg_CO2e"] == pytest.approx(per_px[mask].sum(), rel=1e-12)


def test_threshold_comes_from_the_configuration_and_names_the_maps():
    from fluxgraph.stages.create_derivative_outputs import tcd_threshold

    from fluxgraph.aggregate import map_filename
    from fluxgraph.config import load_config
    from fluxgraph.errors import ConfigError

    cfg = load_config(overrides={"stages": {"create_derivative_outputs": {"tcd_threshold": 75}},
                                 "naming": {"aggregation_date": "20260401", "model_type": "maxgain"}})
    assert tcd_threshold(cfg.stage_params("create_derivative_outputs")) == 75
    assert map_filename("net_flux_4km", cfg, naming="gfw") == \
        "net_flux_Mt_per_year_CO2e_biomass_soil__tcd75_0_04deg_modelv1_4_3_maxgain_20260401.tif"
    assert map_filename("net_flux_4km", cfg, naming="fluxgraph") == "net_flux_4km.tif"
    for bad in (30.5, "50", 101, True):
        with pytest.raises(ConfigError, match="tcd_threshold"):
            tcd_threshold({"tcd_threshold": bad})


def test_layers_command_lists_the_4km_maps():
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    res = CliRunner().invoke(app, ["layers"])
    assert res.exit_code == 0
    assert "gross_removals_AGCO2_BGCO2_Mt_per_year_all_forest_types__tcd30_0_04deg_modelv1_4_3_std_" in res.output
    assert "00N_000E_net_flux_Mg_CO2e_pixel_biomass_soil_forest_extent_2001_25.tif" in res.output


# ---- the zonal kernel against a numpy reference -------------------------------------------------------------------

@given(
    seed=st.integers(0, 2**32 - 1),
    thresholds=st.lists(st.sampled_from([0, 30, 50, 75]), min_size=1, max_size=3, unique=True),
)
def test_zonal_kernel_matches_a_numpy_group_sum(seed, thresholds):
    from fluxgraph.kernels.zonal import zonal_sums

    rng = np.random.default_rng(seed)
    shape, years = (9, 11), 5
    zone = rng.integers(-1, 3, shape).astype(np.int32)
    area = rng.uniform(500, 800, shape[0]).astype(np.float32)
    loss = rng.integers(0, years + 3, shape).astype(np.uint8)  # includes codes beyond the model years
    driver = rng.integers(0, 10, shape).astype(np.uint8)  # 8, 9: no driver
    tcd = rng.integers(0, 101, shape).astype(np.uint8)
    gain = rng.integers(0, 2, shape).astype(np.uint8)
    mangrove = np.where(rng.random(shape) < 0.1, np.float32(40), np.float32(0))
    plantation = (rng.random(shape) < 0.1).astype(np.uint8)
    fluxes = [rng.gamma(1.0, 50.0, shape).astype(np.float32) * (rng.random(shape) < 0.7) for _ in range(6)]
    got = zonal_sums(zone, area, loss, driver, tcd, gain, mangrove, plantation, *fluxes, n_zones=3,
                     thresholds=thresholds, model_years=years)

    want = np.zeros((3, len(thresholds), years + 2, 8, 7))
    pa = np.broadcast_to(area[:, None], shape)
    row = np.where(loss <= years, loss, years + 1)
    drv = np.where((driver >= 1) & (driver <= 7), driver, 0)
    for t, threshold in enumerate(thresholds):
        forest, *_ = _spec_step1(fluxes[0], pa, tcd, gain, mangrove, plantation, threshold)
        sel = forest & (zone >= 0)
        values = [pa.astype(np.float64) / 10000] + [(f * pa / 10000).astype(np.float64) for f in fluxes]
        for v, val in enumerate(values):
            np.add.at(want[:, t, :, :, v], (zone[sel], row[sel], drv[sel]), val[sel])
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("delete", [True, False])
def test_empty_forest_extent_tiles_are_deleted_as_the_original_does(tmp_path, delete):
    """Spec §13 step 6: a tile's forest-extent COGs without data are deleted (unless switched off)."""
    from pathlib import Path

    from fluxgraph.config import load_config
    from fluxgraph.runner import run

    params = {"tcd_threshold": 100, "delete_empty_forest_tiles": delete}  # no canopy is > 100 %: little forest
    cfg = load_config(overrides={"stages": {"create_derivative_outputs": params}})
    res = run(["demo://?size=100"], out=tmp_path, tiles="30N_090W,00N_110E", stages="all", config=cfg,
              progress=False)
    forest = [n for n in res.layers if n.endswith("_forest")]
    checked = 0
    for part in res.parts:
        for name in forest:
            path = tmp_path / "cog" / name / f"{part.tile}.tif"
            with_data = bool(np.any(_zarr_part(res, name, part)))
            assert path.exists() == (with_data or not delete), (name, part.tile)
            assert (str(path) in res.cogs) == path.exists()
            checked += not with_data
    assert checked >= 2  # the run had empty forest-extent layers to delete (30N_090W's emissions)
    assert all(Path(c).exists() for c in res.cogs)


def _zarr_part(res, name, part):
    import xarray as xr

    w, s, e, n = part.window.bounds
    return xr.open_zarr(res.zarr, consolidated=False)[name].sel(lat=slice(n, s), lon=slice(w, e)).values


def test_zonal_names_a_damaged_run_config_and_the_fix(tmp_path):
    from fluxgraph.errors import ConfigError
    from fluxgraph.outputs import Location
    from fluxgraph.zonal import _run_config

    assert _run_config(Location(str(tmp_path))).model_years == 25  # no config.toml: the defaults
    (tmp_path / "config.toml").write_text("[model\nmodel_years = 25\n")
    with pytest.raises(ConfigError, match=r"config\.toml is not valid TOML .*restore the file the run wrote"):
        _run_config(Location(str(tmp_path)))
    (tmp_path / "config.toml").write_text("[model]\nmodel_years = 20\n")
    assert _run_config(Location(str(tmp_path))).model_years == 20
