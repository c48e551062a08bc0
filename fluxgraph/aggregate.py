"""The 4-km (0.04°) maps of spec/stages.md §13 steps 2–4, computed chunk by chunk on the cluster.

Each map sums a forest-extent per-pixel layer over 160 × 160-pixel cells (float32 ``numpy.sum`` per cell,
bit-identical to the original's), divides by the model years and by 10⁶ (Mg → Mt) and flips the sign of
gross removals. Cells lie on the global 0.04° lattice, which tile edges follow, so a chunk whose sides are
multiples of 160 px sums its own cells. Other chunk sides are regrouped first: to the least common multiple
with 160 px when it divides a tile (400-px rows → 800), else to 4000 px (25 cells).

Regions that are not aligned to 160 px: a cell partly inside the run is summed over the run's pixels only,
the others counting as nodata (0) — the value the original gives when the pixels outside are nodata.

Units: Mt CO2 (removals) or Mt CO2e per year per 0.04° cell, annual mean over the model period. Removals are
**negative** at 4 km (positive at 30 m); emissions positive; net flux negative = sink.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr

from fluxgraph.catalog import AGGREGATED, Layer
from fluxgraph.config import RunConfig
from fluxgraph.errors import ConfigError
from fluxgraph.grid import TILE_PX, PixelWindow
from fluxgraph.kernels.derivatives import CELL_PX, annualise, cell_sums

__all__ = ["MAPS", "AggregateMap", "CellWindow", "lazy_cells", "lazy_maps", "map_filename", "write_maps"]

CELL_DEG = CELL_PX / 4000
"""Cell side in degrees (0.04)."""
FALLBACK_CHUNK = 4000
"""Chunk side (px) used for aggregation when no multiple of the run's chunk side and 160 px divides a tile."""


@dataclass(frozen=True)
class AggregateMap:
    """One 4-km map: which 30 m layer it sums and the sign applied (spec/stages.md §13 step 3).

    Attributes
    ----------
    name : str
        Name of the map (key of :data:`fluxgraph.catalog.AGGREGATED`).
    source : str
        The forest-extent per-pixel layer summed (Mg per pixel over the model period).
    sign : int
        −1 for gross removals, 1 otherwise.
    """

    name: str
    source: str
    sign: int

    @property
    def layer(self) -> Layer:
        return AGGREGATED[self.name]


MAPS: tuple[AggregateMap, ...] = (
    AggregateMap("gross_removals_4km", "gross_removals_per_pixel_forest", -1),
    AggregateMap("gross_emis_4km", "gross_emis_per_pixel_forest", 1),
    AggregateMap("net_flux_4km", "net_flux_per_pixel_forest", 1),
)


@dataclass(frozen=True)
class CellWindow:
    """A rectangle of 0.04° cells in global cell indices (row 0 at 90°N, column 0 at 180°W), half-open."""

    row0: int
    row1: int
    col0: int
    col1: int

    @classmethod
    def of(cls, window: PixelWindow) -> CellWindow:
        """The cells a pixel window touches (partly covered cells included)."""
        return cls(window.row0 // CELL_PX, -(-window.row1 // CELL_PX), window.col0 // CELL_PX,
                   -(-window.col1 // CELL_PX))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.row1 - self.row0, self.col1 - self.col0)

    @property
    def transform(self) -> tuple[float, float, float, float, float, float]:
        """GDAL-style affine coefficients (0.04° cells, north-up)."""
        return (CELL_DEG, 0.0, -180.0 + self.col0 * CELL_DEG, 0.0, -CELL_DEG, 90.0 - self.row0 * CELL_DEG)

    def union(self, other: CellWindow) -> CellWindow:
        return CellWindow(min(self.row0, other.row0), max(self.row1, other.row1),
                          min(self.col0, other.col0), max(self.col1, other.col1))


class _CellBlock:
    """Dask block function: annualised cell sums of one chunk, located by its global pixel offset."""

    def __init__(self, origin: PixelWindow, model_years: int, sign: int) -> None:
        self.origin = origin
        self.model_years = model_years
        self.sign = sign

    def __call__(self, block: np.ndarray, block_info: dict | None = None) -> np.ndarray:
        (r0, _), (c0, _) = block_info[0]["array-location"]
        row, col = self.origin.row0 + r0, self.origin.col0 + c0
        sums = cell_sums(block, row_offset=row % CELL_PX, col_offset=col % CELL_PX)
        return annualise(sums, model_years=self.model_years, sign=self.sign)


def _cell_chunks(start: int, sizes: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for size in sizes:
        out.append(-(-(start + size) // CELL_PX) - start // CELL_PX)
        start += size
    return tuple(out)


def _cell_lattice(side: int) -> int:
    """The chunk side used for aggregation: ``side`` if whole cells fit, else the least common multiple of
    ``side`` and 160 px when it divides a tile (400 → 800), else :data:`FALLBACK_CHUNK`."""
    if side % CELL_PX == 0:
        return side
    lcm = math.lcm(side, CELL_PX)
    return lcm if TILE_PX % lcm == 0 else FALLBACK_CHUNK


def lazy_cells(arr: xr.DataArray, window: PixelWindow, *, chunks: tuple[int, int], model_years: int,
               sign: int) -> da.Array:
    """Lazy annualised 0.04° cell values (float32, Mt per year) of a per-pixel layer covering ``window``.

    Parameters
    ----------
    arr : DataArray
        Forest-extent per-pixel layer (Mg per pixel over the model period), dask-backed.
    window : PixelWindow
        The pixels ``arr`` covers (one tile part).
    chunks : (int, int), keyword-only
        The run's chunk shape; a side that is not a multiple of 160 px is regrouped (:func:`_cell_lattice`).
    model_years : int, keyword-only
        Years of the model period.
    sign : int, keyword-only
        −1 for gross removals, 1 otherwise.

    Returns
    -------
    dask.array.Array
        Shape ``CellWindow.of(window).shape``, one block per (regrouped) input chunk.
    """
    lattice = (_cell_lattice(chunks[0]), _cell_lattice(chunks[1]))
    data = arr.data.rechunk(window.chunks(lattice))
    out_chunks = (_cell_chunks(window.row0, data.chunks[0]), _cell_chunks(window.col0, data.chunks[1]))
    return da.map_blocks(_CellBlock(window, model_years, sign), data, chunks=out_chunks, dtype=np.float32,
                         meta=np.empty((0, 0), np.float32))


def lazy_maps(arrays: Mapping[str, xr.DataArray], window: PixelWindow, config: RunConfig) -> dict[str, da.Array]:
    """Lazy 4-km cells of every map whose source layer a tile part computed (none if the stage did not run)."""
    return {m.name: lazy_cells(arrays[m.source], window, chunks=config.chunks, model_years=config.model_years,
                               sign=m.sign)
            for m in MAPS if m.source in arrays}


def map_filename(name: str, config: RunConfig, *, naming: Literal["fluxgraph", "gfw"]) -> str:
    """File name of a 4-km map: the original's (``naming="gfw"``, spec/stages.md §13 step 4) or ``{name}.tif``.

    The original's name carries the canopy threshold, the model version and type, and the date of
    aggregation (``[naming] aggregation_date``, or today in UTC when empty).
    """
    if naming == "fluxgraph":
        return f"{name}.tif"
    if naming != "gfw":
        raise ConfigError(f"naming must be 'fluxgraph' or 'gfw', not {naming!r}")
    names = config.naming
    params = config.stage_params("create_derivative_outputs")
    extra = {
        "tcd": str(params.get("tcd_threshold", 30)),
        "model_version_tag": config.model_version.replace(".", "_"),
        "date": names.get("aggregation_date") or time.strftime("%Y%m%d", time.gmtime()),
    }
    return AGGREGATED[name].filename({**names, **extra, "file_suffix": ""}, "")


def write_maps(
    folder: str | Path,
    parts: Sequence[tuple[PixelWindow, Mapping[str, np.ndarray]]],
    *,
    config: RunConfig,
    naming: Literal["fluxgraph", "gfw"] = "fluxgraph",
    tags: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """Mosaic the computed cells of every tile part into one 0.04° COG per map.

    Parameters
    ----------
    folder : str or Path
        Where the COGs go (``{out}/cog/0_04deg`` in a run).
    parts : sequence of (PixelWindow, {map name: ndarray})
        Each tile part's window and its computed cells (:func:`lazy_maps`, computed).
    config : RunConfig, keyword-only
        Model years, version and naming.
    naming : {"fluxgraph", "gfw"}, keyword-only
        File names (see :func:`map_filename`).
    tags : mapping, optional
        Provenance tags written into each file.

    Returns
    -------
    dict of str to str
        Map name → path written. The raster covers the cells of all parts (EPSG:4326, 0.04°, nodata 0).
    """
    from fluxgraph.writers import cog_description

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, str] = {}
    for m in MAPS:
        pieces = [(CellWindow.of(w), cells[m.name]) for w, cells in parts if m.name in cells]
        if not pieces:
            continue
        extent = pieces[0][0]
        for cw, _ in pieces[1:]:
            extent = extent.union(cw)
        mosaic = np.zeros(extent.shape, dtype=np.float32)
        for cw, values in pieces:
            mosaic[cw.row0 - extent.row0:cw.row1 - extent.row0, cw.col0 - extent.col0:cw.col1 - extent.col0] = values
        layer = m.layer
        layer_tags = {**{k: str(v) for k, v in (tags or {}).items()}, "layer": m.name, "units": layer.units,
                      "sign_convention": layer.sign, "source_layer": m.source,
                      "tcd_threshold": str(config.stage_params("create_derivative_outputs").get("tcd_threshold", 30))}
        path = str(folder / map_filename(m.name, config, naming=naming))
        written[m.name] = _write_small_cog(mosaic, path, extent.transform, layer.nodata, cog_description(layer_tags))
    return written


def _write_small_cog(values: np.ndarray, path: str, transform: tuple, nodata: float, description: str | None) -> str:
    """Write an in-memory array as a deflate COG with GDAL's COG driver (overviews, provenance JSON description)."""
    import rasterio
    from affine import Affine

    profile = {
        "driver": "COG", "width": values.shape[1], "height": values.shape[0], "count": 1, "dtype": values.dtype,
        "crs": "EPSG:4326", "transform": Affine(*transform), "nodata": nodata, "compress": "deflate",
        "blocksize": 512, "overview_resampling": "nearest",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
        if description:
            dst.update_tags(TIFFTAG_IMAGEDESCRIPTION=description)
    return path
