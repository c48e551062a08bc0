"""fluxgraph: the Global Forest Watch forest carbon flux model on Dask, plus PRELES.

Public API (imported lazily so that ``import fluxgraph`` stays cheap)::

    fluxgraph.open_mosaic(inputs, tiles=..., bbox=...)   # lazy input Dataset
    fluxgraph.run(inputs, out=..., tiles=..., stages=...) # plan, compute, write
    fluxgraph.zonal_stats(outputs=..., zones=..., by=...)  # per-polygon totals of a run's outputs
    fluxgraph.stage_outputs(inputs, stages=..., bbox=...) # stage outputs as a lazy Dataset
    fluxgraph.load_config(path)                           # run configuration
    fluxgraph.TileId, fluxgraph.PixelWindow               # grid value types
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "open_mosaic": "fluxgraph.mosaic",
    "Mosaic": "fluxgraph.mosaic",
    "Region": "fluxgraph.mosaic",
    "run": "fluxgraph.runner",
    "stage_outputs": "fluxgraph.explore",
    "stage_outputs_by_tile": "fluxgraph.explore",
    "pixel_area_ha": "fluxgraph.explore",
    "load_config": "fluxgraph.config",
    "RunConfig": "fluxgraph.config",
    "TileId": "fluxgraph.grid",
    "PixelWindow": "fluxgraph.grid",
    "FluxgraphError": "fluxgraph.errors",
    "zonal_stats": "fluxgraph.zonal",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fluxgraph' has no attribute {name!r}")
