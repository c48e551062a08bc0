"""Writers: one Zarr v3 store per run and one Cloud-Optimized GeoTIFF per tile and layer.

The Zarr store spans the bounding box of the run's tile parts, snapped to the global
chunk lattice; its chunks divide the grid's chunks; each part is written into its own
region, chunk by chunk, and chunks that hold only nodata are not stored
(``write_empty_chunks=False``). COGs are written from dask with odc-geo (deflate,
internal overviews), named either ``cog/{layer}/{tile}.tif`` or, with
``naming="gfw"``, exactly as the original names its tiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
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
from fluxgraph.mosaic import layer_attrs, with_crs

__all__ = ["cog_path", "create_zarr_store", "write_cog", "write_zarr_region"]

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
        data_vars[name] = xr.DataArray(lazy, dims=("lat", "lon"), attrs=layer_attrs(layer))
        encoding[name] = {"chunks": zchunks, "fill_value": np.array(layer.nodata, dtype=layer.np_dtype).item()}
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


SINGLE_TASK_COG_MAX_PX = 64_000_000
"""Parts up to this many pixels are written by one task with GDAL's COG driver; larger ones stream."""


def _write_cog_file(block: np.ndarray, path: str, transform: tuple, nodata: float, overviews: bool,
                    tags: Mapping[str, str], storage_options: Mapping[str, Any] | None = None) -> str:
    """Write one array as a COG with GDAL's COG driver (deflate, 512-px tiles, nearest overviews).

    The file is written under a temporary name and committed (renamed, or uploaded to S3) only
    once complete, so ``path`` never holds a half-written COG.
    """
    import rasterio

    from fluxgraph.outputs import commit_file, temporary_path

    profile = {
        "driver": "COG", "width": block.shape[1], "height": block.shape[0], "count": 1, "dtype": block.dtype,
        "crs": "EPSG:4326", "transform": Affine(*transform), "nodata": nodata, "compress": "deflate",
        "blocksize": 512, "overview_resampling": "nearest", "overviews": "AUTO" if overviews else "NONE",
        "bigtiff": "IF_SAFER",
    }
    tmp = temporary_path(path, suffix=".tif")
    try:
        with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(tmp, "w", **profile) as dst:
            dst.write(block, 1)
            if tags:
                dst.update_tags(**tags)
        return commit_file(tmp, path, storage_options=storage_options)
    finally:
        Path(tmp).unlink(missing_ok=True)


def write_cog(arr: xr.DataArray, part: PixelWindow, path: str, *, overviews: bool = True,
              tags: Mapping[str, str] | None = None, storage_options: Mapping[str, Any] | None = None) -> Delayed:
    """A delayed write of ``arr`` (covering ``part``) as a deflate COG with internal overviews.

    The transform is set exactly from the pixel window (not re-derived from float
    coordinates) and nodata from the catalog. Parts of up to
    :data:`SINGLE_TASK_COG_MAX_PX` pixels are written in one task by GDAL's COG driver
    (with ``tags`` in the header); larger parts are streamed tile by tile with odc-geo. Either
    way the COG appears under ``path`` only once complete: a temporary file renamed when done, or
    an S3 multipart upload, which S3 publishes only when it completes.
    """
    import dask

    if path.startswith(("/", ".")) or "://" not in path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    layer = get_layer(str(arr.name))
    if part.size <= SINGLE_TASK_COG_MAX_PX:
        block = arr.data.rechunk(-1).to_delayed().ravel()[0]
        return dask.delayed(_write_cog_file, pure=True)(block, path, part.transform, layer.nodata, overviews,
                                                         dict(tags or {}), dict(storage_options or {}))
    from odc.geo.cog import save_cog_with_dask

    a = with_crs(arr.drop_vars("spatial_ref", errors="ignore"))
    a = a.rio.write_transform(Affine(*part.transform))
    a.attrs = {"nodata": layer.nodata}
    block_sizes = [512, 256] if overviews else [512]
    # stats=False: odc-geo's masked-array statistics fail to move between worker processes and stall
    # the run (seen with distributed 2026.8); GDAL statistics are not needed in the COGs
    kw: dict[str, Any] = {"compression": "deflate", "blocksize": block_sizes, "overview_resampling": "nearest",
                          "stats": False}
    if "://" in path:  # S3: odc-geo's multipart upload is published only once complete
        endpoint = (storage_options or {}).get("endpoint_url")
        return save_cog_with_dask(a, path, aws={"endpoint_url": endpoint} if endpoint else None, **kw)
    from fluxgraph.outputs import temporary_path

    tmp = temporary_path(path, suffix=".tif")
    return dask.delayed(_commit_streamed, pure=False)(save_cog_with_dask(a, tmp, **kw), tmp, path)


def _commit_streamed(_written: Any, tmp: str, path: str) -> str:
    """Rename a COG that odc-geo finished streaming to a temporary local file to its final name."""
    from fluxgraph.outputs import commit_file

    return commit_file(tmp, path)
