"""Provenance read back from real outputs (Zarr, both COG writing paths) and the run's STAC catalog."""

from __future__ import annotations

import importlib.metadata as md
import json
import shutil

import dask
import pytest
import rasterio
import xarray as xr
from rio_cogeo.cogeo import cog_validate

import fluxgraph
from fluxgraph.catalog import get_layer
from fluxgraph.config import load_config
from fluxgraph.errors import StacValidationError
from fluxgraph.provenance import parse_tags
from fluxgraph.stac import validate_catalog, write_catalog
from fluxgraph.writers import read_cog_tags

INPUTS = "demo://?size=400"
TILE = "00N_110E"
STAGES = "gross_emissions_biomass_soil,net_flux"
PROVENANCE_KEYS = {"fluxgraph_version", "model_version", "model_years", "first_year", "last_year", "config_digest",
                   "inputs", "input_patterns", "input_versions", "package_versions", "created"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("prov")
    with dask.config.set(scheduler="synchronous"):
        res = fluxgraph.run([INPUTS], out=root / "run", tiles=TILE, stages=STAGES, progress=False, annual_layers=True)
    return {"gdal": res, "stream": res}


def test_zarr_store_and_variables_carry_provenance_and_layer_metadata(runs):
    res = runs["gdal"]
    config = load_config()
    ds = xr.open_zarr(res.zarr, consolidated=False)
    assert set(ds.attrs) >= PROVENANCE_KEYS
    assert ds.attrs["model_version"] == config.model_version
    assert ds.attrs["config_digest"] == config.digest()
    assert ds.attrs["inputs"] == ["demo://?seed=0&size=400"]
    assert ds.attrs["input_versions"]["loss_prefix"] == config.naming["loss_prefix"]
    assert ds.attrs["input_patterns"]["loss_year"] == get_layer("loss_year").filename(config.naming, "{tile}")
    assert ds.attrs["package_versions"]["xarray"] == md.version("xarray")
    for name in res.layers:
        layer = get_layer(name)
        attrs = ds[name].attrs
        assert attrs["units"] == layer.units and attrs["nodata"] == layer.nodata
        assert attrs["stage"] == layer.stage and attrs.get("sign_convention", "") == layer.sign
    assert ds["net_flux"].attrs["sign_convention"].startswith("negative")


def test_every_cog_carries_the_zarr_provenance_and_its_layer_metadata(runs):
    res = runs["gdal"]
    zattrs = xr.open_zarr(res.zarr, consolidated=False).attrs
    for cog in res.cogs:
        with rasterio.open(cog) as src:
            tags = parse_tags(src.tags())
            band = src.tags(1)
            units, desc = src.units[0], src.descriptions[0]
        layer = get_layer(tags["layer"])
        assert tags["tile"] == TILE
        assert {k: tags[k] for k in PROVENANCE_KEYS} == dict(zattrs), cog
        assert parse_tags(read_cog_tags(cog)) == {k: v for k, v in tags.items()
                                                  if k != "AREA_OR_POINT" and not k.startswith("TIFFTAG_")}
        assert units == layer.units == band["units"] and desc == layer.description
        assert float(band["nodata"]) == layer.nodata
        assert band.get("sign_convention", "") == layer.sign
    valid, errors, _ = cog_validate(res.cogs[0])  # the longer header keeps the COG layout
    assert valid, errors
    annual = [c for c in res.cogs if "/annual/" in c]
    assert len(annual) == load_config().model_years
    for cog in annual:
        with rasterio.open(cog) as src:
            assert cog.split("/")[-2] == src.tags()["loss_year"]


def test_run_writes_a_catalog_that_validates_offline(runs):
    res = runs["gdal"]
    catalog = res.out / "stac" / "catalog.json"
    assert validate_catalog(catalog) == 2  # the catalog and the tile's item
    item = json.loads((res.out / "stac" / TILE / f"{TILE}.json").read_text())
    props = item["properties"]
    assert props["fluxgraph:model_version"] == "1.4.3" and props["fluxgraph:model_years"] == "2001-2025"
    assert props["start_datetime"].startswith("2001-01-01") and props["end_datetime"].startswith("2025-12-31")
    assert props["proj:code"] == "EPSG:4326" and props["proj:shape"] == [400, 400]
    assert set(item["assets"]) == {*res.layers} | {f"gross_emis_all_gases_biomass_soil_{y}" for y in range(2001, 2026)}
    nf = item["assets"]["net_flux"]
    assert nf["roles"] == ["data"] and "cloud-optimized" in nf["type"]
    assert nf["raster:bands"] == [{"nodata": 0.0, "data_type": "float32", "unit": get_layer("net_flux").units,
                                   "spatial_resolution": 0.00025}]
    with rasterio.open(catalog.parent / TILE / nf["href"]) as src:
        assert parse_tags(src.tags())["layer"] == "net_flux"


@pytest.mark.parametrize("breakage", ["data_type", "proj_shape", "no_units", "asset_missing", "no_model_version"])
def test_validation_rejects_a_broken_catalog(runs, tmp_path, breakage):
    out = tmp_path / "copy"
    shutil.copytree(runs["stream"].out, out)
    write_catalog(out)
    validate_catalog(out / "stac")
    path = out / "stac" / TILE / f"{TILE}.json"
    item = json.loads(path.read_text())
    band = item["assets"]["net_flux"]["raster:bands"][0]
    if breakage == "data_type":
        band["data_type"] = "float"
    elif breakage == "proj_shape":
        item["properties"]["proj:shape"] = [400, 400, 1]
    elif breakage == "no_units":
        del band["unit"]
    elif breakage == "asset_missing":
        (out / "cog" / "net_flux" / f"{TILE}.tif").unlink()
    else:
        del item["properties"]["fluxgraph:model_version"]
    path.write_text(json.dumps(item))
    with pytest.raises(StacValidationError):
        validate_catalog(out / "stac")


def test_stac_refuses_foreign_geotiffs_and_empty_folders(tmp_path, runs):
    with pytest.raises(StacValidationError, match="no COGs"):
        write_catalog(tmp_path)
    foreign = tmp_path / "cog" / "x" / "a.tif"
    foreign.parent.mkdir(parents=True)
    with rasterio.open(runs["gdal"].cogs[0]) as src:
        profile, data = src.profile, src.read()
    with rasterio.open(foreign, "w", **{**profile, "driver": "GTiff"}) as dst:
        dst.write(data)
    with pytest.raises(StacValidationError, match="not written by fluxgraph"):
        write_catalog(tmp_path)
