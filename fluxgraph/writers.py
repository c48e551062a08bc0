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
from fluxgraph.mosaic import with_crs
from fluxgraph.provenance import as_tags, layer_metadata

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
        lazy = da.zeros(full.shape, dtype=layer.np_dtype, chunks=chunks)
        data_vars[name] = xr.DataArray(lazy, dims=("lat", "lon"), attrs=layer_metadata(layer))
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
                    tags: Mapping[str, str], band: Mapping[str, str]) -> str:
    """Write one array as a COG with GDAL's COG driver (deflate, 512-px tiles, nearest overviews).

    ``tags`` go to the dataset's metadata, ``band`` to band 1's (``units`` also as its unit type,
    ``long_name`` as its description).
    """
    import rasterio

    profile = {
        "driver": "COG", "width": block.shape[1], "height": block.shape[0], "count": 1, "dtype": block.dtype,
        "crs": "EPSG:4326", "transform": Affine(*transform), "nodata": nodata, "compress": "deflate",
        "blocksize": 512, "overview_resampling": "nearest", "overviews": "AUTO" if overviews else "NONE",
        "bigtiff": "IF_SAFER",
    }
    with rasterio.Env(GDAL_NUM_THREADS="1"), rasterio.open(path, "w", **profile) as dst:
        dst.write(block, 1)
        dst.update_tags(**tags)
        dst.update_tags(1, **band)
        if "units" in band:
            dst.set_band_unit(1, band["units"])
        if "long_name" in band:
            dst.set_band_description(1, band["long_name"])
    return path


def _gdal_escape(value: str) -> str:
    """GDAL escapes item values once before serialising its metadata XML (so twice in the file) and
    unescapes them twice on reading; values written here must follow suit."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _gdal_metadata_xml(tags: Mapping[str, str], band: Mapping[str, str]) -> str:
    """The GDAL_METADATA TIFF tag (XML) holding dataset ``tags`` and band-1 ``band`` items."""
    import xml.etree.ElementTree as ET

    root = ET.Element("GDALMetadata")
    items = [({"name": k}, v) for k, v in tags.items()] + [({"name": k, "sample": "0"}, v) for k, v in band.items()]
    if "units" in band:
        items.append(({"name": "UNITTYPE", "sample": "0", "role": "unittype"}, band["units"]))
    if "long_name" in band:
        items.append(({"name": "DESCRIPTION", "sample": "0", "role": "description"}, band["long_name"]))
    for attrib, value in items:
        ET.SubElement(root, "Item", attrib).text = _gdal_escape(value)
    return ET.tostring(root, encoding="unicode")


def _tag_cog_file(written: Any, path: str, tags: Mapping[str, str], band: Mapping[str, str]) -> str:
    """Set the metadata of a COG streamed by odc-geo, in place.

    Only the GDAL_METADATA tag's value is rewritten (tifffile appends a longer value at the end of
    the file); the IFDs and tiles keep their COG layout, which GDAL's own update mode would not.
    """
    import tifffile

    with tifffile.TiffFile(path, mode="r+b") as tif:
        tag = tif.pages.first.tags.get(42112)
        if tag is None:
            raise ConfigError(f"{path}: no GDAL_METADATA tag to hold the provenance (written by odc-geo?)")
        tag.overwrite(_gdal_metadata_xml(tags, band))
    return path


def write_cog(arr: xr.DataArray, part: PixelWindow, path: str, *, overviews: bool = True,
              tags: Mapping[str, str] | None = None) -> Delayed:
    """A delayed write of ``arr`` (covering ``part``) as a deflate COG with internal overviews.

    The transform is set exactly from the pixel window (not re-derived from float
    coordinates) and nodata from the catalog. Parts of up to
    :data:`SINGLE_TASK_COG_MAX_PX` pixels are written in one task by GDAL's COG driver;
    larger parts are streamed tile by tile with odc-geo, then their metadata is set.
    Either way the file carries ``tags`` (provenance, :func:`fluxgraph.provenance.as_tags`),
    the layer's metadata (``layer``, ``units``, ``nodata``, ``sign_convention``, ``stage``,
    ``long_name``) and ``tile``, in the dataset's tags, and the layer's metadata again on band 1
    (with its unit type and description).
    """
    import dask

    local = not str(path).startswith(("s3://", "gs://", "az://"))
    if local:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    layer = get_layer(str(arr.name))
    band = as_tags(layer_metadata(layer))
    tiles = part.tiles()
    all_tags = {**dict(tags or {}), **band, **({"tile": str(tiles[0])} if len(tiles) == 1 else {})}
    if part.size <= SINGLE_TASK_COG_MAX_PX:
        block = arr.data.rechunk(-1).to_delayed().ravel()[0]
        return dask.delayed(_write_cog_file, pure=True)(block, path, part.transform, layer.nodata, overviews,
                                                         all_tags, band)
    from odc.geo.cog import save_cog_with_dask

    a = with_crs(arr.drop_vars("spatial_ref", errors="ignore"))
    a = a.rio.write_transform(Affine(*part.transform))
    a.attrs = {"nodata": layer.nodata}
    block_sizes = [512, 256] if overviews else [512]
    # stats=False: odc-geo's masked-array statistics fail to move between worker processes and stall
    # the run (seen with distributed 2026.8); GDAL statistics are not needed in the COGs
    a.attrs["long_name"] = layer.description  # odc-geo then reserves the GDAL_METADATA tag
    written = save_cog_with_dask(a, path, compression="deflate", blocksize=block_sizes,
                                 overview_resampling="nearest", stats=False)
    if not local:
        return written
    return dask.delayed(_tag_cog_file, pure=True)(written, path, all_tags, band)
