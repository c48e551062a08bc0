"""Shared fixtures: real GeoTIFF tiles on the grid, the real GFW strip, a dask scheduler."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import dask
import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("ci", max_examples=100, deadline=None)
settings.register_profile("default", max_examples=40, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _sync_scheduler():
    """Deterministic single-threaded dask unless a test starts its own cluster."""
    with dask.config.set(scheduler="synchronous"):
        yield


@pytest.fixture
def sample_dir() -> Path:
    """The real 20 x 40000 strip of tile 00N_000E (FLUXGRAPH_SAMPLE_DIR or ../shared/data/gfw_test_strip)."""
    path = Path(os.environ.get("FLUXGRAPH_SAMPLE_DIR", REPO.parent / "shared" / "data" / "gfw_test_strip"))
    if not path.is_dir():
        pytest.skip(f"real GFW test strip not found at {path} (set FLUXGRAPH_SAMPLE_DIR)")
    return path


@pytest.fixture
def write_tile() -> Callable[..., Path]:
    """Factory: write a GFW-named GeoTIFF for a layer and tile covering a window (default top-left)."""
    import rasterio
    from affine import Affine

    from fluxgraph.catalog import get_layer
    from fluxgraph.config import load_config
    from fluxgraph.grid import PixelWindow, TileId

    naming = load_config().naming

    def _write(folder: Path, layer: str, tile: str, values: np.ndarray, *, row_off: int = 0,
               col_off: int = 0, transform: Affine | None = None, crs: str = "EPSG:4326",
               name: str | None = None) -> Path:
        lay = get_layer(layer)
        t = TileId.parse(tile).window
        h, w = values.shape
        win = PixelWindow(t.row0 + row_off, t.row0 + row_off + h, t.col0 + col_off, t.col0 + col_off + w)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / (name or lay.filename(naming, tile))
        profile = {"driver": "GTiff", "width": w, "height": h, "count": 1, "dtype": lay.dtype, "crs": crs,
                   "transform": transform or Affine(*win.transform), "nodata": lay.nodata,
                   "compress": "deflate", "blockysize": 1}
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(values.astype(lay.dtype), 1)
        return path

    return _write
