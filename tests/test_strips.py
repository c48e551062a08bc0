"""The strip reader of local GeoTIFFs: GDAL's pixels for the original's layout, GDAL itself for the rest."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from affine import Affine
from hypothesis import given, settings
from hypothesis import strategies as st
from rasterio.windows import Window

from fluxgraph.errors import InputLayerError
from fluxgraph.grid import RES, TileId
from fluxgraph.sources import LocalSource
from fluxgraph.strips import read_strips, strip_layout

TILE = TileId.parse("00N_110E")


def _values(shape, dtype, seed=0, density=0.1):
    rng = np.random.default_rng(seed)
    raw = rng.random(shape) * 300 if np.dtype(dtype).kind == "f" else rng.integers(1, 120, shape)
    values = np.where(rng.random(shape) < density, raw, 0).astype(dtype)
    values[5:9] = 0  # whole empty strips
    return values


def _write(path, values, **profile):
    tw = TILE.window
    base = {"driver": "GTiff", "width": values.shape[1], "height": values.shape[0], "count": 1,
            "dtype": values.dtype.name, "crs": "EPSG:4326", "nodata": 0,
            "transform": Affine(RES, 0, -180 + tw.col0 * RES, 0, -RES, 90 - tw.row0 * RES)}
    with rasterio.open(path, "w", **{**base, **profile}) as dst:
        dst.write(values, 1)
    return str(path)


def _gdal(path, rows, cols):
    with rasterio.open(path) as src:
        return src.read(1, window=Window(cols.start, rows.start, cols.stop - cols.start, rows.stop - rows.start))


LAYOUTS = {
    "original (deflate, 1-row strips)": {"compress": "deflate", "tiled": False, "blockysize": 1},
    "16-row strips, last one short": {"compress": "deflate", "tiled": False, "blockysize": 16},
    "uncompressed strips": {"compress": None, "tiled": False, "blockysize": 1},
    "sparse strips (no bytes for empty ones)": {"compress": "deflate", "tiled": False, "blockysize": 1,
                                                 "sparse_ok": True},
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", ["float32", "int16", "uint8", "uint16", "int32"])
def test_windows_equal_gdal(tmp_path, layout, dtype):
    values = _values((203, 517), dtype)
    path = _write(tmp_path / "a.tif", values, **LAYOUTS[layout])
    lay = strip_layout(path)
    assert lay is not None and lay.dtype == np.dtype(dtype).str
    for rows, cols in [(slice(0, 203), slice(0, 517)), (slice(3, 190), slice(7, 500)), (slice(202, 203), slice(0, 5)),
                       (slice(16, 32), slice(0, 517)), (slice(5, 9), slice(0, 517))]:
        got = read_strips(path, lay, rows, cols)
        assert got.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(got, _gdal(path, rows, cols))


def test_sparse_files_have_strips_without_bytes(tmp_path):
    values = _values((64, 300), "float32")
    path = _write(tmp_path / "s.tif", values, compress="deflate", tiled=False, blockysize=1, sparse_ok=True)
    lay = strip_layout(path)
    assert (lay.counts == 0).sum() >= 4  # the empty strips were left out by GDAL: they read as nodata
    np.testing.assert_array_equal(read_strips(path, lay, slice(0, 64), slice(0, 300)), values)


@given(r0=st.integers(0, 98), n=st.integers(1, 40), c0=st.integers(0, 180), m=st.integers(1, 80),
       rps=st.sampled_from([1, 3, 8]), density=st.sampled_from([0.0, 0.01, 0.3, 1.0]))
@settings(max_examples=40, deadline=None)
def test_any_window_equals_gdal(tmp_path_factory, r0, n, c0, m, rps, density):
    path = str(tmp_path_factory.mktemp("p") / "p.tif")
    values = _values((99, 181), "float32", seed=r0 + c0, density=density)
    _write(path, values, compress="deflate", tiled=False, blockysize=rps)
    rows, cols = slice(r0, min(99, r0 + n)), slice(c0, min(181, c0 + m))
    np.testing.assert_array_equal(read_strips(path, strip_layout(path), rows, cols), values[rows, cols])


@pytest.mark.parametrize("profile", [
    {"compress": "deflate", "tiled": True, "blockxsize": 256, "blockysize": 256},
    {"compress": "deflate", "tiled": False, "blockysize": 1, "predictor": 2},
    {"compress": "lzw", "tiled": False, "blockysize": 1},
])
def test_other_layouts_are_left_to_gdal(tmp_path, profile):
    values = _values((300, 300), "int16")
    path = _write(tmp_path / "o.tif", values, **profile)
    assert strip_layout(path) is None
    src = LocalSource(tmp_path)
    tf, _ = src.locate("o.tif", "elevation", TILE)
    np.testing.assert_array_equal(tf.read_all(tf.window), values)  # read by GDAL, same pixels


def test_local_source_reads_through_the_strip_reader(tmp_path, monkeypatch):
    values = _values((120, 400), "float32")
    _write(tmp_path / "x.tif", values, compress="deflate", tiled=False, blockysize=1)
    src = LocalSource(tmp_path)
    tf, _ = src.locate("x.tif", "agc_emis_year", TILE)
    calls = []
    import fluxgraph.strips as strips

    real = strips.read_strips
    monkeypatch.setattr(strips, "read_strips", lambda *a: calls.append(a[2:]) or real(*a))
    np.testing.assert_array_equal(tf.read_all(tf.window), values)
    assert calls == [(slice(0, 120), slice(0, 400))]


def test_a_damaged_strip_names_the_file_and_rows(tmp_path):
    values = _values((40, 300), "float32", density=0.5)
    path = _write(tmp_path / "bad.tif", values, compress="deflate", tiled=False, blockysize=1)
    lay = strip_layout(path)
    off = int(lay.offsets[20])
    with open(path, "r+b") as f:  # overwrite strip 20's deflate stream
        f.seek(off + 2)
        f.write(b"\xff" * 16)
    with pytest.raises(InputLayerError, match=r"bad\.tif: the strip of rows 20\.\.20 cannot be decoded"):
        read_strips(path, lay, slice(0, 40), slice(0, 300))
    np.testing.assert_array_equal(read_strips(path, lay, slice(0, 20), slice(0, 300)), values[:20])


def test_a_truncated_file_is_an_error_not_nodata(tmp_path):
    values = _values((40, 300), "float32", density=0.5)
    path = _write(tmp_path / "cut.tif", values, compress="deflate", tiled=False, blockysize=1)
    lay = strip_layout(path)
    with open(path, "r+b") as f:  # an interrupted download: the last strips are missing
        f.truncate(int(lay.offsets[30]) + 3)
    with pytest.raises(InputLayerError, match=r"cut\.tif: the file ends at byte .* truncated: download or copy"):
        read_strips(path, lay, slice(0, 40), slice(0, 300))
    np.testing.assert_array_equal(read_strips(path, lay, slice(0, 30), slice(0, 300)), values[:30])


def test_a_changed_file_is_indexed_again(tmp_path):
    path = _write(tmp_path / "c.tif", _values((30, 50), "uint8"), compress="deflate", tiled=False, blockysize=1)
    first = strip_layout(path)
    new = _values((30, 50), "uint8", seed=3)
    import os
    import time

    time.sleep(0.01)
    _write(tmp_path / "c.tif", new, compress=None, tiled=False, blockysize=1)
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))
    second = strip_layout(path)
    assert second is not first and second.compression == 1
    np.testing.assert_array_equal(read_strips(path, second, slice(0, 30), slice(0, 50)), new)
