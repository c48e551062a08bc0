"""Writers: one Zarr v3 store per run and one Cloud-Optimized GeoTIFF per tile and layer.

The Zarr store spans the bounding box of the run's tile parts, snapped to the global
chunk lattice; its chunks divide the grid's chunks; each part is written into its own
region, chunk by chunk, and chunks that hold only nodata are not stored
(``write_empty_chunks=False``). COGs are written from dask with odc-geo (deflate,
internal overviews), named either ``cog/{layer}/{tile}.tif`` or, with
``naming="gfw"``, exactly as the original names its tiles.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import dask.array as da
import numpy as np
import xarray as xr
from affine import Affine
from dask.delayed import Delayed

from fluxgraph.catalog import get_layer
from fluxgraph.errors import ConfigError
from fluxgraph.grid import PixelWindow, TileId
from fluxgraph.mosaic import with_crs
from fluxgraph.provenance import as_tags, layer_metadata

__all__ = ["cog_path", "create_zarr_store", "read_cog_tags", "write_cog", "write_zarr_region"]

Naming = Literal["fluxgraph", "gfw"]


def create_zarr_store(
    store: str | Path,
    names: list[str],
    window: PixelWindow,
    chunks: tuple[int, int],
    *,
    attrs: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
    mode: Literal["w", "a"] = "w",
    zstd_level: int | None = None,
    codec: Literal["zstd", "gzip"] = "zstd",
    gzip_level: int = 1,
    shards: bool = False,
) -> PixelWindow:
    """Create (or extend) the run's Zarr store: coordinates, empty variables, attributes.

    Parameters
    ----------
    store : str or Path
        Local path or ``s3://`` URL of the store.
    names : list of str
        Catalog layers to hold.
    window : PixelWindow
        Pixels the run covers; the store covers it snapped out to the chunk lattice.
    chunks : (int, int)
        Dask chunk shape (rows, cols); Zarr chunks divide it (:func:`zarr_chunks`).
    zstd_level : int, optional
        Zstandard level of every chunk (zarr's default, 3, if omitted). Level 1 encodes the sparse
        flux layers about twice as fast as level 3 for a ratio within 3 % (measured, bench/README.md).
    codec : {"zstd", "gzip"}
        Chunk compression. With ``"gzip"`` (level ``gzip_level``) the run's sink stores, for chunks that
        coincide with deflate COG tiles of the same level, the COG tile's deflate stream in a gzip member
        instead of compressing twice (:mod:`fluxgraph.sink`).
    shards : bool
        Store the chunks of each dask chunk's lattice cell (``chunks``) in one Zarr v3 shard (one file or
        object) instead of one file per chunk: one object instead of up to 50 for a whole-tile run (400 × 40000
        px of 400 × 800-px chunks), so up to 50× fewer S3 PUT requests. Each dask chunk lies inside one lattice
        cell, so no shard is written by two tasks.

    Returns
    -------
    PixelWindow
        The window the store covers.
    """
    full = window.snap_out(chunks)
    zchunks = zarr_chunks(chunks)
    coords = {"lat": full.lat(), "lon": full.lon()}
    data_vars = {}
    encoding = {}
    for name in names:
        layer = get_layer(name)
        lazy = da.zeros(full.shape, dtype=layer.np_dtype, chunks=full.shape)  # never computed: one block
        data_vars[name] = xr.DataArray(lazy, dims=("lat", "lon"), attrs=layer_metadata(layer))
        encoding[name] = {"chunks": zchunks, "fill_value": np.array(layer.nodata, dtype=layer.np_dtype).item()}
        if shards:
            encoding[name]["shards"] = tuple(chunks)
        if codec == "gzip":
            from zarr.codecs import GzipCodec

            encoding[name]["compressors"] = [GzipCodec(level=int(gzip_level))]
        elif zstd_level is not None:
            from zarr.codecs import ZstdCodec

            encoding[name]["compressors"] = [ZstdCodec(level=int(zstd_level))]
    ds = xr.Dataset(data_vars, coords=coords, attrs=dict(attrs or {}))
    ds = with_crs(ds)
    ds.to_zarr(
        str(store), mode=mode, compute=False, zarr_format=3, consolidated=False, encoding=encoding,
        storage_options=dict(storage_options) if storage_options else None,
    )
    return full


ZARR_CHUNK = 800
"""Zarr chunk side (px): a divisor of every dask chunk side, so a part that covers only part of a dask
chunk (a 1000-px demo window in a 4000-px chunk) rewrites small Zarr chunks, not a whole dask chunk."""


def zarr_chunks(chunks: tuple[int, int]) -> tuple[int, int]:
    """Zarr chunk shape for a dask chunk shape: the largest divisor of each side up to :data:`ZARR_CHUNK`."""
    return (math.gcd(chunks[0], ZARR_CHUNK), math.gcd(chunks[1], ZARR_CHUNK))


def write_zarr_region(
    store: str | Path,
    arrays: Mapping[str, xr.DataArray],
    part: PixelWindow,
    store_window: PixelWindow,
    *,
    storage_options: Mapping[str, Any] | None = None,
) -> Delayed:
    """A delayed write of one part's arrays into their region of the store.

    Parts lie within one tile and chunk sides divide the tile, and Zarr chunks divide dask
    chunks, so no Zarr chunk is written by two dask chunks; partial chunks at a part's edge are therefore safe
    (xarray's own check, which cannot know this, is switched off).
    """
    if part.intersection(store_window) != part:
        raise ConfigError(f"part {part} lies outside the Zarr store's window {store_window}")
    if len(part.tiles()) != 1:
        raise ConfigError(f"part {part} spans several tiles; Zarr region writes are per tile part")
    rows, cols = part.relative_to(store_window)
    ds = xr.Dataset({n: a.drop_vars("spatial_ref", errors="ignore") for n, a in arrays.items()})
    ds = ds.drop_vars(["lat", "lon"])
    return ds.to_zarr(
        str(store), region={"lat": rows, "lon": cols}, compute=False, zarr_format=3, consolidated=False,
        write_empty_chunks=False, safe_chunks=False, storage_options=dict(storage_options) if storage_options else None,
    )


def cog_path(root: str | Path, name: str, tile: TileId, *, naming: Naming, names: Mapping[str, str]) -> str:
    """Where the COG of layer ``name`` for ``tile`` goes below ``root``."""
    root = str(root).rstrip("/")
    if naming == "gfw":
        return f"{root}/{get_layer(name).filename(names, str(tile))}"
    if naming == "fluxgraph":
        return f"{root}/{name}/{tile}.tif"
    raise ConfigError(f"naming must be 'fluxgraph' or 'gfw', not {naming!r}")


COG_TILE = (400, 800)
"""COG tile (rows, cols), px: multiples of 16 (TIFF) that divide every allowed chunk side (multiples of 400)
and the Zarr chunks (400 × 800), so each COG tile is exactly one Zarr chunk and one dask chunk of the COG's
graph: no rechunking, and about one task per 320 000 pixels."""


def cog_blocksizes(shape: tuple[int, int], *, overviews: bool = True) -> list[tuple[int, int]]:
    """COG tile shape per level: :data:`COG_TILE`, and a top level chosen so no padding is needed.

    odc-geo pads a COG so that every overview halves exactly; to keep a file exactly the size of its
    part (a 40000-px tile stays 40000 px), the number of overviews is at most the number of times both
    sides halve exactly (6 for a 40000-px tile, whose top overview is 625 px in one 640-px tile). A part
    with an odd side gets no overviews.

    Parameters
    ----------
    shape : (int, int)
        The part's (rows, cols), px.
    overviews : bool
        False: a single level.
    """
    n = 0
    if overviews:
        while all(side % 2 ** (n + 1) == 0 for side in shape) and any(
            side // 2**n > tile for side, tile in zip(shape, COG_TILE, strict=True)
        ):
            n += 1
    top = tuple(max(16, _ceil_to(_ceil_div(side, 2**n), 16)) for side in shape)  # the top level fits one tile
    return [COG_TILE] * max(n, 1) + [top]  # type: ignore[list-item]


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _ceil_to(a: int, multiple: int) -> int:
    return _ceil_div(a, multiple) * multiple


_PYRAMID_LOCK = threading.Lock()


def _decimated_pyramid(xx: xr.DataArray, cog_meta: Any, resampling: Any = "nearest", *, fallback: Any) -> tuple:
    """Overview levels for odc-geo's COG writer: nearest = every second pixel (offset 1), chunk by chunk.

    odc-geo builds each overview with a chunked nearest 'reprojection' that copies whole source chunks per
    output tile (measured: 38 % of a run's worker time). For an exact factor-2 pyramid its nearest
    resampling picks source pixels ``[1::2, 1::2]``; slicing gives the same pixels, one cheap task per chunk.
    Any other resampling, or a level that does not halve exactly, goes to odc-geo's own function.
    """
    if resampling != "nearest" or xx.ndim != 2:
        return fallback(xx, cog_meta, resampling=resampling)
    out = [xx]
    for mm in cog_meta.overviews:
        nxt = out[-1][1::2, 1::2]
        if tuple(nxt.shape) != tuple(mm.shape.yx):
            return fallback(xx, cog_meta, resampling=resampling)
        out.append(nxt.chunk(dict(zip(nxt.dims, mm.tile.yx, strict=True))))  # this level's tiles: fewer tasks
    return tuple(out)


def _gdal_escape(value: str) -> str:
    """GDAL escapes metadata values once before serialising its XML (so twice in the file) and unescapes
    them twice on reading; values written for GDAL must follow suit."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def gdal_metadata_items(tags: Mapping[str, str], band: Mapping[str, str]) -> list[str]:
    """GDAL_METADATA XML items: dataset ``tags``, band-1 ``band`` items, band 1's unit type and description.

    ``band["units"]`` becomes the unit type and ``band["long_name"]`` the description, so that GDAL, rasterio
    (``src.units``, ``src.descriptions``) and QGIS show them.
    """
    import xml.etree.ElementTree as ET

    items = [({"name": k}, v) for k, v in tags.items()] + [({"name": k, "sample": "0"}, v) for k, v in band.items()]
    if "units" in band:
        items.append(({"name": "UNITTYPE", "sample": "0", "role": "unittype"}, band["units"]))
    if "long_name" in band:
        items.append(({"name": "DESCRIPTION", "sample": "0", "role": "description"}, band["long_name"]))
    lines = []
    for attrib, value in items:
        item = ET.Element("Item", attrib)
        item.text = _gdal_escape(value)
        lines.append(ET.tostring(item, encoding="unicode"))
    return lines


@contextlib.contextmanager
def _overviews_by_decimation(metadata: list[str] | None = None) -> Iterator[None]:
    """While odc-geo plans a COG (on the client), build its nearest overviews by :func:`_decimated_pyramid`
    and, with ``metadata``, put those GDAL_METADATA items in its header instead of its band descriptions.

    odc-geo reserves the GDAL_METADATA tag when the array has a ``long_name`` and fills it with band
    descriptions when it patches the header; the items are fixed at planning, so they reach local files
    and ``s3://`` uploads alike.
    """
    import odc.geo.cog._tifffile as odc_tiff

    # private odc-geo functions (checked with odc-geo 0.4.8-0.5.x): if a release renames them, COGs are still
    # written, with odc-geo's own overviews and band descriptions, and the provenance JSON header tag
    original = getattr(odc_tiff, "_pyramids_from_cog_metadata", None)
    original_descriptions = getattr(odc_tiff, "_gdal_sample_descriptions", None)
    with _PYRAMID_LOCK:
        if original is not None:
            odc_tiff._pyramids_from_cog_metadata = functools.partial(_decimated_pyramid, fallback=original)
        if metadata is not None and original_descriptions is not None:
            odc_tiff._gdal_sample_descriptions = lambda _names: list(metadata)
        try:
            yield
        finally:
            if original is not None:
                odc_tiff._pyramids_from_cog_metadata = original
            if original_descriptions is not None:
                odc_tiff._gdal_sample_descriptions = original_descriptions


def cog_description(tags: Mapping[str, Any] | None) -> str | None:
    """The provenance ``tags`` as the JSON text stored in a COG's ``TIFFTAG_IMAGEDESCRIPTION``."""
    import json

    return json.dumps({k: str(v) for k, v in tags.items()}, sort_keys=True) if tags else None


@functools.lru_cache(maxsize=256)
def _spatial_ref(transform: tuple[float, ...]) -> xr.DataArray:
    """The CF ``spatial_ref`` coordinate (EPSG:4326 and the exact transform) of a part, made once per transform.

    rioxarray takes about 17 ms to write it; a run plans one COG per layer and tile part.
    """
    tiny = xr.DataArray(np.zeros((1, 1), np.uint8), dims=("lat", "lon"), coords={"lat": [0.0], "lon": [0.0]})
    return with_crs(tiny).rio.write_transform(Affine(*transform)).spatial_ref.copy()


def read_cog_tags(path: str | Path) -> dict[str, str]:
    """The provenance tags of a COG written by :func:`write_cog` (``{}`` when it has none)."""
    import json

    import rasterio

    with rasterio.open(path) as src:
        text = src.tags().get("TIFFTAG_IMAGEDESCRIPTION")
    try:
        return dict(json.loads(text)) if text else {}
    except ValueError:
        return {}


def write_cog(arr: xr.DataArray, part: PixelWindow, path: str, *, overviews: bool = True,
              tags: Mapping[str, Any] | None = None, compress: str = "deflate", level: int | None = 6,
              storage_options: Mapping[str, Any] | None = None) -> Delayed:
    """A delayed write of ``arr`` (covering ``part``) as a Cloud-Optimized GeoTIFF, streamed chunk by chunk.

    Each :data:`COG_TILE` tile is compressed once, in the task that holds its dask chunk
    (odc-geo's writer, one compression task per chunk and COG level); nearest-neighbour internal
    overviews; no predictor (as GDAL's default and the original's outputs). The transform is set exactly
    from the pixel window and nodata from the catalog. ``tags`` (provenance,
    :func:`fluxgraph.provenance.as_tags`), the layer's metadata (``layer``, ``units``, ``nodata``,
    ``long_name``, ``stage``, ``sign_convention``) and ``tile`` go into the header twice: as GDAL metadata
    items (``src.tags()``; the layer's metadata also on band 1, with its unit type and description) and as
    JSON in the ``TIFFTAG_IMAGEDESCRIPTION`` tag (:func:`read_cog_tags`).

    Parameters
    ----------
    arr : xarray.DataArray
        Dask-backed layer over ``part`` (its name is a catalog layer).
    part : PixelWindow
        Pixels the file covers.
    path : str
        Local path or ``s3://`` URL.
    overviews : bool
        Build internal overviews (halving down to one tile).
    tags : mapping, optional
        Provenance written into the header.
    compress, level :
        TIFF compression (``deflate``, ``zstd``, ``lzw``…) and its level (deflate 1–12; 6 as GDAL's default).
    storage_options : mapping, optional
        For ``s3://`` paths: s3fs options, of which ``endpoint_url`` is passed to odc-geo's upload.

    Notes
    -----
    The COG appears under ``path`` only once complete: a local file is streamed to a temporary name
    and renamed when done; an S3 multipart upload is published by S3 only when it completes.
    """
    from odc.geo.cog import save_cog_with_dask

    if "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    layer = get_layer(str(arr.name))
    band = as_tags(layer_metadata(layer))
    tiles = part.tiles()
    all_tags = {**dict(tags or {}), **band, **({"tile": str(tiles[0])} if len(tiles) == 1 else {})}
    a = arr.drop_vars("spatial_ref", errors="ignore").assign_coords(spatial_ref=_spatial_ref(part.transform))
    # one dask chunk per COG tile, counted from the part's corner: with chunks that start off a tile edge
    # (a part cut from a tile at 200 px) odc-geo 0.5.3 wrote wrong level-0 tiles (tested)
    a = a.chunk(dict(zip(a.dims, COG_TILE, strict=True)))
    a.attrs = {"nodata": layer.nodata, "long_name": layer.description}  # long_name: odc-geo reserves GDAL_METADATA
    tiles_per_row = max(1, -(-part.shape[1] // COG_TILE[1]))  # compress one row of tiles per task
    extra: dict[str, Any] = {"description": cog_description(all_tags)}
    # stats=False: odc-geo's masked-array statistics fail to move between worker processes and stall
    # the run (seen with distributed 2026.8); GDAL statistics are not needed in the COGs
    if "://" in path:  # S3: odc-geo's multipart upload is published only once complete
        endpoint = (storage_options or {}).get("endpoint_url")
        target, aws = path, ({"endpoint_url": endpoint} if endpoint else None)
    else:
        from fluxgraph.outputs import temporary_path

        target, aws = temporary_path(path, suffix=".tif"), None
    with _overviews_by_decimation(gdal_metadata_items(all_tags, band)):
        written = save_cog_with_dask(
            a, target, compression=compress, level=level, predictor=False,
            blocksize=cog_blocksizes(part.shape, overviews=overviews), overview_resampling="nearest", stats=False,
            tile_batching=tiles_per_row, tile_batching_threshold=2, aws=aws, **extra,
        )
    if target == path:
        return written
    import dask

    return dask.delayed(_commit_streamed, pure=False)(written, target, path)


def _commit_streamed(_written: Any, tmp: str, path: str) -> str:
    """Rename a COG that odc-geo finished streaming to a temporary local file to its final name."""
    from fluxgraph.outputs import commit_file

    return commit_file(tmp, path)
