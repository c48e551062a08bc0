"""Lazy mosaics: input tiles as dask-backed xarray arrays on the global grid.

:class:`Mosaic` finds, for a region, every file of every catalog layer in the given
sources (by the original's names), checks that each lies on the grid, and hands out
lazy ``(lat, lon)`` DataArrays that read only the windows a computation touches.
Chunks sit on the global chunk lattice (:meth:`fluxgraph.grid.PixelWindow.chunks`),
so slicing with ``.sel(lat=slice(n, s), lon=slice(w, e))`` keeps only the chunks
that intersect the slice, and only those are read.

Absent tiles read as the layer's fill (spec/stages.md §0: a missing tile is zeros,
except where the spec says otherwise, e.g. BGB:AGB ratio 0.26).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph

from fluxgraph.catalog import CATALOG, Layer, get_layer
from fluxgraph.config import RunConfig, load_config
from fluxgraph.errors import ConfigError
from fluxgraph.grid import PixelWindow, TileId, tile_list
from fluxgraph.sources import Source, TileFile, open_source

__all__ = ["Mosaic", "Part", "Region", "open_mosaic"]

log = logging.getLogger("fluxgraph")


@dataclass(frozen=True)
class Region:
    """What to compute: a list of tiles, a lat/lon bounding box, or both (tiles clipped to the box)."""

    tiles: tuple[TileId, ...] = ()
    bbox: PixelWindow | None = None

    def __post_init__(self) -> None:
        if not self.tiles and self.bbox is None:
            raise ConfigError("a region needs tiles (e.g. 00N_110E) or a bbox (W,S,E,N)")

    @classmethod
    def parse(cls, *, tiles: str | Iterable[str] | None = None, bbox: str | Sequence[float] | None = None) -> Region:
        """Build a region from CLI-style text: ``tiles="00N_110E,10S_040E"``, ``bbox="W,S,E,N"``."""
        window = None
        if bbox is not None:
            vals = [float(v) for v in (bbox.split(",") if isinstance(bbox, str) else bbox)]
            if len(vals) != 4:
                raise ConfigError(f"bbox needs 4 numbers W,S,E,N, got {bbox!r}")
            window = PixelWindow.from_bounds(*vals)
        return cls(tuple(tile_list(tiles)) if tiles else (), window)

    def candidate_tiles(self) -> list[TileId]:
        if self.tiles:
            return list(self.tiles)
        assert self.bbox is not None
        return self.bbox.tiles()

    def clip(self, tile: TileId) -> PixelWindow | None:
        return tile.window if self.bbox is None else tile.window.intersection(self.bbox)


@dataclass(frozen=True)
class Part:
    """The pixels of one tile that a run covers: the tile ∩ region ∩ what the inputs cover."""

    tile: TileId
    window: PixelWindow


class _ReadBlock:
    """Dask block function: one chunk of one layer, read from the files that cover it."""

    def __init__(self, files: tuple[TileFile, ...], origin: PixelWindow, dtype: np.dtype, fill: float) -> None:
        self.files = files
        self.origin = origin
        self.dtype = dtype
        self.fill = fill

    def __call__(self, _anchor: np.ndarray | None = None, block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        o = self.origin
        window = PixelWindow(o.row0 + r0, o.row0 + r1, o.col0 + c0, o.col0 + c1)
        covering = [f for f in self.files if f.window.intersection(window) is not None]
        if len(covering) == 1 and covering[0].window.intersection(window) == window \
                and np.dtype(covering[0].dtype) == self.dtype:
            return covering[0].read_all(window)  # the common case: no fill, no copy
        out = np.full(window.shape, self.fill, dtype=self.dtype)
        for f in covering:
            f.read(window, out)
        return out


class _PresentBlock:
    """Dask block function: 1 where the pixel's tile has a file of the layer, else 0."""

    def __init__(self, tiles: frozenset[TileId], origin: PixelWindow) -> None:
        self.tiles = tiles
        self.origin = origin

    def __call__(self, block_info: dict | None = None) -> np.ndarray:
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        o = self.origin
        window = PixelWindow(o.row0 + r0, o.row0 + r1, o.col0 + c0, o.col0 + c1)
        out = np.zeros(window.shape, dtype=np.uint8)
        for tile in window.tiles():
            if tile in self.tiles:
                inter = tile.window.intersection(window)
                if inter is not None:
                    out[inter.relative_to(window)] = 1
        return out


class Mosaic:
    """Input layers of a region, discovered in one or more sources.

    Parameters
    ----------
    inputs : sequence of str, Path or Source
        Folders, ``s3://`` URLs or ``demo://`` (earlier locations win when a file is in several).
    region : Region
        Tiles and/or bounding box.
    config : RunConfig, optional
        Product names (dated patterns) and chunk size; defaults if omitted.
    layers : iterable of str, optional
        Layers to look for; every catalog layer by default (so that supplied
        intermediates are found too).
    storage_options : mapping, optional
        s3fs options for ``s3://`` inputs.
    """

    def __init__(
        self,
        inputs: Sequence[str | Path | Source],
        region: Region,
        *,
        config: RunConfig | None = None,
        layers: Iterable[str] | None = None,
        storage_options: Mapping[str, Any] | None = None,
    ) -> None:
        if not inputs:
            raise ConfigError("no input locations given: pass a folder, s3://bucket/prefix or demo://")
        self.config = config or load_config()
        self.sources = [open_source(loc, storage_options) for loc in inputs]
        self.region = region
        names = list(layers) if layers is not None else list(CATALOG)
        self.layers = [get_layer(n) for n in names]
        self.files: dict[str, dict[TileId, TileFile]] = {layer.name: {} for layer in self.layers}
        self.tried: dict[str, dict[TileId, list[str]]] = {layer.name: {} for layer in self.layers}
        self._coord_cache: dict[PixelWindow, dict[str, xr.IndexVariable]] = {}
        self._discover()
        self.parts = self._parts()

    # -- discovery ---------------------------------------------------------------------------
    def _locate(self, layer: Layer, tile: TileId) -> tuple[TileFile | None, list[str]]:
        filename = layer.filename(self.config.naming, str(tile))
        tried: list[str] = []
        for source in self.sources:
            found, paths = source.locate(filename, layer.name, tile)
            tried += paths
            if found is not None:
                return found, tried
        return None, tried

    def _discover(self) -> None:
        jobs = [(layer, tile) for tile in self.region.candidate_tiles() for layer in self.layers]
        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(lambda job: self._locate(*job), jobs))
        for (layer, tile), (found, tried) in zip(jobs, results, strict=True):
            self.tried[layer.name][tile] = tried
            if found is not None:
                self.files[layer.name][tile] = found

    def _parts(self) -> list[Part]:
        parts = []
        for tile in self.region.candidate_tiles():
            clip = self.region.clip(tile)
            covered: PixelWindow | None = None
            for by_tile in self.files.values():
                f = by_tile.get(tile)
                if f is not None:
                    covered = f.window if covered is None else covered.union_bbox(f.window)
            if clip is None or covered is None:
                log.info("tile %s: no input file in %s", tile, ", ".join(s.label for s in self.sources))
                continue
            window = clip.intersection(covered)
            if window is not None:
                parts.append(Part(tile, window))
        return parts

    # -- queries -----------------------------------------------------------------------------
    @property
    def window(self) -> PixelWindow:
        """Bounding box of all parts."""
        if not self.parts:
            raise ConfigError(
                f"no input files found for the region in {', '.join(s.label for s in self.sources)}; "
                "check the folder and the file names (run `fluxgraph layers` for the expected names)"
            )
        w = self.parts[0].window
        for p in self.parts[1:]:
            w = w.union_bbox(p.window)
        return w

    def has(self, layer: str, tile: TileId | None = None) -> bool:
        """Whether a file of ``layer`` exists (for ``tile``, or for any tile)."""
        by_tile = self.files.get(layer, {})
        return bool(by_tile) if tile is None else tile in by_tile

    def available(self, tile: TileId) -> set[str]:
        """Layers with a file for ``tile``."""
        return {name for name, by_tile in self.files.items() if tile in by_tile}

    def tried_paths(self, layer: str, tile: TileId) -> list[str]:
        return self.tried.get(layer, {}).get(tile, [])

    # -- lazy arrays -------------------------------------------------------------------------
    def _coords(self, window: PixelWindow) -> dict[str, xr.IndexVariable]:
        """Coordinates of ``window``, shared by every array of it (a full tile's are 640 kB)."""
        if window not in self._coord_cache:
            self._coord_cache[window] = {"lat": xr.IndexVariable("lat", window.lat()),
                                         "lon": xr.IndexVariable("lon", window.lon())}
        return self._coord_cache[window]

    def _anchor(self, window: PixelWindow) -> da.Array:
        """One tiny task per chunk of ``window``, on which every layer's read of that chunk depends.

        Reads without dependencies are root tasks, which distributed hands to whichever worker has a free
        slot, so the layers of one chunk were read on different workers and shipped to the one computing
        the chunk (2.0 GB between two workers for the chain on 1e8 px, measured). A task whose
        dependencies are all on one worker runs there: with the anchor, a chunk's reads, stages and writes
        stay on the worker that ran its anchor (work stealing may still move them to an idle worker).
        """
        chunks = window.chunks(self.config.chunks)
        name = f"anchor-{tokenize(window, chunks)}"
        nr, nc = len(chunks[0]), len(chunks[1])
        dsk = {(name, i, j): (np.zeros, (1, 1), np.uint8) for i in range(nr) for j in range(nc)}
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
        return da.Array(graph, name, chunks=((1,) * nr, (1,) * nc), dtype=np.uint8,
                        meta=np.empty((0, 0), np.uint8))

    def read(self, name: str, window: PixelWindow | None = None) -> xr.DataArray:
        """Lazy DataArray of ``name`` over ``window`` (default: the mosaic's bounding box)."""
        layer = get_layer(name)
        window = window or self.window
        chunks = window.chunks(self.config.chunks)
        files = tuple(
            f for f in self.files.get(name, {}).values() if f.window.intersection(window) is not None
        )
        dtype = layer.np_dtype
        if files:
            fn = _ReadBlock(files, window, dtype, layer.fill)
            token = tokenize(name, window, [(f.path, f.window) for f in files], dtype.str, layer.fill)
            data = da.map_blocks(fn, self._anchor(window), chunks=chunks, dtype=dtype,
                                 meta=np.empty((0, 0), dtype), name=f"read-{name}-{token}")
        else:
            data = _constant(layer.fill, dtype, window.shape, chunks)
        return xr.DataArray(data, dims=("lat", "lon"), coords=self._coords(window), name=name,
                            attrs=layer_attrs(layer))

    def present(self, name: str, window: PixelWindow | None = None) -> xr.DataArray:
        """Lazy uint8 DataArray: 1 where the pixel's tile has a file of ``name`` (per-tile facts, stages.md §8)."""
        window = window or self.window
        tiles = frozenset(t for t in self.files.get(name, {}) if t.window.intersection(window) is not None)
        chunks = window.chunks(self.config.chunks)
        touched = set(window.tiles())
        if not tiles or touched <= tiles:
            data = _constant(1 if tiles else 0, np.dtype(np.uint8), window.shape, chunks)
        else:
            fn = _PresentBlock(tiles, window)
            data = da.map_blocks(fn, chunks=chunks, dtype=np.uint8, meta=np.empty((0, 0), np.uint8),
                                 name=f"present-{name}-{tokenize(name, window, sorted(tiles))}")
        return xr.DataArray(data, dims=("lat", "lon"), coords=self._coords(window), name=f"{name}_present")

    def dataset(self, layers: Iterable[str] | None = None, window: PixelWindow | None = None) -> xr.Dataset:
        """Lazy Dataset of the given layers (default: every layer with at least one file)."""
        names = list(layers) if layers is not None else [n for n, f in self.files.items() if f]
        window = window or self.window
        ds = xr.Dataset({n: self.read(n, window) for n in names})
        return with_crs(ds)

    def describe(self) -> str:
        lines = [f"Mosaic of {len(self.parts)} tile part(s) from {', '.join(s.label for s in self.sources)}"]
        for p in self.parts:
            lines.append(f"  {p.tile}: {p.window.shape[0]} x {p.window.shape[1]} px")
        return "\n".join(lines)


def _constant(value: float, dtype: np.dtype, shape: tuple[int, int], chunks: tuple) -> da.Array:
    """A lazy constant array whose blocks are zero-stride views (no memory per block)."""
    one = da.from_array(np.full((1, 1), value, dtype=dtype), chunks=(1, 1))
    return da.broadcast_to(one, shape, chunks=chunks)


def layer_attrs(layer: Layer) -> dict[str, Any]:
    attrs = {"units": layer.units, "long_name": layer.description, "nodata": layer.nodata}
    if layer.sign:
        attrs["sign_convention"] = layer.sign
    return attrs


def with_crs(obj: xr.Dataset | xr.DataArray) -> Any:
    """Attach EPSG:4326 and the spatial dims (rioxarray) to a lat/lon object."""
    import rioxarray  # noqa: F401  (registers the .rio accessor)

    obj = obj.rio.set_spatial_dims(x_dim="lon", y_dim="lat", inplace=False)
    return obj.rio.write_crs("EPSG:4326", inplace=False)


def open_mosaic(
    inputs: str | Path | Sequence[str | Path | Source],
    *,
    tiles: str | Iterable[str] | None = None,
    bbox: str | Sequence[float] | None = None,
    layers: Iterable[str] | None = None,
    config: RunConfig | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> xr.Dataset:
    """Open input tiles as one lazy Dataset over a region.

    Parameters
    ----------
    inputs : str, Path, Source or a sequence of them
        Folders (searched recursively for the original's file names), ``s3://bucket/prefix``,
        or ``demo://[?size=N&seed=S]``.
    tiles : str or iterable of str, optional
        Tile ids (``00N_110E``) or a list name (``test``, ``us``, ``all``).
    bbox : str or sequence of float, optional
        ``W,S,E,N`` in degrees; snapped outwards to whole pixels.
    layers : iterable of str, optional
        Layers to include (catalog names, see ``fluxgraph layers``); default every layer found.

    Returns
    -------
    xarray.Dataset
        Dask-backed ``(lat, lon)`` variables in EPSG:4326; nothing is read until computed.
    """
    if isinstance(inputs, str | Path):
        inputs = [inputs]
    region = Region.parse(tiles=tiles, bbox=bbox)
    mosaic = Mosaic(list(inputs), region, config=config, layers=layers, storage_options=storage_options)
    return mosaic.dataset(layers if layers is not None else None)
