"""Where input tiles come from: local folders, S3 buckets and the synthetic ``demo://`` source.

A source answers two questions for the mosaic reader: *is there a file of this name*
(``locate``) and *what are the pixels of this window* (``read_window``). Files are
found by the original's exact names (spec/inputs.md §1.3), anywhere below the
location given, so users can point fluxgraph at their existing folders or buckets.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs, urlparse

import numpy as np

from fluxgraph.errors import ConfigError, GridMismatchError, InputLayerError
from fluxgraph.grid import PX_PER_DEG, RES, PixelWindow, TileId

__all__ = ["DemoSource", "LocalSource", "S3Source", "Source", "TileFile", "open_source", "record_reads"]

_read_hooks: list[Callable[[str, PixelWindow], None]] = []
_hooks_lock = threading.Lock()


@contextmanager
def record_reads() -> Iterator[list[tuple[str, PixelWindow]]]:
    """Record every (path, window) read by this process while the context is open.

    Works with the in-process dask schedulers (``synchronous``, ``threads``); used by
    the tests to prove that a regional subset reads only the windows it touches.
    """
    log: list[tuple[str, PixelWindow]] = []

    def hook(path: str, window: PixelWindow) -> None:
        with _hooks_lock:
            log.append((path, window))

    _read_hooks.append(hook)
    try:
        yield log
    finally:
        _read_hooks.remove(hook)


def _notify(path: str, window: PixelWindow) -> None:
    for hook in list(_read_hooks):
        hook(path, window)


@dataclass(frozen=True)
class TileFile:
    """One raster of one layer for one tile, and the pixels it covers."""

    layer: str
    tile: TileId
    path: str
    window: PixelWindow
    dtype: str
    source: Source = field(compare=False, repr=False)

    def read_all(self, window: PixelWindow) -> np.ndarray:
        """The pixels of ``window``, which this file covers entirely, in the file's dtype."""
        _notify(self.path, window)
        return self.source.read_window(self, window)

    def read(self, window: PixelWindow, out: np.ndarray) -> None:
        """Read the part of ``window`` this file covers into ``out`` (an array covering ``window``)."""
        inter = self.window.intersection(window)
        if inter is None:
            return
        _notify(self.path, inter)
        dst = inter.relative_to(window)
        out[dst] = self.source.read_window(self, inter)


class Source(Protocol):
    """A place holding input tiles."""

    label: str

    def locate(self, filename: str, layer: str, tile: TileId) -> tuple[TileFile | None, list[str]]:
        """The file called ``filename`` (the layer's original name) if present, and the paths tried."""
        ...

    def read_window(self, tf: TileFile, window: PixelWindow) -> np.ndarray:
        """Pixels of ``window`` (inside ``tf.window``) as an array of the file's dtype."""
        ...


# -- GeoTIFF sources ---------------------------------------------------------------------------


def _check_grid(path: str, crs: Any, transform: Any, width: int, height: int, tile: TileId) -> PixelWindow:
    """Validate that a raster lies on the global 0.00025° grid inside its tile."""
    fix = "re-warp it onto the grid with `gdalwarp -t_srs EPSG:4326 -tr 0.00025 0.00025 -tap`"
    if crs is None or crs.to_epsg() != 4326:
        raise GridMismatchError(f"{path}: CRS is {crs or 'missing'}, expected EPSG:4326; {fix}")
    if transform.b != 0 or transform.d != 0:
        raise GridMismatchError(f"{path}: the raster is rotated (transform {tuple(transform)[:6]}); {fix}")
    if abs(transform.a - RES) > 1e-9 or abs(transform.e + RES) > 1e-9:
        raise GridMismatchError(
            f"{path}: pixel size is ({transform.a:.10g}, {transform.e:.10g}) degrees, expected "
            f"(0.00025, -0.00025) north-up; {fix}"
        )
    col = (transform.c + 180.0) * PX_PER_DEG
    row = (90.0 - transform.f) * PX_PER_DEG
    if abs(col - round(col)) > 1e-3 or abs(row - round(row)) > 1e-3:
        raise GridMismatchError(
            f"{path}: top-left corner ({transform.c:.9f}, {transform.f:.9f}) is off the pixel grid by "
            f"({col - round(col):+.4f}, {row - round(row):+.4f}) pixels; {fix}"
        )
    win = PixelWindow.from_transform(transform.c, transform.f, width, height)
    if win.intersection(tile.window) != win:
        raise GridMismatchError(
            f"{path}: covers {win}, which is not inside its tile {tile} ({tile.window}); "
            "a file named for a tile must lie within that tile"
        )
    return win


class _GeoTiffSource:
    """Shared behaviour of sources of GeoTIFF files read with rasterio."""

    label: str

    def gdal_env(self) -> dict[str, Any]:
        return {}

    def _index(self) -> dict[str, str]:
        raise NotImplementedError

    def _tried(self, filename: str) -> str:
        raise NotImplementedError

    def locate(self, filename: str, layer: str, tile: TileId) -> tuple[TileFile | None, list[str]]:
        path = self._index().get(filename)
        if path is None:
            return None, [self._tried(filename)]
        import rasterio

        try:
            with rasterio.Env(**self.gdal_env()), rasterio.open(path) as src:
                win = _check_grid(path, src.crs, src.transform, src.width, src.height, tile)
                dtype = src.dtypes[0]
        except rasterio.errors.RasterioIOError as exc:
            raise InputLayerError(f"{path}: cannot be read as a raster ({exc}); is it a valid GeoTIFF?") from exc
        return TileFile(layer, tile, path, win, dtype, self), [path]

    def read_window(self, tf: TileFile, window: PixelWindow) -> np.ndarray:
        import rasterio
        from rasterio.windows import Window

        r, c = window.relative_to(tf.window)
        try:
            with rasterio.Env(**self.gdal_env()), rasterio.open(tf.path) as src:
                return src.read(1, window=Window(c.start, r.start, c.stop - c.start, r.stop - r.start))
        except rasterio.errors.RasterioIOError as exc:
            raise InputLayerError(f"{tf.path}: read of {window} failed ({exc})") from exc


class LocalSource(_GeoTiffSource):
    """GeoTIFF tiles anywhere below a local folder, found by their original names.

    Files in the original's layout (strips, deflate or uncompressed, no predictor) are read with
    :mod:`fluxgraph.strips`, anything else with GDAL.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise ConfigError(f"input folder {self.root} does not exist or is not a folder")
        self.label = str(self.root)
        self._files: dict[str, str] | None = None
        self._lock = threading.Lock()

    def _index(self) -> dict[str, str]:
        with self._lock:
            if self._files is None:
                files: dict[str, str] = {}
                for dirpath, _dirs, names in os.walk(self.root):
                    for name in names:
                        if name.lower().endswith((".tif", ".tiff")):
                            files.setdefault(name, os.path.join(dirpath, name))
                self._files = files
            return self._files

    def _tried(self, filename: str) -> str:
        return str(self.root / "**" / filename)

    def read_window(self, tf: TileFile, window: PixelWindow) -> np.ndarray:
        from fluxgraph.strips import read_strips, strip_layout

        layout = strip_layout(tf.path)
        if layout is None or np.dtype(layout.dtype) != np.dtype(tf.dtype):
            return super().read_window(tf, window)
        r, c = window.relative_to(tf.window)
        return read_strips(tf.path, layout, r, c)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_lock"] = None
        state["_files"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()


class S3Source(_GeoTiffSource):
    """GeoTIFF tiles below an ``s3://bucket/prefix``, listed with s3fs and read through GDAL /vsis3/.

    Parameters
    ----------
    url : str
        ``s3://bucket[/prefix]``.
    storage_options : mapping, optional
        s3fs options: ``anon``, ``requester_pays``, ``endpoint_url`` (S3-compatible stores).
        Credentials come from the environment or the instance/task role, never from here.
    """

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self.url = url.rstrip("/")
        self.label = self.url
        self.storage_options = dict(storage_options or {})
        self._files: dict[str, str] | None = None

    def gdal_env(self) -> dict[str, Any]:
        from fluxgraph.s3 import gdal_env

        return gdal_env(self.storage_options)

    def _index(self) -> dict[str, str]:
        if self._files is None:
            import s3fs

            from fluxgraph.s3 import storage_error

            fs = s3fs.S3FileSystem(skip_instance_cache=True, **self.storage_options)
            prefix = self.url[len("s3://"):]
            try:
                keys = fs.find(prefix)
                if not keys:
                    fs.ls(prefix.split("/", 1)[0])  # an empty prefix is fine; a missing bucket is not
            except Exception as exc:  # botocore errors (no credentials, no such bucket) are not OSErrors
                raise storage_error(self.url, exc, action="list") from None
            self._files = {
                k.rsplit("/", 1)[-1]: f"s3://{k}" for k in keys if k.lower().endswith((".tif", ".tiff"))
            }
        return self._files

    def _tried(self, filename: str) -> str:
        return f"{self.url}/**/{filename}"


# -- the synthetic demo source -----------------------------------------------------------------


class DemoSource:
    """Synthetic inputs computed on the fly: ``demo://[?size=N&seed=S]``.

    Every raw input layer of :mod:`fluxgraph.demo` exists for every tile. With ``size``
    each tile holds only its top-left ``size`` × ``size`` window (like a partial tile);
    without it, whole 40 000 × 40 000 tiles, so a graph of global size can be built
    and run with no files at all.
    """

    def __init__(self, size: int | None = None, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self.label = f"demo://?seed={seed}" + (f"&size={size}" if size else "")

    @classmethod
    def from_url(cls, url: str) -> DemoSource:
        q = parse_qs(urlparse(url).query)
        try:
            size = int(q["size"][0]) if "size" in q else None
            seed = int(q.get("seed", ["0"])[0])
        except ValueError as exc:
            raise ConfigError(f"{url}: size and seed must be integers") from exc
        if size is not None and not (0 < size <= 40000):
            raise ConfigError(f"{url}: size must be in 1..40000")
        return cls(size=size, seed=seed)

    def locate(self, filename: str, layer: str, tile: TileId) -> tuple[TileFile | None, list[str]]:
        from fluxgraph.demo import DEMO_LAYERS

        path = f"demo://{layer}/{tile}"
        if layer not in DEMO_LAYERS:
            return None, [path]
        win = tile.window
        if self.size:
            win = PixelWindow(win.row0, win.row0 + self.size, win.col0, win.col0 + self.size)
        return TileFile(layer, tile, path, win, str(np.dtype(DEMO_LAYERS[layer])), self), [path]

    def read_window(self, tf: TileFile, window: PixelWindow) -> np.ndarray:
        from fluxgraph.demo import demo_block

        return demo_block(tf.layer, window.row0, window.row1, window.col0, window.col1, seed=self.seed)


def open_source(location: str | Path | Source, storage_options: Mapping[str, Any] | None = None) -> Source:
    """A source for a folder, an ``s3://`` URL, ``demo://…``, or an existing Source."""
    if not isinstance(location, str | Path):
        return location
    text = str(location)
    if text.startswith("demo://"):
        return DemoSource.from_url(text)
    if text.startswith("s3://"):
        return S3Source(text, storage_options)
    if "://" in text:
        raise ConfigError(f"unsupported input location {text!r}: use a folder, s3://bucket/prefix or demo://")
    return LocalSource(text)
