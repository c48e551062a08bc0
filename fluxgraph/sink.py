"""A tile part's outputs in one pass per chunk: Zarr region, summary statistics and COG tiles.

Each dask chunk of a part is handled by **one task** that writes every output layer's block
into the run's Zarr store, reduces the block's summary statistics and compresses the block's
level-0 COG tiles of every COG; it also keeps every second pixel (``[1::2, 1::2]``) for the
first overview. One task per row band of each overview level then compresses that level's
tiles from the pieces below it, and one task per COG writes its header and tiles into the file
(atomically: a temporary name renamed, or an S3 multipart upload completed only at the end).

This replaces "write Zarr, read it back, stream each COG with odc-geo", which made about three
tasks per 320 000-pixel COG tile and layer plus a tree of reductions per statistic (measured:
11 800 tasks for a 1e8-pixel part of the emissions stage; about 1.6 ms of worker time each).
The header and tile index are odc-geo's (:func:`odc.geo.cog._tifffile._make_empty_cog`,
``_patch_hdr``), so the files are the same COGs as odc-geo's writer makes: tiles of
:data:`fluxgraph.writers.COG_TILE`, overviews by nearest-neighbour decimation, largest
overview last in the header, smallest first in the file.

Chunks whose boundaries do not fall on COG tile boundaries (a region cut through a tile at a
row that is not a multiple of 400 px from the part's corner) are handled by a second pass over
the same lazy arrays, rechunked to tile boundaries; dask computes the stage graph once for both.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import xarray as xr
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from fluxgraph.catalog import get_layer
from fluxgraph.config import DEFLATE_LEVELS, check_deflate_level
from fluxgraph.errors import ConfigError, StorageError
from fluxgraph.grid import PixelWindow, row_pixel_area_m2
from fluxgraph.kernels.stats import block_stats, filled_tiles, select_by_code

__all__ = ["CogFormat", "CogTarget", "PartSink", "ZarrTarget", "cog_target", "part_sink", "summarise"]


@dataclass(frozen=True)
class ZarrTarget:
    """Where a part's layers go in the run's Zarr store.

    Attributes
    ----------
    store : str
        Local path or ``s3://`` URL of the store (created by :func:`fluxgraph.writers.create_zarr_store`).
    offset : (int, int)
        The part's corner in the store's pixel coordinates (rows, cols).
    chunks : (int, int)
        The store's chunk shape (rows, cols), px.
    storage_options : tuple of (str, Any)
        s3fs options, as sorted items (hashable).
    token : str
        Names this creation of the store (a run gives each its own): workers keep each array open, with its
        codecs, per token, so a store re-created at the same path (another codec, other layers) is opened
        afresh by workers that outlive the run, such as those of a notebook's cluster.
    deflate_encoder : str
        Library that deflates the chunks of a gzip store (one of :data:`fluxgraph.config.DEFLATE_ENCODERS`):
        when it is also the COGs' encoder, at the same level, a chunk and the COG tile over the same pixels
        are compressed once for both.
    """

    store: str
    offset: tuple[int, int]
    chunks: tuple[int, int]
    storage_options: tuple[tuple[str, Any], ...] = ()
    token: str = ""
    deflate_encoder: str = "isal"


@dataclass(frozen=True)
class CogTarget:
    """One COG of a part: which array, which catalog layer (dtype, nodata, metadata), where, which tags.

    Attributes
    ----------
    key : str
        The array (in the ``arrays`` given to :func:`part_sink`) the file holds.
    layer : str
        Catalog layer: dtype, nodata and the band metadata of the header.
    path : str
        Local path or ``s3://`` URL.
    tags : tuple of (str, str)
        Provenance and layer tags of the header (GDAL metadata items and JSON description).
    storage_options : tuple of (str, Any)
        s3fs options for an ``s3://`` path, as sorted items.
    select : (str, int), optional
        ``(codes key, code)``: the file holds the array only where the array ``codes key`` equals ``code``,
        nodata elsewhere (the per-year emissions layers), selected chunk by chunk in the sink.
    """

    key: str
    layer: str
    path: str
    tags: tuple[tuple[str, str], ...] = ()
    storage_options: tuple[tuple[str, Any], ...] = ()
    select: tuple[str, int] | None = None


def cog_target(key: str, layer: str, path: str, *, tile: Any = None, tags: Mapping[str, Any] | None = None,
               storage_options: Mapping[str, Any] | tuple[tuple[str, Any], ...] = (),
               select: tuple[str, int] | None = None) -> CogTarget:
    """A :class:`CogTarget` whose header tags are ``tags``, the layer's metadata and ``tile``, in that order.

    The same tags, in the same order, as :func:`fluxgraph.writers.write_cog` writes.
    """
    from fluxgraph.provenance import as_tags, layer_metadata

    band = as_tags(layer_metadata(get_layer(layer)))
    merged = {**{k: str(v) for k, v in dict(tags or {}).items()}, **band, **({"tile": str(tile)} if tile else {})}
    opts = tuple(sorted(dict(storage_options).items()))
    return CogTarget(key, layer, path, tuple(merged.items()), opts, select)


@dataclass(frozen=True)
class CogFormat:
    """How a run's COGs are encoded: compression, its level, overviews, and the deflate encoder.

    ``encoder`` only matters for deflate: ``"libdeflate"`` is what GDAL and odc-geo (through tifffile)
    use, so the files are byte-identical to odc-geo's writer; ``"zlib-ng"`` encodes the emissions outputs
    2.3–3.4× as fast at level 1 (files 23 % larger than libdeflate's level 1), 1.4–2.3× as fast at level 2
    (the same size); ``"isal"`` (Intel's ISA-L, levels 0–3) encodes them faster still than zlib-ng's level 1,
    into smaller files; measured in bench/README.md.
    """

    compress: str = "deflate"
    level: int | None = 6
    overviews: bool = True
    encoder: str = "libdeflate"

    def __post_init__(self) -> None:
        check_deflate_level(self.encoder, self.level if self.compress.lower() == "deflate" else None,
                            where="the deflate level")

    def tifffile(self) -> tuple[int, dict[str, Any]]:
        """tifffile's compression code and keyword arguments (odc-geo's normalisation; the data type matters
        only for predictors, which fluxgraph does not use)."""
        from odc.geo.cog._tifffile import _norm_compression_tifffile
        from tifffile import COMPRESSION

        _, name, args = _norm_compression_tifffile(np.dtype("float32"), False, self.compress, None,
                                                   level=self.level, kw={})
        code = int(COMPRESSION[name.upper()])
        return code, ({} if code == 1 else dict(args))


@dataclass(frozen=True)
class _Levels:
    """COG pyramid of a part: per level its shape and tile; every level halves the one before exactly."""

    shapes: tuple[tuple[int, int], ...]
    tiles: tuple[tuple[int, int], ...]

    def band_rows(self, level: int, band: int) -> tuple[int, int]:
        """Rows ``[start, stop)`` of row band ``band`` (one row of tiles) of ``level``."""
        h = self.tiles[level][0]
        return band * h, min((band + 1) * h, self.shapes[level][0])

    def bands(self, level: int) -> int:
        """Number of row bands of ``level``."""
        return -(-self.shapes[level][0] // self.tiles[level][0])


def cog_levels(shape: tuple[int, int], *, overviews: bool) -> _Levels:
    """The pyramid of a part's COG, as odc-geo lays it out for :func:`fluxgraph.writers.cog_blocksizes`.

    Raises
    ------
    ConfigError
        If odc-geo would pad the file (levels not halving exactly): ``cog_blocksizes`` prevents that.
    """
    from odc.geo.cog._shared import compute_cog_spec

    from fluxgraph.writers import cog_blocksizes

    sizes = cog_blocksizes(shape, overviews=overviews)
    padded, _, n = compute_cog_spec(shape, sizes[-1])
    if tuple(padded.yx) != tuple(shape):
        raise ConfigError(f"a COG of {shape} px would be padded to {tuple(padded.yx)}")
    shapes = tuple((shape[0] >> k, shape[1] >> k) for k in range(n + 1))
    tiles = tuple(tuple(sizes[min(k, len(sizes) - 1)]) for k in range(n + 1))
    return _Levels(shapes, tiles)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _Codec:
    """How one COG tile is compressed: TIFF compression code, tifffile's arguments, deflate encoder."""

    code: int
    args: tuple[tuple[str, Any], ...] = ()
    encoder: str = "libdeflate"


@dataclass(frozen=True)
class _Context:
    """What every task of a part's sink needs. Small: it travels with each task."""

    part: PixelWindow
    names: tuple[str, ...]             # arrays, in the order of the blocks given to the chunk task
    zarr_names: tuple[str, ...]        # arrays written to the Zarr store
    stats_names: tuple[str, ...]       # arrays summarised
    cogs: tuple[tuple[str, str], ...]  # (array key, catalog layer) per COG
    selects: tuple[tuple[str, int] | None, ...]  # per COG: (codes key, code) it keeps, or None
    zarr: ZarrTarget | None
    levels: _Levels | None
    codec: _Codec
    row_edges: tuple[int, ...]
    col_edges: tuple[int, ...]
    aligned: bool                      # chunk edges fall on level-0 tile edges
    spool: str | None = None           # folder (path or s3:// URL) for this part's compressed tiles
    spool_options: tuple[tuple[str, Any], ...] = ()
    tables: tuple[tuple[tuple[str, ...], Callable[..., np.ndarray]], ...] = ()  # (layers, per-chunk totals)


# --------------------------------------------------------------------------- per-process handles and caches


@functools.lru_cache(maxsize=64)
def _zarr_array(store: str, name: str, options: tuple[tuple[str, Any], ...], token: str = "") -> Any:
    """A Zarr array of the run's store, opened for writing once per process, store (``token``) and layer.

    ``write_empty_chunks`` is on: :func:`_write_zarr` writes only chunks that hold data.
    """
    import zarr

    kwargs: dict[str, Any] = {"storage_options": dict(options)} if "://" in store else {}
    return zarr.open_array(store, path=name, mode="r+", **kwargs).with_config({"write_empty_chunks": True})


@functools.lru_cache(maxsize=256)
def _empty_tile(dtype: str, fill: float, shape: tuple[int, int], codec: _Codec) -> bytes:
    """The compressed bytes of a tile holding only ``fill``: the same for every such tile of a file."""
    return _encode(np.full(shape, fill, dtype=dtype), codec)


_ADOBE_DEFLATE = 8


_STREAM_ENCODERS = ("isal", "zlib-ng")
"""Deflate encoders :func:`_deflate_stream` calls directly (libdeflate goes through tifffile, as odc-geo's)."""


def _encode(tile: np.ndarray, codec: _Codec) -> bytes:
    """One TIFF tile compressed with tifffile's encoder for ``codec.code`` (1 = uncompressed), or with ISA-L's
    or zlib-ng's deflate."""
    tile = np.ascontiguousarray(tile)
    if codec.code == 1:
        return tile.tobytes()
    if codec.code == _ADOBE_DEFLATE and codec.encoder in _STREAM_ENCODERS:
        return _deflate_stream(tile, dict(codec.args).get("level"), codec.encoder)
    from tifffile import TIFF

    return bytes(TIFF.COMPRESSORS[codec.code](tile, **dict(codec.args)))


def _fill(layer: str) -> float:
    return get_layer(layer).nodata


def _tile(band: np.ndarray, i: int, j: int, shape: tuple[int, int], fill: float) -> np.ndarray:
    """Tile ``(i, j)`` of ``shape`` px cut from ``band``; past ``band``'s edge padded with ``fill`` (as both
    COG writers and Zarr pad edge tiles and chunks)."""
    th, tw = shape
    tile = band[i * th:(i + 1) * th, j * tw:(j + 1) * tw]
    if tile.shape != shape:
        tile = np.pad(tile, [(0, t - s) for t, s in zip(shape, tile.shape, strict=True)],
                      constant_values=tile.dtype.type(fill))
    return tile


# --------------------------------------------------------------------------- tiles and Zarr chunks


def _compress_tiles(band: np.ndarray, *, row0: int, col0: int, tile: tuple[int, int], fill: float,
                    codec: _Codec, shared: Mapping[Any, bytes] | None = None) -> list[tuple[int, int, bytes]]:
    """Compress the COG tiles ``band`` holds; ``band`` starts at ``(row0, col0)`` of its level, on a tile edge.

    Tiles past the level's edge are padded with ``fill``; tiles holding only ``fill`` reuse one compressed
    empty tile; tiles found in ``shared`` (``(i, j)`` within ``band``: the same pixels, already encoded the
    same way for a Zarr chunk) are not encoded again. Returns ``(tile row, tile col, bytes)``, row-major.
    """
    th, tw = tile
    full = filled_tiles(band, fill, th, tw)
    out = []
    for i in range(full.shape[0]):
        for j in range(full.shape[1]):
            if not full[i, j]:
                data = _empty_tile(band.dtype.str, fill, tile, codec)
            elif shared is not None and (i, j) in shared:
                data = shared[(i, j)]
            else:
                data = _encode(_tile(band, i, j, tile, fill), codec)
            out.append((row0 // th + i, col0 // tw + j, data))
    return out


def _write_zarr(block: np.ndarray, name: str, zarr: ZarrTarget, row: int, col: int, fill: float,
                share: tuple[dict[tuple[int, int], bytes], int] | None = None) -> None:
    """Write ``block`` at store pixel ``(row, col)``, skipping the Zarr chunks that hold only ``fill``.

    Zarr's own emptiness check (``write_empty_chunks=False``) compares every chunk with the fill value in
    several numpy passes (8 % of a run's time, measured); one numba pass with an early exit per chunk finds
    the same chunks. Chunks holding only ``fill`` are not written: a new store has none, and a resumed part
    rewrites the same values. Arrays with the run's plain codec chain are written chunk by chunk with
    :class:`_ChunkWriter` (zarr-python's write path costs 2.5–3× the Zstandard encode itself, measured);
    any other chain goes through zarr-python, one call per run of chunks holding data. ``share``: see
    :meth:`_ChunkWriter.write_tiles`.
    """
    zh, zw = zarr.chunks
    lead_r, lead_c = row % zh, col % zw  # the block's offset into its first store chunk
    writer = _chunk_writer(zarr.store, name, zarr.storage_options, tuple(zarr.chunks), zarr.token,
                           zarr.deflate_encoder)
    if writer is not None and writer.shard is not None and (lead_r or lead_c):
        # a block starting inside a chunk (a bounding box's edge): its chunks are completed with fill, as
        # nothing else writes their shard (the rest of the lattice cell lies outside the region)
        canvas = np.full((lead_r + block.shape[0], lead_c + block.shape[1]), fill, dtype=block.dtype)
        canvas[lead_r:, lead_c:] = block
        block, row, col, lead_r, lead_c, share = canvas, row - lead_r, col - lead_c, 0, 0, None
    full = filled_tiles(block, fill, zh, zw, lead_r, lead_c)
    if writer is not None and lead_r == 0 and lead_c == 0:
        writer.write_tiles(block, full, row // zh, col // zw, fill, share=share)
        return
    arr = _zarr_array(zarr.store, name, zarr.storage_options, zarr.token)
    for i in range(full.shape[0]):
        r0, r1 = max(0, i * zh - lead_r), min(block.shape[0], (i + 1) * zh - lead_r)
        j = 0
        while j < full.shape[1]:
            if not full[i, j]:
                j += 1
                continue
            k = j
            while k < full.shape[1] and full[i, k]:
                k += 1
            c0, c1 = max(0, j * zw - lead_c), min(block.shape[1], k * zw - lead_c)
            arr[row + r0:row + r1, col + c0:col + c1] = block[r0:r1, c0:c1]
            j = k


@dataclass(frozen=True)
class _ChunkWriter:
    """Encodes and stores whole Zarr chunks of one array directly: the chunk's little-endian C-order bytes,
    compressed, under the array's chunk key, or gathered into the shard that holds them.

    Only for arrays whose metadata says exactly that: ``bytes`` little-endian, then ``zstd`` without checksum
    (numcodecs' Zstandard, the codec zarr-python itself uses) or ``gzip`` (one gzip member around the deflate
    data of ``encoder``, RFC 1952), on a regular chunk grid. What is written is then what any Zarr reader
    decodes (tested against zarr-python's reads; for zstd the bytes are zarr-python's own).

    A sharded array (``sharding_indexed`` around those codecs, its index ``bytes`` little-endian then
    ``crc32c`` at the end) gets one file per shard: the chunks' compressed bytes one after the other, then
    the index of ``(offset, size)`` per chunk in C order (``2**64 - 1`` twice for a chunk holding only fill)
    and its CRC-32C. A shard is written whole by the one task whose block lies in it.
    """

    root: str                 # the array's folder (local path or s3:// URL)
    chunks: tuple[int, int]
    kind: str                 # "zstd" or "gzip"
    level: int
    dtype: str                # little-endian numpy dtype
    key: Callable[[tuple[int, ...]], str]
    options: tuple[tuple[str, Any], ...]
    encoder: str = "isal"     # deflate encoder of gzip chunks
    shard: tuple[int, int] | None = None  # shard shape (px) of a sharded array

    def write_tiles(self, block: np.ndarray, full: np.ndarray, ci: int, cj: int, fill: float,
                    share: tuple[dict[tuple[int, int], bytes], int] | None = None) -> None:
        """Write the chunks of ``block`` (which starts on chunk ``(ci, cj)``) that ``full`` marks as holding
        data; chunks past the block's edge are padded with ``fill``, as zarr-python pads them.

        ``share = (memo, level)``: with a gzip chain at that level, each chunk's zlib stream goes into
        ``memo[(i, j)]``. A deflate COG tile over the same pixels, encoded by the same encoder at that level, is
        those bytes exactly, so the sink stores them without compressing the tile again.
        """
        from numcodecs import Zstd

        zstd = Zstd(level=self.level) if self.kind == "zstd" else None
        memo = share[0] if share is not None and self.kind == "gzip" and share[1] == self.level else None
        zh, zw = self.chunks
        data: dict[tuple[int, int], bytes] = {}
        for i, j in zip(*np.nonzero(full), strict=True):
            raw = np.ascontiguousarray(_tile(block, int(i), int(j), (zh, zw), fill), dtype=self.dtype)
            if zstd is not None:
                payload = bytes(zstd.encode(raw))
            else:
                stream = _deflate_stream(raw, self.level, self.encoder)
                if memo is not None and raw.dtype == block.dtype:  # the COG tile holds the same bytes
                    memo[(int(i), int(j))] = stream
                payload = _gzip_member(stream, raw)
            data[(ci + int(i), cj + int(j))] = payload
        if self.shard is None:
            _put_files({f"{self.root}/{self.key(k)}": v for k, v in data.items()}, self.options)
        else:
            _put_files(self._shards(data), self.options)

    def _shards(self, chunks: Mapping[tuple[int, int], bytes]) -> dict[str, list[bytes]]:
        """The shard files holding ``chunks`` (payloads by chunk coordinates in the array), each as the list of
        its parts (joined only for S3: a local file takes them one after the other, without a copy)."""
        import struct

        import google_crc32c

        per = (self.shard[0] // self.chunks[0], self.shard[1] // self.chunks[1])  # type: ignore[index]
        grouped: dict[tuple[int, int], dict[tuple[int, int], bytes]] = {}
        for (i, j), payload in chunks.items():
            grouped.setdefault((i // per[0], j // per[1]), {})[(i % per[0], j % per[1])] = payload
        files = {}
        for key, members in grouped.items():
            index = np.full((*per, 2), np.iinfo(np.uint64).max, dtype="<u8")
            parts = []
            offset = 0
            for (i, j), payload in sorted(members.items()):
                index[i, j] = (offset, len(payload))
                offset += len(payload)
                parts.append(payload)
            raw_index = index.tobytes()
            parts += [raw_index, struct.pack("<I", google_crc32c.value(raw_index))]
            files[f"{self.root}/{self.key(key)}"] = parts
        return files


@functools.lru_cache(maxsize=64)
def _chunk_writer(store: str, name: str, options: tuple[tuple[str, Any], ...], chunks: tuple[int, int],
                  token: str = "", encoder: str = "isal") -> _ChunkWriter | None:
    """The :class:`_ChunkWriter` of a store's array (once per process, store (``token``) and layer), or None
    when its codecs or chunk grid are not the plain ones."""
    from zarr.codecs import Crc32cCodec, GzipCodec, ShardingCodec, ZstdCodec
    from zarr.core.chunk_grids import RegularChunkGrid

    arr = _zarr_array(store, name, options, token)
    meta = arr.metadata
    codecs = tuple(getattr(meta, "codecs", ()))
    if not isinstance(meta.chunk_grid, RegularChunkGrid):
        return None
    grid = tuple(meta.chunk_grid.chunk_shape)
    shard = None
    if len(codecs) == 1 and isinstance(codecs[0], ShardingCodec):
        sharding = codecs[0]
        index = tuple(sharding.index_codecs)
        if not (str(getattr(sharding.index_location, "value", sharding.index_location)) == "end"
                and len(index) == 2 and _little_bytes(index[0]) and isinstance(index[1], Crc32cCodec)
                and tuple(sharding.chunk_shape) == chunks
                and all(g % c == 0 for g, c in zip(grid, chunks, strict=True))):
            return None
        codecs, shard = tuple(sharding.codecs), grid
    elif grid != chunks:
        return None
    if not (len(codecs) == 2 and _little_bytes(codecs[0])):
        return None
    if isinstance(codecs[1], ZstdCodec) and not codecs[1].checksum:
        kind = "zstd"
    elif isinstance(codecs[1], GzipCodec):
        kind = "gzip"
    else:
        return None
    return _ChunkWriter(f"{store.rstrip('/')}/{name}", chunks, kind, int(codecs[1].level),
                        np.dtype(arr.dtype).newbyteorder("<").str, meta.encode_chunk_key, options,
                        _chunk_encoder(encoder, int(codecs[1].level)), shard)


def _little_bytes(codec: Any) -> bool:
    """Whether ``codec`` is zarr's ``bytes`` codec writing little-endian (or single-byte) values."""
    from zarr.codecs import BytesCodec

    return isinstance(codec, BytesCodec) and str(getattr(codec.endian, "value", codec.endian)) in ("little", "None")


def _chunk_encoder(encoder: str, level: int) -> str:
    """The encoder of a gzip store's chunks: the run's, unless that is libdeflate (not called directly) or
    ISA-L with a level beyond its 0–3 (a store made by another configuration); zlib-ng then."""
    lo, hi = DEFLATE_LEVELS["isal"]
    return encoder if encoder == "zlib-ng" or (encoder == "isal" and lo <= level <= hi) else "zlib-ng"


def _deflate_stream(raw: np.ndarray, level: int | None, encoder: str) -> bytes:
    """A zlib stream (RFC 1950) of the bytes of C-contiguous ``raw``, by ISA-L (``"isal"``) or zlib-ng."""
    return _isal(raw, level) if encoder == "isal" else _zlib_ng(raw, level)


def _isal(raw: np.ndarray, level: int | None) -> bytes:
    """A zlib stream (RFC 1950) of ``raw``'s bytes, by ISA-L (python-isal; levels 0–3, default 1 here)."""
    try:
        from isal import isal_zlib
    except ImportError as exc:
        raise ConfigError("the ISA-L deflate encoder needs the isal package (`pip install isal`), or set [run] "
                          "cog_deflate_encoder = \"zlib-ng\"") from exc
    return isal_zlib.compress(raw, 1 if level is None else int(level))


def _zlib_ng(raw: np.ndarray, level: int | None) -> bytes:
    """A zlib stream (RFC 1950) of ``raw``'s bytes, by zlib-ng."""
    import imagecodecs

    if not imagecodecs.ZLIBNG.available:
        raise ConfigError("this imagecodecs build has no zlib-ng: install imagecodecs from PyPI or set "
                          "[run] cog_deflate_encoder = \"isal\" or \"libdeflate\" and zarr_codec = \"zstd\"")
    return bytes(imagecodecs.zlibng_encode(raw, level=level))


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"  # deflate, no flags, no time, unknown OS


def _gzip_member(zlib_stream: bytes, raw: np.ndarray) -> bytes:
    """One gzip member (RFC 1952) around the deflate data of a zlib stream (RFC 1950) of ``raw``: the
    stream's 2-byte header and Adler-32 trailer are replaced by gzip's header and CRC-32/size trailer."""
    import struct

    import imagecodecs

    body = memoryview(zlib_stream)[2:-4]
    return b"".join((_GZIP_HEADER, body, struct.pack("<II", imagecodecs.deflate_crc32(raw), raw.nbytes & 0xFFFFFFFF)))


def _put_files(data: Mapping[str, bytes | list[bytes]], options: tuple[tuple[str, Any], ...]) -> None:
    """Store whole files, each given as bytes or as a list of consecutive parts: local paths directly,
    ``s3://`` ones in one concurrent s3fs batch."""
    if not data:
        return
    first = next(iter(data))
    if "://" in first:
        _fs(first, options).pipe({k: v if isinstance(v, bytes) else b"".join(v) for k, v in data.items()})
        return
    made: set[str] = set()
    for path, payload in data.items():
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as f:
            if isinstance(payload, bytes):
                f.write(payload)
            else:
                f.writelines(payload)


# --------------------------------------------------------------------------- spool of compressed tiles


def _fs(url: str, options: tuple[tuple[str, Any], ...]) -> Any:
    """The fsspec filesystem of ``url`` (local, or s3fs with the run's options)."""
    if "://" in url:
        from fluxgraph.s3 import filesystem

        return filesystem(dict(options))
    import fsspec

    return fsspec.filesystem("file")


def _spool(ctx: _Context, name: str, tiles: Mapping[int, list[tuple[int, int, bytes]]]) -> dict[str, Any]:
    """Write one task's compressed tiles (every COG's) to one spool file; return where each tile lies.

    Holding compressed tiles in worker memory until a part's files are written made memory grow with the
    part (measured: 2.0 GB per worker at 1e8 px, 5.8 GB at 4e8 px, same chunks); the spool keeps only
    their index in memory.
    """
    assert ctx.spool is not None
    path = f"{ctx.spool.rstrip('/')}/{name}.bin"
    fs = _fs(path, ctx.spool_options)
    index: dict[int, list[tuple[int, int, int, int]]] = {}
    offset = 0
    if "://" not in path:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with fs.open(path, "wb") as f:
        for t, entries in tiles.items():
            index[t] = []
            for ty, tx, payload in entries:
                f.write(payload)
                index[t].append((ty, tx, offset, len(payload)))
                offset += len(payload)
    return {"path": path, "index": index}


def _remove_spool(ctx: _Context) -> None:
    """Delete a part's spool folder once its files are written."""
    if ctx.spool is None:
        return
    fs = _fs(ctx.spool, ctx.spool_options)
    try:
        if fs.exists(ctx.spool):
            fs.rm(ctx.spool, recursive=True)
    except FileNotFoundError:
        pass


# --------------------------------------------------------------------------- tasks


def _chunk_task(*blocks: np.ndarray, ctx: _Context, block_id: tuple[int, int] = (0, 0), do_zarr: bool = True,
                do_cogs: bool = True) -> np.ndarray:
    """Everything one chunk contributes: Zarr writes, statistics, level-0 COG tiles, level-1 pieces.

    Returns a 1 x 1 object array holding ``{"summary": {"stats": {name: 5 floats}, "tables": [partial
    totals]}, "tiles": {"path": spool file,
    "index": {cog: [(tile row, tile col, offset, size), ...]}}, "dec": {cog: (row, col, array)}}``.
    """
    i, j = block_id
    rows, cols = (ctx.row_edges, ctx.col_edges) if ctx.aligned or do_zarr else _aligned_edges(ctx)
    r0, c0 = rows[i], cols[j]
    by_name = dict(zip(ctx.names, blocks, strict=True))
    result: dict[str, Any] = {"summary": {"stats": {}, "tables": []}, "tiles": None, "dec": {}}
    memos: dict[str, dict[tuple[int, int], bytes]] = {}  # per layer: its Zarr chunks' zlib streams, for its COG
    if do_zarr:
        if ctx.zarr is not None:
            shared = _shares_tiles(ctx, r0, c0) if do_cogs else set()
            level = dict(ctx.codec.args).get("level")
            for name in ctx.zarr_names:
                share = (memos.setdefault(name, {}), level) if name in shared else None
                _write_zarr(by_name[name], name, ctx.zarr, ctx.zarr.offset[0] + r0, ctx.zarr.offset[1] + c0,
                            _fill(name), share=share)
        row0, row1 = ctx.part.row0 + r0, ctx.part.row0 + r0 + blocks[0].shape[0]
        if ctx.stats_names:
            area = row_pixel_area_m2(row0, row1)
            result["summary"]["stats"] = {name: block_stats(by_name[name], area) for name in ctx.stats_names}
        result["summary"]["tables"] = [fn({n: by_name[n] for n in layers}, row0, row1) for layers, fn in ctx.tables]
    if do_cogs and ctx.levels is not None and ctx.cogs:
        tiles = {}
        scratch: np.ndarray | None = None  # one buffer for every selected (per-year) COG of the chunk
        for t, ((key, layer), select) in enumerate(zip(ctx.cogs, ctx.selects, strict=True)):
            block = by_name[key]
            if select is not None:
                if scratch is None or scratch.dtype != block.dtype:
                    scratch = np.empty_like(block)
                block = select_by_code(block, by_name[select[0]], select[1], _fill(layer), out=scratch)
            tiles[t] = _compress_tiles(block, row0=r0, col0=c0, tile=ctx.levels.tiles[0], fill=_fill(layer),
                                       codec=ctx.codec, shared=memos.get(key) if select is None else None)
            if len(ctx.levels.shapes) > 1:
                result["dec"][t] = (r0 // 2, c0 // 2, np.ascontiguousarray(block[1::2, 1::2]))
        result["tiles"] = _spool(ctx, f"c{i}_{j}", tiles)
    out = np.empty((1, 1), dtype=object)
    out[0, 0] = result
    return out


def _shares_tiles(ctx: _Context, r0: int, c0: int) -> set[str]:
    """The layers whose Zarr chunks of the block at ``(r0, c0)`` are exactly its level-0 COG tiles, encoded
    the same way (deflate by the same ISA-L or zlib-ng encoder): same tile shape, both grids starting at the
    block's corner."""
    if ctx.zarr is None or ctx.levels is None or not ctx.aligned:
        return set()
    th, tw = ctx.levels.tiles[0]
    if (tuple(ctx.zarr.chunks) != (th, tw) or ctx.codec.code != _ADOBE_DEFLATE
            or ctx.codec.encoder not in _STREAM_ENCODERS or ctx.codec.encoder != ctx.zarr.deflate_encoder
            or (ctx.zarr.offset[0] + r0) % th or (ctx.zarr.offset[1] + c0) % tw or r0 % th or c0 % tw):
        return set()
    return {key for (key, layer), select in zip(ctx.cogs, ctx.selects, strict=True)
            if select is None and key == layer} & set(ctx.zarr_names)


def _band_task(pieces: list[dict[int, tuple[int, int, np.ndarray]]], ctx: _Context, level: int,
               band: int) -> dict[str, Any]:
    """One row band of one overview level for every COG: paste the pieces below, compress, decimate."""
    assert ctx.levels is not None
    b0, b1 = ctx.levels.band_rows(level, band)
    width = ctx.levels.shapes[level][1]
    tiles: dict[int, list[tuple[int, int, bytes]]] = {}
    dec: dict[int, tuple[int, int, np.ndarray]] = {}
    for t, (_key, layer) in enumerate(ctx.cogs):
        fill = _fill(layer)
        arr = np.full((b1 - b0, width), fill, dtype=get_layer(layer).np_dtype)
        for piece in pieces:
            pr, pc, data = piece[t]
            lo, hi = max(b0, pr), min(b1, pr + data.shape[0])
            if lo < hi:
                arr[lo - b0:hi - b0, pc:pc + data.shape[1]] = data[lo - pr:hi - pr]
        tiles[t] = _compress_tiles(arr, row0=b0, col0=0, tile=ctx.levels.tiles[level], fill=fill, codec=ctx.codec)
        if level + 1 < len(ctx.levels.shapes):
            dec[t] = (b0 // 2, 0, np.ascontiguousarray(arr[1::2, 1::2]))
    return {"tiles": _spool(ctx, f"b{level}_{band}", tiles), "dec": dec}


def _assemble_task(target: CogTarget, part: PixelWindow, fmt: CogFormat, levels: _Levels, t: int,
                   *spooled: dict[str, Any], level_of: Sequence[int], spool_options: tuple = ()) -> str:
    """Write COG ``t``: odc-geo's header with the tile index patched in, then its tiles read back from the
    spool, smallest level first and row-major within a level."""
    from affine import Affine
    from odc.geo.cog._tifffile import _make_empty_cog, _patch_hdr
    from odc.geo.geobox import GeoBox

    from fluxgraph.provenance import as_tags, layer_metadata
    from fluxgraph.writers import cog_blocksizes, cog_description, gdal_metadata_items

    layer = get_layer(target.layer)
    tags = dict(target.tags)
    band = as_tags(layer_metadata(layer))
    _, args = fmt.tifffile()
    gbox = GeoBox(part.shape, Affine(*part.transform), "epsg:4326")
    meta, header = _make_empty_cog(part.shape, layer.np_dtype, gbox, nodata=layer.nodata, gdal_metadata="",
                                   compression=fmt.compress, compressionargs=args, predictor=1,
                                   blocksize=cog_blocksizes(part.shape, overviews=fmt.overviews), bigtiff=True,
                                   description=cog_description(tags))
    got = tuple(tuple(int(x) for x in m.shape.yx) for m in meta.flatten())
    if got != levels.shapes:
        raise ConfigError(f"{target.path}: odc-geo plans COG levels {got}, the sink made {levels.shapes}")
    records: list[tuple[int, int, int, str, int, int]] = []  # (-level, row, col, spool file, offset, size)
    for level, entry in zip(level_of, spooled, strict=True):
        if entry:
            records += [(-level, ty, tx, entry["path"], off, size) for ty, tx, off, size in entry["index"].get(t, [])]
    records.sort()
    index = [(size, (-neg_level, 0, ty, tx)) for neg_level, ty, tx, _, _, size in records]
    head = _patch_hdr(index, meta, bytes(header), None, gdal_metadata_items(tags, band))
    _write_file(target, head, _read_spooled([(path, off, size) for *_, path, off, size in records], spool_options))
    return target.path


def _read_spooled(ranges: Sequence[tuple[str, int, int]], options: tuple, max_read: int = 16 << 20) -> Iterator[bytes]:
    """The bytes of each ``(file, offset, size)`` in turn, adjacent ranges of a file read at once."""
    handles: dict[str, Any] = {}
    try:
        k = 0
        while k < len(ranges):
            path, start, size = ranges[k]
            end = start + size
            n = k + 1
            while n < len(ranges) and ranges[n][0] == path and ranges[n][1] == end and end - start < max_read:
                end += ranges[n][2]
                n += 1
            if path not in handles:
                handles[path] = _fs(path, options).open(path, "rb")
            f = handles[path]
            f.seek(start)
            data = f.read(end - start)
            if len(data) != end - start:
                raise StorageError(f"spool file {path} is shorter than its index: was the run's output changed "
                                   "while it ran? Rerun the part (fluxgraph run --resume)")
            yield data
            k = n
    finally:
        for f in handles.values():
            f.close()


def _write_file(target: CogTarget, header: bytes, data: Iterable[bytes]) -> None:
    """Write ``header`` then ``data`` so that the file appears under its name only once complete.

    Local: a temporary sibling renamed at the end. S3: a multipart upload, completed by S3 only when the
    file is closed (aborted on error).
    """
    path = target.path
    if "://" in path:
        from fluxgraph.s3 import filesystem, storage_error

        try:
            f = filesystem(dict(target.storage_options)).open(path, "wb")
            try:
                f.write(header)
                for d in data:
                    f.write(d)
            except BaseException:
                f.discard()
                raise
            f.close()
        except StorageError:
            raise
        except Exception as exc:
            raise storage_error(path, exc, action="write") from None
        return
    from fluxgraph.outputs import commit_file, temporary_path

    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = temporary_path(path, suffix=".tif")
    try:
        with open(tmp, "wb") as f:
            f.write(header)
            for d in data:
                f.write(d)
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise StorageError(f"could not write {path}: {exc}; check the free space and permissions there") from exc
    commit_file(tmp, path)


def _finish_task(summaries: list[dict[str, Any]], paths: list[str], *, pixels: int,
                 names: Sequence[str], ctx: _Context | None = None) -> dict[str, Any]:
    """The part's result: each layer's statistics and each table reduced over the chunks, the COGs written.

    Runs after every COG of the part is written, so it also removes the part's spool.
    """
    if ctx is not None:
        _remove_spool(ctx)
    n_tables = len(summaries[0]["tables"]) if summaries else 0
    tables = []
    for k in range(n_tables):  # chunk by chunk, in chunk order
        total = np.zeros_like(summaries[0]["tables"][k])
        for s in summaries:
            total = total + s["tables"][k]
        tables.append(total)
    return {"stats": {name: summarise(name, [s["stats"][name] for s in summaries], pixels) for name in names},
            "tables": tables, "cogs": paths}


def summarise(name: str, blocks: Sequence[np.ndarray], pixels: int) -> dict[str, float]:
    """Reduce per-block :func:`~fluxgraph.kernels.stats.block_stats` into a layer's summary.

    Returns
    -------
    dict
        ``pixels``, ``nonzero``, ``min``, ``max`` and, for CO2(e) fluxes per ha or per pixel, ``total_Mt``
        (Mt; values per ha × pixel area).
    """
    s = np.array(blocks, dtype=np.float64).reshape(-1, 5)
    out: dict[str, float] = {"pixels": pixels, "nonzero": float(s[:, 0].sum()), "min": float(s[:, 1].min()),
                             "max": float(s[:, 2].max())}
    units = get_layer(name).units
    if units.startswith(("Mg CO2e/ha", "Mg CO2/ha")):
        out["total_Mt"] = float(s[:, 3].sum()) / 1e4 / 1e6
    elif units.startswith(("Mg CO2e/pixel", "Mg CO2/pixel")):
        out["total_Mt"] = float(s[:, 4].sum()) / 1e6
    return out


# --------------------------------------------------------------------------- graph


def _edges(chunks: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(x) for x in np.cumsum((0, *chunks)))


def _is_aligned(edges: tuple[int, ...], step: int) -> bool:
    return all(e % step == 0 for e in edges[1:-1])


def _aligned_chunks(chunks: Sequence[int], step: int) -> tuple[int, ...]:
    """Chunks of the same extent whose interior edges fall on multiples of ``step`` from the start."""
    total = int(sum(chunks))
    size = max(step, int(max(chunks)) // step * step)
    return tuple(min(size, total - k * size) for k in range(-(-total // size)))


def _aligned_edges(ctx: _Context) -> tuple[tuple[int, ...], tuple[int, ...]]:
    assert ctx.levels is not None
    th, tw = ctx.levels.tiles[0]
    return (_edges(_aligned_chunks(np.diff(ctx.row_edges).tolist(), th)),
            _edges(_aligned_chunks(np.diff(ctx.col_edges).tolist(), tw)))


@dataclass
class PartSink:
    """The lazy sink of one part (:func:`part_sink`): chunk-task arrays, then :meth:`finish` on top.

    Attributes
    ----------
    chunk_tasks : list of dask.array.Array
        One object per chunk (1 x 1 blocks). Optimise them together with whatever else the part
        computes (dask.optimize), then pass the optimised arrays to :meth:`finish`.
    """

    chunk_tasks: list[da.Array]
    ctx: _Context
    cogs: tuple[CogTarget, ...]
    fmt: CogFormat

    def finish(self, optimised: Sequence[da.Array]) -> Delayed:
        """Overview, file and result tasks over the optimised chunk-task arrays.

        The Delayed computes to ``{"stats": {name: summary}, "cogs": [paths]}``; compute it with
        ``optimize_graph=False`` (the graph is optimised already).
        """
        key, layer = self.finish_layer(optimised)
        return Delayed(key, HighLevelGraph.from_collections(key, layer, dependencies=list(optimised)))

    def finish_layer(self, optimised: Sequence[da.Array]) -> tuple[str, dict[Any, Any]]:
        """The key of the part's result and the tasks :meth:`finish` adds (without the chunk tasks' graph)."""
        return _finish(optimised, ctx=self.ctx, cogs=self.cogs, fmt=self.fmt)


def part_sink(arrays: Mapping[str, xr.DataArray], part: PixelWindow, *, zarr: ZarrTarget | None,
              zarr_names: Sequence[str], stats_names: Sequence[str], cogs: Sequence[CogTarget],
              fmt: CogFormat | None = None, spool: str | None = None,
              spool_options: Mapping[str, Any] | None = None,
              tables: Sequence[tuple[Sequence[str], Callable[..., np.ndarray]]] = ()) -> PartSink:
    """Plan the one-pass sink of one tile part.

    Parameters
    ----------
    arrays : mapping of str to xarray.DataArray
        Every array the part writes, by key; all with the same dask chunks over ``part``.
    part : PixelWindow
        The part's pixels.
    zarr : ZarrTarget, optional
        Where ``zarr_names`` go (None: no Zarr store).
    zarr_names, stats_names : sequence of str
        Keys of the arrays written to the Zarr store, and of those summarised.
    cogs : sequence of CogTarget
        The part's COGs.
    fmt : CogFormat, optional
        Compression and overviews (deflate level 6 with overviews if omitted).
    spool : str, optional
        A folder (local path or ``s3://`` URL) every worker can reach, for the part's compressed tiles
        until its COGs are written; required with ``cogs``. Removed when the part is done.
    spool_options : mapping, optional
        s3fs options for an ``s3://`` spool.
    tables : sequence of (layers, function)
        Tables reduced chunk by chunk: ``function({layer: block}, row0, row1)`` gives a chunk's partial
        totals (:attr:`fluxgraph.graph.Summary.block`); the part's ``tables`` are their sums.

    Returns
    -------
    PartSink
    """
    fmt = fmt or CogFormat()
    if cogs and not spool:
        raise ConfigError("writing COGs needs a spool folder for their compressed tiles")
    names = tuple(arrays)
    if not names:
        raise ConfigError(f"nothing to write for part {part}")
    data = [arrays[n].data for n in names]
    chunks = data[0].chunks
    if any(d.chunks != chunks for d in data):
        raise ConfigError(f"the arrays of part {part} are not chunked alike")
    levels = cog_levels(part.shape, overviews=fmt.overviews) if cogs else None
    code, args = fmt.tifffile()
    row_edges, col_edges = _edges(chunks[0]), _edges(chunks[1])
    aligned = levels is None or (_is_aligned(row_edges, levels.tiles[0][0])
                                 and _is_aligned(col_edges, levels.tiles[0][1]))
    ctx = _Context(part=part, names=names, zarr_names=tuple(zarr_names), stats_names=tuple(stats_names),
                   cogs=tuple((c.key, c.layer) for c in cogs), selects=tuple(c.select for c in cogs),
                   zarr=zarr, levels=levels,
                   codec=_Codec(code, tuple(sorted(args.items())), fmt.encoder),
                   row_edges=row_edges, col_edges=col_edges,
                   aligned=aligned, spool=spool, spool_options=tuple(sorted(dict(spool_options or {}).items())),
                   tables=tuple((tuple(layers), fn) for layers, fn in tables))
    token = dask.base.tokenize(ctx, *data)
    meta = np.empty((0, 0), dtype=object)
    tasks = [da.map_blocks(_chunk_task, *data, ctx=ctx, do_zarr=True, do_cogs=aligned, chunks=_ones(chunks),
                           name=f"sink-{token}", meta=meta)]
    if not aligned:  # a second pass on tile-aligned chunks for the COGs; the stage graph is shared
        rows, cols = _aligned_edges(ctx)
        new = (tuple(np.diff(rows).tolist()), tuple(np.diff(cols).tolist()))
        tasks.append(da.map_blocks(_chunk_task, *[d.rechunk(new) for d in data], ctx=ctx, do_zarr=False,
                                   do_cogs=True, chunks=_ones(new), name=f"sink-cog-{token}", meta=meta))
    return PartSink(tasks, ctx, tuple(cogs), fmt)


def _ones(chunks: tuple[tuple[int, ...], ...]) -> tuple[tuple[int, ...], ...]:
    return tuple((1,) * len(c) for c in chunks)


def _finish(sinks: Sequence[da.Array], *, ctx: _Context, cogs: Sequence[CogTarget],
            fmt: CogFormat) -> tuple[str, dict[Any, Any]]:
    token = dask.base.tokenize(ctx, [s.name for s in sinks])
    layer: dict[Any, Any] = {}
    stat_keys = []
    for key in dask.core.flatten(sinks[0].__dask_keys__()):
        k = (f"stats-{token}", *key[1:])
        layer[k] = (_pick, key, "summary")
        stat_keys.append(k)
    path_keys: list[Any] = []
    if ctx.levels is not None and cogs:
        rows = ctx.row_edges if ctx.aligned else _aligned_edges(ctx)[0]
        chunk_keys = list(dask.core.flatten(sinks[-1].__dask_keys__()))
        pieces: list[tuple[int, int, Any]] = []  # (first row, end row, key) of the pieces of the next level
        for key in chunk_keys:
            k = (f"dec0-{token}", *key[1:])
            layer[k] = (_pick, key, "dec")
            pieces.append((rows[key[1]] // 2, rows[key[1] + 1] // 2, k))
        sources: list[tuple[int, Any]] = [(0, key) for key in chunk_keys]  # (level, task holding its tiles)
        for level in range(1, len(ctx.levels.shapes)):
            below, pieces = pieces, []
            for band in range(ctx.levels.bands(level)):
                b0, b1 = ctx.levels.band_rows(level, band)
                bk = (f"band{level}-{token}", band)
                layer[bk] = (_band_task, [k for p0, p1, k in below if p0 < b1 and p1 > b0], ctx, level, band)
                sources.append((level, bk))
                if level + 1 < len(ctx.levels.shapes):
                    dk = (f"dec{level}-{token}", band)
                    layer[dk] = (_pick, bk, "dec")
                    pieces.append((b0 // 2, b1 // 2, dk))
        level_of = [lv for lv, _ in sources]
        index_keys = []  # the spool file and tile index of each chunk and band task (small)
        for n, (_level, src) in enumerate(sources):
            ik = (f"tiles-{token}", n)
            layer[ik] = (_pick, src, "tiles")
            index_keys.append(ik)
        for t, target in enumerate(cogs):
            ak = (f"cog-{token}", t)
            layer[ak] = (functools.partial(_assemble_task, level_of=level_of, spool_options=ctx.spool_options),
                         target, ctx.part, fmt, ctx.levels, t, *index_keys)
            path_keys.append(ak)
    final = f"part-{token}"
    layer[final] = (functools.partial(_finish_task, pixels=ctx.part.size, names=list(ctx.stats_names), ctx=ctx),
                    stat_keys, path_keys)
    return final, layer


def _pick(x: Any, what: str) -> Any:
    """One entry of a chunk task's result (a 1 x 1 object array) or of a band task's result (a dict)."""
    return (x[0, 0] if isinstance(x, np.ndarray) else x)[what]


