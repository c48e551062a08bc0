"""S3 end to end against a real S3 API: moto's server on 127.0.0.1, started by these tests.

Inputs are GFW-named GeoTIFFs uploaded to a bucket and read through s3fs (listing) and GDAL
/vsis3/ (pixels); outputs (Zarr, COGs, tables, run.json, the log) are written to a bucket and
read back. Credentials are fake values in the environment, and the secret must appear in no
output and no error message.
"""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr

from fluxgraph.config import load_config
from fluxgraph.demodata import write_demo_tiles
from fluxgraph.errors import ConfigError, StorageError
from fluxgraph.grid import TileId
from fluxgraph.runner import run
from fluxgraph.s3 import gdal_env, storage_options

pytestmark = pytest.mark.s3

TILES = "00N_110E,10N_050E"
STAGES = "net_flux,gross_emissions_biomass_soil"
SECRET = f"fgsecret{uuid.uuid4().hex}"
KEY_ID = "AKIAFLUXGRAPHTEST123"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """A moto S3 server on 127.0.0.1 with a bucket of demo input tiles; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
           "AWS_CONFIG_FILE": "/nonexistent/config"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        mp.delenv("AWS_PROFILE", raising=False)
        import s3fs

        fs = s3fs.S3FileSystem(endpoint_url=endpoint, skip_instance_cache=True)
        fs.mkdir("fg-in")
        fs.mkdir("fg-out")
        local = tmp_path_factory.mktemp("tiles")
        write_demo_tiles(local, [TileId.parse(t) for t in TILES.split(",")], size=400, seed=2)
        fs.put(str(local) + "/", "fg-in/gfw/", recursive=True)
        yield {"endpoint": endpoint, "fs": fs, "local_tiles": local}
    server.stop()


def test_options_map_to_s3fs_and_gdal():
    opts = storage_options({"anon": True, "requester_pays": True, "endpoint_url": "https://minio.example:9000",
                            "region": "eu-west-1"})
    assert opts == {"anon": True, "requester_pays": True, "endpoint_url": "https://minio.example:9000",
                    "client_kwargs": {"region_name": "eu-west-1"}}
    env = gdal_env(opts)
    assert env["AWS_NO_SIGN_REQUEST"] == "YES" and env["AWS_REQUEST_PAYER"] == "requester"
    assert env["AWS_S3_ENDPOINT"] == "minio.example:9000" and env["AWS_HTTPS"] == "YES"
    assert env["AWS_VIRTUAL_HOSTING"] == "FALSE" and env["AWS_REGION"] == "eu-west-1"
    assert storage_options(load_config().data["s3"]) == {}
    assert "AWS_NO_SIGN_REQUEST" not in gdal_env({})


@pytest.mark.parametrize("table", [{"secret_access_key": "x"}, {"endpoint_url": "ftp://x"}, {"anon": "yes"},
                                   {"bucket": "b"}])
def test_bad_s3_table_is_refused(table):
    with pytest.raises(ConfigError, match=r"\[s3\]") as err:
        storage_options(table)
    assert "x" not in str(err.value).split("secret_access_key")[-1][:3]  # the value is never echoed


def _read_cog(path: str, endpoint: str) -> np.ndarray:
    with rasterio.Env(**gdal_env({"endpoint_url": endpoint})), rasterio.open(path) as src:
        assert src.crs.to_epsg() == 4326
        return src.read(1)


def test_run_reads_and_writes_s3_like_a_local_run(tmp_path, s3):
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    endpoint, fs = s3["endpoint"], s3["fs"]
    local = run([s3["local_tiles"]], out=tmp_path / "local", tiles=TILES, stages=STAGES, progress=False)
    res = CliRunner().invoke(app, ["run", "--inputs", "s3://fg-in/gfw", "--tiles", TILES, "--stages", STAGES,
                                   "--out", "s3://fg-out/run1", "--s3-endpoint-url", endpoint, "--cluster", "none"])
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output and KEY_ID not in res.output

    keys = fs.find("fg-out/run1")
    names = {k.split("fg-out/run1/", 1)[1] for k in keys}
    assert {"run.json", "config.toml", "fluxgraph_manifest.json", "fluxgraph.zarr/zarr.json",
            "tables/emissions_by_year_driver_biomass_soil.csv"} <= names
    assert any(n.startswith("fluxgraph_log_") for n in names)
    assert not any(".partial-" in n for n in names)  # no temporary file left behind
    assert not any(n.startswith(".fluxgraph-spool") for n in names)  # the COG tiles' spool is removed

    # a STAC catalog of the bucket's COGs, uploaded with the run; its assets point into the bucket
    import json

    from fluxgraph.stac import validate_catalog

    assert "stac/catalog.json" in names
    item_keys = [n for n in names if n.startswith("stac/") and n != "stac/catalog.json"]
    assert len(item_keys) == len(local.parts)
    hrefs = {a["href"] for k in item_keys for a in json.loads(fs.cat_file(f"fg-out/run1/{k}"))["assets"].values()}
    assert hrefs == {f"s3://fg-out/run1/cog/{n}/{p.tile}.tif" for p in local.parts for n in local.layers}
    assert all(fs.exists(h) for h in hrefs)
    staged = tmp_path / "stac"
    fs.get("fg-out/run1/stac", str(staged), recursive=True)
    assert validate_catalog(staged / "catalog.json") == len(local.parts) + 1  # the catalog and its items

    opts = {"endpoint_url": endpoint}
    remote = xr.open_zarr("s3://fg-out/run1/fluxgraph.zarr", consolidated=False, storage_options=opts)
    here = xr.open_zarr(tmp_path / "local" / "fluxgraph.zarr", consolidated=False)
    compared = 0
    for part in local.parts:
        w, s, e, n = part.window.bounds
        for name in local.layers:
            a = here[name].sel(lat=slice(n, s), lon=slice(w, e)).values
            b = remote[name].sel(lat=slice(n, s), lon=slice(w, e)).values
            assert a.shape == (400, 400) and a.tobytes() == b.tobytes()
            cog_local = _read_cog(str(tmp_path / "local" / "cog" / name / f"{part.tile}.tif"), endpoint)
            cog_s3 = _read_cog(f"s3://fg-out/run1/cog/{name}/{part.tile}.tif", endpoint)
            assert cog_local.tobytes() == cog_s3.tobytes() == a.tobytes()
            compared += int(a.any())
    assert compared >= 2  # the comparison saw real, nonzero data
    assert fs.cat_file("fg-out/run1/tables/emissions_by_year_driver_biomass_soil.csv") == (
        tmp_path / "local" / "tables" / "emissions_by_year_driver_biomass_soil.csv").read_bytes()

    # the credentials appear in no output: objects, COG tags, Zarr attributes, log, config, run.json
    for key in keys:
        blob = fs.cat_file(key)
        assert SECRET.encode() not in blob and KEY_ID.encode() not in blob, key
    with rasterio.Env(**gdal_env(opts)), rasterio.open(f"s3://fg-out/run1/cog/net_flux/{local.parts[0].tile}.tif") \
            as src:
        assert src.tags()["config_digest"] and SECRET not in str(src.tags())


def test_wrong_bucket_names_it_and_the_fix(tmp_path, s3):
    opts = {"endpoint_url": s3["endpoint"]}
    with pytest.raises(StorageError, match="s3://no-such-bucket-fg") as err:
        run(["s3://no-such-bucket-fg/gfw"], out=tmp_path / "o", tiles=TILES, stages=STAGES, progress=False,
            storage_options=opts)
    assert "does not exist" in str(err.value) and SECRET not in str(err.value)
    with pytest.raises(StorageError, match="s3://no-such-out-bucket-fg/x") as err:
        run([s3["local_tiles"]], out="s3://no-such-out-bucket-fg/x", tiles=TILES, stages=STAGES, progress=False,
            storage_options=opts)
    assert "write" in str(err.value) and SECRET not in str(err.value)


def test_missing_credentials_say_where_they_come_from(tmp_path, s3, monkeypatch):
    import s3fs
    from typer.testing import CliRunner

    from fluxgraph.cli import app

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    s3fs.S3FileSystem.clear_instance_cache()  # as in a new process: no client holding earlier credentials
    res = CliRunner().invoke(app, ["run", "--inputs", "s3://fg-in/gfw", "--tiles", TILES, "--stages", STAGES,
                                   "--out", str(tmp_path / "o"), "--s3-endpoint-url", s3["endpoint"],
                                   "--cluster", "none"])
    assert res.exit_code == 2
    assert "s3://fg-in/gfw" in res.output and "NoCredentialsError" in res.output
    assert "AWS_ACCESS_KEY_ID" in res.output and "instance profile" in res.output
    assert SECRET not in res.output and not Path(tmp_path / "o" / "fluxgraph.zarr").exists()



def test_zonal_statistics_of_a_run_in_a_bucket_equal_those_of_the_same_run_on_disk(tmp_path, s3):
    """A batch run writes to a bucket; `fluxgraph zonal` then reads its store (and the inputs it recorded, also
    in the bucket) from S3 and gives the table the same run on disk gives."""
    import geopandas as gpd
    import pandas as pd
    import shapely
    from typer.testing import CliRunner

    from fluxgraph.cli import app
    from fluxgraph.zonal import zonal_stats

    endpoint, opts = s3["endpoint"], {"endpoint_url": s3["endpoint"]}
    stages = "all"
    local = tmp_path / "local"
    run([s3["local_tiles"]], out=local, tiles="00N_110E", stages=stages, progress=False)
    res = CliRunner().invoke(app, ["run", "--inputs", "s3://fg-in/gfw", "--tiles", "00N_110E", "--stages", stages,
                                   "--out", "s3://fg-out/zonal", "--s3-endpoint-url", endpoint, "--cluster", "none"])
    assert res.exit_code == 0, res.output
    zones = tmp_path / "zones.geojson"
    gpd.GeoDataFrame({"zone": ["a", "b"]}, geometry=[shapely.box(110.0, -0.1, 110.05, -0.05),
                                                     shapely.box(110.05, -0.1, 110.1, -0.02)],
                     crs="EPSG:4326").to_file(zones)
    want = zonal_stats(outputs=local, zones=zones, by="zone", tcd=[30, 50])
    got = zonal_stats(outputs="s3://fg-out/zonal", zones=zones, by="zone", tcd=[30, 50], storage_options=opts)
    totals = want[want.loss_year == "all"]
    assert (totals["forest_area_ha"] > 0).all() and (totals["gross_emissions_all_gases_Mg_CO2e"] > 0).any()
    pd.testing.assert_frame_equal(got, want)

    out = tmp_path / "z.csv"
    res = CliRunner().invoke(app, ["zonal", "--outputs", "s3://fg-out/zonal/", "--zones", str(zones), "--by", "zone",
                                   "--tcd", "30,50", "--out", str(out), "--s3-endpoint-url", endpoint,
                                   "--cluster", "none"])
    assert res.exit_code == 0, res.output
    assert SECRET not in res.output
    import io

    as_csv = {"dtype": {"loss_year": str}}
    expected = pd.read_csv(io.StringIO(want.to_csv(index=False)), **as_csv)
    pd.testing.assert_frame_equal(pd.read_csv(out, **as_csv), expected)

    res = CliRunner().invoke(app, ["zonal", "--outputs", "s3://fg-out/nothing-here", "--zones", str(zones), "--by",
                                   "zone", "--s3-endpoint-url", endpoint, "--cluster", "none"])
    assert res.exit_code == 2 and "s3://fg-out/nothing-here holds no fluxgraph.zarr" in res.output
