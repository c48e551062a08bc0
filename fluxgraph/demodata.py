"""Write the synthetic demo inputs as GFW-named GeoTIFF tiles (``fluxgraph demo-data``).

The files look like the original's tiles: the original's names, DEFLATE compression and
one-row strips (the block layout of the real 40 000 × 40 000 tiles), nodata 0, each
covering the top-left ``size`` × ``size`` window of its tile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from fluxgraph.catalog import get_layer
from fluxgraph.config import RunConfig, load_config
from fluxgraph.errors import ConfigError
from fluxgraph.grid import PixelWindow, TileId

__all__ = ["write_demo_tiles"]


def write_demo_tiles(
    out: str | Path,
    tiles: Iterable[TileId],
    *,
    size: int = 1000,
    seed: int = 0,
    layers: Iterable[str] | None = None,
    config: RunConfig | None = None,
    band_rows: int = 2000,
    on_file: Callable[[Path], None] | None = None,
    rows: int | None = None,
    loss_scale: float = 1.0,
) -> list[Path]:
    """Write demo input tiles.

    Parameters
    ----------
    out : str or Path
        Folder to write into (created).
    tiles : iterable of TileId
        Tiles to write.
    size : int
        Side of the top-left window of each tile to cover, pixels (1 … 40 000).
    seed : int
        Seed of the synthetic generator (same seed, same values).
    layers : iterable of str, optional
        Layers to write; all demo layers by default.
    band_rows : int
        Rows generated and written at a time (bounds memory for large sizes).
    rows : int, optional
        Rows of the window when it is not square (``size`` is then its width), pixels.
    loss_scale : float
        Factor on the radius of the loss patches (:func:`fluxgraph.demo.demo_blocks`): 1 gives about
        10 % of forest pixels with loss and carbon, 1.5 about 22 %.

    Returns
    -------
    list of Path
        The files written.
    """
    import rasterio
    from affine import Affine
    from rasterio.windows import Window

    from fluxgraph.demo import DEMO_LAYERS, demo_block

    height = size if rows is None else rows
    if not (0 < size <= 40000 and 0 < height <= 40000):
        raise ConfigError(f"size and rows must be in 1..40000 pixels, not {size} and {height}")
    config = config or load_config()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    names = list(layers) if layers is not None else list(DEMO_LAYERS)
    written = []
    for tile in tiles:
        tw = tile.window
        win = PixelWindow(tw.row0, tw.row0 + height, tw.col0, tw.col0 + size)
        for name in names:
            layer = get_layer(name)
            path = out / layer.filename(config.naming, str(tile))
            profile = {
                "driver": "GTiff", "width": size, "height": height, "count": 1, "dtype": layer.dtype,
                "crs": "EPSG:4326", "transform": Affine(*win.transform), "nodata": layer.nodata,
                "compress": "deflate", "tiled": False, "blockysize": 1,
            }
            with rasterio.open(path, "w", **profile) as dst:
                for r0 in range(0, height, band_rows):
                    r1 = min(r0 + band_rows, height)
                    block = demo_block(name, win.row0 + r0, win.row0 + r1, win.col0, win.col1, seed=seed,
                                       loss_scale=loss_scale)
                    dst.write(np.asarray(block, dtype=layer.dtype), 1, window=Window(0, r0, size, r1 - r0))
            written.append(path)
            if on_file:
                on_file(path)
    return written
