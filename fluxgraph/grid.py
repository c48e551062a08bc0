"""The global 0.00025° tile grid of the GFW flux model, as plain value types.

spec/inputs.md §1: EPSG:4326, pixel edges on multiples of 0.00025°, 10° × 10° tiles of
40 000 × 40 000 pixels named by their north-west corner (``00N_000E``, ``10S_040E``).

Everything here works in **global pixel indices**: row 0 is the pixel whose top edge is
90°N, column 0 the pixel whose left edge is 180°W. Indices are exact integers, so tile
ids, windows, snapping and chunk layouts never suffer from floating-point drift;
coordinates (pixel centres) are derived from them only at the edge (xarray coords,
GeoTIFF transforms). No xarray in this module.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from fluxgraph.errors import ConfigError

__all__ = [
    "ALL_TILES",
    "MADAGASCAR_TILES",
    "PX_PER_DEG",
    "RES",
    "TEST_TILES",
    "TILE_PX",
    "US_TILES",
    "PixelWindow",
    "TileId",
    "check_chunks",
    "pixel_area_m2",
    "tile_list",
]

PX_PER_DEG = 4000
"""Pixels per degree (1 / 0.00025)."""
RES = 1.0 / PX_PER_DEG
"""Pixel size in degrees."""
TILE_DEG = 10
TILE_PX = TILE_DEG * PX_PER_DEG
"""Pixels along a tile side (40 000)."""
GLOBAL_ROWS = 180 * PX_PER_DEG
GLOBAL_COLS = 360 * PX_PER_DEG
BLOCK_QUANTUM = 400
"""Chunk sizes must be multiples of this (GFW data-lake windows are 400 × 400)."""

# WGS84 ellipsoid
WGS84_A = 6378137.0
WGS84_F = 1.0 / 298.257223563

_TILE_RE = re.compile(r"^(\d{2})([NS])_(\d{3})([EW])$")


@dataclass(frozen=True, order=True)
class TileId:
    """A 10° tile named by its north-west corner.

    Parameters
    ----------
    top : int
        Latitude of the top edge, degrees north (multiple of 10, −50 … 80).
    left : int
        Longitude of the left edge, degrees east (multiple of 10, −180 … 170).
    """

    top: int
    left: int

    def __post_init__(self) -> None:
        if self.top % TILE_DEG or self.left % TILE_DEG or not (-80 <= self.top <= 90) or not (
            -180 <= self.left < 180
        ):
            raise ConfigError(f"not a 10° tile corner: top={self.top}, left={self.left}")

    @classmethod
    def parse(cls, text: str) -> TileId:
        """Parse a tile id such as ``00N_000E`` or ``10S_040E``."""
        m = _TILE_RE.match(text.strip().upper())
        if not m:
            raise ConfigError(
                f"{text!r} is not a tile id: expected LLH_OOOV, e.g. 00N_000E, 10S_040E, 50N_130W"
            )
        lat, ns, lon, ew = m.groups()
        top = int(lat) if ns == "N" else -int(lat)
        left = int(lon) if ew == "E" else -int(lon)
        return cls(top, left)

    @classmethod
    def containing(cls, lon: float, lat: float) -> TileId:
        """The tile containing the point (lon, lat) in degrees (edges belong to the tile below/right)."""
        top = TILE_DEG * math.floor(lat / TILE_DEG) + TILE_DEG
        left = TILE_DEG * math.floor(lon / TILE_DEG)
        return cls(top, left)

    def __str__(self) -> str:
        ns = "N" if self.top >= 0 else "S"
        ew = "E" if self.left >= 0 else "W"
        return f"{abs(self.top):02d}{ns}_{abs(self.left):03d}{ew}"

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) in degrees."""
        return (float(self.left), float(self.top - TILE_DEG), float(self.left + TILE_DEG), float(self.top))

    @property
    def window(self) -> PixelWindow:
        """The tile's pixels in global indices."""
        row0 = (90 - self.top) * PX_PER_DEG
        col0 = (self.left + 180) * PX_PER_DEG
        return PixelWindow(row0, row0 + TILE_PX, col0, col0 + TILE_PX)

    @property
    def tropics(self) -> bool:
        """Whether the tile's top edge is in (−30, 30] (spec/stages.md §6, Appendix B.11)."""
        return -30 < self.top <= 30


@dataclass(frozen=True, order=True)
class PixelWindow:
    """A rectangle of global pixel indices, half-open: rows [row0, row1), cols [col0, col1)."""

    row0: int
    row1: int
    col0: int
    col1: int

    def __post_init__(self) -> None:
        if not (0 <= self.row0 <= self.row1 <= GLOBAL_ROWS and 0 <= self.col0 <= self.col1 <= GLOBAL_COLS):
            raise ConfigError(f"pixel window {self} lies outside the global grid")

    # -- constructors -------------------------------------------------------------------
    @classmethod
    def from_bounds(
        cls, west: float, south: float, east: float, north: float, *, snap: str = "out"
    ) -> PixelWindow:
        """Snap a lat/lon bounding box (degrees) to the pixel grid.

        Parameters
        ----------
        west, south, east, north : float
            Bounding box in degrees (EPSG:4326).
        snap : {"out", "in", "nearest"}
            ``out`` grows the box to whole pixels (every pixel touching the box),
            ``in`` keeps only pixels wholly inside, ``nearest`` rounds each edge.
        """
        if not (west < east and south < north):
            raise ConfigError(
                f"bbox {west},{south},{east},{north} is empty: give W,S,E,N with W < E and S < N"
            )
        eps = 1e-9  # tolerate decimal input such as 0.00025 * k
        rnd = {
            "out": (lambda v: math.floor(v + eps), lambda v: math.ceil(v - eps)),
            "in": (lambda v: math.ceil(v - eps), lambda v: math.floor(v + eps)),
            "nearest": (round, round),
        }
        if snap not in rnd:
            raise ConfigError(f"snap must be one of {sorted(rnd)}, not {snap!r}")
        lo, hi = rnd[snap]
        row0 = lo((90.0 - north) * PX_PER_DEG)
        row1 = hi((90.0 - south) * PX_PER_DEG)
        col0 = lo((west + 180.0) * PX_PER_DEG)
        col1 = hi((east + 180.0) * PX_PER_DEG)
        return cls(max(row0, 0), min(row1, GLOBAL_ROWS), max(col0, 0), min(col1, GLOBAL_COLS))

    @classmethod
    def from_transform(cls, x0: float, y0: float, width: int, height: int) -> PixelWindow:
        """The window of a raster whose top-left corner is (x0, y0) degrees, if on the grid."""
        col = (x0 + 180.0) * PX_PER_DEG
        row = (90.0 - y0) * PX_PER_DEG
        c, r = round(col), round(row)
        return cls(r, r + height, c, c + width)

    # -- properties ---------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def size(self) -> int:
        return self.shape[0] * self.shape[1]

    @property
    def empty(self) -> bool:
        return self.row1 <= self.row0 or self.col1 <= self.col0

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) in degrees."""
        half_r, half_c = GLOBAL_ROWS // 2, GLOBAL_COLS // 2
        return (
            (self.col0 - half_c) / PX_PER_DEG,
            (half_r - self.row1) / PX_PER_DEG,
            (self.col1 - half_c) / PX_PER_DEG,
            (half_r - self.row0) / PX_PER_DEG,
        )

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-style affine coefficients (a, b, c, d, e, f) for this window."""
        west, _, _, north = self.bounds
        return (RES, 0.0, west, 0.0, -RES, north)

    def lat(self) -> np.ndarray:
        """Latitudes of the pixel centres of each row (float64, degrees, decreasing)."""
        return (GLOBAL_ROWS - 2.0 * np.arange(self.row0, self.row1, dtype=np.float64) - 1.0) / (2 * PX_PER_DEG)

    def lon(self) -> np.ndarray:
        """Longitudes of the pixel centres of each column (float64, degrees, increasing)."""
        return (2.0 * np.arange(self.col0, self.col1, dtype=np.float64) + 1.0 - GLOBAL_COLS) / (2 * PX_PER_DEG)

    # -- set operations -----------------------------------------------------------------
    def intersection(self, other: PixelWindow) -> PixelWindow | None:
        r0, r1 = max(self.row0, other.row0), min(self.row1, other.row1)
        c0, c1 = max(self.col0, other.col0), min(self.col1, other.col1)
        if r0 >= r1 or c0 >= c1:
            return None
        return PixelWindow(r0, r1, c0, c1)

    def union_bbox(self, other: PixelWindow) -> PixelWindow:
        return PixelWindow(
            min(self.row0, other.row0), max(self.row1, other.row1),
            min(self.col0, other.col0), max(self.col1, other.col1),
        )

    def relative_to(self, outer: PixelWindow) -> tuple[slice, slice]:
        """Slices selecting this window inside an array covering ``outer``."""
        return (
            slice(self.row0 - outer.row0, self.row1 - outer.row0),
            slice(self.col0 - outer.col0, self.col1 - outer.col0),
        )

    def tiles(self) -> list[TileId]:
        """Tiles that this window touches, north to south, west to east."""
        if self.empty:
            return []
        tops = range(90 - (self.row0 // TILE_PX) * TILE_DEG, 90 - ((self.row1 - 1) // TILE_PX) * TILE_DEG - 1,
                     -TILE_DEG)
        lefts = range((self.col0 // TILE_PX) * TILE_DEG - 180, ((self.col1 - 1) // TILE_PX) * TILE_DEG - 179,
                      TILE_DEG)
        return [TileId(t, left) for t in tops for left in lefts]

    def chunks(self, chunk: tuple[int, int]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Dask chunk sizes for this window on the global chunk lattice.

        Chunk boundaries fall on multiples of ``chunk`` in global indices, so the
        same pixel always lands in the same chunk whatever the region, and chunks
        never straddle a tile edge (chunk sizes divide 40 000).
        """
        return (
            _lattice_sizes(self.row0, self.row1, chunk[0]),
            _lattice_sizes(self.col0, self.col1, chunk[1]),
        )

    def snap_out(self, chunk: tuple[int, int]) -> PixelWindow:
        """The smallest window on the chunk lattice containing this one."""
        return PixelWindow(
            (self.row0 // chunk[0]) * chunk[0], min(-(-self.row1 // chunk[0]) * chunk[0], GLOBAL_ROWS),
            (self.col0 // chunk[1]) * chunk[1], min(-(-self.col1 // chunk[1]) * chunk[1], GLOBAL_COLS),
        )

    def __str__(self) -> str:
        w, s, e, n = self.bounds
        return f"rows {self.row0}:{self.row1}, cols {self.col0}:{self.col1} (W {w:g}, S {s:g}, E {e:g}, N {n:g})"


def _lattice_sizes(start: int, stop: int, step: int) -> tuple[int, ...]:
    sizes = []
    pos = start
    while pos < stop:
        nxt = min((pos // step + 1) * step, stop)
        sizes.append(nxt - pos)
        pos = nxt
    return tuple(sizes)


def check_chunks(chunk: tuple[int, int]) -> tuple[int, int]:
    """Validate a (rows, cols) chunk shape: each side divides 40 000 and is a multiple of 400."""
    for side in chunk:
        if side <= 0 or TILE_PX % side or side % BLOCK_QUANTUM:
            raise ConfigError(
                f"chunk size {side} is not allowed: chunk sides must divide 40000 and be multiples of 400 "
                "(e.g. 400, 800, 2000, 4000, 8000, 10000, 20000, 40000)"
            )
    return (int(chunk[0]), int(chunk[1]))


def _q(phi: np.ndarray, e: float) -> np.ndarray:
    s = np.sin(phi)
    return s / (1.0 - (e * s) ** 2) + np.log((1.0 + e * s) / (1.0 - e * s)) / (2.0 * e)


def pixel_area_m2(lat_top: np.ndarray | float, res: float = RES) -> np.ndarray:
    """Area of a grid cell on the WGS84 ellipsoid.

    Parameters
    ----------
    lat_top : array_like
        Latitude of the cell's top edge, degrees.
    res : float
        Cell size in degrees (square cells).

    Returns
    -------
    numpy.ndarray
        Area in m² (float64). About 769.3 m² for a 0.00025° cell at the equator.

    Notes
    -----
    Exact ellipsoidal zone area, :math:`A = \\tfrac{b^2 \\Delta\\lambda}{2}\\,[q(\\varphi_1) - q(\\varphi_2)]`
    with :math:`q(\\varphi) = \\frac{\\sin\\varphi}{1 - e^2\\sin^2\\varphi}
    + \\frac{1}{2e}\\ln\\frac{1 + e\\sin\\varphi}{1 - e\\sin\\varphi}`. The original's
    ``hanson_2013_area`` tiles may differ in the last digits (spec/inputs.md §2.1).
    """
    e2 = WGS84_F * (2.0 - WGS84_F)
    e = math.sqrt(e2)
    b = WGS84_A * (1.0 - WGS84_F)
    top = np.radians(np.asarray(lat_top, dtype=np.float64))
    bottom = np.radians(np.asarray(lat_top, dtype=np.float64) - res)
    return 0.5 * b * b * math.radians(res) * (_q(top, e) - _q(bottom, e))


def row_pixel_area_m2(row0: int, row1: int) -> np.ndarray:
    """Pixel area (m², float64) of global rows [row0, row1)."""
    return pixel_area_m2(90.0 - np.arange(row0, row1, dtype=np.float64) / PX_PER_DEG)


# spec/inputs.md §1.4: the 280 land tiles, by top edge.
_LAND_TILES = {
    80: "010E 020E 030E 050E 060E 070E 080E 090E 100E 110E 120E 130E 140E 150E 160E 170E 070W 080W 090W "
        "100W 110W 120W 130W 140W 150W 160W 170W",
    70: "000E 010E 020E 030E 040E 050E 060E 070E 080E 090E 100E 110E 120E 130E 140E 150E 160E 170E 010W "
        "020W 030W 070W 080W 090W 100W 110W 120W 130W 140W 150W 160W 170W 180W",
    60: "000E 010E 020E 030E 040E 050E 060E 070E 080E 090E 100E 110E 120E 130E 140E 150E 160E 170E 010W "
        "020W 060W 070W 080W 090W 100W 110W 120W 130W 140W 150W 160W 170W 180W",
    50: "000E 010E 020E 030E 040E 050E 060E 070E 080E 090E 100E 110E 120E 130E 140E 150E 010W 060W 070W "
        "080W 090W 100W 110W 120W 130W",
    40: "000E 010E 020E 030E 040E 050E 060E 070E 080E 090E 100E 110E 120E 130E 140E 010W 020W 070W 080W "
        "090W 100W 110W 120W 130W",
    30: "000E 010E 020E 030E 040E 050E 060E 070E 080E 090E 100E 110E 120E 130E 010W 020W 080W 090W 100W "
        "110W 120W 160W 170W",
    20: "000E 010E 020E 030E 040E 050E 070E 080E 090E 100E 110E 120E 010W 020W 030W 060W 070W 080W 090W "
        "100W 110W 160W",
    10: "000E 010E 020E 030E 040E 050E 070E 080E 090E 100E 110E 120E 130E 010W 020W 050W 060W 070W 080W "
        "090W 100W",
    0: "000E 010E 020E 030E 040E 090E 100E 110E 120E 130E 140E 150E 160E 040W 050W 060W 070W 080W 090W 100W",
    -10: "010E 020E 030E 040E 050E 110E 120E 130E 140E 150E 160E 170E 040W 050W 060W 070W 080W",
    -20: "010E 020E 030E 040E 050E 110E 120E 130E 140E 150E 160E 050W 060W 070W 080W",
    -30: "010E 020E 030E 110E 120E 130E 140E 150E 170E 060W 070W 080W",
    -40: "140E 160E 170E 070W 080W",
    -50: "060W 070W 080W",
}


def _row_tiles(top: int, lons: str) -> Iterator[TileId]:
    lat = f"{abs(top):02d}{'N' if top >= 0 else 'S'}"
    for lon in lons.split():
        yield TileId.parse(f"{lat}_{lon}")


ALL_TILES: tuple[TileId, ...] = tuple(t for top, lons in _LAND_TILES.items() for t in _row_tiles(top, lons))
US_TILES: tuple[TileId, ...] = tuple(
    TileId.parse(t)
    for t in (
        "30N_090W", "30N_100W", "30N_110W", "40N_080W", "40N_090W", "40N_100W", "40N_110W", "40N_120W",
        "40N_130W", "50N_070W", "50N_080W", "50N_090W", "50N_100W", "50N_110W", "50N_120W", "50N_130W",
    )
)
TEST_TILES: tuple[TileId, ...] = tuple(TileId.parse(t) for t in ("00N_110E", "30N_090W", "70N_000E", "10N_050E"))
MADAGASCAR_TILES: tuple[TileId, ...] = tuple(TileId.parse(t) for t in ("10S_040E", "10S_050E", "20S_040E"))

_NAMED_LISTS = {"all": ALL_TILES, "us": US_TILES, "test": TEST_TILES, "madagascar": MADAGASCAR_TILES}


def tile_list(spec: str | Iterable[str]) -> list[TileId]:
    """Tiles from ids (``00N_000E,10S_040E``) or a named list (``all``, ``us``, ``test``, ``madagascar``)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out: list[TileId] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        if item.lower() in _NAMED_LISTS:
            out.extend(_NAMED_LISTS[item.lower()])
        else:
            out.append(TileId.parse(item))
    if not out:
        raise ConfigError(
            "no tiles given: pass tile ids such as 00N_110E,10S_040E or a list name (all, us, test)"
        )
    return list(dict.fromkeys(out))
