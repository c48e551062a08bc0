"""Lazy mosaics from real GeoTIFF tiles: partial tiles, missing tiles, off-grid files, slicing."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine

from fluxgraph.config import load_config
from fluxgraph.errors import GridMismatchError, MissingLayerError
from fluxgraph.graph import plan
from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.mosaic import Mosaic, Region, open_mosaic
from fluxgraph.sources import record_reads


def _ramp(h, w, dtype="uint8", start=1):
    return (np.arange(h * w).reshape(h, w) % 200 + start).astype(dtype)


def test_partial_tiles_keep_their_window(tmp_path, write_tile):
    # 320 x 320 windows at the top-left corner of two adjacent tiles
    for tile in ("00N_000E", "00N_010E"):
        write_tile(tmp_path, "tcd2000", tile, _ramp(320, 320))
        write_tile(tmp_path, "loss_year", tile, _ramp(320, 320) % 26)
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E,00N_010E"), layers=["tcd2000", "loss_year"])
    assert [p.window.shape for p in m.parts] == [(320, 320), (320, 320)]
    part = m.parts[0]
    tcd = m.read("tcd2000", part.window)
    assert tcd.shape == (320, 320)
    np.testing.assert_array_equal(tcd.values, _ramp(320, 320))
    assert tcd.lat.values[0] == pytest.approx(-0.000125) and tcd.lon.values[0] == pytest.approx(0.000125)
    ds = open_mosaic(tmp_path, tiles="00N_000E", layers=["tcd2000"])
    assert ds.tcd2000.shape == (320, 320) and ds.rio.crs.to_epsg() == 4326


def test_missing_optional_tile_reads_fill(tmp_path, write_tile):
    write_tile(tmp_path, "tcd2000", "00N_000E", _ramp(400, 400))
    write_tile(tmp_path, "tcd2000", "00N_010E", _ramp(400, 400))
    write_tile(tmp_path, "bgb_agb_ratio", "00N_000E", np.full((400, 400), 0.5, "float32"))
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E,00N_010E"), layers=["tcd2000", "bgb_agb_ratio", "peat"])
    second = m.parts[1].window
    # the BGB:AGB ratio of a tile without a file is 0.26 (spec/stages.md §0, §8), other layers 0
    assert np.all(m.read("bgb_agb_ratio", second).values == np.float32(0.26))
    assert np.all(m.read("bgb_agb_ratio", m.parts[0].window).values == np.float32(0.5))
    assert np.all(m.read("peat", second).values == 0)
    # presence is a per-tile fact: every pixel of 00N_000E in the window, none of 00N_010E
    assert int(m.present("bgb_agb_ratio", m.window).sum()) == 400 * 40000
    assert not m.has("bgb_agb_ratio", TileId.parse("00N_010E"))


def test_missing_required_layer_names_layer_tile_and_paths(tmp_path, write_tile):
    write_tile(tmp_path, "loss_year", "00N_000E", _ramp(400, 400) % 26)
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E"), layers=["loss_year", "tcd2000"])
    tile = m.parts[0].tile
    with pytest.raises(MissingLayerError) as err:
        plan(["tcd2000"], m.available(tile), config=load_config(), tile=tile,
             tried=lambda n: m.tried_paths(n, tile), stages={})
    msg = str(err.value)
    assert "'tcd2000'" in msg and "00N_000E" in msg
    assert "Hansen_GFC2014_treecover2000_00N_000E.tif" in msg and str(tmp_path) in msg


@pytest.mark.parametrize(
    ("kind", "match"),
    [
        ("half_pixel", "off the pixel grid"),
        ("resolution", "pixel size"),
        ("crs", "CRS is"),
        ("outside", "not inside its tile"),
    ],
)
def test_off_grid_files_are_refused(tmp_path, write_tile, kind, match):
    tw = TileId.parse("00N_000E").window
    west, _, _, north = tw.bounds
    transform = {
        "half_pixel": Affine(0.00025, 0, west + 0.000125, 0, -0.00025, north),
        "resolution": Affine(0.0003, 0, west, 0, -0.0003, north),
        "crs": None,
        "outside": Affine(0.00025, 0, west - 1.0, 0, -0.00025, north),
    }[kind]
    crs = "EPSG:3857" if kind == "crs" else "EPSG:4326"
    path = write_tile(tmp_path, "tcd2000", "00N_000E", _ramp(40, 40), transform=transform, crs=crs)
    with pytest.raises(GridMismatchError, match=match) as err:
        Mosaic([tmp_path], Region.parse(tiles="00N_000E"), layers=["tcd2000"])
    assert (str(path) in str(err.value) and "gdalwarp" in str(err.value)) or kind == "outside"


def test_bbox_slice_reads_only_touched_chunks(tmp_path, write_tile):
    write_tile(tmp_path, "tcd2000", "00N_000E", _ramp(1200, 1200))
    cfg = load_config(overrides={"grid": {"chunks": [400, 400]}})
    ds = open_mosaic(tmp_path, tiles="00N_000E", layers=["tcd2000"], config=cfg)
    assert ds.tcd2000.data.numblocks == (3, 3)
    # 0.05 deg x 0.05 deg = 200 x 200 px inside the centre chunk (rows/cols 400..800)
    sub = ds.tcd2000.sel(lat=slice(-0.1, -0.15), lon=slice(0.11, 0.16))
    with record_reads() as reads:
        values = sub.values
    assert values.shape == (200, 200)
    np.testing.assert_array_equal(values, _ramp(1200, 1200)[400:600, 440:640])
    tw = TileId.parse("00N_000E").window
    assert reads == [(str(tmp_path / "Hansen_GFC2014_treecover2000_00N_000E.tif"),
                      PixelWindow(tw.row0 + 400, tw.row0 + 800, tw.col0 + 400, tw.col0 + 800))]


def test_bbox_region_clips_tiles(tmp_path, write_tile):
    write_tile(tmp_path, "tcd2000", "00N_000E", _ramp(800, 800))
    ds = open_mosaic(tmp_path, bbox="0.05,-0.1,0.1,-0.05", layers=["tcd2000"])
    assert ds.tcd2000.shape == (200, 200)
    np.testing.assert_array_equal(ds.tcd2000.values, _ramp(800, 800)[200:400, 200:400])


def test_real_strip_reads_like_rasterio(sample_dir):
    cfg = load_config(overrides={"naming": {"file_suffix": "_top_005deg"}})
    ds = open_mosaic(sample_dir, tiles="00N_000E", config=cfg)
    expected = {"agb_2000": "int16", "mangrove_agb_2000": "float32", "continent_ecozone": "int16",
                "climate_domain": "int16", "elevation": "int16", "precipitation": "int32",
                "agc_emis_year": "float32"}
    assert {k: str(v.dtype) for k, v in ds.data_vars.items()} == expected
    assert ds.sizes == {"lat": 20, "lon": 40000}
    with rasterio.open(sample_dir / "00N_000E_mangrove_agb_t_ha_2000_top_005deg.tif") as src:
        direct = src.read(1)
    np.testing.assert_array_equal(ds.mangrove_agb_2000.values, direct)
    codes = np.unique(ds.continent_ecozone.values)
    assert set(codes.tolist()) <= {0, 1020} and 1020 in codes  # coastal Gabon (spec/inputs.md §2.3)


def test_the_reads_of_a_chunk_share_one_anchor(tmp_path, write_tile):
    write_tile(tmp_path, "tcd2000", "00N_000E", _ramp(800, 1200))
    write_tile(tmp_path, "loss_year", "00N_000E", _ramp(800, 1200) % 26)
    cfg = load_config(overrides={"grid": {"chunks": [400, 400]}})
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E"), layers=["tcd2000", "loss_year"], config=cfg)
    a, b = (m.read(n, m.parts[0].window).data for n in ("tcd2000", "loss_year"))
    deps = (a + b).__dask_graph__().get_all_dependencies()
    anchors = {k: {d for d in deps[k] if d[0].startswith("anchor-")} for k in deps if k[0] == a.name}
    assert len(anchors) == 6
    for (_, i, j), found in anchors.items():
        assert len(found) == 1 and next(iter(found))[1:] == (i, j)
        assert deps[(b.name, i, j)] == found  # the other layer's read of the same chunk hangs on the same one


@pytest.mark.cluster
@pytest.mark.timeout(120)
def test_a_chunks_reads_run_on_one_worker(tmp_path, write_tile):
    """On a real two-process cluster (work stealing off, so only placement decides), every layer of a chunk is
    read on the worker that computes the chunk: no block crosses between workers."""
    import dask
    from distributed import Client, LocalCluster, get_task_stream

    names = ["tcd2000", "loss_year", "peat", "gain"]
    for k, n in enumerate(names):
        write_tile(tmp_path, n, "00N_000E", (_ramp(1600, 1600) + k) % 2)
    cfg = load_config(overrides={"grid": {"chunks": [400, 400]}})
    m = Mosaic([tmp_path], Region.parse(tiles="00N_000E"), layers=names, config=cfg)
    arrays = [m.read(n, m.parts[0].window).data for n in names]
    total = arrays[0].astype("int32") + arrays[1] + arrays[2] + arrays[3]
    with dask.config.set({"distributed.scheduler.work-stealing": False}), \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        expected = sum(((_ramp(1600, 1600) + k) % 2).astype("int32") for k in range(4))
        with get_task_stream(client) as stream:
            np.testing.assert_array_equal(client.compute(total, optimize_graph=False).result(), expected)
        ran_on: dict[tuple[int, int], set[str]] = {}
        for event in stream.data:
            key = event["key"]
            if isinstance(key, tuple) and str(key[0]).startswith("read-"):
                ran_on.setdefault(key[1:], set()).add(event["worker"])
    assert len(ran_on) == 16
    assert all(len(workers) == 1 for workers in ran_on.values()), ran_on
    assert len(set().union(*ran_on.values())) == 2  # both workers read
