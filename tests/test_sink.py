"""The one-pass part sink: the same COG bytes as odc-geo's writer, the same Zarr chunks, any chunking."""

from __future__ import annotations

import os

import dask
import dask.array as da
import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from fluxgraph.kernels.stats import block_stats, filled_tiles
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from rio_cogeo.cogeo import cog_validate

from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.sink import CogFormat, ZarrTarget, cog_levels, cog_target, part_sink
from fluxgraph.writers import create_zarr_store, write_cog, write_zarr_region, zarr_chunks

TILE = TileId.parse("10S_040E")


def _window(shape, offset=(0, 0)):
    tw = TILE.window
    r, c = tw.row0 + offset[0], tw.col0 + offset[1]
    return PixelWindow(r, r + shape[0], c, c + shape[1])


def _arr(name, win, values, chunks):
    data = da.from_array(values, chunks=win.chunks(chunks))
    return xr.DataArray(data, dims=("lat", "lon"), coords={"lat": win.lat(), "lon": win.lon()}, name=name)


def _values(shape, dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    values = np.where(rng.random(shape) < 0.2, rng.random(shape) * 100, 0).astype(dtype)
    values[: shape[0] // 3] = 0  # whole empty tiles and chunks
    return values


def _sink_cog(tmp_path, name, win, values, chunks, *, overviews=True, level=6, tags=None, encoder="libdeflate"):
    path = str(tmp_path / "sink" / f"{name}.tif")
    target = cog_target(name, name, path, tile=TILE, tags=tags)
    spool = tmp_path / "spool"
    sink = part_sink({name: _arr(name, win, values, chunks)}, win, zarr=None, zarr_names=[], stats_names=[name],
                     cogs=[target], fmt=CogFormat("deflate", level, overviews, encoder), spool=str(spool))
    result = dask.compute(sink.finish(dask.optimize(*sink.chunk_tasks)), optimize_graph=False)[0]
    return path, result


@pytest.mark.parametrize(("shape", "chunks", "offset", "overviews"), [
    ((1000, 1200), (400, 400), (0, 0), True),      # chunks on tile edges
    ((800, 2000), (400, 40000), (0, 0), True),     # whole rows, as the default
    ((1000, 1200), (400, 40000), (0, 0), False),   # no overviews
    ((401, 400), (400, 400), (0, 0), True),        # odd: no overviews possible
    ((1200, 2800), (400, 400), (200, 0), True),    # a cut at 200 rows: chunk edges off the COG tiles
    ((1000, 2400), (800, 1200), (0, 400), True),   # chunk columns off the 800-px tile columns
])
def test_cogs_are_byte_identical_to_odc_geo_writer(tmp_path, shape, chunks, offset, overviews):
    win = _window(shape, offset)
    values = _values(shape)
    tags = {"model_version": "1.4.3"}
    path, result = _sink_cog(tmp_path, "net_flux", win, values, chunks, overviews=overviews, tags=tags)
    ref = str(tmp_path / "ref" / "net_flux.tif")
    dask.compute(write_cog(_arr("net_flux", win, values, (400, 800)), win, ref, overviews=overviews,
                           tags={"model_version": "1.4.3"}, level=6))
    assert result["cogs"] == [path]
    assert not (tmp_path / "spool").exists()  # removed once the part's files are written
    valid, errors, _ = cog_validate(path)
    assert valid, errors
    with open(path, "rb") as a, open(ref, "rb") as b:
        assert a.read() == b.read()
    assert not [f for f in os.listdir(os.path.dirname(path)) if f.startswith(".")]  # no temporary file left
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(1), values)
        n = len(src.overviews(1))
    assert n == len(cog_levels(shape, overviews=overviews).shapes) - 1
    for k in range(n):
        with rasterio.open(path, overview_level=k) as ovr:
            step = 2 ** (k + 1)
            np.testing.assert_array_equal(ovr.read(1), values[step - 1::step, step - 1::step])


@pytest.mark.parametrize(("encoder", "level"), [("zlib-ng", 1), ("zlib-ng", 2), ("isal", 1), ("isal", 3)])
def test_isal_and_zlib_ng_cogs_are_valid_deflate_cogs_with_the_same_pixels(tmp_path, encoder, level):
    shape, chunks = (1200, 2000), (400, 40000)
    win = _window(shape)
    values = _values(shape)
    path, _ = _sink_cog(tmp_path, "net_flux", win, values, chunks, level=level, encoder=encoder)
    ref = str(tmp_path / "ref.tif")
    _sink_cog(tmp_path / "ref", "net_flux", win, values, chunks, level=level)  # libdeflate, odc-geo's bytes
    ref = str(tmp_path / "ref" / "sink" / "net_flux.tif")
    valid, errors, _ = cog_validate(path)
    assert valid, errors
    with open(path, "rb") as a, open(ref, "rb") as b:
        assert a.read() != b.read()  # another encoder: other bytes, same standard
    with rasterio.open(path) as src, rasterio.open(ref) as r:
        assert src.compression.name == "deflate" and src.profile["blockysize"] == 400
        np.testing.assert_array_equal(src.read(1), values)
        assert src.overviews(1) == r.overviews(1)
        assert src.tags() == r.tags()
    import tifffile

    with tifffile.TiffFile(path) as tf:  # a reader that is not GDAL decodes every level
        for k, page in enumerate(tf.pages):
            step = 2 ** k
            np.testing.assert_array_equal(page.asarray(), values[step - 1::step, step - 1::step])


def test_unknown_deflate_encoder_is_refused():
    from fluxgraph.errors import ConfigError

    with pytest.raises(ConfigError, match="zlib-ng"):
        CogFormat("deflate", 1, True, "zlib")


@pytest.mark.parametrize(("encoder", "level", "ok"), [("isal", 0, True), ("isal", 3, True), ("isal", 4, False),
                                                      ("isal", 6, False), ("zlib-ng", 9, True), ("zlib-ng", 10, False),
                                                      ("libdeflate", 12, True)])
def test_deflate_levels_are_checked_per_encoder(encoder, level, ok):
    from fluxgraph.config import load_config
    from fluxgraph.errors import ConfigError

    overrides = {"run": {"cog_deflate_encoder": encoder, "cog_level": level}}
    if ok:
        assert CogFormat("deflate", level, True, encoder).level == level
        load_config(overrides=overrides)
        return
    with pytest.raises(ConfigError, match=rf"level.* = {level} does not suit the {encoder} deflate encoder"):
        CogFormat("deflate", level, True, encoder)
    with pytest.raises(ConfigError, match=rf"run.cog_level = {level} does not suit"):
        load_config(overrides=overrides)
    load_config(overrides={"run": {**overrides["run"], "cog_compress": "zstd"}})  # the level is zstd's then


def test_statistics_match_numpy(tmp_path):
    win = _window((1200, 1600))
    values = _values(win.shape)
    _, result = _sink_cog(tmp_path, "net_flux", win, values, (400, 800))
    st_ = result["stats"]["net_flux"]
    assert st_["nonzero"] == np.count_nonzero(values)
    assert st_["min"] == values.min() and st_["max"] == values.max()
    from fluxgraph.grid import row_pixel_area_m2

    area = row_pixel_area_m2(win.row0, win.row1)
    expected = float((values.astype(np.float64).sum(axis=1) * area).sum()) / 1e10
    assert st_["total_Mt"] == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("zstd_level", [None, 1, -3])
@pytest.mark.parametrize(("offset", "chunks"), [((0, 0), (400, 40000)), ((400, 800), (400, 800)),
                                                ((200, 300), (400, 1200))])
def test_zarr_chunks_equal_xarray_region_writes(tmp_path, offset, chunks, zstd_level):
    shape = (1200, 2400)
    win = _window(shape, offset)
    values = {"net_flux": _values(shape), "gross_emis_nodes_biomass_soil": _values(shape, "uint16", seed=1)}
    stores = {}
    for label in ("sink", "xarray"):
        store = str(tmp_path / f"{label}.zarr")
        sw = create_zarr_store(store, list(values), win, chunks, zstd_level=zstd_level)
        arrs = {n: _arr(n, win, v, chunks) for n, v in values.items()}
        if label == "sink":
            rows, cols = win.relative_to(sw)
            target = ZarrTarget(store, (rows.start, cols.start), zarr_chunks(chunks))
            sink = part_sink(arrs, win, zarr=target, zarr_names=list(arrs), stats_names=[], cogs=[])
            dask.compute(sink.finish(dask.optimize(*sink.chunk_tasks)), optimize_graph=False)
        else:
            dask.compute(write_zarr_region(store, arrs, win, sw))
        stores[label] = store
    for name in values:
        a = zarr.open_array(stores["sink"], path=name, mode="r")
        b = zarr.open_array(stores["xarray"], path=name, mode="r")
        np.testing.assert_array_equal(a[:], b[:])
        chunk_files = {lbl: sorted(os.listdir(os.path.join(s, name, "c")) if os.path.exists(os.path.join(s, name, "c"))
                                   else []) for lbl, s in stores.items()}
        listing = {lbl: sorted(_walk(os.path.join(s, name, "c"))) for lbl, s in stores.items()}
        assert listing["sink"] == listing["xarray"]  # the same chunks stored: none holding only nodata
        assert chunk_files["sink"]
        for rel in listing["sink"]:  # chunks written directly are the bytes zarr-python writes
            with open(os.path.join(stores["sink"], name, "c", rel), "rb") as fa, \
                    open(os.path.join(stores["xarray"], name, "c", rel), "rb") as fb:
                assert fa.read() == fb.read(), rel


def test_zarr_arrays_with_other_codecs_are_written_through_zarr(tmp_path):
    from zarr.codecs import BloscCodec

    from fluxgraph.sink import _chunk_writer, _write_zarr

    values = _values((800, 2400))
    arrays = {}
    for label, compressors in (("blosc", [BloscCodec(cname="lz4")]), ("zstd", None)):
        store = str(tmp_path / f"{label}.zarr")
        kw = {"compressors": compressors} if compressors else {}
        zarr.create_array(store, name="net_flux", shape=(1200, 3200), chunks=(400, 800), dtype="float32",
                          fill_value=0.0, zarr_format=3, **kw)
        target = ZarrTarget(store, (0, 0), (400, 800))
        assert (_chunk_writer(store, "net_flux", (), (400, 800)) is None) == (label == "blosc")
        _write_zarr(values, "net_flux", target, 400, 800, 0.0)
        arrays[label] = zarr.open_array(store, path="net_flux", mode="r")[:]
    for got in arrays.values():
        np.testing.assert_array_equal(got[400:1200, 800:3200], values)
        assert not got[:400].any() and not got[:, :800].any()


def _walk(root):
    for dirpath, _, files in os.walk(root):
        for f in files:
            yield os.path.relpath(os.path.join(dirpath, f), root)


@given(arrays(np.float32, st.tuples(st.integers(1, 40), st.integers(1, 40)),
              elements=st.sampled_from([0.0, 0.0, 0.0, 1.5, -2.0, np.nan])),
       st.integers(1, 9), st.integers(1, 9), st.integers(0, 8), st.integers(0, 8))
def test_filled_tiles_equals_numpy(block, th, tw, lead_r, lead_c):
    lead_r, lead_c = lead_r % th, lead_c % tw
    got = filled_tiles(block, 0.0, th, tw, lead_r, lead_c)
    padded = np.zeros((lead_r + block.shape[0], lead_c + block.shape[1]), np.float32)
    padded[lead_r:, lead_c:] = block
    nr, nc = -(-padded.shape[0] // th), -(-padded.shape[1] // tw)
    expected = np.array([[bool(np.any(padded[i * th:(i + 1) * th, j * tw:(j + 1) * tw] != 0)) for j in range(nc)]
                         for i in range(nr)])
    np.testing.assert_array_equal(got, expected)


def test_block_stats_and_filled_tiles_agree_on_empty():
    block = np.zeros((5, 7), np.float32)
    assert not filled_tiles(block, 0, 2, 3).any()
    assert block_stats(block, np.ones(5))[0] == 0


def test_sink_refuses_unalike_chunks():
    win = _window((800, 800))
    a = _arr("net_flux", win, _values(win.shape), (400, 400))
    b = _arr("net_flux", win, _values(win.shape), (800, 800))
    from fluxgraph.errors import ConfigError

    with pytest.raises(ConfigError, match="not chunked alike"):
        part_sink({"a": a, "b": b}, win, zarr=None, zarr_names=[], stats_names=[], cogs=[])


@pytest.mark.parametrize(("offset", "chunks", "encoder"), [((0, 0), (400, 40000), "isal"),
                                                           ((400, 800), (400, 800), "isal"),
                                                           ((400, 800), (400, 800), "zlib-ng"),
                                                           ((200, 300), (400, 1200), "isal")])
def test_gzip_zarr_chunks_share_the_cog_tiles_deflate_streams(tmp_path, offset, chunks, encoder):
    import gzip

    import tifffile

    shape = (1200, 2400)
    win = _window(shape, offset)
    values = {"net_flux": _values(shape), "gross_emis_nodes_biomass_soil": _values(shape, "uint16", seed=1)}
    store = str(tmp_path / "gz.zarr")
    sw = create_zarr_store(store, list(values), win, chunks, codec="gzip", gzip_level=1)
    rows, cols = win.relative_to(sw)
    target = ZarrTarget(store, (rows.start, cols.start), zarr_chunks(chunks), deflate_encoder=encoder)
    arrs = {n: _arr(n, win, v, chunks) for n, v in values.items()}
    cogs = [cog_target(n, n, str(tmp_path / "cog" / f"{n}.tif"), tile=TILE) for n in values]
    sink = part_sink(arrs, win, zarr=target, zarr_names=list(arrs), stats_names=[], cogs=cogs,
                     fmt=CogFormat("deflate", 1, True, encoder), spool=str(tmp_path / "spool"))
    dask.compute(sink.finish(dask.optimize(*sink.chunk_tasks)), optimize_graph=False)
    for name, v in values.items():
        arr = zarr.open_array(store, path=name, mode="r")
        got = arr[rows, cols]
        np.testing.assert_array_equal(got, v)
        with rasterio.open(tmp_path / "cog" / f"{name}.tif") as src:
            np.testing.assert_array_equal(src.read(1), v)
        root = os.path.join(store, name, "c")
        members = {}
        for rel in _walk(root):
            with open(os.path.join(root, rel), "rb") as fh:
                members[rel] = fh.read()
        assert members
        for data in members.values():  # standard gzip members, readable without zarr
            assert data[:3] == b"\x1f\x8b\x08" and len(gzip.decompress(data)) == np.prod(target.chunks) * v.itemsize
        # aligned: the COG's level-0 tiles are the Zarr chunks' deflate data, byte for byte
        if target.chunks == (400, 800) and rows.start % 400 == 0 and cols.start % 800 == 0:
            path = str(tmp_path / "cog" / f"{name}.tif")
            with tifffile.TiffFile(path) as tf, open(path, "rb") as fh:
                blob = fh.read()
                page = tf.pages[0]
                tiles = [blob[o:o + c] for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)]
            bodies = {bytes(m[10:-8]) for m in members.values()}
            assert {t[2:-4] for t in tiles if t[2:-4] in bodies} == bodies


def test_unknown_zarr_codec_is_refused():
    from fluxgraph.config import load_config
    from fluxgraph.errors import ConfigError

    with pytest.raises(ConfigError, match="zarr_codec must be one of zstd, gzip"):
        load_config(overrides={"run": {"zarr_codec": "lz4"}})


def test_gzip_chunks_of_a_store_beyond_isal_levels_are_deflated_by_zlib_ng():
    from fluxgraph.sink import _chunk_encoder

    assert _chunk_encoder("isal", 1) == "isal"
    assert _chunk_encoder("isal", 6) == "zlib-ng"  # a store made with level 6: ISA-L has levels 0-3 only
    assert _chunk_encoder("libdeflate", 1) == "zlib-ng"
    assert _chunk_encoder("zlib-ng", 9) == "zlib-ng"


@pytest.mark.parametrize("codec", ["zstd", "gzip"])
@pytest.mark.parametrize(("offset", "chunks"), [((0, 0), (400, 40000)), ((400, 800), (400, 1600)),
                                                ((200, 300), (400, 1200)), ((0, 0), (800, 2400))])
def test_sharded_stores_hold_the_values_of_unsharded_ones_one_file_per_shard(tmp_path, offset, chunks, codec):
    """The sink writes each dask chunk's Zarr chunks into one shard file (index and CRC-32C its own); zarr-python
    reads back the same values as from a store of plain chunks, including the chunks that a window starting
    inside a chunk only half covers, and checks each shard index's CRC-32C on the way."""
    import struct

    import google_crc32c

    from fluxgraph.sink import _chunk_writer

    shape = (1200, 2400)
    win = _window(shape, offset)
    values = {"net_flux": _values(shape), "gross_emis_nodes_biomass_soil": _values(shape, "uint16", seed=1)}
    values["net_flux"][:400] = 0  # a row of chunks holding only nodata: no shard is written for it
    got = {}
    for shards in (True, False):
        store = str(tmp_path / f"s{int(shards)}.zarr")
        sw = create_zarr_store(store, list(values), win, chunks, codec=codec, shards=shards)
        rows, cols = win.relative_to(sw)
        target = ZarrTarget(store, (rows.start, cols.start), zarr_chunks(chunks))
        arrs = {n: _arr(n, win, v, chunks) for n, v in values.items()}
        cogs = [cog_target(n, n, str(tmp_path / f"cog{int(shards)}" / f"{n}.tif"), tile=TILE) for n in values]
        sink = part_sink(arrs, win, zarr=target, zarr_names=list(arrs), stats_names=[], cogs=cogs,
                         fmt=CogFormat("deflate", 1, True, "isal"), spool=str(tmp_path / f"spool{int(shards)}"))
        dask.compute(sink.finish(dask.optimize(*sink.chunk_tasks)), optimize_graph=False)
        got[shards] = {n: zarr.open_array(store, path=n, mode="r") for n in values}
        for name, v in values.items():
            np.testing.assert_array_equal(got[shards][name][rows, cols], v)
    for name, v in values.items():
        sharded, plain = got[True][name], got[False][name]
        assert sharded.shards == tuple(chunks) and plain.shards is None
        np.testing.assert_array_equal(sharded[:], plain[:])
        files = sorted(_walk(os.path.join(str(tmp_path / "s1.zarr"), name, "c")))
        r, c = np.nonzero(v)
        lattice = set(zip(((win.row0 + r) // chunks[0]).tolist(), ((win.col0 + c) // chunks[1]).tolist(),
                          strict=True))
        assert len(files) == len(lattice) > 0  # one file per lattice cell holding data
        assert len(files) < len(list(_walk(os.path.join(str(tmp_path / "s0.zarr"), name, "c"))))
        writer = _chunk_writer(str(tmp_path / "s1.zarr"), name, (), zarr_chunks(chunks), "check")
        assert writer is not None and writer.shard == tuple(chunks)  # written directly, not through zarr-python
        per = (chunks[0] // writer.chunks[0]) * (chunks[1] // writer.chunks[1])
        for rel in files:  # chunks, then (offset, size) per chunk and the index's CRC-32C
            with open(os.path.join(str(tmp_path / "s1.zarr"), name, "c", rel), "rb") as f:
                blob = f.read()
            index = blob[-(16 * per + 4):-4]
            assert struct.unpack("<I", blob[-4:])[0] == google_crc32c.value(index)
            entries = np.frombuffer(index, "<u8").reshape(per, 2)
            used = entries[entries[:, 0] != np.iinfo(np.uint64).max]
            assert len(used) and used[:, 1].sum() == len(blob) - 16 * per - 4
