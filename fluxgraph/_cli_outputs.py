"""The ``fluxgraph stac`` and ``fluxgraph plot`` commands (registered by ``fluxgraph.cli``).

``fluxgraph stac --outputs OUT [--no-validate]`` (re)builds ``OUT/stac/catalog.json`` from the COGs
of a run (:func:`fluxgraph.stac.write_catalog`) and validates it offline.

``fluxgraph plot --outputs OUT --layer NAME [--tile T | --bbox W,S,E,N] [--out PNG]`` or
``fluxgraph plot --cog PATH`` writes a quicklook PNG (:func:`fluxgraph.plot.plot_layer`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fluxgraph.errors import FluxgraphError

__all__ = ["plot", "stac"]


def _fail(exc: Exception) -> None:
    from fluxgraph.cli import _fail as fail

    fail(exc)


def stac(
    outputs: Annotated[Path, typer.Option("--outputs", "-o", help="Output folder of a run (holding cog/)")],
    validate: Annotated[bool, typer.Option(help="Validate the catalog offline after writing it")] = True,
) -> None:
    """Write a STAC catalog (one item per tile, one asset per COG) of a run's outputs to OUT/stac."""
    from fluxgraph.stac import validate_catalog, write_catalog

    try:
        path = write_catalog(outputs)
        typer.echo(f"wrote {path}")
        if validate:
            typer.echo(f"valid: {validate_catalog(path)} STAC object(s) checked offline "
                       "(core, projection v2.0.0, raster v1.1.0, fluxgraph fields)")
    except FluxgraphError as exc:
        _fail(exc)


def plot(
    outputs: Annotated[Path | None, typer.Option("--outputs", "-o", help="Output folder of a run")] = None,
    layer: Annotated[str | None, typer.Option(help="Layer: a COG layer or any 2-D Zarr variable")] = None,
    tile: Annotated[str | None, typer.Option(help="Tile id, e.g. 00N_110E")] = None,
    bbox: Annotated[str | None, typer.Option(help="Region W,S,E,N in degrees")] = None,
    cog: Annotated[Path | None, typer.Option(help="Plot this GeoTIFF instead of --outputs/--layer")] = None,
    out: Annotated[Path | None, typer.Option(help="PNG to write (default OUT/plots/{layer}_{region}.png)")] = None,
    max_pixels: Annotated[int, typer.Option(help="Largest side of the plotted array, pixels")] = 1200,
) -> None:
    """Write a quicklook PNG map of a layer over a tile or a lat/lon box."""
    from fluxgraph.plot import plot_layer

    try:
        path = plot_layer(outputs=outputs, layer=layer, cog=cog, tile=tile, bbox=bbox, out=out,
                          max_pixels=max_pixels)
        typer.echo(f"wrote {path}")
    except FluxgraphError as exc:
        _fail(exc)
