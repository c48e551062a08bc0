"""The tile grid: ids, bounds, snapping, pixel area, chunk layout, tile lists."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fluxgraph.errors import ConfigError
from fluxgraph.grid import (
    ALL_TILES,
    TEST_TILES,
    TILE_PX,
    US_TILES,
    PixelWindow,
    TileId,
    check_chunks,
    pixel_area_m2,
    tile_list,
)


def test_tile_lists_match_spec():
    assert len(ALL_TILES) == 280
    assert len(set(ALL_TILES)) == 280
    assert len(US_TILES) == 16 and set(US_TILES) <= set(ALL_TILES)
    assert [str(t) for t in TEST_TILES] == ["00N_110E", "30N_090W", "70N_000E", "10N_050E"]
    assert tile_list("test,00N_000E")[-1] == TileId.parse("00N_000E")


@pytest.mark.parametrize("tile", ALL_TILES, ids=str)
def test_id_bounds_round_trip(tile):
    assert TileId.parse(str(tile)) == tile
    xmin, ymin, xmax, ymax = tile.bounds
    assert (xmax - xmin, ymax - ymin) == (10, 10)
    assert TileId.containing((xmin + xmax) / 2, (ymin + ymax) / 2) == tile
    win = tile.window
    assert win.shape == (TILE_PX, TILE_PX)
    assert win.bounds == tile.bounds
    assert win.tiles() == [tile]


def test_tile_id_examples_from_spec():
    assert TileId.parse("00N_000E").bounds == (0, -10, 10, 0)
    assert TileId.parse("10S_040E").bounds == (40, -20, 50, -10)
    assert TileId.parse("80N_170W").bounds == (-170, 70, -160, 80)
    with pytest.raises(ConfigError, match="not a tile id"):
        TileId.parse("0N_000E")


def test_snapping_bbox_to_pixels():
    exact = PixelWindow.from_bounds(0.0, -0.005, 10.0, 0.0)
    assert exact.shape == (20, 40000)
    assert exact.bounds == (0.0, -0.005, 10.0, 0.0)
    # a box inside one pixel grows to that pixel, or shrinks to nothing
    out = PixelWindow.from_bounds(0.0001, -0.0002, 0.0002, -0.0001)
    assert out.shape == (1, 1)
    assert PixelWindow.from_bounds(0.0001, -0.0006, 0.0009, -0.0001, snap="in").shape == (1, 2)
    with pytest.raises(ConfigError, match="empty"):
        PixelWindow.from_bounds(1, 1, 0, 2)


@given(st.integers(0, 719_000), st.integers(1, 1000), st.integers(0, 1_439_000), st.integers(1, 1000))
def test_window_bounds_round_trip(row0, h, col0, w):
    win = PixelWindow(row0, row0 + h, col0, col0 + w)
    assert PixelWindow.from_bounds(*win.bounds) == win
    assert PixelWindow.from_bounds(*win.bounds, snap="in") == win
    lat, lon = win.lat(), win.lon()
    assert len(lat) == h and len(lon) == w
    assert np.all(np.diff(lat) < 0) and np.all(np.diff(lon) > 0)


def _area_by_quadrature(lat_top: float, res: float) -> float:
    """Independent check: integrate M(phi) N(phi) cos(phi) over the cell on the WGS84 ellipsoid."""
    from scipy.integrate import quad

    a, f = 6378137.0, 1 / 298.257223563
    e2 = f * (2 - f)

    def integrand(phi):
        s = math.sin(phi)
        m = a * (1 - e2) / (1 - e2 * s * s) ** 1.5
        n = a / math.sqrt(1 - e2 * s * s)
        return m * n * math.cos(phi)

    val, _ = quad(integrand, math.radians(lat_top - res), math.radians(lat_top), epsabs=0, epsrel=1e-13)
    return val * math.radians(res)


@pytest.mark.parametrize("lat", [0.0, 0.00025, 30.0, 59.5, 80.0, -45.25])
def test_pixel_area_against_quadrature(lat):
    assert pixel_area_m2(lat) == pytest.approx(_area_by_quadrature(lat, 0.00025), rel=1e-9)


def test_pixel_area_known_value():
    # 0.00025 deg at the equator: 27.83 m wide x 27.64 m tall on WGS84
    assert pixel_area_m2(0.0) == pytest.approx(769.317, abs=1e-3)


def test_chunk_layout_on_global_lattice():
    assert check_chunks((4000, 400)) == (4000, 400)
    for bad in ((1000, 1000), (333, 400), (0, 400), (80000, 400)):
        with pytest.raises(ConfigError, match="divide 40000"):
            check_chunks(bad)
    win = PixelWindow(360100, 364500, 720000, 721000)
    rows, cols = win.chunks((4000, 400))
    assert rows == (3900, 500) and sum(cols) == 1000 and cols[0] == 400
    assert win.snap_out((4000, 400)) == PixelWindow(360000, 368000, 720000, 721200)
