"""Runs end to end: demo source, supplied intermediates, GFW names, dry run, a real multi-process cluster."""

from __future__ import annotations

import os

import numpy as np
import pytest
import rasterio
import xarray as xr
from fluxgraph.kernels.removals import gain_year_count

from fluxgraph.config import load_config
from fluxgraph.demodata import write_demo_tiles
from fluxgraph.errors import ConfigError
from fluxgraph.grid import TileId
from fluxgraph.mosaic import open_mosaic
from fluxgraph.runner import run
from fluxgraph.writers import read_cog_tags

TILE = "00N_110E"


@pytest.mark.parametrize("layer", ["loss_year", "agb_2000", "continent_ecozone", "rf_agc_young"])
def test_demo_source_is_independent_of_chunking(layer):
    small = load_config(overrides={"grid": {"chunks": [400, 400]}})
    big = load_config(overrides={"grid": {"chunks": [4000, 4000]}})
    a = open_mosaic("demo://?size=800&seed=3", tiles=TILE, layers=[layer], config=small)[layer]
    b = open_mosaic("demo://?size=800&seed=3", tiles=TILE, layers=[layer], config=big)[layer]
    assert a.data.numblocks == (2, 2) and b.data.numblocks == (1, 1)
    assert a.values.tobytes() == b.values.tobytes()
    other = open_mosaic("demo://?size=800&seed=4", tiles=TILE, layers=[layer], config=big)[layer]
    assert other.values.tobytes() != b.values.tobytes()


@pytest.fixture(scope="module")
def demo_tiles(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo_tiles")
    write_demo_tiles(folder, [TileId.parse(TILE)], size=400, seed=1)
    return folder


def test_supplied_intermediate_short_circuits_its_stage(tmp_path, demo_tiles, write_tile):
    # supply a model extent of all ones: gain_year_count must use it instead of computing one
    import shutil

    inputs = tmp_path / "in"
    shutil.copytree(demo_tiles, inputs)
    write_tile(inputs, "model_extent", TILE, np.ones((400, 400), "uint8"))
    res = run([inputs], out=tmp_path / "out", tiles=TILE, stages="gain_year_count", progress=False)
    log = next((tmp_path / "out").glob("fluxgraph_log_*.txt")).read_text()
    assert "stages ['gain_year_count']" in log and "'model_extent'" in log.split("read")[1]
    ds = xr.open_zarr(tmp_path / "out" / "fluxgraph.zarr", consolidated=False)
    src = open_mosaic(inputs, tiles=TILE, layers=["loss_year", "gain"])
    ones = np.ones((400, 400), np.uint8)
    expected = gain_year_count(src.loss_year.values, src.gain.values, ones, ones, ones)[4]
    got = ds.gain_year_count.sel(lat=slice(0, -0.1), lon=slice(110, 110.1)).values
    assert got.tobytes() == expected.tobytes()
    assert res.summary["gain_year_count"]["nonzero"] == int((expected > 0).sum())


def test_gfw_names_for_every_intermediate(tmp_path, demo_tiles):
    res = run([demo_tiles], out=tmp_path / "out", tiles=TILE, stages="carbon_pools,gross_removals_all_forest_types",
              save_intermediates=True, naming="gfw", progress=False)
    names = {p.name for p in (tmp_path / "out" / "cog").iterdir()}
    # every COG the run lists exists: the 2000 carbon pools are not computed with the default extent "loss"
    assert sorted(os.path.basename(c) for c in res.cogs) == sorted(names - {"0_04deg"})
    assert "agc_2000" not in res.layers and "agc_emis_year" in res.layers
    for expected in (
        "00N_110E_model_extent.tif",
        "00N_110E_forest_age_category_IPCC__1_young_2_mid_3_old.tif",
        "00N_110E_annual_removal_factor_AGB_Mg_ha_IPCC_defaults_all_ages.tif",
        "00N_110E_removal_forest_type.tif",
        "00N_110E_gain_year_count_all_forest_types.tif",
        "00N_110E_gross_removals_AGCO2_BGCO2_Mg_ha_all_forest_types_2001_25.tif",
        "00N_110E_Mg_AGC_ha_emis_year.tif",
        "00N_110E_Mg_soil_C_ha_emis_year_2000.tif",
    ):
        assert expected in names
    with rasterio.open(tmp_path / "out" / "cog" / "00N_110E_Mg_soil_C_ha_emis_year_2000.tif") as src:
        assert src.dtypes[0] == "uint16" and src.nodata == 0 and read_cog_tags(src.name)["model_version"] == "1.4.3"


def test_dry_run_counts_without_computing(tmp_path):
    rep = run(["demo://?size=800"], out=tmp_path, tiles="00N_110E,30N_090W", stages="net_flux", dry_run=True)
    assert rep.parts == 2 and rep.pixels == 2 * 800 * 800
    assert rep.layers_written == 1 and rep.chunks == 4  # two 400 x 800 chunks (full-width rows) per tile
    assert rep.bytes_written == {"net_flux": 2 * 800 * 800 * 4}
    assert rep.tasks > rep.chunks and rep.bytes_read > 0
    assert not (tmp_path / "fluxgraph.zarr").exists()


@pytest.mark.cluster
def test_chain_on_a_multiprocess_cluster_equals_in_process(tmp_path):
    from distributed import Client, LocalCluster

    kw = {"tiles": "00N_110E,70N_000E", "stages": "net_flux,gross_emissions_biomass_soil", "progress": False}
    local = run(["demo://?size=400"], out=tmp_path / "sync", **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        dist = run(["demo://?size=400"], out=tmp_path / "dist", client=client, **kw)
        quiet = run(["demo://?size=400"], out=tmp_path / "quiet", client=client, tiles="00N_110E", stages="net_flux",
                    config=load_config(overrides={"run": {"dask_report": False}}), progress=False)
    assert quiet.cogs and not (tmp_path / "quiet" / "dask-report.html").exists()  # switched off
    assert dist.summary == local.summary
    assert (tmp_path / "dist" / "dask-report.html").stat().st_size > 10_000  # Dask performance report kept
    assert not (tmp_path / "sync" / "dask-report.html").exists()  # no cluster, no report
    assert dist.cluster_events == {"workers_lost": [], "tasks_retried": 0, "results_recomputed": 0}
    a = xr.open_zarr(tmp_path / "sync" / "fluxgraph.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "dist" / "fluxgraph.zarr", consolidated=False)
    for part in local.parts:  # the store spans the bounding box of both tiles: compare each tile's window
        w, s, e, n = part.window.bounds
        for name in ("net_flux", "gross_emis_all_gases_biomass_soil", "gross_emis_nodes_biomass_soil"):
            va = a[name].sel(lat=slice(n, s), lon=slice(w, e)).values
            assert va.shape == (400, 400) and va.any()
            assert va.tobytes() == b[name].sel(lat=slice(n, s), lon=slice(w, e)).values.tobytes()
    assert (tmp_path / "dist" / "tables" / "emissions_by_year_driver_biomass_soil.csv").read_text() == (
        tmp_path / "sync" / "tables" / "emissions_by_year_driver_biomass_soil.csv").read_text()


def _workbook(path, factor):
    """The shipped default tables as the original's workbook, natural-forest growth rates times ``factor``."""
    import pandas as pd

    from fluxgraph.tables import CSV_FILES, DEFAULT_TABLE_DIR, SHEET_COLUMNS, SHEET_NATURAL_GAIN

    with pd.ExcelWriter(path) as xl:
        for sheet, fname in CSV_FILES.items():
            if not (DEFAULT_TABLE_DIR / fname).exists():
                continue
            df = pd.read_csv(DEFAULT_TABLE_DIR / fname)[list(SHEET_COLUMNS[sheet])]
            if sheet == SHEET_NATURAL_GAIN:
                for col in df.columns[1:]:
                    df[col] = df[col] * factor
            df.to_excel(xl, sheet_name=sheet, index=False)


def test_cli_runs_with_the_originals_workbook_and_then_net_flux(tmp_path, demo_tiles):
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    _workbook(tmp_path / "T.xlsx", 2.0)
    args = ["run", "--inputs", str(demo_tiles), "--tiles", TILE, "--stages",
            "carbon_pools,gross_removals_all_forest_types", "--save-intermediates", "--naming", "gfw",
            "--removal-table", str(tmp_path / "T.xlsx"), "--cluster", "none"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x2")])
    assert res.exit_code == 0, res.output
    assert "gross_removals" in res.output
    _workbook(tmp_path / "T1.xlsx", 1.0)
    args[args.index(str(tmp_path / "T.xlsx"))] = str(tmp_path / "T1.xlsx")
    assert CliRunner().invoke(app, [*args, "--out", str(tmp_path / "x1")]).exit_code == 0
    def read(run_dir, name):
        with rasterio.open(tmp_path / run_dir / "cog" / f"00N_110E_{name}.tif") as src:
            return src.read(1)

    rate = "annual_removal_factor_AGB_Mg_ha_IPCC_defaults_all_ages"
    doubled, single = read("x2", rate), read("x1", rate)
    # doubled young rates also move some pixels between age classes (AGB <= 20 x young rate): compare the rest
    same_age = read("x2", "forest_age_category_IPCC__1_young_2_mid_3_old") == read(
        "x1", "forest_age_category_IPCC__1_young_2_mid_3_old")
    assert single.any() and same_age.mean() > 0.5
    assert np.array_equal(doubled[same_age], single[same_age] * np.float32(2))  # the workbook's rates were used
    # then net flux from the same inputs
    res = CliRunner().invoke(app, ["run", "--inputs", str(demo_tiles), "--tiles", TILE, "--stages", "net_flux",
                                   "--naming", "gfw", "--cluster", "none", "--out", str(tmp_path / "nf")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "nf" / "cog" / "00N_110E_net_flux_Mg_CO2e_ha_biomass_soil_2001_25.tif").exists()


def test_chain_is_independent_of_chunking_and_of_supplying_an_intermediate(tmp_path, demo_tiles):
    small = load_config(overrides={"grid": {"chunks": [400, 400]}})
    kw = {"tiles": TILE, "stages": "net_flux", "progress": False, "naming": "gfw"}
    run([demo_tiles], out=tmp_path / "a", config=small, save_intermediates=True, **kw)
    # the same chain, reading the computed removal_forest_type and gain years instead of computing them
    import shutil

    inputs = tmp_path / "in"
    shutil.copytree(demo_tiles, inputs)
    for name in ("00N_110E_removal_forest_type.tif", "00N_110E_gain_year_count_all_forest_types.tif",
                 "00N_110E_annual_removal_factor_AGC_Mg_ha_all_forest_types.tif",
                 "00N_110E_annual_removal_factor_BGC_Mg_ha_all_forest_types.tif"):
        shutil.copy(tmp_path / "a" / "cog" / name, inputs / name)
    run([inputs], out=tmp_path / "b", **kw)
    log = next((tmp_path / "b").glob("fluxgraph_log_*.txt")).read_text()
    assert "'gain_year_count'" not in log.split("stages")[1].split("read")[0]
    with rasterio.open(tmp_path / "a" / "cog" / "00N_110E_net_flux_Mg_CO2e_ha_biomass_soil_2001_25.tif") as a, \
            rasterio.open(tmp_path / "b" / "cog" / "00N_110E_net_flux_Mg_CO2e_ha_biomass_soil_2001_25.tif") as b:
        va, vb = a.read(1), b.read(1)
    assert va.any() and va.tobytes() == vb.tobytes()


def test_key_outputs_are_written_alone_with_the_values_of_a_full_run(tmp_path):
    kw = {"tiles": TILE, "progress": False}
    key = run(["demo://?size=200"], out=tmp_path / "key", config=load_config(overrides={"run": {"outputs": ["key"]}}),
              **kw)
    full = run(["demo://?size=200"], out=tmp_path / "full", stages="all", **kw)
    assert key.layers == ["gross_emis_all_gases_biomass_soil", "gross_removals", "net_flux"]
    assert len(full.layers) > 20 and set(key.layers) < set(full.layers)
    a = xr.open_zarr(tmp_path / "key" / "fluxgraph.zarr", consolidated=False)
    b = xr.open_zarr(tmp_path / "full" / "fluxgraph.zarr", consolidated=False)
    assert sorted(set(a.data_vars) - {"spatial_ref"}) == sorted(key.layers)
    w, s, e, n = key.parts[0].window.bounds
    for name in key.layers:
        va = a[name].sel(lat=slice(n, s), lon=slice(w, e)).values
        assert va.any() and va.tobytes() == b[name].sel(lat=slice(n, s), lon=slice(w, e)).values.tobytes()


def test_unknown_output_layer_is_refused_with_the_fix(tmp_path):
    cfg = load_config(overrides={"run": {"outputs": ["net_flux", "gross_emis_everything"]}})
    with pytest.raises(ConfigError, match=r"'gross_emis_everything' is not a layer any stage produces.*stages"):
        run(["demo://?size=400"], out=tmp_path, tiles=TILE, config=cfg, progress=False)


def test_parts_are_built_only_as_they_are_submitted(tmp_path, monkeypatch):
    """A run never holds every part's graph: with one part in flight, build and commit alternate."""
    import fluxgraph.runner as runner
    from fluxgraph.resume import Manifest

    events: list[str] = []
    build, record = runner.build_part, Manifest.record

    def counting_build(*args, **kwargs):
        events.append("build")
        return build(*args, **kwargs)

    def counting_record(self, *args, **kwargs):
        events.append("done")
        return record(self, *args, **kwargs)

    monkeypatch.setattr(runner, "build_part", counting_build)
    monkeypatch.setattr(Manifest, "record", counting_record)
    cfg = load_config(overrides={"run": {"parts_in_flight": 1}})
    res = run(["demo://?size=200"], out=tmp_path, tiles="00N_110E,30N_090W,10S_040E", stages="net_flux",
              config=cfg, progress=False)
    assert len(res.parts) == 3 and res.computed_parts == 3
    assert events == ["build", "done"] * 3


def test_a_rerun_into_the_same_folder_with_another_zarr_codec_reads_back(tmp_path):
    # workers keep Zarr arrays open between runs (here: this process); a store re-created with another
    # codec must not be written with the previous one's
    kw = {"tiles": "00N_110E", "stages": "net_flux", "progress": False}
    first = run(["demo://?size=400"], out=tmp_path, config=load_config(overrides={"run": {"zarr_codec": "zstd"}}),
                **kw)
    second = run(["demo://?size=400"], out=tmp_path, config=load_config(overrides={"run": {"zarr_codec": "gzip"}}),
                 **kw)
    ds = xr.open_zarr(tmp_path / "fluxgraph.zarr", consolidated=False)
    assert ds.net_flux.encoding["compressors"][0].to_dict()["name"] == "gzip"
    w, s, e, n = second.parts[0].window.bounds
    values = ds.net_flux.sel(lat=slice(n, s), lon=slice(w, e)).values
    assert np.count_nonzero(values) == first.summary["net_flux"]["nonzero"] > 0
